//! Structured logs for every binary: JSON on stderr (stdout belongs to `ecg analyze`'s output),
//! with span timings on close so each `stage` span reports how long it took.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Installs the global subscriber. `default_level` applies when `RUST_LOG` is unset.
pub fn init(default_level: &str) {
    // whisper.cpp logs its model loading line by line at info: keep that out unless asked for.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},whisper_rs=warn")));
    // A second init (tests, or a library caller that set up its own) keeps the first.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::CLOSE)
        .with_current_span(true)
        .with_writer(std::io::stderr)
        .try_init();
}
