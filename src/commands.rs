//! One module per subcommand; each parses its configuration, calls the crates and prints.

pub mod analyze;
pub mod check;
pub mod check_result;
pub mod compare;
pub mod demo;
pub mod export;
pub mod gpus;
pub mod history;
pub mod import;
pub mod import_gpu;
pub mod nightly;
pub mod probe;
pub mod regress;
pub mod report;
pub mod report_results;
pub mod results;
pub mod roofline;
pub mod runs;
pub mod scrape;
pub mod sim;
pub mod sim_router;
pub mod write_load;

use crate::Exit;
use crate::cli::{Cli, Command};

pub async fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    let db = cli.store.db;
    match cli.command {
        Command::Probe(args) => probe::run(&db, &args).await,
        Command::Runs(args) => runs::run(&db, args),
        Command::Scrape(args) => scrape::run(args).await,
        Command::Gpus(args) => gpus::run(args).await,
        Command::ImportGpu(args) => import_gpu::run(&db, args).await,
        Command::Sim(args) => sim::run(args).await,
        Command::SimRouter(args) => sim_router::run(args).await,
        Command::Analyze(args) => analyze::run(&db, args),
        Command::Report(args) => report::run(&db, args),
        Command::Demo(args) => demo::run(&db, args).await,
        Command::Roofline(args) => roofline::run(args),
        Command::Check(args) => check::run(&db, args),
        Command::Import(args) => import::run(&db, args),
        Command::Results(args) => results::run(&db, args),
        Command::Compare(args) => compare::run(&db, args),
        Command::Regress(args) => regress::run(&db, args),
        Command::Nightly(args) => nightly::run(&db, &args).await,
        Command::History(args) => history::run(&db, args),
        Command::Export(args) => export::run(&db, args),
        Command::WriteLoad(args) => write_load::run(&db, args).await,
        Command::SynthRun(args) => write_load::synth_run(&db, &args).await,
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

/// The HTTP client for the telemetry commands: rustls with the ring provider, no proxy (the
/// engines are usually on loopback or the local network), no redirect followed.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    // Installing twice is harmless; without a provider reqwest panics when the client is built.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// Writes a command's output to stdout; a closed pipe (`| head`) ends the output quietly
/// instead of panicking as `print!` would.
pub fn emit(text: &str) {
    use std::io::Write;
    let text = crate::printable::printable(text);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
