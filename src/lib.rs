//! `ceiling`: the binary's library half. [`run`] takes parsed flags and does the work, so tests
//! drive every command in-process; `main.rs` only parses, builds the runtime and maps the result
//! to an exit code.

pub mod cli;
pub mod commands;
pub mod exit;
pub mod redact;
pub mod sim;
pub mod store;

pub use cli::Cli;
pub use exit::Exit;
pub use sim::{Faults, Profile, SimConfig, SimHandle};

/// Runs one command to completion on the caller's tokio runtime.
pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    commands::dispatch(cli).await
}
