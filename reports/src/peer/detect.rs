//! Which tool wrote a file, from its content (never its name), and the dispatch to that tool's
//! reader. A file forced to a tool it does not look like is refused, saying what it looks like.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::json::{self, Node};
use super::{
    PeerError, PeerPoint, aiperf, evalscope, gpustack, guidellm, inference_benchmarker, llmperf,
    locust, vllm,
};

/// The tools whose result files `ceiling import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    Vllm,
    Sglang,
    Guidellm,
    Aiperf,
    GenaiPerf,
    Evalscope,
    Llmperf,
    Locust,
    Gpustack,
    InferenceBenchmarker,
    /// A step of one of `ceiling`'s own runs ([`super::own_run`]); never a file's tool, so
    /// not in [`Tool::ALL`].
    Ceiling,
}

impl Tool {
    pub const ALL: [Tool; 10] = [
        Tool::Vllm,
        Tool::Sglang,
        Tool::Guidellm,
        Tool::Aiperf,
        Tool::GenaiPerf,
        Tool::Evalscope,
        Tool::Llmperf,
        Tool::Locust,
        Tool::Gpustack,
        Tool::InferenceBenchmarker,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Tool::Vllm => "vllm",
            Tool::Sglang => "sglang",
            Tool::Guidellm => "guidellm",
            Tool::Aiperf => "aiperf",
            Tool::GenaiPerf => "genai-perf",
            Tool::Evalscope => "evalscope",
            Tool::Llmperf => "llmperf",
            Tool::Locust => "locust",
            Tool::Gpustack => "gpustack",
            Tool::InferenceBenchmarker => "inference-benchmarker",
            Tool::Ceiling => "ceiling",
        }
    }

    pub fn parse(s: &str) -> Option<Tool> {
        Tool::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// What its files look like, for error messages.
    fn expects(self) -> &'static str {
        match self {
            Tool::Vllm | Tool::Sglang => {
                "a JSON object (or JSON Lines) with `completed`, `duration` and `mean_ttft_ms`"
            }
            Tool::Guidellm => "benchmarks.json: `benchmarks[]` with `metrics` and `requests`",
            Tool::Aiperf | Tool::GenaiPerf => {
                "profile_export_*.json with `time_to_first_token: {unit, avg, …}`, or AIPerf's profile_export.jsonl"
            }
            Tool::Evalscope => {
                "benchmark_summary.json with `Test Duration (s)` (or `Time taken for tests (s)`)"
            }
            Tool::Llmperf => {
                "*_summary.json with `results_ttft_s_mean`, or *_individual_responses.json"
            }
            Tool::Locust => "PREFIX_stats.csv with `Type,Name,Request Count,…`",
            Tool::Gpustack => {
                "benchmark_serving.py --json output with `successful_requests`, `total_time`, `time_to_first_token`"
            }
            Tool::InferenceBenchmarker => {
                "results JSON with `config` and `results[].executor_type`"
            }
            Tool::Ceiling => "no file: `ceiling compare run:ID` reads a run from the store",
        }
    }
}

/// Side files a result comes with, read by the caller from the file's directory: `name` is a
/// file name in that directory.
pub trait Siblings {
    fn read(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Siblings for F {
    fn read(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// The tools a JSON document looks like written by, most specific first.
fn candidates(v: &Value) -> Vec<Tool> {
    let n = Node::root(v);
    let mut out = Vec::new();
    if v.is_array() {
        let items = n.list_here().unwrap_or_default();
        if items.first().is_some_and(|i| vllm::looks_like(&i.node())) {
            out.push(if vllm::is_sglang(&items[0].node()) {
                Tool::Sglang
            } else {
                Tool::Vllm
            });
        } else if llmperf::looks_like_individual(&items) {
            out.push(Tool::Llmperf);
        }
        return out;
    }
    if vllm::looks_like(&n) {
        out.push(if vllm::is_sglang(&n) {
            Tool::Sglang
        } else {
            Tool::Vllm
        });
    }
    if guidellm::looks_like(&n) {
        out.push(Tool::Guidellm);
    }
    if aiperf::looks_like(&n) {
        out.push(if aiperf::is_genai_perf(&n) {
            Tool::GenaiPerf
        } else {
            Tool::Aiperf
        });
    }
    if aiperf::is_record(&n) {
        out.push(Tool::Aiperf);
    }
    if evalscope::looks_like(&n) {
        out.push(Tool::Evalscope);
    }
    if llmperf::looks_like_summary(&n) {
        out.push(Tool::Llmperf);
    }
    if gpustack::looks_like(&n) {
        out.push(Tool::Gpustack);
    }
    if inference_benchmarker::looks_like(&n) {
        out.push(Tool::InferenceBenchmarker);
    }
    out
}

const ALL_FORMATS: &str = "vLLM/SGLang bench JSON, guidellm benchmarks.json, AIPerf/GenAI-Perf profile_export JSON, EvalScope benchmark_summary.json, llmperf summary JSON, locust stats CSV";

/// Reads one result file's text as `tool` (or the tool its content says when `None`).
/// `file_name` is the file's own name (llmperf's individual responses are named after it).
pub fn parse(
    text: &str,
    file_name: &str,
    forced: Option<Tool>,
    siblings: &dyn Siblings,
) -> Result<Vec<PeerPoint>, PeerError> {
    if text.trim().is_empty() {
        return Err(PeerError::new(
            "the file",
            format!("it is empty; expected {ALL_FORMATS}"),
        ));
    }
    let header = text.trim_start().lines().next().unwrap_or_default();
    if locust::looks_like(header) && matches!(forced, None | Some(Tool::Locust)) {
        return locust::points(text);
    }
    if let Some(err) = csv(text) {
        return Err(err);
    }
    if forced == Some(Tool::Locust) {
        return Err(PeerError::new(
            "line 1",
            format!("--tool locust expects {}", Tool::Locust.expects()),
        ));
    }
    let docs = json::parse_documents(text).map_err(|e| PeerError {
        problem: format!("{}; expected {ALL_FORMATS}", e.problem),
        ..e
    })?;
    let tool = choose(&docs[0], forced)?;
    points(tool, &docs, text, file_name, siblings)
}

/// The tool a document is read as: `forced` where the document looks like its, else the most
/// specific candidate.
fn choose(doc: &Value, forced: Option<Tool>) -> Result<Tool, PeerError> {
    let found = candidates(doc);
    match (forced, found.first()) {
        (Some(t), _)
            if found.contains(&t) || (t == Tool::Vllm && found.contains(&Tool::Sglang)) =>
        {
            Ok(t)
        }
        (Some(t), _) => Err(PeerError {
            at: "the top level".into(),
            problem: format!(
                "--tool {} expects {}; this file is not one",
                t.as_str(),
                t.expects()
            ),
            maybe: found.iter().map(|t| t.as_str().to_string()).collect(),
        }),
        (None, Some(&t)) => Ok(t),
        (None, None) => Err(PeerError::new(
            "the top level",
            format!("no known result format: expected {ALL_FORMATS}"),
        )),
    }
}

/// The points of `docs` (the file's JSON documents; `text` its whole text) read as `tool`,
/// with the side files the tool writes beside it.
fn points(
    tool: Tool,
    docs: &[Value],
    text: &str,
    file_name: &str,
    siblings: &dyn Siblings,
) -> Result<Vec<PeerPoint>, PeerError> {
    let root = Node::root(&docs[0]);
    match tool {
        Tool::Vllm | Tool::Sglang => docs
            .iter()
            .flat_map(|d| match d {
                Value::Array(items) => items.iter().collect::<Vec<_>>(),
                one => vec![one],
            })
            .enumerate()
            .map(|(i, d)| vllm::point(&Node::root(d), tool, i))
            .collect(),
        Tool::Guidellm => guidellm::points(&root),
        Tool::Aiperf if aiperf::is_record(&root) => {
            let mut p = PeerPoint::new(Tool::Aiperf);
            p.requests = aiperf::requests_from_jsonl(text)?;
            p.completed = Some(p.requests.iter().filter(|r| r.ok).count() as u64);
            p.complete_from_requests()?;
            Ok(vec![p])
        }
        Tool::Aiperf | Tool::GenaiPerf => {
            let mut p = aiperf::point(&root)?;
            if let Some(records) = siblings.read("profile_export.jsonl") {
                p.requests = aiperf::requests_from_jsonl(&records)?;
                p.complete_from_requests()?;
            }
            Ok(vec![p])
        }
        Tool::Evalscope => {
            let pct = siblings
                .read("benchmark_percentile.json")
                .map(|t| json::parse(&t))
                .transpose()?;
            let mut p = evalscope::point(&root, pct.as_ref())?;
            if let Some(args) = siblings.read("benchmark_args.json") {
                evalscope::apply_args(&mut p, &json::parse(&args)?)?;
            }
            Ok(vec![p])
        }
        Tool::Llmperf => {
            if let Value::Array(_) = &docs[0] {
                return Ok(vec![llmperf::point_from_individual(&root.list_here()?)?]);
            }
            let mut p = llmperf::point(&root)?;
            let individual = file_name.replace("_summary.json", "_individual_responses.json");
            if individual != file_name
                && let Some(t) = siblings.read(&individual)
            {
                let v = json::parse(&t)?;
                p.requests = llmperf::requests(&Node::root(&v).list_here()?)?;
                p.complete_from_requests()?;
            }
            Ok(vec![p])
        }
        Tool::Gpustack => Ok(vec![gpustack::point(&root)?]),
        Tool::InferenceBenchmarker => inference_benchmarker::points(&root),
        // Locust's CSV is read above; JSON never looks like it; ceiling's runs are no file.
        Tool::Locust | Tool::Ceiling => Err(PeerError::new(
            "line 1",
            format!("expected {}", tool.expects()),
        )),
    }
}

/// A CSV file: which tool's, and why it is not read (the JSON beside it is).
fn csv(text: &str) -> Option<PeerError> {
    let first = text.trim_start();
    if first.starts_with('{') || first.starts_with('[') {
        return None;
    }
    let header = first.lines().next().unwrap_or_default();
    if !header.contains(',') {
        return None;
    }
    let rows = first
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count();
    let (tool, what) = if header.starts_with("Metric,") {
        (
            "aiperf",
            "AIPerf's CSV summary; import profile_export_aiperf.json beside it",
        )
    } else if header.starts_with("Run Info,") {
        (
            "guidellm",
            "guidellm's CSV; import benchmarks.json beside it",
        )
    } else if header.starts_with("Type,Name,Request Count") {
        ("locust", "a locust stats CSV, not the tool forced")
    } else {
        ("", "a CSV no tool is known to write")
    };
    let problem = if rows == 0 {
        format!("a CSV with a header and no rows ({what}); expected {ALL_FORMATS}")
    } else {
        format!("{what}; expected {ALL_FORMATS}")
    };
    Some(PeerError {
        at: "line 1".into(),
        problem,
        maybe: if tool.is_empty() {
            Vec::new()
        } else {
            vec![tool.to_string()]
        },
    })
}
