//! The Prometheus text parser and each engine adapter (vLLM, SGLang, llama.cpp) on one body.
#![no_main]

use ceiling_collectors::{Flavor, engines, prometheus};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let exp = prometheus::parse(text);
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
