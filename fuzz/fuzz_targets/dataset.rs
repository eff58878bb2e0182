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
    if let Ok(set) = Dataset::load(&path, None, 128) {
        let _ = set.longest();
    }
});
