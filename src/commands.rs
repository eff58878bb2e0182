//! One module per subcommand; each parses its configuration, calls the crates and prints.

pub mod check;
pub mod roofline;
pub mod runs;
pub mod write_load;

use crate::Exit;
use crate::cli::{Cli, Command};

pub async fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    let db = cli.store.db;
    match cli.command {
        Command::Runs(args) => runs::run(&db, args),
        Command::Roofline(args) => roofline::run(args),
        Command::Check(args) => check::run(args),
        Command::WriteLoad(args) => write_load::run(&db, args).await,
    }
}

/// Resolves a run argument: a numeric id or `latest`.
pub fn resolve_run(store: &crate::store::Store, run: &str) -> anyhow::Result<i64> {
    if run == "latest" {
        return Ok(store.latest_run()?);
    }
    run.parse::<i64>().map_err(|_| {
        crate::exit::Failure::Usage(format!(
            "run {run:?} is neither a run id nor `latest`; `ceiling runs` lists the ids"
        ))
        .into()
    })
}
