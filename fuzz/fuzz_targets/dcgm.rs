//! The DCGM exporter reader: GPU samples and the inventory from one exposition body.
#![no_main]

use ceiling_collectors::{gpu::dcgm, prometheus};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let exp = prometheus::parse(text);
    let _ = dcgm::samples_from_exposition(&exp.samples, 1.0);
    let _ = dcgm::inventory_from_exposition(&exp.samples);
});
