//! The Prometheus text parser and each engine adapter (vLLM, SGLang, llama.cpp) on one body;
//! and the parser read against a previous scrape (the body itself, and its lines reversed)
//! reading the same samples as without one.
#![no_main]

use ceiling_collectors::{Flavor, engines, prometheus};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let exp = prometheus::parse(text);
    let reversed: Vec<&str> = text.lines().rev().collect();
    for prev in [exp.samples.clone(), prometheus::parse(&reversed.join("\n")).samples] {
        let again = prometheus::parse_after(text, &prev);
        assert_eq!(again.samples.len(), exp.samples.len());
        for (a, b) in again.samples.iter().zip(&exp.samples) {
            assert_eq!((&a.name, &a.labels), (&b.name, &b.labels));
            assert_eq!(a.value.to_bits(), b.value.to_bits());
        }
        assert_eq!(again.errors, exp.errors);
    }
    for s in &exp.samples {
        let _ = exp.family_of(&s.name);
        let _ = prometheus::base_name(&s.name);
    }
    let detected = engines::detect(&exp.samples);
    let _ = engines::unmapped(&exp.samples);
    for flavor in [
        None,
        Some(Flavor::Vllm),
        Some(Flavor::Sglang),
        Some(Flavor::Llamacpp),
    ] {
        let s = engines::signals(&exp.samples, flavor.or(detected));
        let _ = engines::rates(&s, &s, 1.0);
        let _ = engines::busy_slots_between(&s, &s);
    }
});
