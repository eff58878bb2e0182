//! Rules on the DP ranks' own readings (the engine's rank-labelled series: vLLM `engine`, SGLang
//! `dp_rank`): a rank that ran a smaller batch than its share while the others ran theirs.

use serde_json::json;

use super::{Check, Rule, StepView, Subject, Tolerances};
use crate::finding::{Finding, Severity};

pub(super) const DP_RANK_IMBALANCE: Rule = Rule {
    code: "dp_rank_imbalance",
    severities: &[Severity::Warn],
    what: "one DP rank's running batch stayed below its share while another rank's did not",
    check: Check::Step(dp_rank_imbalance),
};

/// Each rank's share is at least `⌊bs / ranks⌋` sequences (a batch not divisible by the ranks
/// leaves some one short: expected, no finding). A rank whose running batch never reached that
/// share in the window, while another's never fell below it, is unbalanced: the step time is the
/// busiest rank's, so the throughput is below what DP × the share would give.
fn dp_rank_imbalance(v: &StepView<'_>, _tol: &Tolerances) -> Option<Finding> {
    let ranks = &v.timing.ranks;
    if ranks.len() < 2 {
        return None;
    }
    let share = (v.bs() / ranks.len() as f64).floor();
    if share < 1.0 {
        return None;
    }
    let low = ranks
        .iter()
        .filter(|r| r.running_max.is_some_and(|m| m < share - 0.5))
        .min_by(|a, b| {
            a.running_max
                .unwrap_or(0.0)
                .total_cmp(&b.running_max.unwrap_or(0.0))
        })?;
    let high = ranks
        .iter()
        .filter(|r| r.running_min.is_some_and(|m| m >= share - 0.5))
        .max_by(|a, b| {
            a.running_min
                .unwrap_or(0.0)
                .total_cmp(&b.running_min.unwrap_or(0.0))
        })?;
    let per_rank: serde_json::Map<String, serde_json::Value> = ranks
        .iter()
        .map(|r| (r.rank.clone(), json!(r.running_mean)))
        .collect();
    Some(v.finding(
        &DP_RANK_IMBALANCE,
        Severity::Warn,
        format!(
            "DP rank {} ran at most {:.0} sequences while rank {} ran {:.0}+ (share {share:.0} of bs {:.0}); the router or the engine's DP balancing left a rank short: check the load-balancing policy, or send more requests",
            low.rank,
            low.running_max.unwrap_or(0.0),
            high.rank,
            high.running_min.unwrap_or(0.0),
            v.bs()
        ),
        json!({"batch_size": v.summary.batch_size, "share": share, "low_rank": low.rank, "low_running_max": low.running_max, "high_rank": high.rank, "high_running_min": high.running_min, "running_mean_by_rank": per_rank}),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{BS, Step};
    use super::*;
    use crate::step_time::RankWindow;

    fn rank(id: &str, min: f64, max: f64) -> RankWindow {
        RankWindow {
            rank: id.into(),
            running_mean: Some((min + max) / 2.0),
            running_min: Some(min),
            running_max: Some(max),
            steps_per_s: Some(100.0),
        }
    }

    #[test]
    fn a_rank_below_its_share_while_another_holds_its_own_fires() {
        let mut s = Step::clean();
        // bs 8 over 2 ranks: 4 each; rank 1 ran 1 or 2.
        s.timing.ranks = vec![rank("0", 4.0, 6.0), rank("1", 1.0, 2.0)];
        let f = s.raised(&DP_RANK_IMBALANCE);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].severity, Severity::Warn);
        assert_eq!(f[0].evidence["low_rank"], "1");
        assert_eq!(f[0].evidence["high_rank"], "0");
        assert_eq!(f[0].evidence["share"], 4.0);
        assert_eq!(f[0].evidence["low_running_max"], 2.0);
    }

    #[test]
    fn balanced_ranks_an_indivisible_batch_and_one_sequence_are_silent() {
        let mut s = Step::clean();
        s.timing.ranks = vec![rank("0", 4.0, 4.0), rank("1", 4.0, 4.0)];
        s.silent(&DP_RANK_IMBALANCE);
        // bs 8 over 3 ranks: 3, 3, 2 is the expected split (share ⌊8/3⌋ = 2).
        s.timing.ranks = vec![
            rank("0", 3.0, 3.0),
            rank("1", 3.0, 3.0),
            rank("2", 2.0, 2.0),
        ];
        s.silent(&DP_RANK_IMBALANCE);
        // bs 1 over 2 ranks: one rank has it, the other none; what was asked for.
        s.summary.batch_size = 1;
        s.timing.ranks = vec![rank("0", 1.0, 1.0), rank("1", 0.0, 0.0)];
        s.silent(&DP_RANK_IMBALANCE);
        // Every rank short (the engine cannot hold the batch): engine_batch_mismatch's case.
        s.summary.batch_size = BS;
        s.timing.ranks = vec![rank("0", 2.0, 3.0), rank("1", 2.0, 3.0)];
        s.silent(&DP_RANK_IMBALANCE);
    }
}
