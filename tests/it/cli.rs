//! The command line: its definition, `runs` on empty and populated recordings, exit codes.

use std::process::Command;

use clap::CommandFactory;

pub fn ceiling() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ceiling"));
    cmd.env_remove("CEILING_DB");
    cmd
}

#[test]
fn cli_definition_passes_clap_debug_assert() {
    ceiling::Cli::command().debug_assert();
}

#[test]
fn help_lists_the_subcommands_and_hides_internal_ones() {
    let out = ceiling().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("runs"), "{text}");
    assert!(!text.contains("__write-load"), "{text}");
}

#[test]
fn runs_on_an_empty_database_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let out = ceiling().arg("--db").arg(&db).arg("runs").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "no runs recorded yet; `ceiling probe --url URL` records one\n"
    );
    let out = ceiling()
        .env("CEILING_DB", &db)
        .args(["runs", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, serde_json::json!([]));
}

#[test]
fn runs_lists_and_shows_a_populated_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let st = ceiling()
        .arg("--db")
        .arg(&db)
        .args(["__write-load", "--requests", "25"])
        .output()
        .unwrap();
    assert!(st.status.success(), "{st:?}");

    let out = ceiling()
        .arg("--db")
        .arg(&db)
        .args(["runs", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["id"], 1);
    assert_eq!(v[0]["steps"], 1);
    assert_eq!(v[0]["requests"], 25);
    assert_eq!(v[0]["status"], "complete");

    let out = ceiling().arg("--db").arg(&db).arg("runs").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let row = text.lines().find(|l| l.contains("complete")).unwrap();
    assert!(row.contains(" 25 "), "{text}");

    let out = ceiling()
        .arg("--db")
        .arg(&db)
        .args(["runs", "show", "latest", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["command_line"], "ceiling __write-load");
    assert_eq!(v["probe_config"]["write_load"], true);
    assert_eq!(v["steps"][0]["batch_size"], 1);

    let out = ceiling()
        .arg("--db")
        .arg(&db)
        .args(["runs", "show", "1"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("status           complete"), "{text}");
}

#[test]
fn unknown_run_and_bad_file_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let out = ceiling()
        .arg("--db")
        .arg(&db)
        .args(["runs", "show", "7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no run 7"), "{err}");

    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![b'z'; 8192]).unwrap();
    let out = ceiling()
        .arg("--db")
        .arg(&junk)
        .arg("runs")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("not a ceiling database")
    );

    let out = ceiling()
        .args(["runs", "show", "x"])
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
