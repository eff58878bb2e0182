//! `tokenizer.json` loading (`--tokenizer`), through the file it is given, and counting.
#![no_main]

use std::sync::OnceLock;

use ceiling::probe::tokenizer::TokenVocab;
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("ceiling-fuzz-tokenizer-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let path = dir().join("tokenizer.json");
    std::fs::write(&path, data).expect("write the input");
    if let Ok(vocab) = TokenVocab::load(&path) {
        let _ = vocab.count("The quick brown fox jumps over the lazy dog.");
    }
});
