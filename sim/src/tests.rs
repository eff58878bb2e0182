//! Unit tests of the simulator's pure parts: number formats, histograms, profiles, faults.

use super::exposition::text::{cpp_g6, py_float};
use super::faults::{Faults, corrupt_exposition};
use super::profile::Profile;
use super::stats::{Histogram, one_two_five};

#[test]
fn py_float_matches_prometheus_client() {
    assert_eq!(py_float(8.0), "8.0");
    assert_eq!(py_float(0.0), "0.0");
    assert_eq!(py_float(0.025), "0.025");
    assert_eq!(py_float(8_128_902.0), "8.128902e+06");
    assert_eq!(py_float(1_048_576.0), "1.048576e+06");
    assert_eq!(py_float(123_456.0), "123456.0");
    assert_eq!(py_float(1e-5), "1e-05");
    assert_eq!(py_float(f64::INFINITY), "+Inf");
}

#[test]
fn cpp_g6_matches_ostream_defaults() {
    assert_eq!(cpp_g6(2716.0), "2716");
    assert_eq!(cpp_g6(0.136614), "0.136614");
    assert_eq!(cpp_g6(449.694_2), "449.694");
    assert_eq!(cpp_g6(5.334_843), "5.33484");
    assert_eq!(cpp_g6(1_234_567.0), "1.23457e+06");
    assert_eq!(cpp_g6(0.0), "0");
    assert_eq!(cpp_g6(118.73), "118.73");
}

#[test]
fn histogram_buckets_are_cumulative_and_le_inclusive() {
    let mut h = Histogram::new(&[0.01, 0.1, 1.0]);
    for v in [0.01, 0.05, 0.5, 5.0] {
        h.observe(v);
    }
    assert_eq!(h.cumulative(), vec![1, 2, 3, 4]);
    assert_eq!(h.count, 4);
    assert!((h.sum - 5.56).abs() < 1e-9);
}

#[test]
fn one_two_five_stops_at_max_model_len() {
    assert_eq!(
        one_two_five(600),
        vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0]
    );
}

#[test]
fn every_builtin_profile_is_valid_and_unknown_names_are_none() {
    for name in Profile::builtin_names() {
        let p = Profile::builtin(name).unwrap();
        p.validate().unwrap();
        assert_eq!(&p.name, name);
    }
    assert!(Profile::builtin("nope").is_none());
}

#[test]
fn profile_round_trips_through_toml_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    let mut p = Profile::builtin("tiny").unwrap();
    p.spec = Some(super::SpecConfig {
        num_speculative_tokens: 3,
        acceptance_rate: 0.7,
    });
    std::fs::write(&path, toml::to_string(&p).unwrap()).unwrap();
    assert_eq!(Profile::from_toml_file(&path).unwrap(), p);
    std::fs::write(&path, "name = \"x\"\n").unwrap();
    assert!(Profile::from_toml_file(&path).is_err());
}

#[test]
fn stall_flag_parses_probability_and_milliseconds() {
    assert_eq!(Faults::parse_stall("0.25:500").unwrap(), (0.25, 500));
    assert!(Faults::parse_stall("2:500").is_err());
    assert!(Faults::parse_stall("0.5").is_err());
}

#[test]
fn corrupted_exposition_is_not_valid_text() {
    let text = "# TYPE a gauge\na 1.0\n# TYPE b gauge\nb 2.0\n";
    let bad = corrupt_exposition(text);
    assert!(bad.contains("not-a-number"));
    assert_ne!(bad, text);
}

/// llama.cpp gives an arriving task a free slot at once (busy from then, its prompt still to
/// compute) and defers it only when no slot is free.
#[test]
fn llamacpp_busies_a_slot_per_arrival_and_defers_only_those_that_found_none() {
    let mut p = Profile::builtin("tiny").unwrap();
    p.max_num_seqs = 8;
    // (processing, deferred) with `running` sequences computing and `waiting` more.
    let slots = |running, waiting| {
        let mut r = super::stats::RankStats::new(p.max_model_len, 0);
        r.running = running;
        r.waiting = waiting;
        let text = super::exposition::render(
            super::flavor::SimFlavor::Llamacpp,
            super::SimRole::Unified,
            &p,
            &[r],
        );
        let gauge = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("llamacpp:{name} ")))
                .unwrap()
                .to_string()
        };
        (gauge("requests_processing"), gauge("requests_deferred"))
    };
    // Three just arrived, five slots free: they hold slots (busy), none deferred.
    assert_eq!(slots(3, 3), ("6".into(), "0".into()));
    // Six waiting, two slots free: two take them, four found none.
    assert_eq!(slots(6, 6), ("8".into(), "4".into()));
    // Every slot busy: all wait for one.
    assert_eq!(slots(8, 5), ("8".into(), "5".into()));
}

#[test]
fn the_write_log_keeps_whole_responses_up_to_its_cap_and_none_beyond() {
    use super::shared::{WRITES_KEPT, WriteLog};
    let mut log = WriteLog::default();
    log.keep("a".into(), vec![0.1; WRITES_KEPT - 2]);
    log.keep("b".into(), vec![0.2; 3]);
    log.keep("c".into(), vec![0.3, 0.4]);
    let ids: Vec<&str> = log.responses.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["a", "c"], "b did not fit, c did; none is cut short");
    assert_eq!(log.instants, WRITES_KEPT);
    assert_eq!(log.responses[1].1, [0.3, 0.4]);
}
