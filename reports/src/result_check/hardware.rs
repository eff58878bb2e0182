//! The checks against the hardware: TPOT at or above the roofline's least step time at the
//! result's batch per replica and context, output tok/s at or below the roofline ceiling, TTFT
//! at or above the prefill compute bound (below it, the prompt came from the prefix cache), and
//! OTPS per sequence against the SLA.

use serde_json::json;

use super::{Check, CheckContext, Verdict, check, missing};
use crate::peer::PeerPoint;

const GROUP: &str = "hardware";

pub fn checks(p: &PeerPoint, ctx: &CheckContext) -> Vec<Check> {
    let mut out = vec![otps_sla(p, ctx.sla_otps)];
    let Some(roof) = &ctx.roofline else {
        for code in ["tpot_roofline", "throughput_roofline", "ttft_prefill_bound"] {
            out.push(check(code, GROUP, Verdict::CannotTell,
                "no model and GPU: give --model-config and --gpu (and --tp, --dp) to hold the result against the hardware".into(),
                serde_json::Value::Null));
        }
        return out;
    };
    let dp = f64::from(ctx.dp.max(1));
    // Sequences decoding together per replica: the configured concurrency, else Little's law.
    let in_flight = p.concurrency.or(match (p.req_per_s, p.e2e.mean_s) {
        (Some(r), Some(e)) => Some(r * e),
        _ => None,
    });
    let (Some(conc), Some(inp), Some(out_len)) = (in_flight, p.input_len_mean, p.output_len_mean)
    else {
        for code in ["tpot_roofline", "throughput_roofline"] {
            out.push(missing(
                code,
                GROUP,
                &[
                    ("concurrency", in_flight.is_some()),
                    ("mean input length", p.input_len_mean.is_some()),
                    ("mean output length", p.output_len_mean.is_some()),
                ],
            ));
        }
        out.push(ttft_bound(p, roof));
        return out;
    };
    let bs = (conc / dp).round().max(1.0) as u32;
    let context = (inp + out_len / 2.0).round().max(1.0) as u32;
    let point = roof.at(bs, context);
    let t_min = point.t_min_s;
    let base = json!({"bs_per_replica": bs, "context": context, "tp": roof.tp, "dp": ctx.dp, "t_min_s": t_min, "bound": point.bound.as_str()});
    out.push(match p.tpot.mean_s {
        None => missing("tpot_roofline", GROUP, &[("TPOT", false)]),
        Some(tpot) => {
            let mut n = base.clone();
            n["tpot_s"] = json!(tpot);
            n["efficiency"] = json!(t_min / tpot);
            if tpot < t_min {
                check("tpot_roofline", GROUP, Verdict::Fail, format!(
                    "TPOT {:.2} ms is below the least step time the hardware allows at bs {bs}, context {context} ({:.2} ms, {}-bound): impossible for this model, GPU and TP; the model, TP or GPU is not what was stated, or MTP / speculative decoding emits several tokens per step",
                    tpot * 1e3, t_min * 1e3, point.bound.as_str()), n)
            } else {
                check("tpot_roofline", GROUP, Verdict::Pass, format!(
                    "TPOT {:.2} ms at or above the roofline's {:.2} ms (efficiency {:.0} %)", tpot * 1e3, t_min * 1e3, t_min / tpot * 100.0), n)
            }
        }
    });
    out.push(match p.output_tok_per_s {
        None => missing("throughput_roofline", GROUP, &[("output tok/s", false)]),
        Some(tps) => {
            let ceiling = point.max_output_tokens_per_s * dp;
            let mut n = base.clone();
            n["output_tok_per_s"] = json!(tps);
            n["ceiling_tok_per_s"] = json!(ceiling);
            if tps > ceiling {
                check("throughput_roofline", GROUP, Verdict::Fail, format!(
                    "{tps:.1} output tok/s is above the roofline ceiling of {ceiling:.1} for {bs} sequences × {} replicas: the result cannot come from the stated model, GPU, TP and DP (a smaller or quantized model, more GPUs, MTP, or tokens counted twice)", ctx.dp), n)
            } else {
                check("throughput_roofline", GROUP, Verdict::Pass, format!(
                    "{tps:.1} output tok/s is {:.0} % of the roofline ceiling {ceiling:.1}", tps / ceiling * 100.0), n)
            }
        }
    });
    out.push(ttft_bound(p, roof));
    out
}

/// TTFT at or above the compute bound of one prompt's prefill.
fn ttft_bound(p: &PeerPoint, roof: &crate::roofline::Roofline) -> Check {
    const C: &str = "ttft_prefill_bound";
    let (Some(inp), Some(ttft)) = (p.input_len_mean, p.ttft.p50_s.or(p.ttft.mean_s)) else {
        return missing(
            C,
            GROUP,
            &[
                ("mean input length", p.input_len_mean.is_some()),
                ("TTFT", p.ttft.mean_s.is_some()),
            ],
        );
    };
    let bound = roof.prefill_min_s(inp.round().max(1.0) as u32);
    let n = json!({"ttft_p50_s": ttft, "prefill_min_s": bound, "input_len": inp});
    if ttft < bound {
        check(
            C,
            GROUP,
            Verdict::Fail,
            format!(
                "median TTFT {:.2} ms is below the {:.2} ms the GPU needs to prefill {inp:.0} tokens: the prompts were served from a warm prefix cache (no unique prefix per request), so TTFT and throughput are a cache's, not a prefill's; rerun with a random prefix per request",
                ttft * 1e3,
                bound * 1e3
            ),
            n,
        )
    } else {
        check(
            C,
            GROUP,
            Verdict::Pass,
            format!(
                "median TTFT {:.2} ms at or above the prefill bound {:.2} ms",
                ttft * 1e3,
                bound * 1e3
            ),
            n,
        )
    }
}

/// OTPS per sequence (1 / TPOT) against the SLA.
fn otps_sla(p: &PeerPoint, sla: f64) -> Check {
    const C: &str = "otps_sla";
    let Some(tpot) = p.tpot.mean_s.filter(|t| *t > 0.0) else {
        return missing(C, GROUP, &[("TPOT", false)]);
    };
    let otps = 1.0 / tpot;
    let n = json!({"otps": otps, "sla_otps": sla});
    if otps < sla {
        check(
            C,
            GROUP,
            Verdict::Warn,
            format!(
                "{otps:.1} tokens/s per sequence, below the SLA of {sla}: this point's throughput is not usable at this concurrency; quote a lower concurrency, or the ceiling under the SLA"
            ),
            n,
        )
    } else {
        check(
            C,
            GROUP,
            Verdict::Pass,
            format!("{otps:.1} tokens/s per sequence meets the SLA of {sla}"),
            n,
        )
    }
}
