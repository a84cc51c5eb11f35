//! Fixtures on 127.0.0.1 for black-box tests: a backend that records (and checks the signatures
//! of) callbacks, a media server, speech made with espeak-ng, the real recordings `make testdata`
//! provisions, waits with limits, and scripts run with the project's Python. Shared by the root package's suites (e2e, hostile input,
//! load, real speech), the diarization tests and the GPU runner's AWS flow tests.
//! Failures panic: in a test, a broken fixture is a failed test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The callback secret the services under test are started with.
pub const SECRET: &str = "test-callback-secret";

/// The workspace's model directory, where `make models` puts them.
pub fn model_dir() -> PathBuf {
    std::env::var_os("ECG_MODEL_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"),
        PathBuf::from,
    )
}

/// The real recordings `make testdata` provisions: `ECG_TESTDATA_DIR`, else `<workspace>/testdata`.
/// Missing data fails the test (it never skips).
pub fn testdata_dir() -> PathBuf {
    let dir = std::env::var_os("ECG_TESTDATA_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata"),
        PathBuf::from,
    );
    assert!(
        dir.join("MANIFEST").is_file(),
        "{} has no test data: run `make testdata` (or point ECG_TESTDATA_DIR at it)",
        dir.display()
    );
    dir
}

/// One real reader's telephone prompts with the texts read, from `make testdata`: Allison's
/// (`voices/allison/*.wav`, 8 kHz as shipped, and the listing `voices/allison.txt`), in name
/// order. Only plain sentences of `min_words` or more: no tone descriptions, digits or keypad
/// symbols, whose spelling in a transcript varies.
pub fn read_prompts(min_words: usize) -> Vec<(PathBuf, String)> {
    let dir = testdata_dir().join("voices");
    let mut prompts: Vec<(PathBuf, String)> = prompt_listing()
        .into_iter()
        .filter(|(_, text)| {
            text.split_whitespace().count() >= min_words
                && !text
                    .chars()
                    .any(|c| c.is_ascii_digit() || "[]()*#/".contains(c))
        })
        .map(|(name, text)| (dir.join("allison").join(format!("{name}.wav")), text))
        .filter(|(wav, _)| wav.is_file())
        .collect();
    prompts.sort();
    prompts
}

/// The prompts every reader of `make testdata` reads that are sounds, not speech: tones, beeps,
/// silence and a recording of monkeys, their text a description in brackets. Their file names.
pub fn sound_prompts() -> BTreeSet<String> {
    prompt_listing()
        .into_iter()
        .filter(|(_, text)| {
            matches!(
                (text.chars().next(), text.chars().last()),
                (Some('['), Some(']')) | (Some('<'), Some('>')) | (Some('('), Some(')'))
            )
        })
        .map(|(name, _)| name)
        .collect()
}

/// Allison's listing (`voices/allison.txt`, which every reader's prompts follow): each prompt's
/// file name (without `.wav`) and text.
fn prompt_listing() -> Vec<(String, String)> {
    let listing =
        std::fs::read_to_string(testdata_dir().join("voices").join("allison.txt")).unwrap();
    listing
        .lines()
        .filter(|line| !line.starts_with(';'))
        .filter_map(|line| line.split_once(": "))
        .map(|(name, text)| (name.replace('/', "-"), text.trim().to_owned()))
        .collect()
}

/// One annotated stretch of speech: start and end in seconds, and who speaks.
pub type AnnotatedTurn = (f64, f64, String);

/// The AMI training excerpts' annotation (`ami/train.rttm`): each excerpt's name (`trn00` …, its
/// audio `ami/<name>.wav`) and its turns, overlapping where people talk at once.
pub fn ami_annotations() -> BTreeMap<String, Vec<AnnotatedTurn>> {
    let rttm = std::fs::read_to_string(testdata_dir().join("ami").join("train.rttm")).unwrap();
    let mut turns: BTreeMap<String, Vec<AnnotatedTurn>> = BTreeMap::new();
    for line in rttm.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (start, duration): (f64, f64) = (f[3].parse().unwrap(), f[4].parse().unwrap());
        turns
            .entry(f[1].to_owned())
            .or_default()
            .push((start, start + duration, f[7].to_owned()));
    }
    assert_eq!(turns.len(), 10, "the training split has ten excerpts");
    turns
}

/// A backend that records every callback; it can answer 500 to the first N terminal ones, or
/// record progress callbacks and never answer them (a backend that hangs).
#[derive(Clone, Default)]
pub struct Receiver {
    pub calls: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    fail_terminal: Arc<AtomicUsize>,
    hang_on_progress: bool,
    pub addr: Option<SocketAddr>,
}

impl Receiver {
    pub async fn start(fail_terminal: usize) -> Self {
        Self::listen(Receiver {
            fail_terminal: Arc::new(AtomicUsize::new(fail_terminal)),
            ..Self::default()
        })
        .await
    }

    /// A backend that records each progress callback and never answers it; terminal callbacks
    /// are answered at once.
    pub async fn hanging_on_progress() -> Self {
        Self::listen(Receiver {
            hang_on_progress: true,
            ..Self::default()
        })
        .await
    }

    async fn listen(mut receiver: Receiver) -> Self {
        let app = Router::new()
            .route("/api/upload-video/result", post(record))
            .with_state(receiver.clone());
        receiver.addr = Some(serve(app).await);
        receiver
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr.expect("started"))
    }

    /// Callbacks answered with 200, as JSON, in arrival order.
    pub fn accepted(&self) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|(status, _)| *status == StatusCode::OK)
            .map(|(_, v)| v)
            .collect()
    }

    /// Every callback with the status it was answered with.
    pub fn all(&self) -> Vec<(StatusCode, Value)> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .map(|(headers, body)| {
                let status = headers
                    .get("x-test-answered")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u16>().ok())
                    .and_then(|v| StatusCode::from_u16(v).ok())
                    .unwrap_or(StatusCode::OK);
                (
                    status,
                    serde_json::from_slice(body).expect("callback body is JSON"),
                )
            })
            .collect()
    }
}

async fn record(
    State(receiver): State<Receiver>,
    mut headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let terminal = serde_json::from_slice::<Value>(&body)
        .map(|v| v["status"] != "processing")
        .unwrap_or(false);
    let fail = terminal
        && receiver
            .fail_terminal
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    let status = if fail {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    headers.insert("x-test-answered", status.as_u16().into());
    headers.insert("x-test-received-at", unix_now().into());
    receiver.calls.lock().unwrap().push((headers, body));
    if receiver.hang_on_progress && !terminal {
        std::future::pending::<()>().await;
    }
    status
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Whether a callback, as [`Receiver`] recorded it, carries both signatures the README
/// documents, made with [`SECRET`]: `X-Signature-256` of the raw body, and `X-Signature-V2` of
/// `"<t>." + body` with `t` equal to `X-Signature-Timestamp` and within five minutes of its
/// arrival, as a backend would check it.
pub fn signed_correctly(headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let hmac_matches = |hex_mac: &str, parts: &[&[u8]]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        for part in parts {
            mac.update(part);
        }
        hex::decode(hex_mac).is_ok_and(|sig| mac.verify_slice(&sig).is_ok())
    };
    let Some(plain) = header("x-signature-256").and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Some((t, timed)) = header("x-signature-v2")
        .and_then(|h| h.strip_prefix("t="))
        .and_then(|h| h.split_once(",sha256="))
    else {
        return false;
    };
    let received = header("x-test-received-at").and_then(|v| v.parse::<u64>().ok());
    let fresh = t
        .parse::<u64>()
        .is_ok_and(|t| received.is_some_and(|r| r.abs_diff(t) <= 300));
    fresh
        && header("x-signature-timestamp") == Some(t)
        && hmac_matches(plain, &[body])
        && hmac_matches(timed, &[t.as_bytes(), b".", body])
}

/// Serves the files of a directory over plain HTTP.
pub async fn media_server(dir: PathBuf) -> String {
    let app = Router::new().route("/{name}", get(file)).with_state(dir);
    format!("http://{}", serve(app).await)
}

/// `GET /{name}`: the file of that name in the directory, or 404.
pub async fn file(
    State(dir): State<PathBuf>,
    UrlPath(name): UrlPath<String>,
) -> Result<Vec<u8>, StatusCode> {
    tokio::fs::read(dir.join(name))
        .await
        .map_err(|_| StatusCode::NOT_FOUND)
}

/// Serves `app` on a free port of 127.0.0.1.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// English speech from espeak-ng, as a WAV file.
pub fn speech_wav(path: &Path, text: &str) {
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(path)
        .arg(text)
        .status()
        .expect("espeak-ng is installed (make test installs it)");
    assert!(status.success());
}

/// `GET url`, as JSON.
pub async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// Polls `GET /jobs/{id}` until the job ends.
pub async fn wait_for_end(
    client: &reqwest::Client,
    base: &str,
    job_id: &str,
    limit: Duration,
) -> Value {
    let started = Instant::now();
    loop {
        let body = get_json(client, &format!("{base}/jobs/{job_id}")).await;
        if body["status"] == "completed" || body["status"] == "failed" {
            return body;
        }
        assert!(
            started.elapsed() < limit,
            "job {job_id} did not end in {limit:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `count` callbacks have been answered with 200.
pub async fn wait_for_callbacks(receiver: &Receiver, count: usize, limit: Duration) {
    let started = Instant::now();
    while receiver.accepted().len() < count {
        assert!(
            started.elapsed() < limit,
            "only {:?} callbacks arrived",
            receiver.accepted()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs a Python script with the project venv's python (`infra/python-env.sh`: numpy, onnx),
/// failing the test when it fails.
pub fn run_python(script: &Path, args: &[&Path]) {
    checked_stdout(
        Command::new(venv_python()).arg(script).args(args),
        "the venv's python runs",
    );
}

/// Runs a Python script with the project venv's python, `input` on its stdin; its stdout.
/// Fails the test when the script fails.
pub fn python_filter(script: &Path, input: &str) -> String {
    let mut child = Command::new(venv_python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the venv's python runs");
    // Written from a thread of its own: a script that answers before reading everything cannot
    // leave both sides waiting on full pipes.
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let run = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        run.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8(run.stdout).unwrap()
}

/// The project venv's python, made or refreshed by `infra/python-env.sh`.
fn venv_python() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = checked_stdout(
        &mut Command::new(root.join("infra/python-env.sh")),
        "infra/python-env.sh runs",
    );
    String::from_utf8_lossy(&venv).trim().to_owned()
}

/// Runs `command` to its end and returns its stdout. The test fails with `expect` when the
/// command cannot start, and with its stderr when it exits unsuccessfully.
pub fn checked_stdout(command: &mut Command, expect: &str) -> Vec<u8> {
    let output = command.output().unwrap_or_else(|e| panic!("{expect}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Lower-case words without punctuation; hyphens split words.
fn normalise(text: &str) -> Vec<String> {
    text.replace('-', " ")
        .split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word error rate: word-level Levenshtein distance over the reference's length.
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (normalise(reference), normalise(hypothesis));
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut row = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let substitution = prev[j] + usize::from(rw != hw);
            row[j + 1] = substitution.min(prev[j + 1] + 1).min(row[j] + 1);
        }
        prev = row;
    }
    prev[h.len()] as f64 / r.len().max(1) as f64
}
