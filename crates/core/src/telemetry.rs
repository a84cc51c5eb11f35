//! Logs for every binary, on stderr (stdout belongs to `ecg analyze`'s output): JSON lines for
//! services, with span timings on close so each `stage` span reports how long it took; plain
//! lines for a person at a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Who reads the logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogReader {
    /// A log pipeline (CloudWatch, journald): one JSON object per line.
    Machine,
    /// A person running a command: short plain lines.
    Person,
}

/// Installs the global subscriber. `default_level` applies when `RUST_LOG` is unset.
pub fn init(default_level: &str, reader: LogReader) {
    // whisper.cpp logs its model loading line by line at info: keep that out unless asked for.
    // The media decoder logs its own failures (an unrecognised file is an ERROR line) that reach
    // us as errors we report with the job's code: its lines would only repeat them.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("{default_level},whisper_rs=warn,symphonia=off"))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests, or a library caller that set up its own) keeps the first.
    let _ = match reader {
        LogReader::Machine => builder
            .json()
            .with_span_events(FmtSpan::CLOSE)
            .with_current_span(true)
            .try_init(),
        LogReader::Person => builder
            .compact()
            .without_time()
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}
