//! The search's section of the result: [`replay`] judges every step of a recorded search from
//! its analysis and asks [`decide()`] where that leaves the search — the live run does this after
//! each step to choose the next, and `analyze` / `report` do it once to show the path. The
//! section is built here and handed to the renderers whole: the terminal lines
//! ([`SearchReport::lines`]), one line for the report's verdict ([`SearchReport::verdict`]) and
//! the `search` object of `result.json` (its serialization).

use serde::Serialize;

use ceiling_reports::step_time::StepTiming;
use ceiling_reports::{
    Analysis, AnalysisError, AnalysisOptions, Recording, StepRecord, StepSummary, analyze,
};

use super::decide::{Decision, Judged, Stop, decide, outcome};
use super::judge::{Limit, StepMeasure, Verdict, judge};
use super::{HoldLimit, SearchSettings};

/// One step of the search as the result shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchStep {
    pub step_idx: u32,
    pub batch_size: u32,
    pub verdict: Verdict,
    /// `bs × MTP / t_fwd`, output tokens/s of the node.
    pub throughput_tok_s: Option<f64>,
    pub otps: Option<f64>,
    pub t_fwd_s: Option<f64>,
    pub running_max: Option<f64>,
    pub duration_s: Option<f64>,
}

/// The measured step the search ends on: the one followed with the highest throughput.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchCeiling {
    pub step_idx: u32,
    pub batch_size: u32,
    pub throughput_tok_s: f64,
    pub t_fwd_s: f64,
    pub otps: f64,
    pub mtp: f64,
}

/// The search's path and where it ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchReport {
    pub settings: SearchSettings,
    pub steps: Vec<SearchStep>,
    /// The name of what stopped the search: a limit (`sequence_cap`, `kv_capacity`,
    /// `preemption`, `sla`, `errors`, `queueing`, …), `budget`, `search_bound` or `interrupted`.
    pub limit: &'static str,
    pub stop: Stop,
    pub ceiling: Option<SearchCeiling>,
    pub last_good_bs: Option<u32>,
    pub first_bad_bs: Option<u32>,
    /// The engine's sequence cap, when the search found it (the running batch's plateau).
    pub sequence_cap: Option<u32>,
    /// From the first step's start to the last one's end.
    pub elapsed_s: f64,
    /// The batch size the search would measure next; `None` when it is over.
    pub next_bs: Option<u32>,
}

/// Judges every step of a recorded search (`steps`, with the analysis' `summaries` and
/// `timings` for them) and says where the search stands.
pub fn replay(
    settings: &SearchSettings,
    steps: &[StepRecord],
    summaries: &[StepSummary],
    timings: &[StepTiming],
) -> SearchReport {
    let judged: Vec<Judged> = steps
        .iter()
        .filter_map(|r| {
            let s = summaries.iter().find(|s| s.step_idx == r.idx)?;
            let t = timings.iter().find(|t| t.step_idx == r.idx)?;
            let duration = r.end_t_s.map(|e| e - r.start_t_s);
            let measure = StepMeasure::from_analysis(s, t, duration);
            let verdict = judge(&measure, settings);
            Some(Judged { measure, verdict })
        })
        .collect();
    let start = steps.iter().map(|s| s.start_t_s).reduce(f64::min);
    let end = steps
        .iter()
        .map(|s| s.end_t_s.unwrap_or(s.start_t_s))
        .reduce(f64::max);
    let elapsed_s = start.zip(end).map_or(0.0, |(a, b)| (b - a).max(0.0));
    let (out, next_bs) = match decide(settings, &judged, elapsed_s) {
        Decision::Done(o) => (o, None),
        Decision::Next(bs) => (
            outcome(&judged, Stop::Interrupted { next_bs: bs }),
            Some(bs),
        ),
    };
    let ceiling = out.ceiling_step.and_then(|idx| {
        let m = &judged.iter().find(|j| j.measure.step_idx == idx)?.measure;
        Some(SearchCeiling {
            step_idx: idx,
            batch_size: m.batch_size,
            throughput_tok_s: m.throughput_tok_s()?,
            t_fwd_s: m.t_fwd_s?,
            otps: m.otps()?,
            mtp: m.mtp,
        })
    });
    let sequence_cap = match out.stop {
        Stop::Limit {
            limit: Limit::SequenceCap { cap },
        } => Some(cap),
        _ => None,
    };
    SearchReport {
        settings: settings.clone(),
        steps: judged.iter().map(search_step).collect(),
        limit: out.stop.name(),
        stop: out.stop,
        ceiling,
        last_good_bs: out.last_good_bs,
        first_bad_bs: out.first_bad_bs,
        sequence_cap,
        elapsed_s,
        next_bs,
    }
}

/// Analyses a recorded search under `opts`, taking the search's SLA and the sequence cap it
/// found where `opts` gives none, so the analysis' ceiling is computed under the same limits the
/// search met; returns the analysis and the search's section.
pub fn analyze_search(
    settings: &SearchSettings,
    data: &Recording,
    mut opts: AnalysisOptions,
) -> Result<(Analysis, SearchReport), AnalysisError> {
    if opts.sla_otps.is_none() && opts.sla_tpot_s.is_none() {
        opts.sla_otps = settings.sla_otps;
        opts.sla_tpot_s = settings.sla_tpot_s;
    }
    let a = analyze(data, &opts)?;
    let report = replay(settings, &data.steps, &a.steps, &a.timings);
    match report.sequence_cap {
        Some(cap) if opts.max_num_seqs.is_none() => {
            let dp = a.dp.max(1);
            opts.max_num_seqs = Some(cap.div_ceil(dp));
            Ok((analyze(data, &opts)?, report))
        }
        _ => Ok((a, report)),
    }
}

fn search_step(j: &Judged) -> SearchStep {
    let m = &j.measure;
    SearchStep {
        step_idx: m.step_idx,
        batch_size: m.batch_size,
        verdict: j.verdict,
        throughput_tok_s: m.throughput_tok_s(),
        otps: m.otps(),
        t_fwd_s: m.t_fwd_s,
        running_max: m.running_max,
        duration_s: m.duration_s,
    }
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.digits$}"))
}

impl SearchReport {
    /// The SLA and the budget the search ran under, and what the engine said it holds.
    pub fn settings_line(&self) -> String {
        let s = &self.settings;
        let mut sla = Vec::new();
        if let Some(o) = s.sla_otps_or_default() {
            sla.push(format!("≥ {o:.1} tok/s per sequence"));
        }
        if let Some(t) = s.sla_tpot_s {
            sla.push(format!("TPOT ≤ {:.2} ms", t * 1e3));
        }
        let hold =
            s.engine_hold
                .as_ref()
                .map_or("the engine declares no capacity".to_string(), |h| {
                    let what = match h.limit {
                        HoldLimit::SequenceCap => "sequences",
                        HoldLimit::KvCapacity => "sequences of KV cache",
                    };
                    format!(
                        "the engine says it holds {} {what} ({})",
                        h.max_batch, h.source
                    )
                });
        format!(
            "search at {}/{} tokens, SLA {}, budget {:.0} s, within {:.0} %; {hold}",
            s.input_len,
            s.output_len,
            sla.join(" and "),
            s.budget_s,
            s.precision * 100.0
        )
    }

    /// One line: the ceiling the search measured and what stopped it.
    pub fn verdict(&self) -> String {
        let ceiling = match &self.ceiling {
            Some(c) => format!(
                "{:.0} output tok/s at bs {} (step {}, measured: t_fwd {:.2} ms, {:.1} tok/s per \
                 sequence)",
                c.throughput_tok_s,
                c.batch_size,
                c.step_idx,
                c.t_fwd_s * 1e3,
                c.otps
            ),
            None => "no batch size was followed".into(),
        };
        let bracket = match (self.last_good_bs, self.first_bad_bs) {
            (Some(g), Some(b)) => format!(" (bs {g} followed, bs {b} not)"),
            _ => String::new(),
        };
        format!(
            "{ceiling}; stopped by {}{bracket}; {} steps in {:.0} s",
            self.stop.describe(),
            self.steps.len(),
            self.elapsed_s
        )
    }

    /// The terminal section: the settings, one line per step, the verdict.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![self.settings_line()];
        out.push(format!(
            "{:>4}  {:>6}  {:>10}  {:>9}  {:>8}  {:>7}  {:>6}  verdict",
            "step", "bs", "tok/s", "tok/s/seq", "t_fwd ms", "running", "time s"
        ));
        for s in &self.steps {
            let verdict = match s.verdict.limit() {
                None => "follows".to_string(),
                Some(l) => l.describe(),
            };
            out.push(format!(
                "{:>4}  {:>6}  {:>10}  {:>9}  {:>8}  {:>7}  {:>6}  {verdict}",
                s.step_idx,
                s.batch_size,
                num(s.throughput_tok_s, 0),
                num(s.otps, 1),
                num(s.t_fwd_s.map(|t| t * 1e3), 2),
                num(s.running_max, 0),
                num(s.duration_s, 1),
            ));
        }
        out.push(format!("search: {}", self.verdict()));
        out
    }
}

#[cfg(test)]
mod tests;
