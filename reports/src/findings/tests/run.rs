//! `ceiling_extrapolated`: one finding per extrapolated ceiling, none for a measured one.

use super::super::fixture::{ceiling, num, raised_on_run};
use super::super::run::CEILING_EXTRAPOLATED;
use crate::finding::Severity;

#[test]
fn ceiling_extrapolated_is_info_for_each_ceiling_beyond_the_measured_batches() {
    let got = raised_on_run(
        &CEILING_EXTRAPOLATED,
        &[ceiling(48, 32.0), ceiling(96, 64.0)],
    );
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0].severity, Severity::Info);
    assert_eq!(
        (
            num(&got[0], "bs_per_rank"),
            num(&got[0], "max_measured_bs_per_rank")
        ),
        (48.0, 32.0)
    );
    assert_eq!(got[0].evidence["limited_by"], "sla");
    assert_eq!(num(&got[1], "bs_per_rank"), 96.0);
    assert!(
        got[1].message.contains("add bs 96 to --batch-sizes"),
        "{}",
        got[1].message
    );
}

#[test]
fn ceiling_extrapolated_stays_silent_for_a_measured_ceiling() {
    let got = raised_on_run(&CEILING_EXTRAPOLATED, &[ceiling(32, 32.0)]);
    assert!(got.is_empty(), "{got:#?}");
}
