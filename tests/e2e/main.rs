//! End to end over real HTTP on 127.0.0.1: `ecg serve` with real models, a media server and a
//! backend that records callbacks.

// Helpers panic on purpose: in a test, a broken fixture is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod metrics;
mod uploads;

use std::time::Duration;

use ecg_core::contract::Callback;
use serde_json::{Value, json};

use metrics::Metrics;

use common::{
    Receiver, Server, get_json, media_server, signed_correctly, speech_wav, wait_for_callbacks,
    wait_for_end,
};

const JOB_LIMIT: Duration = Duration::from_secs(300);

/// `text` spoken into `talk.wav` and served over HTTP: the directory (kept as long as it lives)
/// and the server's base URL.
async fn spoken_clip(text: &str) -> (tempfile::TempDir, String) {
    let media = tempfile::tempdir().unwrap();
    speech_wav(&media.path().join("talk.wav"), text);
    let media_base = media_server(media.path().to_path_buf()).await;
    (media, media_base)
}

fn new_job_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn submit(client: &reqwest::Client, server: &Server, body: &Value) -> (u16, Value) {
    let response = client
        .post(format!("{}/api/upload-video/process-video", server.base))
        .json(body)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_job_runs_end_to_end_with_signed_progress_and_result() {
    let (_media, media_base) =
        spoken_clip("Hello and welcome. Today we talk about subtitles for short videos.").await;
    let receiver = Receiver::start(0).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let client = reqwest::Client::new();

    let job_id = new_job_id();
    let (status, accepted) = submit(
        &client,
        &server,
        &json!({"job_id": job_id, "video_url": format!("{media_base}/talk.wav"),
                "fastapi_base_url": receiver.base_url(), "language": "en"}),
    )
    .await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["status"], "processing");
    assert_eq!(accepted["status_url"], format!("/jobs/{job_id}"));

    let job = wait_for_end(&client, &server.base, &job_id, JOB_LIMIT).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert!(job["processing_time"].as_f64().unwrap() > 0.0);
    assert!(job["completed_at"].as_str().unwrap().ends_with('Z'));
    wait_for_callbacks(&receiver, 7, Duration::from_secs(30)).await;

    let calls = receiver.calls.lock().unwrap().clone();
    assert!(
        calls
            .iter()
            .all(|(headers, body)| signed_correctly(headers, body)),
        "every callback is signed"
    );
    let callbacks = receiver.accepted();
    let progress: Vec<(Value, Value)> = callbacks
        .iter()
        .map(|c| (c["status"].clone(), c["progress"].clone()))
        .collect();
    assert_eq!(
        progress,
        [10, 25, 40, 60, 75, 90]
            .iter()
            .map(|p| (json!("processing"), json!(p)))
            .chain([(json!("completed"), json!(100))])
            .collect::<Vec<_>>()
    );
    assert_eq!(callbacks[3]["message"], "음성을 텍스트로 변환 중...");
    for callback in &callbacks {
        assert!(
            callback
                .as_object()
                .unwrap()
                .keys()
                .all(|k| Callback::FIELDS.contains(&k.as_str()))
        );
        assert_eq!(callback["job_id"], job_id);
    }

    let result = &callbacks[6]["result"];
    let text = result["text"].as_str().unwrap().to_lowercase();
    assert!(
        text.contains("welcome") && text.contains("subtitles"),
        "{text}"
    );
    assert_eq!(result["language"], "en");
    assert_eq!(result["metadata"]["language_requested"], "en");
    assert_eq!(result["metadata"]["processing_mode"], "targeted");
    assert_eq!(result["metadata"]["model_version"], "ggml-base-q8_0");
    let segment = &result["segments"][0];
    assert_eq!(segment["speaker"]["speaker_id"], "SPEAKER_00");
    let word = &segment["words"][0];
    for key in ["volume_db", "pitch_hz", "spectral_centroid"] {
        assert!(word["acoustic_features"][key].is_number(), "{word}");
    }
    assert!(word["end"].as_f64() > word["start"].as_f64());
    assert_eq!(result["word_segments"].as_array().unwrap().len(), {
        result["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["words"].as_array().unwrap().len())
            .sum::<usize>()
    });
    assert!(
        result["speakers"]["SPEAKER_00"]["total_duration"]
            .as_f64()
            .unwrap()
            > 1.0
    );
}

#[tokio::test]
async fn failures_are_reported_once_with_their_codes_and_survive_a_restart() {
    let media = tempfile::tempdir().unwrap();
    std::fs::write(
        media.path().join("page.mp4"),
        "<html><body>Not a video</body></html>",
    )
    .unwrap();
    let media_base = media_server(media.path().to_path_buf()).await;
    let receiver = Receiver::start(0).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let client = reqwest::Client::new();

    let missing = new_job_id();
    let not_media = new_job_id();
    for (id, name) in [(&missing, "missing.mp4"), (&not_media, "page.mp4")] {
        let body = json!({"job_id": id, "video_url": format!("{media_base}/{name}"), "fastapi_base_url": receiver.base_url()});
        assert_eq!(submit(&client, &server, &body).await.0, 200);
    }
    let job = wait_for_end(&client, &server.base, &missing, JOB_LIMIT).await;
    assert_eq!(
        (job["status"].as_str(), job["error_code"].as_str()),
        (Some("failed"), Some("DOWNLOAD_ERROR"))
    );
    assert!(
        job["error_message"].as_str().unwrap().contains("404"),
        "{job}"
    );
    let job = wait_for_end(&client, &server.base, &not_media, JOB_LIMIT).await;
    assert_eq!(job["error_code"], "AUDIO_EXTRACTION_ERROR", "{job}");

    // Let any stray callback arrive, then restart on the same data directory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill();
    let server = Server::start(data.path());
    let job = wait_for_end(&client, &server.base, &missing, Duration::from_secs(5)).await;
    assert_eq!(job["error_code"], "DOWNLOAD_ERROR");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let terminal = |id: &str| -> Vec<Value> {
        receiver
            .accepted()
            .into_iter()
            .filter(|c| c["job_id"] == id && c["status"] != "processing")
            .collect()
    };
    let missing_calls = terminal(&missing);
    assert_eq!(missing_calls.len(), 1, "{missing_calls:?}");
    assert_eq!(
        missing_calls[0],
        json!({"job_id": missing, "status": "failed", "error_code": "DOWNLOAD_ERROR",
                                         "error_message": missing_calls[0]["error_message"]})
    );
    assert_eq!(terminal(&not_media).len(), 1);
    assert_eq!(
        terminal(&not_media)[0]["error_code"],
        "AUDIO_EXTRACTION_ERROR"
    );
    // The download failed before the first step; the undecodable file got as far as "downloaded".
    let progress_of = |id: &str| {
        receiver
            .accepted()
            .iter()
            .filter(|c| c["job_id"] == id && c["status"] == "processing")
            .count()
    };
    assert_eq!((progress_of(&missing), progress_of(&not_media)), (0, 1));
}

#[tokio::test]
async fn a_flaky_backend_still_gets_the_completion_exactly_once() {
    let (_media, media_base) = spoken_clip("Thank you for listening.").await;
    let receiver = Receiver::start(2).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let client = reqwest::Client::new();

    let job_id = new_job_id();
    let body = json!({"job_id": job_id, "video_url": format!("{media_base}/talk.wav"),
                      "fastapi_base_url": receiver.base_url(), "emotion_detection": false});
    assert_eq!(submit(&client, &server, &body).await.0, 200);
    assert_eq!(
        wait_for_end(&client, &server.base, &job_id, JOB_LIMIT).await["status"],
        "completed"
    );
    // Five progress steps (no emotion step), then the completion once it is answered with 200.
    wait_for_callbacks(&receiver, 6, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let terminal: Vec<(u16, Value)> = receiver
        .all()
        .into_iter()
        .filter(|(_, c)| c["status"] == "completed")
        .map(|(s, c)| (s.as_u16(), c))
        .collect();
    assert_eq!(
        terminal.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    let job = get_json(&client, &format!("{}/jobs/{job_id}", server.base)).await;
    assert_eq!(
        job["notification"],
        json!({"delivery": "delivered"}),
        "{job}"
    );
    let progress: Vec<Value> = receiver
        .accepted()
        .iter()
        .filter(|c| c["status"] == "processing")
        .map(|c| c["progress"].clone())
        .collect();
    assert_eq!(
        progress,
        [json!(10), json!(25), json!(40), json!(60), json!(90)]
    );
}

#[tokio::test]
async fn invalid_requests_get_a_4xx_naming_the_field() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let client = reqwest::Client::new();
    let (status, body) = submit(
        &client,
        &server,
        &json!({"job_id": "not-a-uuid", "video_url": "https://example.com/v.mp4"}),
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("job_id")));
    let (status, body) = submit(
        &client,
        &server,
        &json!({"job_id": new_job_id(), "video_url": "ftp://example.com/v.mp4"}),
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("video_url")));
    let health = server.health().await;
    assert_eq!(health["status"], "healthy", "{health}");
}

#[tokio::test]
async fn missing_models_are_each_named_by_health_and_fail_jobs_with_their_code() {
    let (_media, media_base) = spoken_clip("Hello and welcome.").await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        data.path(),
        &[
            ("ECG_SPEAKER_MODEL", "/nonexistent/speaker.onnx"),
            ("ECG_ASR_MODEL", "/nonexistent/ggml-missing.bin"),
        ],
    );
    let client = reqwest::Client::new();

    let response = client
        .get(format!("{}/health", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let health: Value = response.json().await.unwrap();
    assert_eq!(health["status"], "unhealthy", "{health}");
    let check = |name: &str| {
        health["checks"][name]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        check("speakers").starts_with("failed") && check("speakers").contains("speaker.onnx"),
        "{health}"
    );
    assert!(
        check("speech_recognition").starts_with("failed"),
        "{health}"
    );
    assert!(!check("voice_activity").starts_with("failed"), "{health}");

    let job_id = new_job_id();
    let body = json!({"job_id": job_id, "video_url": format!("{media_base}/talk.wav")});
    assert_eq!(submit(&client, &server, &body).await.0, 200);
    let job = wait_for_end(&client, &server.base, &job_id, JOB_LIMIT).await;
    assert_eq!(job["error_code"], "MODEL_LOADING_ERROR", "{job}");
}

#[tokio::test]
async fn an_undelivered_result_is_reported_by_the_job_status() {
    let media = tempfile::tempdir().unwrap();
    let media_base = media_server(media.path().to_path_buf()).await;
    let receiver = Receiver::start(usize::MAX).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(data.path(), &[("ECG_CALLBACK_RETRIES", "1")]);
    let client = reqwest::Client::new();

    let job_id = new_job_id();
    let body = json!({"job_id": job_id, "video_url": format!("{media_base}/missing.mp4"),
                      "fastapi_base_url": receiver.base_url()});
    assert_eq!(submit(&client, &server, &body).await.0, 200);
    let job = wait_for_end(&client, &server.base, &job_id, JOB_LIMIT).await;
    assert_eq!(job["error_code"], "DOWNLOAD_ERROR", "{job}");
    let job = wait_for_delivery(&client, &server, &job_id).await;
    assert_eq!(job["notification"]["delivery"], "failed", "{job}");
    let error = job["notification"]["error"].as_str().unwrap();
    assert!(
        error.contains("2 attempt(s)") && error.contains("500"),
        "{job}"
    );
    let attempts = receiver.all().len();
    assert_eq!(attempts, 2, "{:?}", receiver.all());

    let metrics = Metrics::scrape(&client, &server).await;
    let value = |name: &str, labels: &[(&str, &str)]| metrics.value(name, labels);
    assert_eq!(value("ecg_jobs_total", &[("outcome", "failed")]), Some(1.0));
    assert_eq!(
        value("ecg_jobs_total", &[("outcome", "completed")]),
        Some(0.0)
    );
    let download = [("source", "http"), ("outcome", "failed")];
    assert_eq!(value("ecg_downloads_total", &download), Some(1.0));
    let refused = [("kind", "terminal"), ("outcome", "http_error")];
    assert_eq!(value("ecg_callback_attempts_total", &refused), Some(2.0));
    let failed = [("kind", "terminal"), ("outcome", "failed")];
    assert_eq!(value("ecg_callbacks_total", &failed), Some(1.0));
    let fetched = [("stage", "fetch")];
    assert_eq!(
        value("ecg_stage_duration_seconds_count", &fetched),
        Some(1.0)
    );
    let decoded = [("stage", "decode")];
    assert_eq!(
        value("ecg_stage_duration_seconds_count", &decoded),
        None,
        "no media, no decoding"
    );
}

/// Polls `GET /jobs/{id}` of an ended job until its terminal callback has been delivered or
/// given up on.
async fn wait_for_delivery(client: &reqwest::Client, server: &Server, job_id: &str) -> Value {
    let started = std::time::Instant::now();
    loop {
        let job = get_json(client, &format!("{}/jobs/{job_id}", server.base)).await;
        let delivery = job["notification"]["delivery"].as_str().unwrap_or_default();
        if !matches!(delivery, "pending" | "sending") || started.elapsed() > JOB_LIMIT {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_hanging_backend_holds_up_neither_the_job_nor_its_result() {
    let (_media, media_base) = spoken_clip("Thank you for listening.").await;
    let receiver = Receiver::hanging_on_progress().await;
    let data = tempfile::tempdir().unwrap();
    // Were progress callbacks sent inside the job, each would hold it for a whole minute.
    let server = Server::start_with(
        data.path(),
        &[
            ("ECG_CALLBACK_TIMEOUT_SECS", "60"),
            ("ECG_CALLBACK_RETRIES", "0"),
        ],
    );
    let client = reqwest::Client::new();

    let job_id = new_job_id();
    let body = json!({"job_id": job_id, "video_url": format!("{media_base}/talk.wav"),
                      "fastapi_base_url": receiver.base_url(), "emotion_detection": false});
    assert_eq!(submit(&client, &server, &body).await.0, 200);
    let job = wait_for_end(&client, &server.base, &job_id, Duration::from_secs(50)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let started = std::time::Instant::now();
    while !receiver
        .all()
        .iter()
        .any(|(_, c)| c["status"] == "completed")
    {
        assert!(started.elapsed() < Duration::from_secs(50), "no completion");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls: Vec<Value> = receiver.all().into_iter().map(|(_, c)| c).collect();
    let (progress, terminal): (Vec<&Value>, Vec<&Value>) =
        calls.iter().partition(|c| c["status"] == "processing");
    assert_eq!(terminal.len(), 1, "{calls:?}");
    assert_eq!(
        calls.last(),
        Some(terminal[0]),
        "progress after the result: {calls:?}"
    );
    let steps: Vec<u64> = progress
        .iter()
        .filter_map(|c| c["progress"].as_u64())
        .collect();
    assert!(!steps.is_empty(), "{calls:?}");
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
}

/// A job of `sentences` spoken sentences submitted to its own `ecg serve` (started with `env`),
/// running: its status has reached at least `progress` percent.
struct RunningJob {
    _media: tempfile::TempDir,
    receiver: Receiver,
    data: tempfile::TempDir,
    server: Server,
    client: reqwest::Client,
    job_id: String,
    status_url: String,
}

impl RunningJob {
    async fn start(sentences: usize, env: &[(&str, &str)], progress: u64) -> Self {
        let sentence = "The committee met on Tuesday to review the budget for the coming year. ";
        let (media, media_base) = spoken_clip(&sentence.repeat(sentences)).await;
        let receiver = Receiver::start(0).await;
        let data = tempfile::tempdir().unwrap();
        let server = Server::start_with(data.path(), env);
        let client = reqwest::Client::new();
        let job_id = new_job_id();
        let body = json!({"job_id": job_id, "video_url": format!("{media_base}/talk.wav"),
                          "fastapi_base_url": receiver.base_url(), "emotion_detection": false});
        assert_eq!(submit(&client, &server, &body).await.0, 200);
        let status_url = format!("{}/jobs/{job_id}", server.base);
        let started = std::time::Instant::now();
        loop {
            let job = get_json(&client, &status_url).await;
            if job["status"] == "processing" && job["progress"].as_u64() >= Some(progress) {
                break;
            }
            assert!(
                started.elapsed() < JOB_LIMIT,
                "the job never got to {progress} %"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            _media: media,
            receiver,
            data,
            server,
            client,
            job_id,
            status_url,
        }
    }

    fn stop_server(&self) {
        let stop = std::process::Command::new("kill")
            .args(["-TERM", &self.server.pid().to_string()])
            .status()
            .unwrap();
        assert!(stop.success());
    }

    /// The job's record and result once it has ended (on `server`, which may be a restart).
    async fn end(&self, server: &Server) -> (Value, Value) {
        let job = wait_for_end(&self.client, &server.base, &self.job_id, JOB_LIMIT).await;
        let result = get_json(
            &self.client,
            &format!("{}/jobs/{}/result", server.base, self.job_id),
        )
        .await;
        (job, result)
    }

    /// How many `completed` callbacks the backend got.
    async fn completions(&self) -> usize {
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.receiver
            .accepted()
            .iter()
            .filter(|c| c["status"] == "completed")
            .count()
    }
}

#[tokio::test]
async fn a_stop_signal_lets_the_job_in_flight_finish_while_health_says_draining() {
    let mut job = RunningJob::start(8, &[("ECG_SHUTDOWN_GRACE_SECS", "120")], 0).await;
    job.stop_server();

    // The API keeps answering during the drain, and says it is draining.
    let started = std::time::Instant::now();
    let health = loop {
        let response = job
            .client
            .get(format!("{}/health", job.server.base))
            .send()
            .await
            .unwrap();
        if response.status() == 503 {
            break response.json::<Value>().await.unwrap();
        }
        assert!(started.elapsed() < JOB_LIMIT, "never draining");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        health["checks"]["worker"]
            .as_str()
            .unwrap()
            .contains("draining"),
        "{health}"
    );
    // The process ends once the job has; its record says the job completed.
    assert!(job.server.exits_within(JOB_LIMIT).await, "still running");
    let restarted = Server::start(job.data.path());
    let (record, _) = job.end(&restarted).await;
    assert_eq!(record["status"], "completed", "{record}");
    assert_eq!(job.completions().await, 1);
}

/// Holds the job store's write lock from another connection, as a backup or a full disk would
/// keep the server's writes from landing, until the returned sender is dropped or sent to.
fn block_store_writes(data_dir: &std::path::Path) -> std::sync::mpsc::Sender<()> {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (locked, is_locked) = std::sync::mpsc::channel();
    let db = data_dir.join("jobs.sqlite3");
    std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
        locked.send(()).unwrap();
        let _ = released.recv();
        conn.execute_batch("ROLLBACK").unwrap();
    });
    is_locked.recv().unwrap();
    release
}

/// Runs a job of two sentences with the store's writes blocked for `blocked` from the moment it
/// runs: it must still complete, with its result, and the backend must hear of it once.
async fn completes_with_the_store_blocked(env: &[(&str, &str)], blocked: Duration) {
    let job = RunningJob::start(2, env, 0).await;
    let release = block_store_writes(job.data.path());
    let blocked_at = std::time::Instant::now();
    while blocked_at.elapsed() < blocked {
        // Reads still work: the job is neither lost nor ended while nothing can be stored.
        let record = get_json(&job.client, &job.status_url).await;
        assert!(
            record["status"] == "processing" || record["status"] == "queued",
            "{record}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(release);
    let (record, result) = job.end(&job.server).await;
    assert_eq!(record["status"], "completed", "{record}");
    assert!(
        !result["result"]["segments"].as_array().unwrap().is_empty(),
        "{result}"
    );
    assert_eq!(job.completions().await, 1);
}

#[tokio::test]
async fn a_store_that_cannot_be_written_for_a_while_loses_no_result() {
    // The worker keeps retrying the write of the outcome until the store takes it.
    completes_with_the_store_blocked(&[("ECG_STORE_RETRY_SECS", "60")], Duration::from_secs(12))
        .await;
}

#[tokio::test]
async fn a_store_that_stays_unwritable_gets_the_job_queued_again_not_stranded() {
    // Past its retries the worker hands the job back to the queue, which offers it again
    // until the store takes writes; then it runs to the end, and the backend hears once.
    completes_with_the_store_blocked(&[("ECG_STORE_RETRY_SECS", "2")], Duration::from_secs(15))
        .await;
}

#[tokio::test]
async fn a_job_cut_off_by_the_grace_period_runs_again_after_the_restart() {
    // Long enough that its transcription outlasts the grace period several times over.
    let mut job = RunningJob::start(24, &[("ECG_SHUTDOWN_GRACE_SECS", "1")], 60).await;
    job.stop_server();
    // The transcription in flight cannot be interrupted, but it does not hold up the exit.
    assert!(
        job.server.exits_within(Duration::from_secs(10)).await,
        "the shutdown is not bounded"
    );
    let restarted = Server::start(job.data.path());
    let (record, _) = job.end(&restarted).await;
    assert_eq!(record["status"], "completed", "{record}");
    assert_eq!(job.completions().await, 1);
}
