//! `ecg`: analyse the speech in a video on this machine (`ecg analyze`), or serve the API with
//! its worker in one process on the embedded default (`ecg serve`).

mod analyze;
mod config;
mod serve;

use std::process::ExitCode;

use clap::Parser;
use ecg_core::telemetry::LogReader;

use crate::config::{Cli, Command, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `analyze` keeps stderr for its progress bar and a person reads it: only warnings, as plain
    // lines, unless RUST_LOG says otherwise. `serve` logs JSON lines for a log pipeline.
    let (default_level, reader) = match cli.command {
        Command::Analyze(_) => ("warn", LogReader::Person),
        Command::Serve(_) => ("info", LogReader::Machine),
    };
    let reader = match cli.log_format {
        Some(LogFormat::Plain) => LogReader::Person,
        Some(LogFormat::Json) => LogReader::Machine,
        None => reader,
    };
    ecg_core::telemetry::init(default_level, reader);
    ecg_app::limit_malloc_arenas();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (models, decode) = (cli.models.config(), cli.decode.limits());
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Analyze(args) => analyze::run(&models, decode, args).await,
            Command::Serve(args) => serve::run(&models, decode, *args).await,
        }
    });
    // A transcription that a shutdown gave up on (its job is back in the queue) is stopped, and
    // does not hold up the exit.
    ecg_app::abandon_inference();
    runtime.shutdown_timeout(ecg_app::EXIT_WAIT);
    match outcome {
        Ok(()) => ecg_app::exit_now(0),
        Err(e) => {
            eprintln!("error: {e:#}");
            ecg_app::exit_now(1)
        }
    }
}
