//! The ground truth borrows no code from what it checks: `sim/Cargo.toml` names no crate of
//! this workspace as a dependency (normal, dev, build, or target-specific), so the probe and the
//! analysis can never share a bug with the simulator that judges them.

use std::collections::BTreeSet;
use std::path::Path;

use toml::{Table, Value};

/// Package names of every workspace member but the simulator, read from the manifests.
fn workspace_crates(root: &Path) -> BTreeSet<String> {
    let manifest: Table = read(&root.join("Cargo.toml"));
    let mut names = BTreeSet::new();
    names.extend(package_name(&manifest));
    for member in manifest["workspace"]["members"].as_array().unwrap() {
        let dir = member.as_str().unwrap();
        names.extend(package_name(&read(&root.join(dir).join("Cargo.toml"))));
    }
    names.remove("ceiling-sim");
    names
}

fn read(path: &Path) -> Table {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn package_name(manifest: &Table) -> Option<String> {
    Some(manifest.get("package")?.get("name")?.as_str()?.to_string())
}

/// Every dependency `manifest` declares, as `table: crate` (a renamed dependency by its real
/// package name); `path` dependencies are listed as `table: path=…`, since a path points into
/// a source tree rather than a published crate.
fn dependencies(manifest: &Table) -> Vec<String> {
    const TABLES: [&str; 3] = ["dependencies", "dev-dependencies", "build-dependencies"];
    let mut scopes: Vec<(String, &Table)> = Vec::new();
    for t in TABLES {
        if let Some(deps) = manifest.get(t).and_then(Value::as_table) {
            scopes.push((t.to_string(), deps));
        }
    }
    if let Some(targets) = manifest.get("target").and_then(Value::as_table) {
        for (cfg, target) in targets {
            for t in TABLES {
                if let Some(deps) = target.get(t).and_then(Value::as_table) {
                    scopes.push((format!("target.{cfg}.{t}"), deps));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (scope, deps) in scopes {
        for (key, spec) in deps {
            let name = spec.get("package").and_then(Value::as_str).unwrap_or(key);
            out.push(format!("{scope}: {name}"));
            if let Some(path) = spec.get("path").and_then(Value::as_str) {
                out.push(format!("{scope}: path={path}"));
            }
        }
    }
    out
}

/// The dependencies of `manifest` that break the rule.
fn forbidden(manifest: &Table, workspace: &BTreeSet<String>) -> Vec<String> {
    dependencies(manifest)
        .into_iter()
        .filter(|d| {
            let name = d.rsplit(": ").next().unwrap_or("");
            workspace.contains(name) || name.starts_with("ceiling") || name.starts_with("path=")
        })
        .collect()
}

#[test]
fn sim_crate_depends_on_no_other_workspace_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = workspace_crates(root);
    assert!(
        ["ceiling", "ceiling-collectors", "ceiling-reports"]
            .iter()
            .all(|c| workspace.contains(*c)),
        "workspace members not found: {workspace:?}"
    );
    let sim = read(&root.join("sim/Cargo.toml"));
    assert_eq!(package_name(&sim).as_deref(), Some("ceiling-sim"));
    let deps = dependencies(&sim);
    assert!(deps.contains(&"dependencies: axum".to_string()), "{deps:?}");
    assert_eq!(forbidden(&sim, &workspace), Vec::<String>::new());
    assert!(
        !deps.iter().any(|d| d.ends_with(": clap")),
        "the simulator's flags belong to the binary: {deps:?}"
    );
}

#[test]
fn isolation_check_flags_workspace_crates_in_every_dependency_table() {
    let workspace = BTreeSet::from(["ceiling".to_string(), "ceiling-reports".to_string()]);
    let manifest: Table = r#"
        [package]
        name = "ceiling-sim"
        [dependencies]
        serde = "1"
        analysis = { package = "ceiling-reports", path = "../reports" }
        [dev-dependencies]
        ceiling.workspace = true
        [target.'cfg(unix)'.build-dependencies]
        helper = { path = "../helper" }
    "#
    .parse()
    .unwrap();
    assert_eq!(
        forbidden(&manifest, &workspace),
        vec![
            "dependencies: ceiling-reports",
            "dependencies: path=../reports",
            "dev-dependencies: ceiling",
            "target.cfg(unix).build-dependencies: path=../helper",
        ]
    );
}
