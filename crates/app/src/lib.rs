//! What the `ecg` and `gpu-runner` binaries share: the assembly of the speech pipeline from its
//! stages, loaded once per process, and the metrics exporter behind `/metrics`. Their flags and
//! environment variables are `ecg-settings`'.
//! Binaries pick the job store and queue; everything else about running a job is built here.

mod exporter;
mod memory;
mod shutdown;
mod stages;

pub use exporter::{MetricsExporter, serve_metrics};
pub use memory::limit_malloc_arenas;
pub use shutdown::{EXIT_WAIT, abandon_inference, cancel_on_signal, exit_now};
pub use stages::{ModelConfig, health_checks, pipeline};
