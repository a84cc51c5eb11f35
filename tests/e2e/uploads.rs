//! Media sent with the request, by the clients people use: `curl -F` on `/transcribe`, and
//! OpenAI's own Python client on `/v1/audio/transcriptions`. An upload over the limit and one
//! that breaks off leave no file behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Server, python_filter, speech_wav};

const SAID: &str = "Hello and welcome. Today we talk about subtitles for short videos.";
/// Uploads above this get 413: the spoken clip is well below, the junk file well above.
const LIMIT: u64 = 1_000_000;

/// A short spoken clip as a video container would carry it (AAC in MP4).
fn spoken_mp4(dir: &Path) -> PathBuf {
    let wav = dir.join("talk.wav");
    speech_wav(&wav, SAID);
    let mp4 = dir.join("clip.mp4");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&wav)
        .args(["-c:a", "aac"])
        .arg(&mp4)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    mp4
}

fn curl_form(url: &str, file: &Path, fields: &[&str]) -> (u16, Value) {
    let mut command = Command::new("curl");
    command
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-F"])
        .arg(format!("file=@{}", file.display()));
    for field in fields {
        command.args(["-F", field]);
    }
    let output = command.arg(url).output().expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (
        status.trim().parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// Files left in the server's upload directory.
fn uploads_left(data: &Path) -> Vec<String> {
    std::fs::read_dir(data.join("uploads"))
        .map(|dir| {
            dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits up to `limit` for `done`.
fn eventually(limit: Duration, done: impl Fn() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

#[tokio::test]
async fn curl_uploads_a_clip_to_transcribe_and_no_file_outlives_its_request() {
    let media = tempfile::tempdir().unwrap();
    let clip = spoken_mp4(media.path());
    let data = tempfile::tempdir().unwrap();
    let limit = LIMIT.to_string();
    let server = Server::start_with(data.path(), &[("ECG_MAX_UPLOAD_BYTES", &limit)]);
    let url = format!("{}/transcribe", server.base);

    let (status, body) = curl_form(&url, &clip, &["language=en", "emotion_detection=false"]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true, "{body}");
    assert_eq!(body["metadata"]["filename"], "clip.mp4");
    let text: String = body["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap().to_lowercase())
        .collect();
    assert!(text.contains("subtitles"), "{text}");
    assert!(
        uploads_left(data.path()).is_empty(),
        "the upload outlived its job"
    );

    let (status, body) = curl_form(&url, &clip, &["language=xx"]);
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("language")),
        "{body}"
    );

    let junk = media.path().join("junk.bin");
    std::fs::write(&junk, vec![7u8; 2 * LIMIT as usize]).unwrap();
    let (status, body) = curl_form(&url, &junk, &[]);
    assert_eq!(status, 413, "{body}");
    assert!(
        uploads_left(data.path()).is_empty(),
        "a refused upload was kept"
    );

    // A client that goes away mid-upload: what it sent was on disk, and is gone again.
    let address = server.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let head = "--cut\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n";
    write!(
        stream,
        "POST /transcribe HTTP/1.1\r\nHost: {address}\r\nContent-Type: multipart/form-data; \
         boundary=cut\r\nContent-Length: {LIMIT}\r\n\r\n{head}"
    )
    .unwrap();
    stream.write_all(&vec![1u8; 300_000]).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || !uploads_left(data.path())
            .is_empty()),
        "the upload is streamed to disk as it arrives"
    );
    drop(stream);
    assert!(
        eventually(Duration::from_secs(10), || uploads_left(data.path())
            .is_empty()),
        "a broken-off upload left {:?}",
        uploads_left(data.path())
    );
}

#[tokio::test]
async fn openais_python_client_transcribes_with_word_times_and_subtitles() {
    let media = tempfile::tempdir().unwrap();
    let clip = spoken_mp4(media.path());
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let request = json!({ "base_url": format!("{}/v1", server.base), "clip": clip });
    let answer: Value = serde_json::from_str(&python_filter(
        Path::new("tests/e2e/openai_client.py"),
        &request.to_string(),
    ))
    .unwrap();
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("subtitles"),
        "{answer}"
    );
    assert!(answer["words"].as_u64().unwrap() >= 8, "{answer}");
    assert!(uploads_left(data.path()).is_empty());
}
