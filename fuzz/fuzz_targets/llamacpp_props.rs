//! llama.cpp's `/props` JSON: the slot and KV capacity it declares.
#![no_main]

use ceiling_collectors::engines;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(props) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let cap = engines::props_capacity(&props);
    let _ = cap.kv_capacity_tokens();
});
