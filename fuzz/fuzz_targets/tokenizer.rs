//! `tokenizer.json` loading (`--tokenizer`), through the file it is given, and counting.
#![no_main]

use ceiling::probe::tokenizer::TokenVocab;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = ceiling_fuzz::scratch_dir("tokenizer").join("tokenizer.json");
    std::fs::write(&path, data).expect("write the input");
    if let Ok(vocab) = TokenVocab::load(&path) {
        let _ = vocab.count("The quick brown fox jumps over the lazy dog.");
    }
});
