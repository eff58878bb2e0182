//! Which engine the simulator imitates. A plain value type: the binary maps its `--flavor` flag
//! onto it (no clap here).

use serde::Serialize;

/// Which engine the simulator imitates at the HTTP and `/metrics` level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SimFlavor {
    Vllm,
    Sglang,
    Llamacpp,
}

impl SimFlavor {
    /// The flavor's name as `/sim/truth` and the CLI spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            SimFlavor::Vllm => "vllm",
            SimFlavor::Sglang => "sglang",
            SimFlavor::Llamacpp => "llamacpp",
        }
    }
}
