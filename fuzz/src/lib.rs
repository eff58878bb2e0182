//! What the fuzz targets share: the scratch folder of the targets that read their input from a
//! file (`dataset`, `tokenizer`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// This process's scratch folder, `TMP/ceiling-fuzz-TARGET-PID`, made on the first call. A
/// fuzzer ends by `exit` (a crash, a time limit, Ctrl-C), so no destructor removes it: instead
/// the first call removes the folders of this target whose process is gone.
pub fn scratch_dir(target: &str) -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = std::env::temp_dir();
        let prefix = format!("ceiling-fuzz-{target}-");
        for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let pid = name.to_str().and_then(|n| n.strip_prefix(&prefix));
            if pid.is_some_and(|p| {
                p.parse::<u32>().is_ok() && !Path::new("/proc").join(p).exists()
            }) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = tmp.join(format!("{prefix}{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the scratch folder");
        dir
    })
}
