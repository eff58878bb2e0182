//! Against a `ceiling` run (`--against RUN`): the run's step-time fit predicts the step time at
//! the result's batch per replica and decode context; with one token per step, that is the TPOT
//! the result should show, and `C / TPOT × (1 − TTFT / E2E)` its output tok/s. Beyond the fit's
//! 95 % interval widened by a tolerance, the check says which side looks off.

use serde_json::json;

use super::{Check, Verdict, check, missing};
use crate::fit::StepTimeFit;
use crate::peer::PeerPoint;

const GROUP: &str = "against_run";
/// Added to each side of the fit's interval: engines and clients differ by this much between
/// runs of one deployment.
const TOLERANCE: f64 = 0.10;

/// The run the result is held against.
#[derive(Debug, Clone)]
pub struct AgainstRun {
    pub run_id: i64,
    pub fit: StepTimeFit,
}

pub fn checks(p: &PeerPoint, run: &AgainstRun, dp: u32) -> Vec<Check> {
    let (Some(conc), Some(inp), Some(out), Some(tpot)) = (
        p.concurrency,
        p.input_len_mean,
        p.output_len_mean,
        p.tpot.mean_s,
    ) else {
        let fields = [
            ("concurrency", p.concurrency.is_some()),
            ("mean input length", p.input_len_mean.is_some()),
            ("mean output length", p.output_len_mean.is_some()),
            ("TPOT", p.tpot.mean_s.is_some()),
        ];
        return vec![missing("against_run_tpot", GROUP, &fields)];
    };
    let bs = (conc / f64::from(dp.max(1))).max(1.0);
    let ctx = inp + out / 2.0;
    let predicted = run.fit.predict(bs, ctx);
    let [lo, hi] = run
        .fit
        .predict_ci95(bs, ctx)
        .unwrap_or([predicted, predicted]);
    let (lo, hi) = (lo * (1.0 - TOLERANCE), hi * (1.0 + TOLERANCE));
    let id = run.run_id;
    let n = json!({"run_id": id, "bs_per_replica": bs, "context": ctx, "tpot_s": tpot,
        "predicted_s": predicted, "band_s": [lo, hi]});
    let tpot_check = if tpot < lo {
        check(
            "against_run_tpot",
            GROUP,
            Verdict::Fail,
            format!(
                "TPOT {:.2} ms is below what run {id} predicts at bs {bs:.0}, context {ctx:.0} ({:.2} ms, band {:.2}–{:.2}): the result is faster than this deployment: shorter outputs than stated, a warm prefix cache, MTP, or another model or GPU",
                tpot * 1e3,
                predicted * 1e3,
                lo * 1e3,
                hi * 1e3
            ),
            n,
        )
    } else if tpot > hi {
        check(
            "against_run_tpot",
            GROUP,
            Verdict::Warn,
            format!(
                "TPOT {:.2} ms is above what run {id} predicts at bs {bs:.0}, context {ctx:.0} ({:.2} ms, band {:.2}–{:.2}): the result's client saturated or queued, the lengths differ, or the engine was slower then; check Little's law and the lengths",
                tpot * 1e3,
                predicted * 1e3,
                lo * 1e3,
                hi * 1e3
            ),
            n,
        )
    } else {
        check(
            "against_run_tpot",
            GROUP,
            Verdict::Pass,
            format!(
                "TPOT {:.2} ms within run {id}'s prediction {:.2} ms (band {:.2}–{:.2})",
                tpot * 1e3,
                predicted * 1e3,
                lo * 1e3,
                hi * 1e3
            ),
            n,
        )
    };
    vec![tpot_check, throughput(p, conc, predicted, lo, hi, id)]
}

/// Output tok/s against `C / t_fwd × (1 − TTFT / E2E)` at the predicted step time.
fn throughput(p: &PeerPoint, conc: f64, t: f64, lo: f64, hi: f64, id: i64) -> Check {
    const C: &str = "against_run_throughput";
    let (Some(tps), Some(ttft), Some(e2e)) = (p.output_tok_per_s, p.ttft.mean_s, p.e2e.mean_s)
    else {
        let fields = [
            ("output tok/s", p.output_tok_per_s.is_some()),
            ("TTFT", p.ttft.mean_s.is_some()),
            ("E2E", p.e2e.mean_s.is_some()),
        ];
        return missing(C, GROUP, &fields);
    };
    let share = (1.0 - ttft / e2e).max(0.0);
    let (pred, most, least) = (conc / t * share, conc / lo * share, conc / hi * share);
    let n =
        json!({"run_id": id, "output_tok_per_s": tps, "predicted": pred, "band": [least, most]});
    if tps > most {
        check(
            C,
            GROUP,
            Verdict::Fail,
            format!(
                "{tps:.1} output tok/s is more than run {id} allows at this concurrency ({pred:.1}, at most {most:.1}): the result counts tokens it did not decode, or runs on more or faster hardware"
            ),
            n,
        )
    } else if tps < least {
        check(
            C,
            GROUP,
            Verdict::Warn,
            format!(
                "{tps:.1} output tok/s is less than run {id} predicts ({pred:.1}, at least {least:.1}): the result's client set the pace (too few in flight) or the lengths differ"
            ),
            n,
        )
    } else {
        check(
            C,
            GROUP,
            Verdict::Pass,
            format!("{tps:.1} output tok/s within run {id}'s prediction {pred:.1}"),
            n,
        )
    }
}
