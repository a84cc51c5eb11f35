//! The `ecg-api` binary served locally (as outside Lambda) against a moto server: a submitted job
//! lands in DynamoDB and on SQS, and `/health` tells whether the table is there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] fns: a failure should panic"
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ecg_aws::AwsConfig;
use ecg_aws::testing::Moto;
use ecg_core::job::{JobId, JobStatus};
use ecg_core::ports::{JobQueue, JobStore};
use serde_json::{Value, json};

/// The running binary, killed on drop.
struct Api {
    child: Child,
    base: String,
}

impl Api {
    fn start(moto: &Moto, config: &AwsConfig) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ecg-api"))
            .envs(moto.env())
            .env("ECG_JOBS_TABLE", &config.jobs_table)
            .env("ECG_QUEUE_URL", &config.queue_url)
            .env_remove("ECG_MEDIA_BUCKET")
            .envs(config.media_bucket.iter().map(|b| ("ECG_MEDIA_BUCKET", b)))
            .env("PORT", "0")
            .env("RUST_LOG", "warn")
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot start ecg-api");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("no output from ecg-api");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from ecg-api: {line:?}"))
            .to_owned();
        Self { child, base }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = reqwest::Client::new().request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_submitted_job_is_stored_queued_and_reported() {
    let moto = Moto::start().await;
    let clients = moto.clients().await;
    let config = moto.create_resources(&clients, 3).await;
    let api = Api::start(&moto, &config);
    let id = JobId::new();

    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/api/upload-video/process-video",
            Some(json!({"job_id": id.to_string(), "video_url": "s3://media/in/video.mp4", "language": "ko"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "processing");
    assert_eq!(body["status_url"], format!("/jobs/{id}"));

    let stored = config
        .job_store(&clients)
        .get(id)
        .await
        .unwrap()
        .expect("an item in DynamoDB");
    assert_eq!(stored.status, JobStatus::Queued);
    let lease = config
        .job_queue(&clients, Some(Duration::from_secs(30)))
        .lease(Duration::from_secs(2))
        .await
        .unwrap()
        .expect("a message on SQS");
    assert_eq!(lease.message.job_id, id);

    let (status, body) = api
        .call(reqwest::Method::GET, &format!("/jobs/{id}"), None)
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("queued")),
        "{body}"
    );

    let (status, body) = api.call(reqwest::Method::GET, "/health", None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("healthy")),
        "{body}"
    );
    assert_eq!(body["checks"], json!({"job_store": "ok", "queue": "ok"}));

    // Without a media bucket there is nowhere to upload to.
    let (status, _) = api.call(reqwest::Method::POST, "/uploads", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn uploads_are_presigned_puts_into_the_media_bucket() {
    let moto = Moto::start().await;
    let clients = moto.clients().await;
    let bucket = moto.create_bucket(&clients).await;
    let config = AwsConfig {
        media_bucket: Some(bucket.clone()),
        ..moto.create_resources(&clients, 3).await
    };
    let api = Api::start(&moto, &config);

    let (status, slot) = api.call(reqwest::Method::POST, "/uploads", None).await;
    assert_eq!(status, 200, "{slot}");
    let media_url = slot["media_url"].as_str().unwrap();
    let key = media_url
        .strip_prefix(&format!("s3://{bucket}/"))
        .expect("in the media bucket");
    assert!(
        key.starts_with("uploads/") && key.ends_with("/media"),
        "{key}"
    );
    assert_eq!(slot["expires_in"], 3600);

    let bytes = vec![42u8; 123_456];
    let put = reqwest::Client::new()
        .put(slot["upload_url"].as_str().unwrap())
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let stored = clients
        .s3
        .get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let body = stored.body.collect().await.unwrap().into_bytes();
    assert_eq!(body.as_ref(), bytes.as_slice());
}

#[tokio::test]
async fn health_is_503_without_the_table() {
    let moto = Moto::start().await;
    let clients = moto.clients().await;
    let mut config = moto.create_resources(&clients, 3).await;
    config.jobs_table = "no-such-table".into();
    let api = Api::start(&moto, &config);

    let (status, body) = api.call(reqwest::Method::GET, "/health", None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (503, Some("unhealthy")),
        "{body}"
    );
    let reason = body["checks"]["job_store"].as_str().unwrap();
    assert!(reason.contains("ResourceNotFound"), "{reason}");
    assert_eq!(body["checks"]["queue"], "ok");
}
