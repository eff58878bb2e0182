//! Test-only: `result.json` against the committed schema (`schema/result.schema.json`) without a
//! validator, so the reports crate's own tests catch drift: the schema's version is
//! [`super::RESULT_SCHEMA_VERSION`], and every key the schema requires of a ceiling, a fit, a
//! step, a timing and a finding is in what [`super::result_json`] writes. The full validation
//! (types, enums, patterns) runs on the binary's output in the integration tests.

use serde_json::Value;

fn schema() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/result.schema.json");
    let text = std::fs::read_to_string(path).expect("the committed schema is readable");
    serde_json::from_str(&text).expect("the committed schema is JSON")
}

/// What of `result` the schema requires and `result` lacks, as `def: key at path` lines, plus a
/// line when the versions differ. Empty when they agree.
pub(crate) fn drift(result: &Value) -> Vec<String> {
    let schema = schema();
    let mut out = Vec::new();
    if schema["properties"]["schema_version"]["const"] != result["schema_version"] {
        out.push(format!(
            "schema_version: schema {} vs result {}",
            schema["properties"]["schema_version"]["const"], result["schema_version"]
        ));
    }
    let a = &result["analysis"];
    let mut objects: Vec<(&str, String, &Value)> = vec![
        ("fit", "analysis.fit".into(), &a["fit"]),
        ("ceiling", "headline".into(), &result["headline"]),
    ];
    for (def, key) in [
        ("ceiling", "ceilings"),
        ("step", "steps"),
        ("timing", "timings"),
        ("finding", "findings"),
    ] {
        for (i, v) in a[key].as_array().into_iter().flatten().enumerate() {
            objects.push((def, format!("analysis.{key}[{i}]"), v));
        }
    }
    for (def, path, v) in objects {
        let Some(obj) = v.as_object() else { continue };
        let required = schema["$defs"][def]["required"].as_array();
        for key in required.into_iter().flatten().filter_map(Value::as_str) {
            if !obj.contains_key(key) {
                out.push(format!("{def}: {key} missing at {path}"));
            }
        }
    }
    out
}
