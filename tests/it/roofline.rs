//! `ceiling roofline` and `ceiling check tp` on the real model configs in `fixtures/`: the
//! numbers, the verdicts, the `--json` shape, and usage errors.

use std::process::Output;

use super::cli::ceiling;

fn config(name: &str) -> String {
    format!(
        "{}/fixtures/model-configs/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn run(args: &[&str]) -> Output {
    ceiling().args(args).output().expect("ceiling runs")
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = run(args);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn close(a: &serde_json::Value, b: f64) -> bool {
    let a = a.as_f64().expect("a number");
    ((a - b) / b).abs() < 1e-9
}

#[test]
fn roofline_json_for_llama_8b_on_h100() {
    let cfg = config("meta-llama__Llama-3.1-8B-Instruct");
    let v = json(&[
        "roofline",
        "--model-config",
        &cfg,
        "--gpu",
        "NVIDIA H100 80GB HBM3",
        "--bs",
        "1,8",
        "--context",
        "1024",
        "--json",
    ]);
    assert_eq!(v["model"]["params_total"], 8_030_261_248u64);
    assert_eq!(v["model"]["kv_bytes_per_token"], 131_072.0);
    assert_eq!(v["gpu"]["name"], "H100 SXM");
    assert_eq!(v["gpu"]["hbm_bandwidth_bytes_per_s"], 3.35e12);
    assert_eq!(v["tp"], 1);
    assert_eq!(v["compute_dtype"], "bf16");
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    let p = &points[0];
    assert_eq!(p["bs"], 1);
    assert_eq!(p["context"], 1024);
    assert_eq!(p["bound"], "memory");
    assert_eq!(p["weight_bytes_per_gpu"], 15_009_849_344.0);
    assert_eq!(p["kv_bytes_per_gpu"], 134_217_728.0);
    assert!(close(&p["t_min_s"], 15_144_067_072.0 / 3.35e12), "{p}");
    assert!(
        close(&p["max_output_tokens_per_s"], 3.35e12 / 15_144_067_072.0),
        "{p}"
    );
    assert!(p["experts_touched_per_layer"].is_null());
    assert_eq!(points[1]["kv_bytes_per_gpu"], 8.0 * 134_217_728.0);
}

#[test]
fn roofline_deepseek_v3_uses_fp8_weights_and_unsplit_mla_kv() {
    let cfg = config("deepseek-ai__DeepSeek-V3");
    let v = json(&[
        "roofline",
        "--model-config",
        &cfg,
        "--gpu",
        "NVIDIA H200",
        "--tp",
        "8",
        "--bs",
        "1",
        "--context",
        "4096",
        "--json",
    ]);
    assert_eq!(v["model"]["params_total"], 671_026_419_200u64);
    assert_eq!(v["model"]["params_active"], 37_552_297_472u64);
    assert_eq!(v["model"]["weight_dtype"], "fp8");
    assert_eq!(v["model"]["mla"], true);
    assert_eq!(v["compute_dtype"], "fp8");
    assert_eq!(v["kv_share_per_gpu"], 1.0);
    let p = &v["points"][0];
    assert_eq!(p["kv_bytes_per_gpu"], 70_272.0 * 4096.0);
    assert_eq!(p["experts_touched_per_layer"], 8.0);
}

#[test]
fn roofline_overrides_and_table() {
    let cfg = config("Qwen__Qwen2.5-72B-Instruct");
    let v = json(&[
        "roofline",
        "--model-config",
        &cfg,
        "--gpu",
        "H100",
        "--tp",
        "4",
        "--hbm-bw-gbs",
        "3000",
        "--peak-tflops",
        "800",
        "--weight-dtype",
        "fp8",
        "--kv-dtype",
        "fp8",
        "--json",
    ]);
    assert_eq!(v["gpu"]["hbm_bandwidth_bytes_per_s"], 3.0e12);
    assert_eq!(v["peak_flops"], 800e12);
    assert_eq!(v["model"]["params_total"], 72_706_203_648u64);
    assert_eq!(
        v["points"].as_array().unwrap().len(),
        4,
        "default bs 1,8,32,128"
    );

    let out = run(&[
        "roofline",
        "--model-config",
        &cfg,
        "--gpu",
        "NVIDIA A100-SXM4-80GB",
        "--bs",
        "1,128",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("A100 SXM 80GB"), "{text}");
    assert!(text.contains("t_min ms"), "{text}");
    assert!(text.lines().any(|l| l.contains("│ 128 ")), "{text}");
    // 145 GB of bf16 weights do not fit one 80 GB GPU.
    assert!(text.contains("warning: the weights alone need"), "{text}");

    // An unknown GPU works once described.
    let v = json(&[
        "roofline",
        "--model-config",
        &cfg,
        "--gpu",
        "NVIDIA RTX A6000",
        "--hbm-bw-gbs",
        "768",
        "--peak-tflops",
        "154.8",
        "--json",
    ]);
    assert_eq!(v["gpu"]["name"], "NVIDIA RTX A6000");
}

#[test]
fn check_tp_verdicts_text_and_json() {
    let cfg = config("Qwen__Qwen2.5-7B-Instruct");
    let out = run(&["check", "tp", "--model-config", &cfg]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[1].starts_with("tp 1: ok: 28 attention heads and 4 KV heads per rank"));
    assert!(lines[3].starts_with("tp 4: ok: 7 attention heads and 1 KV head per rank"));
    assert_eq!(
        lines[4],
        "tp 8: rejected: 28 attention heads are not divisible by tp 8 (28 % 8 = 4)"
    );

    let cfg = config("meta-llama__Llama-3.1-70B-Instruct");
    let v = json(&[
        "check",
        "tp",
        "--model-config",
        &cfg,
        "--tp",
        "8,16",
        "--gpus",
        "8",
        "--json",
    ]);
    let verdicts = v["verdicts"].as_array().unwrap();
    assert_eq!(verdicts[0]["ok"], true);
    assert_eq!(verdicts[0]["kv_heads_per_rank"], 1);
    assert_eq!(verdicts[1]["ok"], false);
    assert_eq!(verdicts[1]["kv_copies"], 2);
    assert_eq!(verdicts[1]["problems"][0], "needs 16 GPUs, the node has 8");
    assert_eq!(v["model"]["heads"], 64);

    let cfg = config("deepseek-ai__DeepSeek-V3");
    let v = json(&[
        "check",
        "tp",
        "--model-config",
        &cfg,
        "--tp",
        "16,32",
        "--json",
    ]);
    let ok: Vec<bool> = v["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["ok"].as_bool().unwrap())
        .collect();
    assert_eq!(ok, [true, false]);

    let cfg = config("Qwen__Qwen3-30B-A3B");
    let v = json(&[
        "check",
        "tp",
        "--model-config",
        &cfg,
        "--tp",
        "4",
        "--ep",
        "3",
        "--json",
    ]);
    assert_eq!(v["verdicts"][0]["ep"], 3);
    assert_eq!(
        v["verdicts"][0]["problems"][0],
        "128 experts are not divisible by ep 3 (128 % 3 = 2)"
    );
}

#[test]
fn bad_inputs_are_usage_errors_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("config.json");
    std::fs::write(&bad, r#"{"hidden_size": 4096, "num_hidden_layers": 32}"#).unwrap();
    let bad = bad.to_str().unwrap();
    for args in [
        vec!["roofline", "--model-config", bad, "--gpu", "H100"],
        vec!["check", "tp", "--model-config", bad],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(
            err,
            format!("error: model config {bad}: missing field `num_attention_heads`\n")
        );
    }

    let missing = dir.path().join("nope.json");
    let out = run(&["check", "tp", "--model-config", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error: cannot read model config"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let cfg = config("meta-llama__Llama-3.1-8B");
    let out = run(&["roofline", "--model-config", &cfg, "--gpu", "Voodoo 5"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--hbm-bw-gbs and --peak-tflops"), "{err}");

    let out = run(&[
        "roofline",
        "--model-config",
        &cfg,
        "--gpu",
        "H100",
        "--hbm-bw-gbs",
        "-1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["check", "tp", "--model-config", &cfg, "--tp", "0"]);
    assert_eq!(out.status.code(), Some(2), "clap rejects tp 0");
}

#[test]
fn terminal_output_snapshots() {
    let stdout = |args: &[&str]| {
        let out = run(args);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let cfg = config("Qwen__Qwen3-30B-A3B");
    insta::assert_snapshot!(
        "roofline_qwen3_30b_a3b_h100_tp2",
        stdout(&[
            "roofline",
            "--model-config",
            &cfg,
            "--gpu",
            "NVIDIA H100 80GB HBM3",
            "--tp",
            "2",
            "--bs",
            "1,16,256",
            "--context",
            "2048",
        ])
    );
    let cfg = config("deepseek-ai__DeepSeek-V3");
    insta::assert_snapshot!(
        "check_tp_deepseek_v3",
        stdout(&[
            "check",
            "tp",
            "--model-config",
            &cfg,
            "--tp",
            "1,8,16,32",
            "--gpus",
            "16"
        ])
    );
}
