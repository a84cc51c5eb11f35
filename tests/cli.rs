//! `ecg analyze` as a user runs it: the real binary on generated media in several containers.

// Helpers panic on purpose: in a test, a broken fixture is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod common;

use common::{checked_stdout, model_dir, speech_wav};

const TEXT: &str = "The weather is lovely today. We will walk along the river after lunch.";

fn run(tool: &str, args: &[&str]) {
    let status = Command::new(tool)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{tool} is needed (make test installs it): {e}"));
    assert!(status.success(), "{tool} {args:?} failed");
}

fn analyze(input: &Path, extra: &[&str]) -> String {
    let stdout = checked_stdout(
        Command::new(env!("CARGO_BIN_EXE_ecg"))
            .arg("analyze")
            .arg(input)
            .args(extra)
            .env("ECG_MODEL_DIR", model_dir()),
        "ecg runs",
    );
    String::from_utf8(stdout).expect("UTF-8 output")
}

fn normalised(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect()
}

#[test]
fn the_same_speech_in_every_container_gives_the_same_transcript() {
    assert!(
        model_dir().join("ggml-base-q8_0.bin").exists(),
        "models missing: run `make models`"
    );
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speech.wav");
    speech_wav(&wav, TEXT);
    let reference: Value = serde_json::from_str(&analyze(&wav, &["--language", "en"])).unwrap();
    let expected = normalised(reference["text"].as_str().unwrap());
    assert!(
        expected.contains("river") && expected.contains("lunch"),
        "{expected}"
    );

    for (name, codec) in [
        ("speech.mp4", &["-c:a", "aac", "-b:a", "96k"][..]),
        ("speech.mp3", &["-c:a", "libmp3lame", "-b:a", "96k"][..]),
        ("speech.flac", &["-c:a", "flac"][..]),
        ("speech.webm", &["-c:a", "libopus", "-b:a", "48k"][..]),
    ] {
        let path = dir.path().join(name);
        let mut args = vec!["-loglevel", "error", "-y", "-i", wav.to_str().unwrap()];
        args.extend_from_slice(codec);
        args.push(path.to_str().unwrap());
        run("ffmpeg", &args);
        let result: Value = serde_json::from_str(&analyze(&path, &["--language", "en"])).unwrap();
        assert_eq!(
            normalised(result["text"].as_str().unwrap()),
            expected,
            "{name}"
        );
    }
}

#[test]
fn subtitles_are_valid_srt_and_vtt() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speech.wav");
    speech_wav(&wav, TEXT);
    let srt = analyze(&wav, &["--format", "srt", "--no-emotion"]);
    let first: Vec<&str> = srt.lines().take(3).collect();
    assert_eq!(first[0], "1");
    let (start, end) = first[1].split_once(" --> ").expect("an SRT timing line");
    assert!(
        start.len() == 12 && start.as_bytes()[8] == b',' && end.len() == 12,
        "{srt}"
    );
    assert!(start < end);
    assert!(srt.ends_with("\n\n"));

    let out = dir.path().join("speech.vtt");
    analyze(
        &wav,
        &[
            "--format",
            "vtt",
            "--speaker-labels",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let vtt = std::fs::read_to_string(out).unwrap();
    assert!(vtt.starts_with("WEBVTT\n\n"), "{vtt}");
    assert!(
        vtt.contains(" --> ") && vtt.contains("<v SPEAKER_00>"),
        "{vtt}"
    );
}

#[test]
fn an_unwritable_output_is_refused_before_the_analysis() {
    // The input is missing too: an output checked only at the end would report the input.
    let output = Command::new(env!("CARGO_BIN_EXE_ecg"))
        .args([
            "analyze",
            "/nonexistent/input.wav",
            "-o",
            "/nonexistent/dir/result.json",
        ])
        .env("ECG_MODEL_DIR", model_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("cannot write /nonexistent/dir/result.json"),
        "{stderr}"
    );
}

/// `ecg analyze` on `input`, expected to fail: its stderr.
fn analyze_error(input: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ecg"))
        .arg("analyze")
        .arg(input)
        .env("ECG_MODEL_DIR", model_dir())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(!output.status.success(), "{} was analysed", input.display());
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn bad_input_gets_one_plain_error_line_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.wav");
    let stderr = analyze_error(&missing);
    assert_eq!(
        stderr.trim(),
        format!(
            "error: [DOWNLOAD_ERROR] media not available: file not found: {}",
            missing.display()
        )
    );

    // Bytes no decoder knows: the decoder's own log lines (JSON, at ERROR) stay out.
    let noise = dir.path().join("noise.mp3");
    std::fs::write(
        &noise,
        (0..4000u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let stderr = analyze_error(&noise);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: [AUDIO_EXTRACTION_ERROR] "),
        "{stderr}"
    );
}

#[test]
fn an_installed_binary_finds_the_models_next_to_it() {
    // Releases laid out as ecg + models/ and as bin/ecg + models/ (the runner artifact), run
    // from elsewhere, with no ECG_MODEL_DIR: the build tree they came from is not consulted.
    let release = tempfile::tempdir().unwrap();
    std::fs::create_dir(release.path().join("bin")).unwrap();
    std::os::unix::fs::symlink(model_dir(), release.path().join("models")).unwrap();
    let media = tempfile::tempdir().unwrap();
    let input = media.path().join("speech.wav");
    speech_wav(&input, TEXT);
    let run = |binary: &Path, args: &[&str]| {
        Command::new(binary)
            .args(args)
            .arg(&input)
            .current_dir(media.path())
            .env_remove("ECG_MODEL_DIR")
            .output()
            .unwrap()
    };
    for binary in [release.path().join("ecg"), release.path().join("bin/ecg")] {
        std::fs::copy(env!("CARGO_BIN_EXE_ecg"), &binary).unwrap();
        let output = run(&binary, &["analyze", "--no-emotion"]);
        assert!(
            output.status.success(),
            "{}: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let result: Value = serde_json::from_slice(&output.stdout).unwrap();
        let text = normalised(result["text"].as_str().unwrap());
        assert!(text.contains("river after lunch"), "{text}");
    }

    // Moved away from its models, it says where it looked.
    std::fs::remove_file(release.path().join("models")).unwrap();
    let output = run(&release.path().join("bin/ecg"), &["analyze"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MODEL_LOADING_ERROR"), "{stderr}");
}
