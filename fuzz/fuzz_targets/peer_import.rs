//! Every result importer: the first byte picks the `--tool` (or detection; `0xFE` reads the text
//! as AIPerf's `profile_export.jsonl` alone), the rest is the file; a sibling file (llmperf's
//! individual responses, AIPerf's records) reads as the same text.
#![no_main]

use ceiling_reports::peer::{aiperf, detect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if pick == 0xFE {
        let _ = aiperf::requests_from_jsonl(text);
        return;
    }
    let forced = detect::Tool::ALL.get(usize::from(pick)).copied();
    let siblings = |_: &str| Some(text.to_string());
    let _ = detect::parse(text, "result.json", forced, &siblings);
});
