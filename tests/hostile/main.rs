//! Hostile input against the real `ecg serve`, over HTTP on 127.0.0.1 only. Every case asserts the
//! exact answer (status and field, or the job's error code) and that `/health` is still healthy
//! after it; the suite prints one line per case.
//!
//! Two servers: one as deployed (`ECG_ALLOW_LOCAL_URLS=false`, a bearer token, a callback
//! allow-list), where every hostile URL is refused before any connection is made, so non-local
//! URLs in requests send no traffic anywhere; and one with local URLs allowed, fed by hostile
//! media servers on 127.0.0.1.

// Helpers panic on purpose: in a test, a broken fixture is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod media;
mod servers;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{Receiver, Server, signed_correctly, wait_for_end};
use servers::Raw;

const TOKEN: &str = "hostile-suite-token-0123456789";
const PROCESS: &str = "/api/upload-video/process-video";
const JOB_LIMIT: Duration = Duration::from_secs(180);

fn new_job_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Collects the outcome of every case; fails the test at the end if any case failed.
struct Suite {
    name: &'static str,
    base: String,
    /// Sends the bearer token when the server has one.
    client: reqwest::Client,
    results: Vec<(String, Result<String, String>)>,
}

impl Suite {
    fn new(name: &'static str, server: &Server, token: Option<&str>) -> Self {
        let mut headers = HeaderMap::new();
        if let Some(token) = token {
            let bearer = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
            headers.insert(AUTHORIZATION, bearer);
        }
        Self {
            name,
            base: server.base.clone(),
            client: reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .unwrap(),
            results: Vec::new(),
        }
    }

    /// Posts `body` as is, with the token or (`client` given) without it.
    async fn post(
        &self,
        client: Option<&reqwest::Client>,
        path: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let response = client
            .unwrap_or(&self.client)
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn healthy(&self) -> Result<(), String> {
        let response = reqwest::get(format!("{}/health", self.base))
            .await
            .map_err(|e| format!("/health unreachable: {e}"))?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status == 200 && body["status"] == "healthy" {
            Ok(())
        } else {
            Err(format!("/health answered {status} {body}"))
        }
    }

    /// Records a case, with the health check that follows every case.
    async fn record(&mut self, case: &str, outcome: Result<String, String>) {
        let outcome = match (outcome, self.healthy().await) {
            (Ok(seen), Ok(())) => Ok(format!("{seen}; healthy after")),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        };
        let line = match &outcome {
            Ok(seen) => format!("ok    {case}: {seen}"),
            Err(why) => format!("FAIL  {case}: {why}"),
        };
        println!("[{}] {line}", self.name);
        self.results.push((case.to_owned(), outcome));
    }

    /// A request that must be answered `status`, naming `field` when given.
    async fn refused(
        &mut self,
        case: &str,
        (path, body): Request,
        status: u16,
        field: Option<&str>,
    ) {
        let (got, answer) = self.post(None, path, body).await;
        let outcome = if got == status && field.is_none_or(|f| answer["field"] == f) {
            Ok(format!("{got} {}", answer["field"].as_str().unwrap_or("")))
        } else {
            Err(format!("expected {status} {field:?}, got {got} {answer}"))
        };
        self.record(case, outcome).await;
    }

    /// Posts an oversized body (with the token) on a connection of its own; the answer's status.
    /// The server answers 413 once it has read 64 KiB and hangs up on the rest, so a client
    /// still writing the body gets a broken pipe before it reads the answer (reqwest does):
    /// here the body is written while the answer is read, and write errors are expected.
    async fn status_of_oversized(&self, body: &[u8]) -> u16 {
        let addr = self.base.trim_start_matches("http://");
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let head = format!(
            "POST {PROCESS} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let request = [head.as_bytes(), body].concat();
        let writing = tokio::spawn(async move { writer.write_all(&request).await });
        let mut answer = Vec::new();
        let _ = reader.read_to_end(&mut answer).await;
        writing.abort();
        let answer = String::from_utf8_lossy(&answer);
        answer
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"))
    }

    fn finish(self) {
        let failed: Vec<_> = self
            .results
            .iter()
            .filter(|(_, outcome)| outcome.is_err())
            .collect();
        println!(
            "[{}] {} cases, {} failed",
            self.name,
            self.results.len(),
            failed.len()
        );
        assert!(failed.is_empty(), "failed cases: {failed:#?}");
    }
}

/// A process-video body with `video_url` and the given fields added.
fn submission(video_url: &str, extra: &Value) -> Vec<u8> {
    let mut body = json!({"job_id": new_job_id(), "video_url": video_url});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body.to_string().into_bytes()
}

/// A path and the body posted to it.
type Request = (&'static str, Vec<u8>);

/// A process-video body (from S3, which nothing here can reach) with one field set to `value`.
fn with(field: &str, value: Value) -> Request {
    let mut body = json!({"job_id": new_job_id(), "video_url": "s3://media/v.mp4"});
    body[field] = value;
    (PROCESS, body.to_string().into_bytes())
}

fn video(url: &str) -> Request {
    (PROCESS, submission(url, &json!({})))
}

/// The deployed configuration: nothing local, a token, callbacks only to `backend.example`.
/// Every request here is refused before any connection; the one accepted job reads from S3,
/// which this server cannot reach either, so nothing leaves the machine.
#[tokio::test]
async fn requests_are_refused_before_anything_is_fetched() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        data.path(),
        &[
            ("ECG_ALLOW_LOCAL_URLS", "false"),
            ("ECG_API_TOKEN", TOKEN),
            ("ECG_CALLBACK_ALLOWED_HOSTS", "backend.example"),
        ],
    );
    let mut suite = Suite::new("requests", &server, Some(TOKEN));
    let anonymous = reqwest::Client::new();
    let no_token = (PROCESS, submission("s3://media/v.mp4", &json!({})));

    for (case, client) in [
        ("no bearer token", anonymous.clone()),
        (
            "wrong bearer token",
            reqwest::Client::builder()
                .default_headers(HeaderMap::from_iter([(
                    AUTHORIZATION,
                    HeaderValue::from_static("Bearer hostile-suite-token-0123456780"),
                )]))
                .build()
                .unwrap(),
        ),
    ] {
        let (status, body) = suite
            .post(Some(&client), no_token.0, no_token.1.clone())
            .await;
        let outcome = if status == 401 && body["error"] == "unauthorized" {
            Ok("401 unauthorized".to_owned())
        } else {
            Err(format!("expected 401, got {status} {body}"))
        };
        suite.record(case, outcome).await;
    }
    let status = anonymous
        .get(format!("{}/jobs/{}", suite.base, new_job_id()))
        .send()
        .await
        .unwrap()
        .status();
    let outcome = (status == 401)
        .then(|| "401".to_owned())
        .ok_or(format!("GET /jobs without a token: {status}"));
    suite.record("job status without a token", outcome).await;

    let cases: Vec<(&str, Request, u16, Option<&str>)> = vec![
        ("bad UUID", with("job_id", json!("550e8400-e29b-41d4-a716")), 422, Some("job_id")),
        ("job_id of 1000 digits", with("job_id", json!("1".repeat(1000))), 422, Some("job_id")),
        ("unknown language", with("language", json!("fr")), 422, Some("language")),
        ("max_workers 0", with("max_workers", json!(0)), 422, Some("max_workers")),
        ("max_workers 17", with("max_workers", json!(17)), 422, Some("max_workers")),
        ("max_workers -1", with("max_workers", json!(-1)), 422, Some("max_workers")),
        ("max_workers 2^64", (PROCESS, br#"{"job_id":"550e8400-e29b-41d4-a716-446655440000","video_url":"s3://m/v.mp4","max_workers":18446744073709551616}"#.to_vec()), 422, Some("max_workers")),
        ("max_workers 2.5", with("max_workers", json!(2.5)), 422, Some("max_workers")),
        ("job_id of type number", with("job_id", json!(42)), 422, Some("job_id")),
        ("video_url of type array", with("video_url", json!(["s3://m/v.mp4"])), 422, Some("video_url")),
        ("enable_gpu of type string", with("enable_gpu", json!("yes")), 422, Some("enable_gpu")),
        ("emotion_detection of type number", with("emotion_detection", json!(1)), 422, Some("emotion_detection")),
        ("language of type object", with("language", json!({"code": "ko"})), 422, Some("language")),
        ("fastapi_base_url of type bool", with("fastapi_base_url", json!(true)), 422, Some("fastapi_base_url")),
        ("body is an array", (PROCESS, b"[1,2,3]".to_vec()), 422, Some("body")),
        ("body is not JSON", (PROCESS, b"{\"job_id\": ".to_vec()), 400, Some("body")),
        ("JSON nested 10000 deep under 64 KiB", (PROCESS, format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes()), 400, Some("body")),
        ("zero-width space in job_id", with("job_id", json!("550e8400-e29b-41d4-a716-44665544\u{200b}0000")), 422, Some("job_id")),
        ("NUL in video_url", video("https://media.example/v\u{0}.mp4"), 422, Some("video_url")),
        ("newline in fastapi_base_url", with("fastapi_base_url", json!("https://backend.example/\nX-Injected: 1")), 422, Some("fastapi_base_url")),
        ("right-to-left override in language", with("language", json!("k\u{202e}o")), 422, Some("language")),
        ("escape sequence in video_url", video("https://media.example/\u{1b}[2J.mp4"), 422, Some("video_url")),
        ("file:// URL", video("file:///etc/passwd"), 422, Some("video_url")),
        ("ftp:// URL", video("ftp://media.example/v.mp4"), 422, Some("video_url")),
        ("gopher:// URL", video("gopher://media.example:70/_x"), 422, Some("video_url")),
        ("local path", video("/etc/passwd"), 422, Some("video_url")),
        ("credentials in video_url", video("https://user:secret@media.example/v.mp4"), 422, Some("video_url")),
        ("credentials in fastapi_base_url", with("fastapi_base_url", json!("https://user:secret@backend.example")), 422, Some("fastapi_base_url")),
        ("plain http", video("http://media.example/v.mp4"), 422, Some("video_url")),
        ("loopback IP", video("https://127.0.0.1/v.mp4"), 422, Some("video_url")),
        ("loopback as a decimal number", video("https://2130706433/v.mp4"), 422, Some("video_url")),
        ("localhost", video("https://localhost/v.mp4"), 422, Some("video_url")),
        ("private IP 10/8", video("https://10.0.0.8/v.mp4"), 422, Some("video_url")),
        ("private IP 192.168/16", video("https://192.168.1.1/v.mp4"), 422, Some("video_url")),
        ("IPv6 loopback", video("https://[::1]/v.mp4"), 422, Some("video_url")),
        ("IPv6 unique-local", video("https://[fd12::1]/v.mp4"), 422, Some("video_url")),
        ("metadata IP 169.254.169.254", video("https://169.254.169.254/latest/meta-data/"), 422, Some("video_url")),
        ("metadata IP fd00:ec2::254", video("https://[fd00:ec2::254]/latest/meta-data/"), 422, Some("video_url")),
        ("metadata IP as a callback", with("fastapi_base_url", json!("https://169.254.169.254")), 422, Some("fastapi_base_url")),
        ("callback host off the allow-list", with("fastapi_base_url", json!("https://evil.example")), 422, Some("fastapi_base_url")),
        ("callback host that only ends like an allowed one", with("fastapi_base_url", json!("https://backend.example.evil.example")), 422, Some("fastapi_base_url")),
        ("/transcribe with a file:// audio_path", ("/transcribe", json!({"audio_path": "file:///etc/shadow"}).to_string().into_bytes()), 422, Some("audio_path")),
    ];
    for (case, request, status, field) in cases {
        suite.refused(case, request, status, field).await;
    }
    for (case, body) in [
        (
            "10 MB JSON body",
            submission("s3://m/v.mp4", &json!({"padding": "x".repeat(10_000_000)})),
        ),
        (
            "JSON nested 100000 deep (200 KB)",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        ),
    ] {
        let outcome = match suite.status_of_oversized(&body).await {
            413 => Ok("413".to_owned()),
            other => Err(format!("expected 413, got {other}")),
        };
        suite.record(case, outcome).await;
    }
    let status = suite
        .client
        .get(format!("{}/jobs/..%2F..%2Fetc%2Fpasswd", suite.base))
        .send()
        .await
        .unwrap()
        .status();
    let outcome = (status == 422)
        .then(|| "422 job_id".to_owned())
        .ok_or(format!("path traversal as a job id: {status}"));
    suite.record("path traversal as a job id", outcome).await;

    // The control: a valid request with the token is accepted, and fails without any traffic.
    let job_id = new_job_id();
    let body = json!({"job_id": job_id, "video_url": "s3://media/v.mp4"});
    let (status, _) = suite
        .post(None, PROCESS, body.to_string().into_bytes())
        .await;
    let job = wait_for_end(&suite.client, &suite.base, &job_id, JOB_LIMIT).await;
    let outcome = if status == 200 && job["error_code"] == "DOWNLOAD_ERROR" {
        Ok("200, then DOWNLOAD_ERROR (no S3 adapter here)".to_owned())
    } else {
        Err(format!("{status} then {job}"))
    };
    suite.record("valid request with the token", outcome).await;
    suite.finish();
}

/// What a job must come to.
enum Expect {
    Failed(&'static str, &'static str),
    Completed,
}

/// Local URLs allowed (the hostile servers are on 127.0.0.1), short timeouts and limits so the
/// cases run in seconds. Every job must end as expected, its backend must get exactly one
/// terminal callback saying so, and no downloaded file may be left behind.
#[tokio::test]
async fn hostile_media_ends_in_the_matching_error_code() {
    let files = tempfile::tempdir().unwrap();
    media::generate(files.path());
    let scripted = servers::scripted(files.path().to_path_buf()).await;
    let receiver = Receiver::start(0).await;
    let scratch = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_in(
        data.path(),
        scratch.path(),
        &[
            ("ECG_WORKERS", "2"),
            ("ECG_DOWNLOAD_RETRIES", "1"),
            ("ECG_DOWNLOAD_STALL_SECS", "1"),
            ("ECG_DOWNLOAD_TIMEOUT_SECS", "20"),
            ("ECG_MAX_DOWNLOAD_BYTES", "50000000"),
            ("ECG_MAX_MEDIA_SECONDS", "600"),
            ("ECG_CALLBACK_ALLOWED_HOSTS", "127.0.0.1"),
        ],
    );
    let mut suite = Suite::new("media", &server, None);
    let file = |name: &str| {
        let mut url = url::Url::parse(&format!("{scripted}/files")).unwrap();
        url.path_segments_mut().unwrap().push(name);
        url.to_string()
    };
    let at = |path: &str| format!("{scripted}{path}");
    let redirect = |to: &str| {
        let mut url = url::Url::parse(&at("/redirect")).unwrap();
        url.query_pairs_mut().append_pair("location", to);
        url.to_string()
    };
    use Expect::{Completed, Failed};
    const DOWNLOAD: &str = "DOWNLOAD_ERROR";
    const AUDIO: &str = "AUDIO_EXTRACTION_ERROR";
    let cases: Vec<(&str, String, Expect)> = vec![
        ("404", at("/status/404"), Failed(DOWNLOAD, "404 Not Found")),
        ("403", at("/status/403"), Failed(DOWNLOAD, "403 Forbidden")),
        ("410", at("/status/410"), Failed(DOWNLOAD, "410 Gone")),
        ("500 then success", at("/flaky/silence.wav"), Completed),
        (
            "500 every time",
            at("/status/500"),
            Failed(DOWNLOAD, "after 2 attempts"),
        ),
        (
            "HTML page instead of media",
            at("/page.mp4"),
            Failed(AUDIO, "not a recognised media file"),
        ),
        ("zero-byte file", file("empty.mp4"), Failed(AUDIO, "empty")),
        (
            "truncated mp4",
            file("truncated.mp4"),
            Failed(AUDIO, "damaged or incomplete"),
        ),
        (
            "mp4 with no audio track",
            file("no-audio.mp4"),
            Failed(AUDIO, "no audio track"),
        ),
        (
            "video-only mkv",
            file("video-only.mkv"),
            Failed(AUDIO, "no audio track"),
        ),
        (
            "corrupt AAC frames in mp4",
            file("corrupt-aac.mp4"),
            Failed(AUDIO, "aac"),
        ),
        (
            "corrupt ADTS AAC frames",
            file("corrupt.aac"),
            Failed(AUDIO, "aac"),
        ),
        (
            "20 min of silence, length stated (limit 10 min)",
            file("long-silence.mp3"),
            Failed(AUDIO, "over the limit of 600 s"),
        ),
        (
            "20 min of silence, length unstated (limit 10 min)",
            file("long-silence.mkv"),
            Failed(AUDIO, "longer than the limit of 600 s"),
        ),
        (
            "Content-Length lying",
            servers::raw(Raw::LyingLength).await,
            Failed(DOWNLOAD, "body"),
        ),
        (
            "Content-Length of 10 TB",
            servers::raw(Raw::HugeLength).await,
            Failed(DOWNLOAD, "over the limit of 50000000 bytes"),
        ),
        (
            "endless body without a length",
            servers::raw(Raw::Endless).await,
            Failed(DOWNLOAD, "grew past the limit"),
        ),
        (
            "slow-drip server (stall timeout 1 s)",
            servers::raw(Raw::Drip).await,
            Failed(DOWNLOAD, "nothing received for 1s"),
        ),
        (
            "redirect loop",
            at("/loop/a"),
            Failed(DOWNLOAD, "redirect loop"),
        ),
        (
            "endless redirect chain",
            at("/hops/0"),
            Failed(DOWNLOAD, "more than 5 redirects"),
        ),
        (
            "redirect to the metadata IP",
            redirect("http://169.254.169.254/latest/meta-data/iam/"),
            Failed(DOWNLOAD, "cloud metadata address"),
        ),
        (
            "redirect to the IPv6 metadata IP",
            redirect("http://[fd00:ec2::254]/latest/"),
            Failed(DOWNLOAD, "cloud metadata address"),
        ),
        (
            "redirect to file://",
            redirect("file:///etc/passwd"),
            Failed(DOWNLOAD, "307 Temporary Redirect"),
        ),
        (
            "redirect to ftp://",
            redirect("ftp://127.0.0.1/v.mp4"),
            Failed(DOWNLOAD, "not http(s)"),
        ),
        (
            "local path that does not exist",
            "/nonexistent/v.mp4".to_owned(),
            Failed(DOWNLOAD, "file not found"),
        ),
        (
            "local path of a directory",
            "/etc".to_owned(),
            Failed(DOWNLOAD, "not a regular file"),
        ),
        ("unicode file name", file("목소리 ✓.wav"), Completed),
    ];

    let mut jobs = Vec::new();
    for (case, url, expect) in cases {
        let job_id = new_job_id();
        let body = json!({"job_id": job_id, "video_url": url, "fastapi_base_url": receiver.base_url(),
                          "emotion_detection": false});
        let (status, answer) = suite
            .post(None, PROCESS, body.to_string().into_bytes())
            .await;
        assert_eq!(status, 200, "{case}: {answer}");
        jobs.push((case, job_id, expect));
    }
    for (case, job_id, expect) in &jobs {
        let job = wait_for_end(&suite.client, &suite.base, job_id, JOB_LIMIT).await;
        let message = job["error_message"].as_str().unwrap_or_default();
        let outcome = match expect {
            Completed if job["status"] == "completed" => Ok("completed".to_owned()),
            Failed(code, says) if job["error_code"] == *code && message.contains(says) => {
                Ok(format!("{code}: {message}"))
            }
            Completed => Err(format!("expected completed, got {job}")),
            Failed(code, says) => Err(format!("expected {code} saying {says:?}, got {job}")),
        };
        suite.record(case, outcome).await;
    }

    // The metadata address is refused in the request even here; so is a callback host off the list.
    let cases = [
        (
            "metadata URL with local URLs allowed",
            video("http://169.254.169.254/latest/meta-data/"),
            "video_url",
        ),
        (
            "callback to localhost, off the allow-list",
            with("fastapi_base_url", json!("http://localhost:9")),
            "fastapi_base_url",
        ),
    ];
    for (case, request, field) in cases {
        suite.refused(case, request, 422, Some(field)).await;
    }

    // Each backend got one terminal callback per job, matching the job, every callback signed.
    common::wait_for_callbacks(&receiver, jobs.len(), Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = receiver.calls.lock().unwrap().clone();
    let unsigned = calls
        .iter()
        .filter(|(h, b)| !signed_correctly(h, b))
        .count();
    let accepted = receiver.accepted();
    for (case, job_id, expect) in &jobs {
        let terminal: Vec<&Value> = accepted
            .iter()
            .filter(|c| c["job_id"] == job_id.as_str() && c["status"] != "processing")
            .collect();
        let outcome = match (terminal.as_slice(), expect) {
            ([one], Completed) if one["status"] == "completed" => Ok("completed".to_owned()),
            ([one], Failed(code, _)) if one["error_code"] == *code => Ok((*code).to_owned()),
            _ => Err(format!("terminal callbacks: {terminal:?}")),
        };
        suite.record(&format!("{case}: callback"), outcome).await;
    }
    let left = common::job_dirs(scratch.path());
    let outcome = if left.is_empty() && unsigned == 0 {
        Ok(format!("{} callbacks signed, no job dir left", calls.len()))
    } else {
        Err(format!(
            "{unsigned} unsigned callbacks; left behind: {left:?}"
        ))
    };
    suite
        .record("scratch dir empty, callbacks signed", outcome)
        .await;
    suite.finish();
}

/// `ecg serve` with `env`: its exit status and stderr, when it refuses to start.
fn refuses_to_start(env: &[(&str, &str)]) -> String {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ecg"))
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(data.path())
        .env("ECG_MODEL_DIR", Path::new("/nonexistent"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!output.status.success(), "it started with {env:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn unsafe_settings_stop_the_server_before_it_starts() {
    let stderr = refuses_to_start(&[
        ("ECG_CALLBACK_ALLOWED_HOSTS", "backend.example"),
        ("BACKEND_URL", "https://evil.example"),
    ]);
    assert!(stderr.contains("BACKEND_URL"), "{stderr}");
    let stderr = refuses_to_start(&[("ECG_API_TOKEN", "short")]);
    assert!(stderr.contains("ECG_API_TOKEN"), "{stderr}");
    assert!(
        !stderr.contains("short"),
        "the token is not echoed: {stderr}"
    );
    let stderr = refuses_to_start(&[("ECG_CALLBACK_ALLOWED_HOSTS", "https://backend.example")]);
    assert!(stderr.contains("callback-allowed-hosts"), "{stderr}");
}
