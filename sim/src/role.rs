//! The part a simulator plays in a disaggregated (prefill/decode) deployment, and the
//! `kv_transfer_params` handshake vLLM's NIXL connector uses between the two sides. A plain value
//! type and the handshake's JSON shapes; what a role changes is done by the HTTP side (the
//! prefill answer) and the scheduler (a transferred prompt is not computed).

use serde_json::{Value, json};

/// Which part of a prefill/decode pair the simulator plays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SimRole {
    /// One engine does both (the ordinary deployment).
    #[default]
    Unified,
    /// Computes prompts; answers `do_remote_decode` requests with where to fetch the KV from.
    Prefill,
    /// Takes `do_remote_prefill` requests whose prompt KV arrived from the prefill side.
    Decode,
}

impl SimRole {
    /// The role's name as the CLI and SGLang's `engine_type` label spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            SimRole::Unified => "unified",
            SimRole::Prefill => "prefill",
            SimRole::Decode => "decode",
        }
    }
}

/// The `kv_transfer_params` a request carried (unknown fields ignored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct KvTransfer {
    /// The prompt's KV was computed elsewhere (a decode-side request).
    pub do_remote_prefill: bool,
    /// Another engine decodes (a prefill-side request).
    pub do_remote_decode: bool,
}

impl KvTransfer {
    /// Reads the field's value: absent or `null` is no transfer; anything but an object is an
    /// error message.
    pub fn parse(v: &Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(KvTransfer::default()),
            Value::Object(o) => {
                let flag = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
                Ok(KvTransfer {
                    do_remote_prefill: flag("do_remote_prefill"),
                    do_remote_decode: flag("do_remote_decode"),
                })
            }
            _ => Err("`kv_transfer_params` must be an object".into()),
        }
    }
}

/// What a prefill engine listening on `port` tells the decode side (vLLM's NIXL connector
/// shape; the simulator transfers nothing, so no block ids).
pub(crate) fn prefill_answer(port: u16) -> Value {
    json!({
        "do_remote_prefill": true,
        "do_remote_decode": false,
        "remote_engine_id": format!("sim-prefill-{port}"),
        "remote_block_ids": [],
        "remote_host": "127.0.0.1",
        "remote_port": port,
    })
}
