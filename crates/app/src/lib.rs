//! What the `ecg` and `gpu-runner` binaries share: their settings (flags with environment
//! variables), the assembly of the speech pipeline from its stages, loaded once per process, and
//! the metrics exporter behind `/metrics`.
//! Binaries pick the job store and queue; everything else about running a job is built here.

mod exporter;
mod memory;
mod settings;
mod shutdown;
mod stages;

pub use exporter::{MetricsExporter, serve_metrics};
pub use memory::limit_malloc_arenas;
pub use settings::{CallbackArgs, DecodeArgs, DownloadArgs, MetricsArgs, ModelArgs, WorkerArgs};
pub use shutdown::{EXIT_WAIT, abandon_inference, cancel_on_signal};
pub use stages::{health_checks, pipeline};
