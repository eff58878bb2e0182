//! The configuration's tests: warm-up, batch sizes and the search, length lists, ramps, metrics
//! endpoints and their roles.

use super::*;

#[test]
fn warmup_is_waves_for_wave_and_a_duration_for_closed_loop() {
    assert_eq!(parse_warmup("2", Pattern::Wave).unwrap(), Warmup::Waves(2));
    assert_eq!(
        parse_warmup("10s", Pattern::ClosedLoop).unwrap(),
        Warmup::Duration(Duration::from_secs(10))
    );
    assert!(parse_warmup("10s", Pattern::Wave).is_err());
    assert!(parse_warmup("soon", Pattern::ClosedLoop).is_err());
}

pub(super) fn probe_args(extra: &[&str]) -> ProbeArgs {
    use clap::Parser;
    let mut argv = vec!["ceiling", "probe", "--url", "http://127.0.0.1:1"];
    argv.extend_from_slice(extra);
    let cli = crate::Cli::try_parse_from(argv).unwrap();
    let crate::cli::Command::Probe(args) = cli.command else {
        panic!("not a probe command")
    };
    *args
}

pub(super) fn usage_message(r: anyhow::Result<impl std::fmt::Debug>) -> String {
    match r.unwrap_err().downcast::<Failure>() {
        Ok(Failure::Usage(m)) => m,
        other => panic!("not a usage error: {other:?}"),
    }
}

#[test]
fn batch_sizes_auto_makes_a_search_and_lists_make_steps() {
    let c = ProbeConfig::from_cli(&probe_args(&["--batch-sizes", "auto"])).unwrap();
    assert!(c.steps.is_empty());
    let s = c.search.unwrap();
    assert_eq!((s.input_len, s.output_len, s.budget_s), (512, 256, 300.0));
    assert_eq!(s.sla_otps_or_default(), Some(20.0));
    let c = ProbeConfig::from_cli(&probe_args(&[
        "--batch-sizes",
        "AUTO",
        "--sla-tpot",
        "40ms",
        "--budget",
        "90s",
    ]))
    .unwrap();
    let s = c.search.unwrap();
    assert_eq!((s.sla_tpot_s, s.budget_s), (Some(0.04), 90.0));
    let c = ProbeConfig::from_cli(&probe_args(&["--batch-sizes", "1,4"])).unwrap();
    assert_eq!(c.search, None);
    assert_eq!(c.steps.len(), 2);
    assert_eq!(c.length_pairs(), [(512, 256)]);
}

#[test]
fn auto_with_sizes_or_several_lengths_or_a_zero_budget_is_a_usage_error() {
    let m = usage_message(ProbeConfig::from_cli(&probe_args(&[
        "--batch-sizes",
        "auto,8",
    ])));
    assert!(m.contains("`auto` alone"), "{m}");
    let m = usage_message(ProbeConfig::from_cli(&probe_args(&[
        "--batch-sizes",
        "auto",
        "--budget",
        "0s",
    ])));
    assert!(m.contains("--budget"), "{m}");
    let args = probe_args(&["--batch-sizes", "auto"]);
    let m = usage_message(search_settings(&args, &[(128, 128), (1024, 128)]));
    assert_eq!(
        m,
        "--batch-sizes auto searches at one length pair, and 2 were given; run one search \
         per --input-len/--output-len pair"
    );
    let m = usage_message(ProbeConfig::from_cli(&probe_args(&["--sla-otps=-3"])));
    assert!(m.contains("--sla-otps"), "{m}");
    assert!(
        <crate::Cli as clap::Parser>::try_parse_from([
            "ceiling",
            "probe",
            "--url",
            "x",
            "--batch-sizes",
            "big"
        ])
        .is_err()
    );
}

#[test]
fn length_lists_make_one_step_per_batch_size_and_length_pair() {
    let pairs = length_pairs(&[128, 1024, 8192], &[128, 1024]).unwrap();
    assert_eq!(
        pairs,
        [
            (128, 128),
            (128, 1024),
            (1024, 128),
            (1024, 1024),
            (8192, 128),
            (8192, 1024)
        ]
    );
    let steps = step_specs(&[1, 8, 64], &pairs);
    assert_eq!(steps.len(), 18);
    let at = |k: usize| (steps[k].batch_size, steps[k].input_len, steps[k].output_len);
    assert_eq!(
        (at(0), at(2), at(3), at(17)),
        (
            (1, 128, 128),
            (64, 128, 128),
            (1, 128, 1024),
            (64, 8192, 1024)
        )
    );
    // One pair: the steps a single --input-len/--output-len always made.
    let one = step_specs(&[1, 8], &length_pairs(&[512], &[256]).unwrap());
    let lens: Vec<(u32, u32, u32)> = one
        .iter()
        .map(|s| (s.batch_size, s.input_len, s.output_len))
        .collect();
    assert_eq!(lens, [(1, 512, 256), (8, 512, 256)]);
    // A repeated length is measured once.
    assert_eq!(length_pairs(&[64, 64], &[32]).unwrap(), [(64, 32)]);
}

#[test]
fn length_lists_refuse_zero_and_one_token_outputs() {
    assert!(length_pairs(&[128, 0], &[64]).is_err());
    assert!(length_pairs(&[128], &[64, 1]).is_err());
    assert!(length_pairs(&[], &[64]).is_err());
}

#[test]
fn ramp_accepts_per_second_rates_only() {
    assert_eq!(parse_ramp("2/s").unwrap(), 2.0);
    assert_eq!(parse_ramp("0.5").unwrap(), 0.5);
    assert!(parse_ramp("0/s").is_err());
    assert!(parse_ramp("fast").is_err());
}

#[test]
fn metrics_urls_take_a_role_and_the_router_is_not_scraped_without_a_plain_one() {
    use ceiling_reports::pd::Role;
    let cfg = |extra: &[&str]| ProbeConfig::from_cli(&probe_args(extra));
    // No value: the engine's own /metrics.
    let c = cfg(&[]).unwrap();
    assert_eq!(c.metrics_url.as_deref(), Some("http://127.0.0.1:1/metrics"));
    assert!(c.metrics_roles.is_empty());
    // Roles only: each side, in order, and no scrape of the router in front.
    let c = cfg(&[
        "--metrics-url",
        "prefill=http://p:1/metrics",
        "--metrics-url",
        "decode=http://d:2/metrics",
        "--metrics-url",
        "decode=http://d:3/metrics",
    ])
    .unwrap();
    assert_eq!(c.metrics_url, None);
    let roles: Vec<(Role, &str)> = c
        .metrics_roles
        .iter()
        .map(|r| (r.role, r.url.as_str()))
        .collect();
    assert_eq!(
        roles,
        [
            (Role::Prefill, "http://p:1/metrics"),
            (Role::Decode, "http://d:2/metrics"),
            (Role::Decode, "http://d:3/metrics")
        ]
    );
    // A plain URL beside them is the engine's; `=` in its query is no role.
    let c = cfg(&[
        "--metrics-url",
        "http://r:9/metrics?x=1",
        "--metrics-url",
        "decode=http://d:2/metrics",
    ])
    .unwrap();
    assert_eq!(c.metrics_url.as_deref(), Some("http://r:9/metrics?x=1"));
    assert_eq!(c.metrics_roles.len(), 1);
    // Scraping off turns every endpoint off.
    let c = cfg(&[
        "--scrape-interval",
        "0s",
        "--metrics-url",
        "decode=http://d:2/metrics",
    ])
    .unwrap();
    assert_eq!((c.metrics_url, c.metrics_roles.len()), (None, 0));
}

#[test]
fn a_bad_metrics_url_says_what_to_give() {
    let cfg = |extra: &[&str]| ProbeConfig::from_cli(&probe_args(extra));
    let m = usage_message(cfg(&["--metrics-url", "router=http://r:9/metrics"]));
    assert!(m.contains("unknown role \"router\""), "{m}");
    let m = usage_message(cfg(&["--metrics-url", "decode=d:2/metrics"]));
    assert!(m.contains("not an http(s) URL"), "{m}");
    let m = usage_message(cfg(&[
        "--metrics-url",
        "http://a/metrics",
        "--metrics-url",
        "http://b/metrics",
    ]));
    assert!(m.contains("2 URLs without a role"), "{m}");
}
