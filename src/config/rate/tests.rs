use super::*;
use crate::config::ProbeConfig;
use crate::config::tests::probe_args;

fn usage_message(extra: &[&str]) -> String {
    crate::config::tests::usage_message(ProbeConfig::from_cli(&probe_args(extra)))
}

#[test]
fn rates_make_an_open_loop_with_inf_sized_by_the_largest_finite_step() {
    let c = ProbeConfig::from_cli(&probe_args(&[
        "--pattern",
        "rate",
        "--rates",
        "1,2.5,inf",
        "--duration",
        "60s",
        "--burstiness",
        "0.5",
        "--max-concurrency",
        "64",
        "--sla-ttft",
        "2s",
        "--sla-tpot",
        "50ms",
    ]))
    .unwrap();
    assert!(c.steps.is_empty());
    assert_eq!(c.pattern, ceiling_reports::recording::Pattern::Rate);
    let r = c.rate.unwrap();
    assert_eq!(
        r.rates,
        [Rate::PerSecond(1.0), Rate::PerSecond(2.5), Rate::Inf]
    );
    assert_eq!(r.inf_requests, 150);
    assert_eq!((r.burstiness, r.max_concurrency), (0.5, Some(64)));
    assert_eq!((r.sla_ttft_s, r.sla_tpot_s), (Some(2.0), Some(0.05)));
    assert_eq!(r.sweep, None);
}

#[test]
fn a_sweep_takes_its_points_cap_and_stop_share() {
    let c = ProbeConfig::from_cli(&probe_args(&[
        "--pattern",
        "sweep",
        "--sweep-points",
        "5",
        "--stop-on-failure",
        "95%",
        "--max-concurrency",
        "32",
    ]))
    .unwrap();
    let s = c.rate.unwrap().sweep.unwrap();
    assert_eq!(
        s,
        SweepSettings {
            points: 5,
            saturation_concurrency: 32,
            stop_on_failure: Some(0.95),
        }
    );
    let c = ProbeConfig::from_cli(&probe_args(&["--pattern", "sweep"])).unwrap();
    let s = c.rate.unwrap().sweep.unwrap();
    assert_eq!(
        (s.points, s.saturation_concurrency),
        (10, DEFAULT_SATURATION_CONCURRENCY)
    );
}

#[test]
fn open_loop_flags_out_of_place_are_usage_errors() {
    assert!(usage_message(&["--pattern", "rate"]).contains("needs --rates"));
    assert!(usage_message(&["--rates", "2"]).contains("add --pattern rate"));
    assert!(usage_message(&["--pattern", "sweep", "--rates", "2"]).contains("drop --rates"));
    assert!(usage_message(&["--pattern", "rate", "--rates", "inf"]).contains("--num-prompts"));
    assert!(
        usage_message(&["--pattern", "rate", "--rates", "1", "--burstiness", "0"])
            .contains("--burstiness")
    );
    assert!(usage_message(&["--input-range", "0.5"]).contains("open loop"));
    assert!(
        usage_message(&["--pattern", "rate", "--rates", "1", "--input-range", "1.5"])
            .contains("--input-range 1.5")
    );
    assert!(
        usage_message(&["--pattern", "rate", "--rates", "1", "--input-len", "64,128"])
            .contains("one --input-len/--output-len pair")
    );
    use clap::Parser;
    for bad in [
        ["--rates", "fast"],
        ["--rates", "-1"],
        ["--stop-on-failure", "120%"],
    ] {
        let mut argv = vec!["ceiling", "probe", "--url", "x", "--pattern", "rate"];
        argv.extend_from_slice(&bad);
        assert!(crate::Cli::try_parse_from(argv).is_err(), "{bad:?}");
    }
}

#[test]
fn a_uniform_mix_widens_the_longest_pair_checked_against_the_engine() {
    let c = ProbeConfig::from_cli(&probe_args(&[
        "--pattern",
        "rate",
        "--rates",
        "4",
        "--input-len",
        "512",
        "--output-len",
        "100",
        "--input-range",
        "0.5",
    ]))
    .unwrap();
    assert_eq!(c.mix, LengthMix::Uniform { range: 0.5 });
    assert_eq!(c.length_pairs(), [(768, 150)]);
    assert_eq!(uniform_bounds(512, 0.5), (256, 768));
    assert_eq!(uniform_bounds(1, 0.9), (1, 2));
}
