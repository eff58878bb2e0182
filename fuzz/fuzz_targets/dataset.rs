//! The `--dataset` reader (ShareGPT JSON or JSONL), through the file it is given.
#![no_main]

use std::sync::OnceLock;

use ceiling::probe::dataset::Dataset;
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("ceiling-fuzz-dataset-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let path = dir().join("dataset.json");
    std::fs::write(&path, data).expect("write the input");
    // Keeping the prompts' text (`--dataset-prompts text`) walks the same parse; every entry
    // then has a text slot, kept or not.
    if let Ok(set) = Dataset::load(&path, None, 128, true) {
        let _ = set.longest();
        assert_eq!(set.texts.len(), set.lengths.len(), "a text slot per entry");
    }
});
