//! Domain of the ECG Audio Analyzer.
//!
//! Layout:
//! - [`contract`]: the wire types of the API contract (`shared/spec/ml-server-api.md`); field names live here only.
//! - [`request`]: parse-don't-validate of incoming requests into [`request::JobSpec`].
//! - [`job`]: job identity, the status state machine and the stored job record.
//! - [`progress`]: the contract's progress steps and their messages.
//! - [`error`]: error codes and the pipeline's error type.
//! - [`ports`]: traits for the job store, queue, blob fetcher and callback notifier.
//! - [`audio`], [`stages`], [`pipeline`], [`assemble`]: the speech pipeline's data, stage traits and orchestration.
//! - [`subtitles`]: SRT/VTT rendering; [`preview`]: the self-contained HTML preview page.
//! - [`telemetry`]: logs shared by every binary.
//! - [`metrics`]: the names, labels and buckets of the service's metrics (recorded through the
//!   `metrics` facade; the binaries choose the exporter).
//!
//! This crate knows nothing of AWS, HTTP frameworks or native model runtimes: adapters implement its ports.

pub mod assemble;
pub mod audio;
pub mod contract;
pub mod error;
pub mod job;
pub mod metrics;
pub mod pipeline;
pub mod ports;
pub mod preview;
pub mod progress;
pub mod request;
pub mod retry;
pub mod stages;
pub mod subtitles;
pub mod telemetry;
