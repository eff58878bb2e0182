use std::collections::BTreeSet;

use super::*;
use crate::engines::{Flavor, adapter, flavor_of_name, signals, vllm};
use crate::prometheus::{base_name, parse};

const FLAVORS: [Flavor; 3] = [Flavor::Vllm, Flavor::Sglang, Flavor::Llamacpp];

/// The reference the tables mirror.
const DOC: &str = include_str!("../../../../docs/ENGINE-METRICS.md");

fn read(adapter: &Adapter, text: &str) -> Signals {
    let e = parse(text);
    assert!(e.errors.is_empty(), "{:?}", e.errors);
    let view = View::new(&e.samples, Flavor::Vllm, adapter.keep);
    let mut out = Signals {
        dp_ranks: 1,
        ..Signals::default()
    };
    adapter.read(&view, &mut out);
    out
}

/// Written out in the document: in backticks, followed by a backtick, a label set or a space.
fn documented(name: &str) -> bool {
    ['`', '{', ' ']
        .iter()
        .any(|end| DOC.contains(&format!("`{name}{end}")))
}

#[test]
fn every_table_name_is_in_engine_metrics_md() {
    let mut names: Vec<&str> = FLAVORS.iter().flat_map(|&f| adapter(f).names()).collect();
    names.extend(
        vllm::V0_ONLY
            .iter()
            .chain(vllm::V1_ONLY)
            .map(|n| base_name(n)),
    );
    assert!(names.len() > 50, "{}", names.len());
    let missing: Vec<&str> = names.into_iter().filter(|n| !documented(n)).collect();
    assert!(
        missing.is_empty(),
        "not in docs/ENGINE-METRICS.md: {missing:?}"
    );
    assert!(!documented("vllm:not_a_metric"), "the check can fail");
}

#[test]
fn every_table_name_belongs_to_its_engine() {
    for flavor in FLAVORS {
        for name in adapter(flavor).names() {
            assert_eq!(flavor_of_name(name), Some(flavor), "{name}");
            assert_eq!(base_name(name), name, "{name}: rows name families");
        }
    }
}

#[test]
fn no_two_rows_or_derivations_fill_the_same_signal() {
    for flavor in FLAVORS {
        let a = adapter(flavor);
        let mut seen = BTreeSet::new();
        let mut s = Signals::default();
        for row in a.rows {
            let key = match *row {
                Row::Num { signal, .. } => signal.slot(&mut s).0,
                Row::Hist { signal, .. } => signal.slot(&mut s).0,
            };
            assert!(seen.insert(key), "{flavor:?}: two rows fill {key}");
            assert!(!row.names().is_empty(), "{flavor:?}: {key} has no name");
        }
        for d in a.derived {
            let (signal, fallback) = match *d {
                Derived::Ratio { signal, .. } => (signal, true),
                Derived::PerRank { signal, .. }
                | Derived::Add { signal, .. }
                | Derived::CopyWhen { signal, .. } => (signal, false),
            };
            let key = signal.slot(&mut s).0;
            // Only a ratio may fill a signal a row also reads: it steps in when the row found
            // nothing.
            assert!(
                seen.insert(key) || fallback,
                "{flavor:?}: {key} filled twice"
            );
        }
    }
}

#[test]
fn every_slot_is_the_signals_field_of_its_name() {
    let mut s = Signals::default();
    let mut keys = BTreeSet::new();
    for (i, signal) in Num::ALL.into_iter().enumerate() {
        let (key, slot) = signal.slot(&mut s);
        *slot = Some(i as f64 + 0.5);
        assert!(keys.insert(key), "{key} twice");
    }
    for (i, signal) in Hist::ALL.into_iter().enumerate() {
        let (key, slot) = signal.slot(&mut s);
        *slot = Some(SumCount {
            sum: i as f64,
            count: 1.0,
        });
        assert!(keys.insert(key), "{key} twice");
    }
    let json = serde_json::to_value(&s).unwrap();
    for (i, signal) in Num::ALL.into_iter().enumerate() {
        let key = signal.slot(&mut s).0;
        assert_eq!(json[key], i as f64 + 0.5, "{key}");
    }
    for (i, signal) in Hist::ALL.into_iter().enumerate() {
        let key = signal.slot(&mut s).0;
        assert_eq!(json[key]["sum"], i as f64, "{key}");
    }
    // Every Option<f64> and Option<SumCount> field of Signals has a slot.
    let fields = json.as_object().unwrap();
    let numeric = fields
        .iter()
        .filter(|(_, v)| v.is_number() || v.get("count").is_some());
    for (k, _) in numeric.filter(|(k, _)| k.as_str() != "dp_ranks") {
        assert!(keys.contains(k.as_str()), "{k} has no slot");
    }
}

#[test]
fn a_renamed_metric_is_one_more_name_and_the_newest_present_wins() {
    const ROWS: &[Row] = &[num(
        Num::Running,
        Reduce::Sum,
        &["vllm:num_requests_in_batch", "vllm:num_requests_running"],
    )];
    let a = Adapter {
        keep: Keep::All,
        dp_label: None,
        rows: ROWS,
        derived: &[],
        code: None,
    };
    let old = read(&a, "vllm:num_requests_running 3\n");
    assert_eq!(old.running, Some(3.0));
    assert_eq!(old.sources["running"], "vllm:num_requests_running");
    let both = read(
        &a,
        "vllm:num_requests_running 3\nvllm:num_requests_in_batch 5\n",
    );
    assert_eq!(both.running, Some(5.0));
    assert_eq!(both.sources["running"], "vllm:num_requests_in_batch");
    let none = read(&a, "vllm:num_requests_waiting 3\n");
    assert_eq!(none.running, None, "absent is None, never 0");
    assert!(none.sources.is_empty());
}

#[test]
fn reductions_read_the_series_they_name() {
    const ROWS: &[Row] = &[
        num(
            Num::Running,
            Reduce::SumWhere("m", Match::Is("a")),
            &["vllm:x"],
        ),
        num(
            Num::Waiting,
            Reduce::SumWhere("m", Match::Prefix("a")),
            &["vllm:x"],
        ),
        num(Num::KvUsageFrac, Reduce::Mean, &["vllm:x"]),
        num(
            Num::PreemptionsTotal,
            Reduce::TotalOfSplit("m", "ab"),
            &["vllm:x"],
        ),
        num(
            Num::PromptTokensTotal,
            Reduce::TotalOfSplit("m", "ab"),
            &["vllm:y"],
        ),
        num(Num::StepsTotal, Reduce::HistCount, &["vllm:h"]),
    ];
    let a = Adapter {
        keep: Keep::All,
        dp_label: Some("m"),
        rows: ROWS,
        derived: &[],
        code: None,
    };
    let s = read(
        &a,
        "vllm:x{m=\"a\"} 1\nvllm:x{m=\"ab\"} 2\nvllm:x{m=\"b\"} 6\nvllm:y 4\nvllm:y 5\n\
         vllm:h_sum 9\nvllm:h_bucket{le=\"1\"} 3\nvllm:h_bucket{le=\"+Inf\"} 7\n",
    );
    assert_eq!(s.dp_ranks, 3);
    assert_eq!(s.running, Some(1.0));
    assert_eq!(s.waiting, Some(3.0));
    assert_eq!(s.kv_usage_frac, Some(3.0));
    assert_eq!(s.preemptions_total, Some(2.0), "the split's own total");
    assert_eq!(s.prompt_tokens_total, Some(9.0), "no split: every series");
    assert_eq!(s.steps_total, Some(7.0), "+Inf stands in for _count");
    assert_eq!(s.sources["steps_total"], "vllm:h_count");
    let s = read(&a, "vllm:h_count 7\n");
    assert_eq!(
        s.steps_total, None,
        "a histogram without _sum is incomplete"
    );
}

#[test]
fn derivations_name_their_sources_and_respect_what_rows_found() {
    const ROWS: &[Row] = &[
        num(Num::KvUsedTokens, Reduce::Sum, &["vllm:used"]),
        num(Num::KvCapacityTokens, Reduce::Sum, &["vllm:cap"]),
        num(Num::KvUsageFrac, Reduce::Mean, &["vllm:frac"]),
    ];
    const DERIVED: &[Derived] = &[
        Derived::Ratio {
            signal: Num::KvUsageFrac,
            num: Num::KvUsedTokens,
            den: Num::KvCapacityTokens,
        },
        Derived::PerRank {
            signal: Num::KvCapacityTokensPerRank,
            of: Num::KvCapacityTokens,
        },
    ];
    let a = Adapter {
        keep: Keep::All,
        dp_label: Some("r"),
        rows: ROWS,
        derived: DERIVED,
        code: None,
    };
    let s = read(
        &a,
        "vllm:used{r=\"0\"} 10\nvllm:cap{r=\"0\"} 40\nvllm:cap{r=\"1\"} 40\n",
    );
    assert_eq!(s.kv_usage_frac, Some(0.125));
    assert_eq!(s.sources["kv_usage_frac"], "vllm:used / vllm:cap");
    assert_eq!(s.kv_capacity_tokens_per_rank, Some(40.0));
    assert_eq!(
        s.sources["kv_capacity_tokens_per_rank"],
        "vllm:cap / DP ranks"
    );
    let s = read(&a, "vllm:used 10\nvllm:cap 40\nvllm:frac 0.5\n");
    assert_eq!(s.kv_usage_frac, Some(0.5), "the gauge wins over the ratio");
    let s = read(&a, "vllm:used 10\nvllm:cap 0\n");
    assert_eq!(s.kv_usage_frac, None, "no ratio over a zero capacity");
    let s = signals(&parse("vllm:num_requests_running 1\n").samples, None);
    assert_eq!(s.kv_capacity_tokens_per_rank, None);
}
