//! `ceiling`: the binary's library half. [`run()`] takes parsed flags and does the work, so tests
//! drive every command in-process; `main.rs` only parses, builds the runtime and maps the result
//! to an exit code.

pub mod cli;
pub mod commands;
pub mod config;
pub mod exit;
pub mod printable;
pub mod probe;
pub mod redact;
pub mod run;
pub mod search;
pub mod store;
pub mod telemetry;

/// The simulated engine, its own crate so the ground truth shares no code with the probe and the
/// analysis it checks; re-exported so `ceiling::sim::…` paths keep working.
pub use ceiling_sim as sim;
pub use ceiling_sim::{Faults, Profile, SimConfig, SimHandle};
pub use cli::Cli;
pub use exit::Exit;

/// Runs one command to completion on the caller's tokio runtime.
pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    commands::dispatch(cli).await
}

/// Installs the TLS crypto provider reqwest needs (ring: polars already builds it). Safe to call
/// more than once.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
