//! The `nvidia-smi --query-gpu --format=csv` log reader.
#![no_main]

use ceiling_collectors::gpu::smi;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = smi::parse_nvidia_smi_csv(text);
    if let Some(line) = text.lines().next() {
        let _ = smi::parse_timestamp(line);
    }
});
