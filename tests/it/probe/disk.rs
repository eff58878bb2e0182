//! A full disk and a read-only database under `ceiling probe`: a clear one-line error, the run
//! marked `failed` where the database still takes the write, no panic, the file intact; and the
//! reading commands on the read-only database: they read it as it is.
//!
//! The full disk is a 1 MiB tmpfs when the test may mount one (root, as in the CI container);
//! elsewhere the file-size limit (`ulimit -f`) stands in for it: writes past it fail with
//! EFBIG just as they fail with ENOSPC on a full file system.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ceiling::sim::Faults;
use ceiling::store::Store;

use super::{linear, probe, sim};

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }

    /// Gives the file system `size` in all (`4m`), keeping what it holds.
    fn grow(&self, size: &str) -> bool {
        Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success())
    }

    fn read_only(&self) -> bool {
        Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

const RUN: [&str; 10] = [
    "--gpu-interval",
    "0s",
    "--batch-sizes",
    "2,4,8,8,8",
    "--input-len",
    "16",
    "--output-len",
    "300",
    "--scrape-interval",
    "20ms",
];

/// The one line of the error, checked for being clear and not a panic.
fn one_line_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("this is a bug"), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    eprintln!("{}", errors[0]);
    errors[0].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_clear_error_and_no_panic() {
    let _serial = crate::sim::serial().await;
    let h = sim(linear(), Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mount = Tmpfs::mount(dir.path(), "1m");
    let db = dir.path().join("full.db");
    let out = if mount.is_some() {
        probe(&db, &h.base_url(), &RUN).await
    } else {
        // `trap '' XFSZ`: an ignored SIGXFSZ stays ignored across exec, so a write past the
        // limit fails with EFBIG instead of killing the process.
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("trap '' XFSZ; ulimit -f 2048; exec \"$@\"")
            .arg("sh")
            .arg(env!("CARGO_BIN_EXE_ceiling"))
            .arg("--db")
            .arg(&db)
            .args(["probe", "--url", &h.base_url()])
            .args(RUN);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    };
    let line = one_line_error(&out);
    assert!(
        line.contains("full") || line.contains("disk") || line.contains("too large"),
        "{line}"
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let status: Option<String> = conn
        .query_row("SELECT status FROM runs", [], |r| r.get(0))
        .ok();
    if let Some(mount) = &mount {
        eprintln!("the run closed as {status:?}");
        match status.as_deref() {
            // The run's close found room: the frames of the writer's rolled-back batch in the
            // write-ahead log.
            Some("failed") => {}
            // The batch that met the full disk could not write even one page, so there is no
            // room for the close either: the run stays `running`, and the next run that finds
            // room marks it `interrupted`, with what it recorded.
            Some("running") => {
                assert!(mount.grow("4m"));
                let store = Store::open(&db).unwrap();
                let requests = store.load_requests(1).unwrap().len();
                store
                    .create_run(&ceiling::store::RunManifest::new(
                        "next".into(),
                        serde_json::json!({}),
                    ))
                    .unwrap();
                let after: String = conn
                    .query_row("SELECT status FROM runs WHERE id = 1", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(after, "interrupted");
                assert_eq!(store.load_requests(1).unwrap().len(), requests);
            }
            other => panic!("the run is {other:?}"),
        }
    }
    h.shutdown().await;
    drop(mount);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_is_a_clear_error_and_no_panic() {
    let _serial = crate::sim::serial().await;
    let h = sim(linear(), Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mount = Tmpfs::mount(dir.path(), "64m");
    let db = dir.path().join("ro.db");
    let short = [
        "--gpu-interval",
        "0s",
        "--batch-sizes",
        "2",
        "--output-len",
        "8",
    ];
    let first = probe(&db, &h.base_url(), &short).await;
    assert!(first.status.success(), "{first:?}");
    let read_only = match &mount {
        Some(m) => m.read_only(),
        None => {
            // Not root: permissions stop the writes.
            use std::os::unix::fs::PermissionsExt;
            for p in [dir.path().to_path_buf(), db.clone()] {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o555)).unwrap();
            }
            true
        }
    };
    assert!(read_only);
    let out = probe(&db, &h.base_url(), &short).await;
    let line = one_line_error(&out);
    assert!(
        line.contains("cannot open the database for writing"),
        "{line}"
    );
    assert!(matches!(
        Store::open(&db),
        Err(ceiling::store::StoreError::NotWritable { .. })
    ));
    reading_commands_read_it_as_it_is(&db).await;
    h.shutdown().await;
    drop(mount);
}

/// `analyze`, `report` and `runs` on a database that cannot be written: the run's figures, a
/// report written elsewhere, a note that nothing was stored.
async fn reading_commands_read_it_as_it_is(db: &Path) {
    let v = super::analyze_json(db, &[]).await;
    let t = v["timings"][0]["t_fwd_client_s"].as_f64();
    assert!(t.is_some_and(|t| t > 0.0), "{v}");
    let out_dir = tempfile::tempdir().unwrap();
    let db = db.to_path_buf();
    let dest = out_dir.path().to_path_buf();
    let (report, runs) = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str]| {
            crate::cli::ceiling()
                .arg("--db")
                .arg(&db)
                .args(args)
                .output()
                .unwrap()
        };
        let report = crate::cli::ceiling()
            .arg("--db")
            .arg(&db)
            .args(["report", "latest", "--out"])
            .arg(&dest)
            .output()
            .unwrap();
        (report, run(&["runs", "--json"]))
    })
    .await
    .unwrap();
    assert!(report.status.success(), "{report:?}");
    let stderr = String::from_utf8_lossy(&report.stderr);
    assert!(
        stderr.contains("cannot be written: reading it as it is"),
        "{stderr}"
    );
    assert!(out_dir.path().join("report.html").is_file());
    assert!(runs.status.success(), "{runs:?}");
    let listed: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
}
