//! The service's metrics: every name, label and histogram bucket in one place. Crates record
//! through the `metrics` facade where things happen; a binary that installs an exporter
//! (`ecg serve`, the GPU runner) serves them at `/metrics`. Without one, recording does nothing.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

/// Histogram of each pipeline stage's wall time, label `stage` (fetch, decode, vad, diarize,
/// asr, assemble, emotion).
pub const STAGE_DURATION: &str = "ecg_stage_duration_seconds";
/// Histogram of a finished analysis' processing time over its audio's duration.
pub const REAL_TIME_FACTOR: &str = "ecg_real_time_factor";
/// Counter of the jobs this worker ran to an end, label `outcome` (completed, failed).
pub const JOBS: &str = "ecg_jobs_total";
/// Gauge of the jobs this worker is running now.
pub const JOBS_RUNNING: &str = "ecg_jobs_running";
/// Gauge of the job messages a worker could lease now, read at scrape time.
pub const QUEUE_DEPTH: &str = "ecg_queue_depth";
/// Counter of callback requests, labels `kind` (progress, terminal) and `outcome` (delivered,
/// http_error, timeout, connection_error).
pub const CALLBACK_ATTEMPTS: &str = "ecg_callback_attempts_total";
/// Counter of callbacks once retrying has stopped, labels `kind` and `outcome` (delivered,
/// failed, refused: not sent, the target being off limits).
pub const CALLBACKS: &str = "ecg_callbacks_total";
/// Counter of media downloads, labels `source` (http, s3) and `outcome` (completed, failed,
/// timed_out, refused).
pub const DOWNLOADS: &str = "ecg_downloads_total";
/// Gauge of the seconds each model took to load at start-up, label `model` (speech_recognition,
/// voice_activity, speakers, emotion).
pub const MODEL_LOAD: &str = "ecg_model_load_seconds";
/// Gauge of the process' resident memory, read at scrape time (Prometheus' standard name).
pub const RESIDENT_MEMORY: &str = "process_resident_memory_bytes";

/// From a tenth of a second (a decode of a short clip) to half an hour (a long download).
const STAGE_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

/// Below 1 a job is faster than real time; a GPU runs at a few hundredths.
const REAL_TIME_FACTOR_BUCKETS: &[f64] = &[0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 2.0];

/// Every histogram with its buckets: an exporter renders these as histograms, not summaries.
pub const HISTOGRAMS: &[(&str, &[f64])] = &[
    (STAGE_DURATION, STAGE_BUCKETS),
    (REAL_TIME_FACTOR, REAL_TIME_FACTOR_BUCKETS),
];

/// Counts one media download in [`DOWNLOADS`].
pub fn count_download(source: &'static str, outcome: &'static str) {
    metrics::counter!(DOWNLOADS, "source" => source, "outcome" => outcome).increment(1);
}

/// Gives each metric its help text and unit, for the exporter to show, and the job counts their
/// zero: an idle worker shows them, and its first job is an increase that `rate()` sees.
pub fn register() {
    metrics::gauge!(JOBS_RUNNING).set(0.0);
    for outcome in ["completed", "failed"] {
        metrics::counter!(JOBS, "outcome" => outcome).absolute(0);
    }
    describe_histogram!(
        STAGE_DURATION,
        Unit::Seconds,
        "Wall time of each pipeline stage of a job"
    );
    describe_histogram!(
        REAL_TIME_FACTOR,
        "Processing time of a completed analysis over the duration of its audio"
    );
    describe_counter!(JOBS, "Jobs this worker ran to an end, by outcome");
    describe_gauge!(JOBS_RUNNING, "Jobs this worker is running");
    describe_gauge!(QUEUE_DEPTH, "Job messages a worker could lease now");
    describe_counter!(
        CALLBACK_ATTEMPTS,
        "Callback requests to the backend, by kind and outcome"
    );
    describe_counter!(
        CALLBACKS,
        "Callbacks once retrying has stopped, by kind and outcome"
    );
    describe_counter!(DOWNLOADS, "Media downloads, by source and outcome");
    describe_gauge!(
        MODEL_LOAD,
        Unit::Seconds,
        "Seconds each model took to load at start-up"
    );
    describe_gauge!(
        RESIDENT_MEMORY,
        Unit::Bytes,
        "Resident memory of the process"
    );
}
