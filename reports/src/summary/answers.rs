//! Requests that succeeded without an answer, per step: a reasoning model whose thinking used
//! the whole `max_tokens` (reasoning chunks only, and as many output tokens as asked), and an
//! answer that is empty (no answer token, the budget not used up by reasoning). Over the
//! measured, successful requests; a group-by of the chunks by request, joined to the
//! per-request figures. [`no_answer`] is the same rule over one request record (the oracle).

use std::collections::BTreeMap;

use polars::prelude::*;

use crate::metrics;
use crate::recording::{ChunkKind, RequestRecord};

/// Why a successful request came back without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoAnswer {
    /// Reasoning only, and the output reached `max_tokens`.
    ReasoningExhausted,
    /// No answer token, and not because reasoning used the budget.
    Empty,
}

/// One step's counts of [`NoAnswer`] requests: (reasoning exhausted, empty answer).
pub(crate) type NoAnswerCounts = (u32, u32);

/// The rule over one request (measured and successful, else `None`).
pub(crate) fn no_answer(r: &RequestRecord) -> Option<NoAnswer> {
    if !metrics::is_measured_ok(r) || r.chunks.iter().any(|c| c.kind == ChunkKind::Answer) {
        return None;
    }
    let reasoned = !r.chunks.is_empty();
    let used_all = metrics::output_tokens(r).is_some_and(|n| n >= r.completion_tokens_requested);
    Some(if reasoned && used_all {
        NoAnswer::ReasoningExhausted
    } else {
        NoAnswer::Empty
    })
}

/// Per step, its counts of [`NoAnswer`] requests, from the chunks and the per-request figures
/// ([`crate::frames::request_figures`]).
pub(crate) fn by_step(
    chunks: &DataFrame,
    figures: &DataFrame,
) -> PolarsResult<BTreeMap<u32, NoAnswerCounts>> {
    let per_request = chunks
        .clone()
        .lazy()
        .group_by([col("request")])
        .agg([col("reasoning").not().sum().alias("answer_n")]);
    let no_answer = col("answer_n").fill_null(lit(0u32)).eq(lit(0u32));
    let used_all = col("output_tokens")
        .cast(DataType::Int64)
        .gt_eq(col("completion_tokens_requested").cast(DataType::Int64))
        .fill_null(lit(false));
    let exhausted = no_answer
        .clone()
        .and(col("chunks_n").gt(lit(0)))
        .and(used_all);
    let df = figures
        .clone()
        .lazy()
        .select([
            col("request"),
            col("step_idx"),
            col("measured_ok"),
            col("chunks_n"),
            col("output_tokens"),
            col("completion_tokens_requested"),
        ])
        .join(
            per_request,
            [col("request")],
            [col("request")],
            JoinArgs::new(JoinType::Left),
        )
        .filter(col("measured_ok"))
        .group_by([col("step_idx")])
        .agg([
            exhausted.clone().sum().alias("exhausted"),
            no_answer.and(exhausted.not()).sum().alias("empty"),
        ])
        .collect()?;
    let step = df.column("step_idx")?.u32()?;
    let ex = df.column("exhausted")?.cast(&DataType::UInt32)?;
    let em = df.column("empty")?.cast(&DataType::UInt32)?;
    let (ex, em) = (ex.u32()?, em.u32()?);
    let mut out = BTreeMap::new();
    for i in 0..df.height() {
        if let Some(s) = step.get(i) {
            out.insert(s, (ex.get(i).unwrap_or(0), em.get(i).unwrap_or(0)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{ChunkArrival, Pattern, Recording, StepRecord};
    use crate::synthetic::request_at;

    /// A request of 4 output tokens asked: `reasoning` chunks then `answer` chunks.
    fn request(reasoning: u32, answer: u32) -> RequestRecord {
        let chunk = |i: u32, kind| ChunkArrival {
            t_s: 0.1 + f64::from(i) * 0.01,
            tokens: Some(1),
            kind,
        };
        let mut chunks: Vec<ChunkArrival> = (0..reasoning)
            .map(|i| chunk(i, ChunkKind::Reasoning))
            .collect();
        chunks.extend((reasoning..reasoning + answer).map(|i| chunk(i, ChunkKind::Answer)));
        RequestRecord {
            scheduled_t_s: None,
            completion_tokens_requested: 4,
            completion_tokens_reported: Some(reasoning + answer),
            chunks,
            ..request_at(0.0)
        }
    }

    #[test]
    fn requests_without_an_answer_are_counted_by_why_and_the_frames_agree_with_the_rule() {
        let reqs = [
            request(2, 2),
            request(4, 0),
            request(4, 0),
            request(2, 0),
            request(0, 0),
            RequestRecord {
                warmup: true,
                ..request(4, 0)
            },
        ];
        let step = StepRecord {
            rate_rps: None,
            burstiness: None,
            idx: 0,
            batch_size: 6,
            input_len: 1,
            output_len: 4,
            pattern: Pattern::Wave,
            start_t_s: 0.0,
            end_t_s: Some(1.0),
        };
        let rec = Recording::from_records(
            Default::default(),
            std::slice::from_ref(&step),
            &reqs,
            &[],
            Vec::new(),
            Vec::new(),
        )
        .unwrap();
        let figures = crate::frames::request_figures(&rec).unwrap();
        let got = by_step(&rec.chunks, &figures).unwrap();
        // Two thought through all 4 tokens; one stopped after 2 with nothing, one said nothing.
        assert_eq!(got.get(&0), Some(&(2, 2)));
        let rule: Vec<Option<NoAnswer>> = reqs.iter().map(no_answer).collect();
        assert_eq!(
            rule,
            [
                None,
                Some(NoAnswer::ReasoningExhausted),
                Some(NoAnswer::ReasoningExhausted),
                Some(NoAnswer::Empty),
                Some(NoAnswer::Empty),
                None
            ]
        );
    }
}
