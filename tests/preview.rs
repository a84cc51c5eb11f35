//! The HTML preview in a real browser: headless Chromium opens the page `ecg analyze --format
//! html` writes for a two-speaker video, at chosen moments (`#t=SECONDS`), and the rendered DOM
//! must light the word being said, give each speaker a lane, and fetch nothing but the page.

// Helpers panic on purpose: in a test, a broken fixture is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;
use serde_json::Value;

mod common;

use common::{model_dir, serve};

/// `ecg analyze INPUT --format html -o OUTPUT`.
fn write_preview(input: &Path, output: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_ecg"))
        .args(["analyze", "--format", "html", "-o"])
        .arg(output)
        .arg(input)
        .env("ECG_MODEL_DIR", model_dir())
        .status()
        .expect("ecg runs");
    assert!(status.success(), "ecg analyze {} failed", input.display());
}

/// The DOM headless Chromium renders for `url`, scripts run (or, with `screenshot`, a PNG).
fn chromium(url: &str, screenshot: Option<&Path>) -> String {
    let mut command = Command::new("chromium");
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--window-size=1280,1100",
        "--virtual-time-budget=2000",
    ]);
    match screenshot {
        Some(path) => command.arg(format!("--screenshot={}", path.display())),
        None => command.arg("--dump-dom"),
    };
    let output = command
        .arg(url)
        .output()
        .expect("chromium is installed (make test installs it)");
    assert!(output.status.success(), "chromium failed on {url}");
    String::from_utf8(output.stdout).unwrap()
}

/// The analysis a page carries.
fn analysis(page: &str) -> Value {
    let open = r#"<script type="application/json" id="analysis">"#;
    let start = page.find(open).expect("the page carries its analysis") + open.len();
    let end = start + page[start..].find("</script>").unwrap();
    serde_json::from_str(&page[start..end]).unwrap()
}

/// (start, end, text) of the caption's lit word in a rendered DOM.
fn lit_word(dom: &str) -> Option<(f64, f64, String)> {
    let at = dom.find(r#"class="word now""#)?;
    let attribute = |name: &str| {
        let from = at + dom[at..].find(&format!(r#"{name}=""#)).unwrap() + name.len() + 2;
        dom[from..from + dom[from..].find('"').unwrap()].to_owned()
    };
    let text_from = at + dom[at..].find('>').unwrap() + 1;
    let text = &dom[text_from..text_from + dom[text_from..].find('<').unwrap()];
    Some((
        attribute("data-start").parse().unwrap(),
        attribute("data-end").parse().unwrap(),
        text.replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">"),
    ))
}

/// Serves `dir` on 127.0.0.1 and records every path asked for.
async fn page_server(dir: PathBuf) -> (String, Arc<Mutex<Vec<String>>>) {
    let requests: Arc<Mutex<Vec<String>>> = Arc::default();
    let state = (dir, Arc::clone(&requests));
    let app = Router::new().fallback(
        |State((dir, requests)): State<(PathBuf, Arc<Mutex<Vec<String>>>)>, uri: Uri| async move {
            requests.lock().unwrap().push(uri.path().to_owned());
            match std::fs::read(dir.join(uri.path().trim_start_matches('/'))) {
                Ok(page) => {
                    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
                }
                Err(_) => StatusCode::NOT_FOUND.into_response(),
            }
        },
    );
    let addr = serve(app.with_state(state)).await;
    (format!("http://{addr}"), requests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_lights_the_word_being_said_and_fetches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("meeting.mp4");
    let made = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/infra/demo/sample.sh"))
        .arg(&video)
        .status()
        .unwrap();
    assert!(made.success(), "the two-speaker video");
    let site = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    write_preview(&video, &site.join("preview.html"));
    let result = analysis(&std::fs::read_to_string(site.join("preview.html")).unwrap());
    let (base, requests) = page_server(site).await;
    let url = format!("{base}/preview.html");

    // The first word, one in the middle and the last one, each at its middle.
    let words: Vec<&Value> = result["segments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["words"].as_array().unwrap())
        .collect();
    assert!(words.len() > 20, "{result}");
    for word in [words[0], words[words.len() / 2], words[words.len() - 1]] {
        let (start, end) = (
            word["start"].as_f64().unwrap(),
            word["end"].as_f64().unwrap(),
        );
        let at = (start + end) / 2.0;
        let dom = tokio::task::spawn_blocking({
            let url = format!("{url}#t={at:.3}");
            move || chromium(&url, None)
        })
        .await
        .unwrap();
        let (lit_start, lit_end, text) =
            lit_word(&dom).unwrap_or_else(|| panic!("no word lit at {at}"));
        assert!(
            lit_start <= at && at < lit_end,
            "{at} lit [{lit_start}, {lit_end})"
        );
        assert_eq!(text, word["word"].as_str().unwrap(), "at {at}");

        let speakers: Vec<&String> = result["speakers"].as_object().unwrap().keys().collect();
        assert_eq!(speakers.len(), 2, "{result}");
        for speaker in speakers {
            assert!(
                dom.contains(&format!(r#"class="lane" data-speaker="{speaker}""#)),
                "no lane for {speaker}"
            );
        }
    }

    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("preview.png");
    let middle = words[words.len() / 2]["start"].as_f64().unwrap() + 0.01;
    tokio::task::spawn_blocking({
        let (url, screenshot) = (format!("{url}#t={middle:.3}"), screenshot.clone());
        move || chromium(&url, Some(&screenshot))
    })
    .await
    .unwrap();
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
    println!("screenshot: {}", screenshot.display());

    // The page is all there is: the video is inside it, nothing else is fetched.
    let asked = requests.lock().unwrap().clone();
    assert_eq!(asked, vec!["/preview.html"; 4], "{asked:?}");
}

#[test]
fn the_preview_of_a_silent_file_says_there_is_no_speech() {
    let dir = tempfile::tempdir().unwrap();
    let silence = dir.path().join("silence.wav");
    let made = Command::new("ffmpeg")
        .args([
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "anullsrc=r=16000:cl=mono",
            "-t",
            "3",
        ])
        .arg(&silence)
        .status()
        .expect("ffmpeg is installed (make test installs it)");
    assert!(made.success());
    let page = dir.path().join("silence.html");
    write_preview(&silence, &page);
    let dom = chromium(&format!("file://{}", page.display()), None);
    assert!(
        dom.contains(r#"<p id="no-speech">No speech was found"#),
        "{dom}"
    );
    assert!(dom.contains(r#"<div id="speech" hidden"#), "{dom}");
}
