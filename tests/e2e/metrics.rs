//! `GET /metrics` read as Prometheus reads it: the text goes through `prometheus_client`'s own
//! parser (`parse_metrics.py`), which fails on anything malformed.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::json;

use super::{JOB_LIMIT, new_job_id, spoken_clip, submit, wait_for_delivery};
use crate::common::{Receiver, Server, python_filter, wait_for_end};

/// What the parser found.
#[derive(Deserialize)]
pub struct Metrics {
    /// Family name (without `_total` for counters, as the parser gives it) → its type.
    families: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

#[derive(Deserialize)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Metrics {
    /// Scrapes the server and parses what it answered.
    pub async fn scrape(client: &reqwest::Client, server: &Server) -> Self {
        let response = client
            .get(format!("{}/metrics", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/parse_metrics.py");
        serde_json::from_str(&python_filter(&script, &text)).unwrap()
    }

    /// The value of the sample `name` whose labels are exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == wanted)
            .map(|s| s.value)
    }

    fn family_type(&self, name: &str) -> Option<&str> {
        self.families.get(name).map(String::as_str)
    }
}

#[tokio::test]
async fn metrics_after_a_completed_job_count_its_stages_callbacks_and_download() {
    let (_media, media_base) =
        spoken_clip("Metrics tell an operator how the service is doing.").await;
    let receiver = Receiver::start(0).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let client = reqwest::Client::new();

    let job_id = new_job_id();
    let body = json!({"job_id": job_id, "video_url": format!("{media_base}/talk.wav"),
                      "fastapi_base_url": receiver.base_url(), "language": "en"});
    assert_eq!(submit(&client, &server, &body).await.0, 200);
    let job = wait_for_end(&client, &server.base, &job_id, JOB_LIMIT).await;
    assert_eq!(job["status"], "completed", "{job}");
    // Counted once the terminal callback is settled: every callback has been counted by then.
    let job = wait_for_delivery(&client, &server, &job_id).await;
    assert_eq!(job["notification"]["delivery"], "delivered", "{job}");

    let metrics = Metrics::scrape(&client, &server).await;
    let value = |name: &str, labels: &[(&str, &str)]| metrics.value(name, labels);

    // Histograms with buckets, not summaries.
    for histogram in ["ecg_stage_duration_seconds", "ecg_real_time_factor"] {
        assert_eq!(
            metrics.family_type(histogram),
            Some("histogram"),
            "{histogram}"
        );
    }
    for stage in [
        "fetch", "decode", "vad", "diarize", "asr", "assemble", "emotion",
    ] {
        let count = value("ecg_stage_duration_seconds_count", &[("stage", stage)]);
        assert_eq!(count, Some(1.0), "{stage} ran once");
        let all = value(
            "ecg_stage_duration_seconds_bucket",
            &[("stage", stage), ("le", "+Inf")],
        );
        assert_eq!(
            all,
            Some(1.0),
            "{stage}: the +Inf bucket holds every sample"
        );
    }
    assert_eq!(value("ecg_real_time_factor_count", &[]), Some(1.0));
    assert!(value("ecg_real_time_factor_sum", &[]).is_some_and(|rtf| rtf > 0.0));

    assert_eq!(metrics.family_type("ecg_jobs"), Some("counter"));
    assert_eq!(
        value("ecg_jobs_total", &[("outcome", "completed")]),
        Some(1.0)
    );
    assert_eq!(value("ecg_jobs_total", &[("outcome", "failed")]), Some(0.0));
    assert_eq!(value("ecg_jobs_running", &[]), Some(0.0));
    assert_eq!(value("ecg_queue_depth", &[]), Some(0.0));

    // Six progress steps and the completion, each delivered at the first attempt.
    for (kind, sent) in [("progress", 6.0), ("terminal", 1.0)] {
        let delivered = [("kind", kind), ("outcome", "delivered")];
        assert_eq!(
            value("ecg_callback_attempts_total", &delivered),
            Some(sent),
            "{kind}"
        );
        assert_eq!(
            value("ecg_callbacks_total", &delivered),
            Some(sent),
            "{kind}"
        );
    }
    let downloaded = [("source", "http"), ("outcome", "completed")];
    assert_eq!(value("ecg_downloads_total", &downloaded), Some(1.0));

    for model in [
        "speech_recognition",
        "voice_activity",
        "speakers",
        "emotion",
    ] {
        let seconds = value("ecg_model_load_seconds", &[("model", model)]);
        assert!(seconds.is_some_and(|s| s >= 0.0), "{model}: {seconds:?}");
    }
    assert!(
        value("ecg_model_load_seconds", &[("model", "speech_recognition")])
            .is_some_and(|s| s > 0.0),
        "loading Whisper takes time"
    );
    assert!(value("process_resident_memory_bytes", &[]).is_some_and(|bytes| bytes > 1e6));
}
