//! The production flow against a moto server on 127.0.0.1: requests through the functions'
//! router (DynamoDB + SQS), the real `gpu-runner` process (real models, media from S3), and a
//! backend that records callbacks. Then the faults the design must survive: a runner killed
//! mid-job, a message delivered twice, two runners racing, a backend that is down, a missing
//! S3 object, SIGTERM in the middle of a job, a spot interruption notice from the instance
//! metadata service (a stand-in on 127.0.0.1), a scale-in that ends with the runner completing
//! its instance's lifecycle action (Auto Scaling, which moto lacks, is a stand-in too), the GPU
//! running out of memory (injected: the job moves to the CPU) and a model that fails to load
//! (the next configured one takes over).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ecg_api::{ApiConfig, AppState};
use ecg_aws::testing::Moto;
use ecg_aws::{AwsClients, AwsConfig, InstanceNotices, Notice};
use ecg_core::job::{Delivery, JobId, JobRecord, JobStatus};
use ecg_core::ports::{JobMessage, JobQueue, JobStore, UploadSlots};
use ecg_core::request::UrlPolicy;
use ecg_testkit::{Receiver, SECRET, model_dir, serve, signed_correctly, speech_wav};
use serde_json::{Value, json};

/// A runner's lease: short, so that a killed runner's message comes back within seconds.
const LEASE_SECS: &str = "6";
const CALLBACK_RETRIES: usize = 2;
const JOB_LIMIT: Duration = Duration::from_secs(240);

/// moto with the template's table and queues, a media bucket, and the functions' router in front.
struct Cloud {
    moto: Moto,
    clients: AwsClients,
    config: AwsConfig,
    bucket: String,
    api: String,
    http: reqwest::Client,
    scratch: tempfile::TempDir,
}

impl Cloud {
    async fn start() -> Self {
        let moto = Moto::start().await;
        let clients = moto.clients().await;
        let config = moto.create_resources(&clients, 5).await;
        let bucket = moto.create_bucket(&clients).await;
        // Uploads go to the media bucket, as the template configures the function.
        let config = AwsConfig {
            media_bucket: Some(bucket.clone()),
            ..config
        };
        // The Lambda's state: DynamoDB store, SQS queue for sending only.
        let state = AppState {
            store: Arc::new(config.job_store(&clients)),
            queue: Arc::new(config.job_queue(&clients, None)),
            checks: Vec::new(),
            config: Arc::new(ApiConfig {
                url_policy: UrlPolicy {
                    allow_local: true,
                    callback_hosts: None,
                },
                ..ApiConfig::default()
            }),
            upload_slots: config
                .upload_slots(&clients)
                .map(|slots| Arc::new(slots) as Arc<dyn UploadSlots>),
            metrics: None,
        };
        let api = format!("http://{}", serve(ecg_api::router(state)).await);
        Self {
            moto,
            clients,
            config,
            bucket,
            api,
            http: reqwest::Client::new(),
            scratch: tempfile::tempdir().unwrap(),
        }
    }

    /// Speech of `text` uploaded as `s3://<bucket>/<key>`; its URL.
    async fn speech(&self, key: &str, text: &str) -> String {
        let wav = self.scratch.path().join(key.replace('/', "-"));
        speech_wav(&wav, text);
        let bytes = std::fs::read(&wav).unwrap();
        self.moto
            .upload(&self.clients, &self.bucket, key, bytes)
            .await;
        format!("s3://{}/{key}", self.bucket)
    }

    /// `POST /api/upload-video/process-video`; the job id.
    async fn submit(&self, video_url: &str, backend: &str) -> JobId {
        let job_id = JobId::new();
        let response = self
            .http
            .post(format!("{}/api/upload-video/process-video", self.api))
            .json(
                &json!({"job_id": job_id.to_string(), "video_url": video_url,
                          "fastapi_base_url": backend, "language": "en"}),
            )
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "processing");
        job_id
    }

    /// `TALK` through the whole flow, which must complete with a clean sequence of callbacks;
    /// the result it delivered.
    async fn talk_completes(&self, receiver: &Receiver) -> Value {
        let video = self.speech("talks/morning.wav", TALK).await;
        let job_id = self.submit(&video, &receiver.base_url()).await;
        let record = self.settled(job_id).await;
        assert_eq!(
            record.status,
            JobStatus::Completed,
            "{:?}",
            record.error_message
        );
        assert_clean_sequence(receiver, job_id);
        receiver.accepted().last().unwrap()["result"].clone()
    }

    /// Sends one more message for the job, as SQS's at-least-once delivery may.
    async fn enqueue_again(&self, job_id: JobId) {
        self.config
            .job_queue(&self.clients, None)
            .enqueue(&JobMessage { job_id })
            .await
            .unwrap();
    }

    async fn record(&self, job_id: JobId) -> JobRecord {
        self.config
            .job_store(&self.clients)
            .get(job_id)
            .await
            .unwrap()
            .expect("the job is in the table")
    }

    /// Polls the table until the job's terminal callback is settled (delivered or given up).
    async fn settled(&self, job_id: JobId) -> JobRecord {
        let started = Instant::now();
        loop {
            let record = self.record(job_id).await;
            if record.status.is_terminal()
                && !matches!(record.delivery, Delivery::Pending | Delivery::Sending)
            {
                return record;
            }
            assert!(
                started.elapsed() < JOB_LIMIT,
                "job {job_id} not settled: {:?} {:?}",
                record.status,
                record.delivery
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `GET /jobs/{id}` through the router.
    async fn job(&self, job_id: JobId) -> Value {
        let url = format!("{}/jobs/{job_id}", self.api);
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until no message is left in the job queue, visible or in flight.
    async fn queue_drained(&self) {
        let started = Instant::now();
        loop {
            let depth = self
                .moto
                .queue_depth(&self.clients, &self.config.queue_url)
                .await;
            if depth == (0, 0) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "messages left in the queue (visible, in flight): {depth:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn runner(&self, name: &str, workers: usize) -> RunnerProcess {
        RunnerProcess::start(self, name, workers, None, &[])
    }

    /// A runner that watches the instance metadata service at `metadata`, with these variables
    /// set besides the usual ones.
    fn runner_on_instance(
        &self,
        name: &str,
        metadata: &str,
        env: &[(&str, &str)],
    ) -> RunnerProcess {
        RunnerProcess::start(self, name, 1, Some(metadata), env)
    }

    /// A runner with these variables set besides the usual ones.
    fn runner_with(&self, name: &str, env: &[(&str, &str)]) -> RunnerProcess {
        RunnerProcess::start(self, name, 1, None, env)
    }
}

/// `gpu-runner` as a child process against the cloud; its JSON log goes to a file.
struct RunnerProcess {
    child: Child,
    log: PathBuf,
}

impl RunnerProcess {
    fn start(
        cloud: &Cloud,
        name: &str,
        workers: usize,
        metadata: Option<&str>,
        env: &[(&str, &str)],
    ) -> Self {
        assert!(
            model_dir().join("ggml-base-q8_0.bin").exists(),
            "models missing in {}: run `make models`",
            model_dir().display()
        );
        let log = cloud.scratch.path().join(format!("{name}.log"));
        let output = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_gpu-runner"));
        match metadata {
            Some(url) => command.env("ECG_INSTANCE_METADATA", url),
            None => command.env_remove("ECG_INSTANCE_METADATA"),
        };
        let child = command
            .envs(cloud.moto.env())
            .env("ECG_JOBS_TABLE", &cloud.config.jobs_table)
            .env("ECG_QUEUE_URL", &cloud.config.queue_url)
            .env_remove("ECG_DLQ_URL")
            .env_remove("ECG_MEDIA_BUCKET")
            .env_remove("BACKEND_URL")
            .env("ECG_MODEL_DIR", model_dir())
            .env("ECG_ALLOW_LOCAL_URLS", "true")
            .env("ECG_CALLBACK_SECRET", SECRET)
            .env("ECG_CALLBACK_RETRIES", CALLBACK_RETRIES.to_string())
            .env("ECG_CALLBACK_TIMEOUT_SECS", "3")
            .env("ECG_ASR_THREADS", "1")
            .env("ECG_WORKERS", workers.to_string())
            .env("ECG_LEASE_SECS", LEASE_SECS)
            .env("ECG_SHUTDOWN_GRACE_SECS", "1")
            // Several runners at once: each on a port of its own.
            .env("ECG_METRICS_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .env("TMPDIR", cloud.scratch.path())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(output)
            .spawn()
            .expect("gpu-runner starts");
        let runner = Self { child, log };
        runner.wait_for_log("models loaded", 1);
        runner
    }

    /// Log lines whose message is `message`.
    fn count(&self, message: &str) -> usize {
        log_messages(&self.log)
            .iter()
            .filter(|m| m.as_str() == message)
            .count()
    }

    fn wait_for_log(&self, message: &str, times: usize) {
        let started = Instant::now();
        while self.count(message) < times {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no {message:?} in the runner's log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Ends the process at once, as a crash or a lost instance would.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Waits for the process to end by itself.
    fn exit(&mut self) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the runner did not stop"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, as systemd or an instance's scale-in sends it; waits for the exit.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }
}

impl Drop for RunnerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `fields.message` of each JSON log line.
fn log_messages(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|v| v["fields"]["message"].as_str().map(str::to_owned))
        .collect()
}

/// Every callback the receiver got for the job, as (status, progress), in arrival order.
fn callbacks_of(receiver: &Receiver, job_id: JobId) -> Vec<(String, u64)> {
    receiver
        .all()
        .iter()
        .map(|(_, body)| body)
        .filter(|body| body["job_id"] == job_id.to_string())
        .map(|body| {
            (
                body["status"].as_str().unwrap().to_owned(),
                body["progress"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn terminal_count(receiver: &Receiver, job_id: JobId) -> usize {
    callbacks_of(receiver, job_id)
        .iter()
        .filter(|(status, _)| status != "processing")
        .count()
}

async fn wait_for_progress(receiver: &Receiver, job_id: JobId, percent: u64) {
    let started = Instant::now();
    while !callbacks_of(receiver, job_id)
        .iter()
        .any(|(_, p)| *p >= percent)
    {
        assert!(
            started.elapsed() < JOB_LIMIT,
            "no progress {percent} for {job_id}: {:?}",
            callbacks_of(receiver, job_id)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The progress steps a job reported, each at most once and only rising, then completion once.
fn assert_clean_sequence(receiver: &Receiver, job_id: JobId) {
    let callbacks = callbacks_of(receiver, job_id);
    let (last, progress) = callbacks.split_last().expect("callbacks arrived");
    assert_eq!(last, &("completed".to_owned(), 100), "{callbacks:?}");
    assert!(
        progress.iter().all(|(status, _)| status == "processing"),
        "{callbacks:?}"
    );
    assert!(
        progress.windows(2).all(|w| w[0].1 < w[1].1),
        "progress rises, no step twice: {callbacks:?}"
    );
}

const TALK: &str = "Good morning and welcome to the weekly meeting. Today we look at subtitles \
                    for short videos, and at how quickly creators get them.";

#[tokio::test]
async fn a_job_flows_from_the_api_through_the_queue_to_the_runner_and_back() {
    let cloud = Cloud::start().await;
    let receiver = Receiver::start(0).await;
    let runner = cloud.runner("runner", 1);

    let health = cloud
        .http
        .get(format!("{}/health", cloud.api))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "table and queue reachable");

    let video = cloud.speech("talks/morning.wav", TALK).await;
    let job_id = cloud.submit(&video, &receiver.base_url()).await;
    let record = cloud.settled(job_id).await;

    assert_eq!(record.status, JobStatus::Completed);
    assert_eq!(record.delivery, Delivery::Delivered);
    let calls = receiver.calls.lock().unwrap().clone();
    assert!(
        calls.iter().all(|(h, b)| signed_correctly(h, b)),
        "all signed"
    );
    let callbacks = callbacks_of(&receiver, job_id);
    let steps: Vec<u64> = callbacks.iter().map(|(_, p)| *p).collect();
    assert_eq!(steps, [10, 25, 40, 60, 75, 90, 100], "{callbacks:?}");
    assert_clean_sequence(&receiver, job_id);

    let accepted = receiver.accepted();
    let result = &accepted.last().unwrap()["result"];
    let text = result["text"].as_str().unwrap().to_lowercase();
    assert!(
        text.contains("meeting") && text.contains("subtitles"),
        "{text}"
    );
    assert_eq!(result["language"], "en");
    assert_eq!(result["metadata"]["unique_speakers"], 1);

    let job = cloud.job(job_id).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["progress"], 100);
    cloud.queue_drained().await;
    assert_eq!(runner.count("job started"), 1);
}

#[tokio::test]
async fn media_put_through_a_presigned_upload_is_analysed() {
    let cloud = Cloud::start().await;
    let receiver = Receiver::start(0).await;
    let _runner = cloud.runner("runner", 1);

    let response = cloud
        .http
        .post(format!("{}/uploads", cloud.api))
        .json(&json!({"file_name": "../Morning talk.wav"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let slot: Value = response.json().await.unwrap();
    assert_eq!(slot["method"], "PUT");
    let media_url = slot["media_url"].as_str().unwrap();
    let prefix = format!("s3://{}/uploads/", cloud.bucket);
    assert!(
        media_url.starts_with(&prefix) && media_url.ends_with("/Morningtalk.wav"),
        "{slot}"
    );

    // A plain HTTP PUT, as a browser or curl sends it: no AWS client, no credentials.
    let wav = cloud.scratch.path().join("upload.wav");
    speech_wav(&wav, TALK);
    let put = cloud
        .http
        .put(slot["upload_url"].as_str().unwrap())
        .body(std::fs::read(&wav).unwrap())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());

    let job_id = cloud.submit(media_url, &receiver.base_url()).await;
    let record = cloud.settled(job_id).await;
    assert_eq!(
        record.status,
        JobStatus::Completed,
        "{:?}",
        record.error_message
    );
    let accepted = receiver.accepted();
    let text = accepted.last().unwrap()["result"]["text"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(text.contains("meeting"), "{text}");
}

#[tokio::test]
async fn a_runner_killed_mid_job_is_replaced_and_the_job_completes_once() {
    let cloud = Cloud::start().await;
    let receiver = Receiver::start(0).await;
    let long_talk = [TALK; 3].join(" ");
    let video = cloud.speech("talks/long.wav", &long_talk).await;

    let mut first = cloud.runner("first", 1);
    let job_id = cloud.submit(&video, &receiver.base_url()).await;
    wait_for_progress(&receiver, job_id, 60).await;
    first.kill();
    let interrupted = cloud.record(job_id).await;
    assert_eq!(interrupted.status, JobStatus::Processing, "killed mid-job");
    assert_eq!(interrupted.attempt, 1);

    // The message shows up again once its lease runs out (no heartbeat extends it now).
    let second = cloud.runner("second", 1);
    let record = cloud.settled(job_id).await;
    assert_eq!(record.status, JobStatus::Completed);
    assert_eq!(record.delivery, Delivery::Delivered);
    assert_eq!(record.attempt, 2, "the redelivery took the job over");
    assert_eq!(terminal_count(&receiver, job_id), 1);
    assert_clean_sequence(&receiver, job_id);
    assert_eq!(second.count("job started"), 1);
    cloud.queue_drained().await;
}

#[tokio::test]
async fn the_same_message_twice_runs_the_job_once() {
    let cloud = Cloud::start().await;
    let receiver = Receiver::start(0).await;
    let video = cloud.speech("talks/twice.wav", TALK).await;
    // Two workers, so that both copies are leased while the job runs.
    let runner = cloud.runner("runner", 2);

    let job_id = cloud.submit(&video, &receiver.base_url()).await;
    cloud.enqueue_again(job_id).await;
    let record = cloud.settled(job_id).await;
    cloud.queue_drained().await;

    assert_eq!(record.status, JobStatus::Completed);
    assert_eq!(runner.count("job started"), 1, "one run");
    assert_eq!(
        runner.count("another worker owns this job")
            + runner.count("job has ended already; nothing to run"),
        1,
        "the copy was recognised and dropped"
    );
    assert_eq!(terminal_count(&receiver, job_id), 1);
    assert_clean_sequence(&receiver, job_id);
}

#[tokio::test]
async fn two_runners_racing_for_one_job_run_it_once() {
    let cloud = Cloud::start().await;
    let receiver = Receiver::start(0).await;
    let video = cloud.speech("talks/race.wav", TALK).await;
    let runners = [cloud.runner("a", 1), cloud.runner("b", 1)];

    let job_id = cloud.submit(&video, &receiver.base_url()).await;
    cloud.enqueue_again(job_id).await;
    let record = cloud.settled(job_id).await;
    cloud.queue_drained().await;

    assert_eq!(record.status, JobStatus::Completed);
    let started: Vec<usize> = runners.iter().map(|r| r.count("job started")).collect();
    assert_eq!(started.iter().sum::<usize>(), 1, "one winner: {started:?}");
    let lost: usize = runners
        .iter()
        .map(|r| {
            r.count("another worker owns this job")
                + r.count("job has ended already; nothing to run")
        })
        .sum();
    assert_eq!(lost, 1, "the other copy lost the conditional write");
    assert_eq!(terminal_count(&receiver, job_id), 1);
    assert_clean_sequence(&receiver, job_id);
}

#[tokio::test]
async fn a_backend_that_is_down_gets_bounded_retries_and_the_record_says_so() {
    let cloud = Cloud::start().await;
    let video = cloud.speech("talks/down.wav", TALK).await;
    let _runner = cloud.runner("runner", 1);

    // Nothing listens on this port any more.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let unreachable = cloud.submit(&video, &nowhere).await;
    // This one answers, but never with success to a terminal callback.
    let failing = Receiver::start(usize::MAX).await;
    let refused = cloud.submit(&video, &failing.base_url()).await;

    for job_id in [unreachable, refused] {
        let record = cloud.settled(job_id).await;
        assert_eq!(record.status, JobStatus::Completed, "the work is not lost");
        assert_eq!(record.delivery, Delivery::Failed, "the notification failed");
        assert_eq!(cloud.job(job_id).await["status"], "completed");
        // The backend can fetch what it missed.
        let url = format!("{}/jobs/{job_id}/result", cloud.api);
        let missed: Value = cloud
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(missed["status"], "completed", "{missed}");
        let text = missed["result"]["text"].as_str().unwrap_or_default();
        assert!(text.to_lowercase().contains("subtitles"), "{missed}");
    }
    assert_eq!(
        terminal_count(&failing, refused),
        1 + CALLBACK_RETRIES,
        "the first attempt and the configured retries, no more"
    );
    cloud.queue_drained().await;
}

#[tokio::test]
async fn a_missing_s3_object_is_a_download_error_told_once() {
    let cloud = Cloud::start().await;
    let receiver = Receiver::start(0).await;
    let _runner = cloud.runner("runner", 1);

    let missing = format!("s3://{}/talks/nothing-here.mp4", cloud.bucket);
    let job_id = cloud.submit(&missing, &receiver.base_url()).await;
    let record = cloud.settled(job_id).await;

    assert_eq!(record.status, JobStatus::Failed);
    assert_eq!(record.delivery, Delivery::Delivered);
    let failed: Vec<Value> = receiver
        .accepted()
        .into_iter()
        .filter(|c| c["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["error_code"], "DOWNLOAD_ERROR");
    assert_eq!(failed[0]["job_id"], job_id.to_string());
    let job = cloud.job(job_id).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error_code"], "DOWNLOAD_ERROR", "{job}");
    cloud.queue_drained().await;
}

/// The job's single terminal callback, which must be a failure.
fn failed_once(receiver: &Receiver, job_id: JobId) -> Value {
    let terminal: Vec<Value> = receiver
        .accepted()
        .into_iter()
        .filter(|c| c["job_id"] == job_id.to_string() && c["status"] != "processing")
        .collect();
    assert_eq!(terminal.len(), 1, "{terminal:?}");
    assert_eq!(terminal[0]["status"], "failed", "{terminal:?}");
    terminal[0].clone()
}

#[tokio::test]
async fn a_gpu_out_of_memory_moves_the_job_to_the_cpu() {
    let cloud = Cloud::start().await;
    let receiver = Receiver::start(0).await;
    let runner = cloud.runner_with("runner", &[("ECG_FAULTS", "gpu-out-of-memory")]);

    let result = cloud.talk_completes(&receiver).await;
    let text = result["text"].as_str().unwrap().to_lowercase();
    assert!(text.contains("meeting"), "{text}");
    assert_eq!(
        runner.count("Whisper failed on the GPU; retrying on the CPU"),
        1
    );
}

#[tokio::test]
async fn out_of_memory_on_the_gpu_and_then_the_cpu_is_a_gpu_memory_error_told_once() {
    let cloud = Cloud::start().await;
    let receiver = Receiver::start(0).await;
    let _runner = cloud.runner_with(
        "runner",
        &[("ECG_FAULTS", "gpu-out-of-memory,cpu-out-of-memory")],
    );

    let video = cloud.speech("talks/morning.wav", TALK).await;
    let job_id = cloud.submit(&video, &receiver.base_url()).await;
    let record = cloud.settled(job_id).await;

    assert_eq!(record.status, JobStatus::Failed);
    assert_eq!(record.delivery, Delivery::Delivered);
    assert_eq!(
        failed_once(&receiver, job_id)["error_code"],
        "GPU_MEMORY_ERROR"
    );
    assert_eq!(cloud.job(job_id).await["error_code"], "GPU_MEMORY_ERROR");
    cloud.queue_drained().await;
}

/// A model file cut short, as an interrupted copy leaves it.
fn truncated_model(cloud: &Cloud, name: &str) -> String {
    let whole = std::fs::read(model_dir().join("ggml-base-q8_0.bin")).unwrap();
    let path = cloud.scratch.path().join(name);
    std::fs::write(&path, &whole[..whole.len() / 3]).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn a_model_that_fails_to_load_gives_way_to_the_next_configured_one() {
    let cloud = Cloud::start().await;
    let receiver = Receiver::start(0).await;
    let broken = truncated_model(&cloud, "ggml-large-v3.bin");
    let runner = cloud.runner_with(
        "runner",
        &[
            ("ECG_ASR_MODEL", &broken),
            ("ECG_ASR_FALLBACK_MODELS", "base-q8_0"),
        ],
    );
    assert_eq!(runner.count("loaded a fallback Whisper model"), 1);

    let result = cloud.talk_completes(&receiver).await;
    let model = result["metadata"]["model_version"].as_str().unwrap();
    assert!(model.contains("base-q8_0"), "{model}");
}

#[tokio::test]
async fn when_no_configured_model_loads_jobs_fail_with_model_loading_error_told_once() {
    let cloud = Cloud::start().await;
    let receiver = Receiver::start(0).await;
    let broken = truncated_model(&cloud, "ggml-small.bin");
    let also_broken = truncated_model(&cloud, "ggml-tiny.bin");
    let _runner = cloud.runner_with(
        "runner",
        &[
            ("ECG_ASR_MODEL", &broken),
            ("ECG_ASR_FALLBACK_MODELS", &also_broken),
        ],
    );

    let video = cloud.speech("talks/morning.wav", TALK).await;
    let job_id = cloud.submit(&video, &receiver.base_url()).await;
    assert_eq!(cloud.settled(job_id).await.status, JobStatus::Failed);
    let failed = failed_once(&receiver, job_id);
    assert_eq!(failed["error_code"], "MODEL_LOADING_ERROR");
    let job = cloud.job(job_id).await;
    assert_eq!(job["error_code"], "MODEL_LOADING_ERROR", "{job}");
    cloud.queue_drained().await;
}

#[tokio::test]
async fn sigterm_releases_an_unfinished_job_to_another_runner() {
    let cloud = Cloud::start().await;
    let receiver = Receiver::start(0).await;
    let long_talk = [TALK; 3].join(" ");
    let video = cloud.speech("talks/term.wav", &long_talk).await;

    let mut first = cloud.runner("first", 1);
    let job_id = cloud.submit(&video, &receiver.base_url()).await;
    wait_for_progress(&receiver, job_id, 60).await;
    // A one-second grace period is too short for the job: its message is released at once.
    let released_at = Instant::now();
    let exit = first.terminate();
    assert!(exit.success(), "{exit:?}");
    assert_eq!(
        first.count("grace period over; releasing the job for another worker"),
        1
    );
    taken_over_once(&cloud, &receiver, job_id).await;
    eprintln!(
        "released after SIGTERM, completed by another runner {:.1} s later",
        released_at.elapsed().as_secs_f64()
    );
}

/// A request as a stand-in service sees it.
struct Request {
    method: String,
    path: String,
    body: String,
}

/// A stand-in service's answer.
struct Reply {
    status: &'static str,
    /// Header lines besides the length, each ending in CRLF.
    headers: &'static str,
    body: String,
}

/// Serves `answer` on 127.0.0.1 from a thread of its own, one request per connection, as the
/// SDK clients talk to the stand-ins below; the base URL.
fn stand_in(answer: impl Fn(&Request) -> Reply + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let Some(request) = read_request(&stream) else {
                continue;
            };
            let reply = answer(&request);
            let _ = write!(
                &stream,
                "HTTP/1.1 {}\r\n{}content-length: {}\r\nconnection: close\r\n\r\n{}",
                reply.status,
                reply.headers,
                reply.body.len(),
                reply.body
            );
        }
    });
    url
}

/// The request line, the headers up to the blank line and a body of `content-length` bytes.
fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let (method, path) = (words.next()?.to_owned(), words.next()?.to_owned());
    let mut length = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? <= 2 {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        body: String::from_utf8(body).ok()?,
    })
}

/// A stand-in for the EC2 instance metadata service: IMDSv2 session tokens, and the items set
/// with `set` (404 for every other, as on EC2).
struct MetadataService {
    url: String,
    items: Arc<Mutex<BTreeMap<String, String>>>,
}

impl MetadataService {
    fn start() -> Self {
        let items: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
        let served = Arc::clone(&items);
        let url = stand_in(move |request| {
            let item = if request.method == "PUT" && request.path == "/latest/api/token" {
                Some("stand-in-token".to_owned())
            } else {
                served.lock().unwrap().get(&request.path).cloned()
            };
            let (status, body) = match item {
                Some(body) => ("200 OK", body),
                None => ("404 Not Found", String::new()),
            };
            Reply {
                status,
                headers: "x-aws-ec2-metadata-token-ttl-seconds: 21600\r\n",
                body,
            }
        });
        Self { url, items }
    }

    fn set(&self, path: &str, body: &str) {
        self.items
            .lock()
            .unwrap()
            .insert(path.to_owned(), body.to_owned());
    }

    fn interrupt(&self) {
        self.set(
            "/latest/meta-data/spot/instance-action",
            r#"{"action": "terminate", "time": "2026-12-04T12:00:00Z"}"#,
        );
    }

    /// Makes this instance `INSTANCE_ID` of the Auto Scaling group `GROUP`, its tags exposed.
    fn join_group(&self) {
        self.set("/latest/meta-data/instance-id", INSTANCE_ID);
        self.set(
            "/latest/meta-data/tags/instance/aws:autoscaling:groupName",
            GROUP,
        );
    }

    /// The group begins to terminate the instance (its lifecycle hook holds it meanwhile).
    fn scale_in(&self) {
        self.set(
            "/latest/meta-data/autoscaling/target-lifecycle-state",
            "Terminated",
        );
    }
}

/// An instance of `GROUP` (its metadata service) and the Auto Scaling stand-in its runner calls.
fn group_instance(refuse: bool) -> (MetadataService, AutoScalingService) {
    let metadata = MetadataService::start();
    metadata.join_group();
    (metadata, AutoScalingService::start(refuse))
}

const GROUP: &str = "ecg-runners";
const INSTANCE_ID: &str = "i-0a1b2c3d4e5f60718";

/// A stand-in for Auto Scaling (moto has no `CompleteLifecycleAction`): it records the
/// parameters of every AWS Query request and answers `CompleteLifecycleAction` with the
/// service's response, or, when `refuse` is set, with the error the service gives when no
/// lifecycle action is pending.
struct AutoScalingService {
    url: String,
    requests: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
}

impl AutoScalingService {
    fn start(refuse: bool) -> Self {
        let requests: Arc<Mutex<Vec<BTreeMap<String, String>>>> = Arc::default();
        let recorded = Arc::clone(&requests);
        let url = stand_in(move |request| {
            let params: BTreeMap<String, String> =
                url::form_urlencoded::parse(request.body.as_bytes())
                    .into_owned()
                    .collect();
            let action = params.get("Action").cloned().unwrap_or_default();
            recorded.lock().unwrap().push(params);
            let (status, body) = if refuse || action != "CompleteLifecycleAction" {
                let message =
                    format!("No active Lifecycle Action found with instance ID {INSTANCE_ID}");
                (
                    "400 Bad Request",
                    format!(
                        "<ErrorResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\">\
                     <Error><Type>Sender</Type><Code>ValidationError</Code>\
                     <Message>{message}</Message></Error>\
                     <RequestId>a1b2c3d4-0000-4000-8000-000000000001</RequestId></ErrorResponse>"
                    ),
                )
            } else {
                (
                    "200 OK",
                    "<CompleteLifecycleActionResponse \
                     xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\">\
                     <CompleteLifecycleActionResult/><ResponseMetadata>\
                     <RequestId>a1b2c3d4-0000-4000-8000-000000000002</RequestId>\
                     </ResponseMetadata></CompleteLifecycleActionResponse>"
                        .to_owned(),
                )
            };
            Reply {
                status,
                headers: "content-type: text/xml\r\n",
                body,
            }
        });
        Self { url, requests }
    }

    /// The variables that point a runner's Auto Scaling client here (its other clients stay on
    /// moto).
    fn env(&self) -> [(&'static str, &str); 1] {
        [("AWS_ENDPOINT_URL_AUTO_SCALING", &self.url)]
    }

    /// The one request received, which must complete this instance's lifecycle action.
    fn completed_once(&self) {
        let requests = self.requests.lock().unwrap().clone();
        let expected: BTreeMap<String, String> = [
            ("Action", "CompleteLifecycleAction"),
            ("Version", "2011-01-01"),
            ("AutoScalingGroupName", GROUP),
            ("LifecycleHookName", "drain"),
            ("InstanceId", INSTANCE_ID),
            ("LifecycleActionResult", "CONTINUE"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(requests, [expected]);
    }
}

#[tokio::test]
async fn each_notice_is_read_from_the_metadata_service() {
    let metadata = MetadataService::start();
    let notices = InstanceNotices::new(&metadata.url).unwrap();
    let lifecycle = "/latest/meta-data/autoscaling/target-lifecycle-state";
    metadata.set(lifecycle, "InService");
    assert_eq!(notices.check().await.unwrap(), None);
    metadata.set(lifecycle, "Terminated");
    assert_eq!(notices.check().await.unwrap(), Some(Notice::Terminating));
    metadata.set(
        "/latest/meta-data/events/recommendations/rebalance",
        r#"{"noticeTime": "2026-12-04T11:58:00Z"}"#,
    );
    assert_eq!(notices.check().await.unwrap(), Some(Notice::Rebalance));
    metadata.interrupt();
    assert_eq!(
        notices.check().await.unwrap(),
        Some(Notice::SpotInterruption)
    );
}

#[tokio::test]
async fn a_spot_interruption_notice_hands_the_job_to_another_runner() {
    let cloud = Cloud::start().await;
    let receiver = Receiver::start(0).await;
    let metadata = MetadataService::start();
    let long_talk = [TALK; 3].join(" ");
    let video = cloud.speech("talks/spot.wav", &long_talk).await;

    let mut first = cloud.runner_on_instance("first", &metadata.url, &[]);
    let job_id = cloud.submit(&video, &receiver.base_url()).await;
    wait_for_progress(&receiver, job_id, 60).await;
    // No signal: the notice alone stops the runner, and the job it cannot finish in its
    // one-second grace goes back to the queue.
    metadata.interrupt();
    let exit = first.exit();
    assert!(exit.success(), "{exit:?}");
    assert_eq!(first.count("instance notice: finishing in-flight work"), 1);
    assert_eq!(
        first.count("grace period over; releasing the job for another worker"),
        1
    );
    taken_over_once(&cloud, &receiver, job_id).await;
}

/// A job a runner handed back is queued again with the progress the backend has seen, and a
/// second runner completes it, the backend told once.
async fn taken_over_once(cloud: &Cloud, receiver: &Receiver, job_id: JobId) {
    let released = cloud.record(job_id).await;
    assert_eq!(released.status, JobStatus::Queued);
    assert!(released.progress >= 60, "{}", released.progress);

    let _second = cloud.runner("second", 1);
    let record = cloud.settled(job_id).await;
    assert_eq!(record.status, JobStatus::Completed);
    assert_eq!(terminal_count(receiver, job_id), 1);
    assert_clean_sequence(receiver, job_id);
    cloud.queue_drained().await;
}

#[tokio::test]
async fn a_scale_in_ends_the_termination_wait_once_the_job_is_back_in_the_queue() {
    let cloud = Cloud::start().await;
    let receiver = Receiver::start(0).await;
    let (metadata, auto_scaling) = group_instance(false);
    let long_talk = [TALK; 3].join(" ");
    let video = cloud.speech("talks/scale-in.wav", &long_talk).await;

    let mut first = cloud.runner_on_instance("first", &metadata.url, &auto_scaling.env());
    let job_id = cloud.submit(&video, &receiver.base_url()).await;
    wait_for_progress(&receiver, job_id, 60).await;
    assert!(auto_scaling.requests.lock().unwrap().is_empty());
    metadata.scale_in();
    let exit = first.exit();
    assert!(exit.success(), "{exit:?}");
    auto_scaling.completed_once();
    // Only once the job is back in the queue may the instance go.
    let messages = log_messages(&first.log);
    let position = |message: &str| messages.iter().position(|m| m == message);
    let released = position("grace period over; releasing the job for another worker");
    let completed = position("lifecycle action completed: the instance may go");
    assert!(released.is_some() && completed > released, "{messages:#?}");
    taken_over_once(&cloud, &receiver, job_id).await;
}

// Two threads: the receiver takes the terminal callback while the test waits for the exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_lifecycle_action_is_a_warning_after_a_job_finished_on_sigterm() {
    let cloud = Cloud::start().await;
    let receiver = Receiver::start(0).await;
    let (metadata, auto_scaling) = group_instance(true);
    let video = cloud.speech("talks/refused.wav", TALK).await;

    // A grace long enough for the job: SIGTERM lets it finish here.
    let env = [auto_scaling.env()[0], ("ECG_SHUTDOWN_GRACE_SECS", "120")];
    let mut runner = cloud.runner_on_instance("runner", &metadata.url, &env);
    let job_id = cloud.submit(&video, &receiver.base_url()).await;
    wait_for_progress(&receiver, job_id, 40).await;
    assert_eq!(terminal_count(&receiver, job_id), 0, "the job is in flight");
    let exit = runner.terminate();

    assert!(exit.success(), "{exit:?}");
    assert_eq!(
        auto_scaling.requests.lock().unwrap().len(),
        1,
        "not retried"
    );
    assert_eq!(
        runner
            .count("cannot complete the lifecycle action; the instance goes at the hook's timeout"),
        1
    );
    let record = cloud.settled(job_id).await;
    assert_eq!(record.status, JobStatus::Completed);
    assert_eq!(record.delivery, Delivery::Delivered);
    assert_eq!(terminal_count(&receiver, job_id), 1);
    assert_clean_sequence(&receiver, job_id);
    cloud.queue_drained().await;
}
