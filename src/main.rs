//! Entry point: parse flags, build the runtime, run, map the outcome to an exit code
//! ([`ceiling::exit::guard`]: a panic or an untyped error is a bug and exits 4).

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Clap's own usage errors exit 2 before anything else runs.
    let cli = ceiling::Cli::parse();
    ceiling::exit::install_panic_hook();
    let exit = ceiling::exit::guard(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            // Untyped on purpose: a runtime that cannot start is no fault of the input (exit 4).
            .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
        runtime.block_on(ceiling::run(cli))
    });
    std::process::ExitCode::from(exit as u8)
}
