//! The terminal rendering of an [`Analysis`]: the step table, the fit, the ceiling (with a table
//! by length when the run measured several length pairs) and the findings, as plain text (no
//! colour; the caller decides about TTYs). Returns a `String`; never prints.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use crate::analysis::Analysis;
use crate::report::{length_table, rate_table, step_table};

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |s| format!("{:.2}", s * 1e3))
}

pub(crate) fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

fn table(headers: Vec<String>, rows: Vec<Vec<String>>) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).force_no_tty();
    table.set_header(headers);
    for row in rows {
        table.add_row(row);
    }
    table
}

/// The analysis as the terminal shows it.
pub fn render_terminal(a: &Analysis) -> String {
    let mut out = String::new();
    let head = [
        a.run_id.map(|id| format!("run {id}")),
        a.engine_kind.clone(),
        a.model.clone(),
        Some(format!("DP {}", a.dp)),
    ];
    out.push_str(&head.into_iter().flatten().collect::<Vec<_>>().join(" · "));
    out.push('\n');

    if a.steps.is_empty() {
        out.push_str("no steps recorded\n");
        return out;
    }
    let (headers, rows) = step_table::rendered(a, "-");
    out.push_str(&format!("{}\n", table(headers, rows)));
    if let Some(line) = crate::gpus_apart::apart_line(&a.gpus_apart) {
        out.push_str(&format!("{line}\n"));
    }
    if let Some((headers, rows)) = rate_table::rendered(a, "-") {
        out.push_str("open loop (rate steps):\n");
        out.push_str(&format!("{}\n", table(headers, rows)));
    }

    if let Some((headers, rows)) = crate::report::pd_table::rendered(a, "-") {
        out.push_str("prefill/decode (P = prefill side, D = decode side):\n");
        out.push_str(&format!("{}\n", table(headers, rows)));
    }
    if let Some(line) = crate::report::pd_table::verdict_line(a) {
        out.push_str(&format!("prefill/decode: {line}\n"));
    }

    fit_lines(a, &mut out);
    ceiling_lines(a, &mut out);

    for line in rate_table::macro_lines(a) {
        out.push_str(&line);
        out.push('\n');
    }

    if a.findings.is_empty() {
        out.push_str("findings: none\n");
    } else {
        out.push_str("findings:\n");
        for f in &a.findings {
            let step = f.step_idx.map_or("run".into(), |s| format!("step {s}"));
            out.push_str(&format!(
                "  {:<5} {:<24} {step}: {}\n",
                f.severity.as_str(),
                f.code,
                f.message
            ));
        }
    }
    out
}

/// The fit's line: its terms with their 95 % intervals, points, residual and R²; the context
/// term where it could not be fitted.
fn fit_lines(a: &Analysis, out: &mut String) {
    match &a.fit {
        Some(f) => {
            let ci = |c: Option<[f64; 2]>, scale: f64| {
                c.map_or(String::new(), |[lo, hi]| {
                    format!(" [{:.4}, {:.4}]", lo * scale, hi * scale)
                })
            };
            out.push_str(&format!(
                "fit: t_fwd = {:.4} ms{} + {:.5} ms{} × bs",
                f.a_s * 1e3,
                ci(f.a_ci95_s, 1e3),
                f.b_s_per_seq * 1e3,
                ci(f.b_ci95_s_per_seq, 1e3),
            ));
            if let Some(c) = f.c_s_per_seq_token {
                let ci = f.c_ci95_s_per_seq_token.map_or(String::new(), |[lo, hi]| {
                    format!(" [{:.3e}, {:.3e}]", lo * 1e3, hi * 1e3)
                });
                out.push_str(&format!(" + {:.3e} ms{ci} × bs × context", c * 1e3));
            }
            out.push_str(&format!(
                "  ({} points, residual sd {} ms, R² {})\n",
                f.points,
                ms(f.residual_std_s),
                num(f.r_squared, 4)
            ));
        }
        None => out.push_str("fit: needs two batch sizes with a step time\n"),
    }
    if let Some(f) = a.fit.as_ref().filter(|f| {
        f.c_s_per_seq_token.is_none() && f.context_term != crate::fit::ContextTerm::OneContext
    }) {
        out.push_str(&format!(
            "fit: context term {}\n",
            f.context_term.describe()
        ));
    }
}

/// The ceilings: per length pair as a table, then one line each with its interval, limit, SLA.
fn ceiling_lines(a: &Analysis, out: &mut String) {
    if a.ceilings.is_empty() {
        out.push_str("ceiling: no feasible batch size (check the SLA and KV limits)\n");
    }
    if let Some((headers, rows)) = length_table::rendered(a, "-") {
        out.push_str("ceiling by length (context = input + output / 2 in the fit):\n");
        out.push_str(&format!("{}\n", table(headers, rows)));
    }
    for c in &a.ceilings {
        let ci = c
            .throughput_ci95_tok_s
            .map_or(String::new(), |[lo, hi]| format!(" [{lo:.0}, {hi:.0}]"));
        let sla = match (c.sla_otps, c.sla_tpot_s) {
            (Some(o), Some(t)) => format!("OTPS ≥ {o} and TPOT ≤ {:.1} ms", t * 1e3),
            (Some(o), None) => format!("OTPS ≥ {o}"),
            (None, Some(t)) => format!("TPOT ≤ {:.1} ms", t * 1e3),
            (None, None) => "no SLA".into(),
        };
        out.push_str(&format!(
            "ceiling {}/{}: {:.0} tok/s{ci} at bs {} per rank × DP {} (t_fwd {:.2} ms, {:.1} tok/s per sequence, MTP {:.2}); limited by {}; {sla}{}{}\n",
            c.input_len,
            c.output_len,
            c.throughput_tok_s,
            c.bs_per_rank,
            c.dp,
            c.t_fwd_s * 1e3,
            c.otps_per_seq,
            c.mtp,
            c.limited_by,
            c.qps_max.map_or(String::new(), |q| format!("; QPS max ≈ {q:.2}")),
            if c.extrapolated {
                format!("; EXTRAPOLATED beyond measured bs {}", c.max_measured_bs_per_rank)
            } else {
                String::new()
            },
        ));
    }
}

/// ANSI colour on the severity word of each finding line of [`render_terminal`]'s output
/// (red error, yellow warn, cyan info); for a terminal only — the caller checks it is one and
/// that `NO_COLOR` is unset.
pub fn colourize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let styled = [("  error ", 31), ("  warn  ", 33), ("  info  ", 36)]
            .iter()
            .find_map(|(prefix, code)| {
                line.strip_prefix(prefix).map(|rest| {
                    let word = prefix.trim();
                    let pad = &prefix[2 + word.len()..];
                    format!("  \u{1b}[{code}m{word}\u{1b}[0m{pad}{rest}")
                })
            });
        out.push_str(styled.as_deref().unwrap_or(line));
    }
    out
}
