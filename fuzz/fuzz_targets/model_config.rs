//! `config.json` → model shape, and every figure the analysis derives from the shape.
#![no_main]

use ceiling_reports::model::{KvDtype, ModelShape, ParamCounts, WeightBytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(shape) = ModelShape::from_config_json(text) else {
        return;
    };
    let _ = shape.dense_layers();
    for kv in [KvDtype::Fp32, KvDtype::Bf16, KvDtype::Fp16, KvDtype::Fp8] {
        let _ = shape.kv_bytes_per_token(kv);
        for context in [0, 1, 4096, u64::MAX] {
            let _ = shape.kv_bytes_for_context(context, kv);
            let _ = shape.attention_flops_per_token(context);
        }
    }
    let params = ParamCounts::of(&shape);
    let _ = (params.total(), params.active(), params.active_matmul());
    let bytes = WeightBytes::of(&shape, &params, None);
    let _ = (bytes.total(), bytes.always_read());
});
