//! The `--dataset` reader (ShareGPT JSON or JSONL), through the file it is given.
#![no_main]

use ceiling::probe::dataset::Dataset;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = ceiling_fuzz::scratch_dir("dataset").join("dataset.json");
    std::fs::write(&path, data).expect("write the input");
    // Keeping the prompts' text (`--dataset-prompts text`) walks the same parse; every entry
    // then has a text slot, kept or not.
    if let Ok(set) = Dataset::load(&path, None, 128, true) {
        let _ = set.longest();
        assert_eq!(set.texts.len(), set.lengths.len(), "a text slot per entry");
    }
});
