//! Entry point: parse flags, build the runtime, run, map the outcome to an exit code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ceiling::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::from(ceiling::Exit::Gate as u8);
        }
    };
    match runtime.block_on(ceiling::run(cli)) {
        Ok(exit) => std::process::ExitCode::from(exit as u8),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(ceiling::exit::code_for(&err) as u8)
        }
    }
}
