//! Decoding media of every supported container and codec, made at test time with the `ffmpeg`
//! CLI (and hound for WAV): length, pitch, level and timeline of the decoded 16 kHz mono, and
//! the reasons given for damaged, hostile, unsupported or over-limit files.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a failure should panic"
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::ffmpeg;
use ecg_audio::dsp::level::rms_dbfs;
use ecg_audio::dsp::yin::Yin;
use ecg_audio::{DecodeLimits, MediaDecoder};
use ecg_core::audio::{Audio, SAMPLE_RATE_HZ};
use ecg_core::error::StageError;
use ecg_core::stages::Decoder;

const SOURCE_S: f64 = 2.5;
const SOURCE_RATE: u32 = 44_100;
/// Left 0.6, right 0.2: the mean is 0.4, a sum would be 0.8.
const MONO_PEAK: f64 = 0.4;

/// `SOURCE_S` seconds of 16-bit WAV at `SOURCE_RATE` in `dir/name`: one channel per gain,
/// each `signal(t)` times its gain.
fn write_wav(dir: &Path, name: &str, gains: &[f64], signal: impl Fn(f64) -> f64) -> PathBuf {
    let path = dir.join(name);
    let spec = hound::WavSpec {
        channels: gains.len() as u16,
        sample_rate: SOURCE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..(SOURCE_S * f64::from(SOURCE_RATE)) as usize {
        let s = signal(i as f64 / f64::from(SOURCE_RATE));
        for gain in gains {
            wav.write_sample((gain * s * f64::from(i16::MAX)) as i16)
                .unwrap();
        }
    }
    wav.finalize().unwrap();
    path
}

/// 2.5 s of 44.1 kHz stereo: 220 Hz for the first half, 440 Hz for the second.
fn write_source(dir: &Path) -> PathBuf {
    write_wav(dir, "source.wav", &[0.6, 0.2], |t| {
        let hz = if t < SOURCE_S / 2.0 { 220.0 } else { 440.0 };
        (std::f64::consts::TAU * hz * t).sin()
    })
}

/// The source encoded with `codec_args` into `name`.
fn encode(dir: &Path, name: &str, codec_args: &[&str]) -> PathBuf {
    encode_file(&write_source(dir), name, codec_args)
}

/// `source` encoded with `codec_args` into `name` beside it.
fn encode_file(source: &Path, name: &str, codec_args: &[&str]) -> PathBuf {
    let path = source.with_file_name(name);
    let mut args = vec!["-i", source.to_str().unwrap()];
    args.extend_from_slice(codec_args);
    args.push(path.to_str().unwrap());
    ffmpeg(&args);
    path
}

fn decode(path: &Path) -> Result<Audio, StageError> {
    MediaDecoder::new().decode(path)
}

fn audio_error(path: &Path) -> String {
    match decode(path) {
        Err(StageError::Audio(reason)) => reason,
        other => panic!("expected an audio error, got {other:?}"),
    }
}

/// Length, pitch of each half and level of the decoded source; `level_tolerance_db` is
/// what the codec may change.
fn check_decoded(path: &Path, level_tolerance_db: f64) {
    let audio = decode(path).unwrap();
    assert!(
        (audio.duration_s() - SOURCE_S).abs() <= 0.1,
        "{}: {} s",
        path.display(),
        audio.duration_s()
    );
    let yin = Yin::new(SAMPLE_RATE_HZ);
    for (from, to, hz) in [(0.3, 1.0, 220.0), (1.5, 2.2, 440.0)] {
        let part = audio.slice(ecg_core::audio::TimeSpan::new(from, to));
        let f0 = yin.median_f0(part).unwrap_or(0.0);
        assert!(
            (f0 - hz).abs() <= hz * 0.01,
            "{}: {f0} Hz in {from}–{to} s, expected {hz}",
            path.display()
        );
        let expected_db = 20.0 * (MONO_PEAK / 2f64.sqrt()).log10();
        let db = rms_dbfs(part);
        assert!(
            (db - expected_db).abs() <= level_tolerance_db,
            "{}: {db} dBFS, expected {expected_db}",
            path.display()
        );
    }
}

#[test]
fn wav_44k_stereo() {
    let dir = tempfile::tempdir().unwrap();
    check_decoded(&write_source(dir.path()), 0.05);
}

#[test]
fn wav_48k_mono_and_16k_mono() {
    let dir = tempfile::tempdir().unwrap();
    check_decoded(
        &encode(dir.path(), "48k.wav", &["-ar", "48000", "-ac", "1"]),
        0.05,
    );
    check_decoded(
        &encode(dir.path(), "16k.wav", &["-ar", "16000", "-ac", "1"]),
        0.05,
    );
}

#[test]
fn mp4_aac() {
    let dir = tempfile::tempdir().unwrap();
    check_decoded(
        &encode(dir.path(), "a.mp4", &["-c:a", "aac", "-b:a", "128k"]),
        1.0,
    );
}

#[test]
fn m4a_aac() {
    let dir = tempfile::tempdir().unwrap();
    check_decoded(
        &encode(dir.path(), "a.m4a", &["-c:a", "aac", "-b:a", "96k"]),
        1.0,
    );
}

#[test]
fn mp4_video_with_aac() {
    let dir = tempfile::tempdir().unwrap();
    let source = write_source(dir.path());
    let path = dir.path().join("video.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=blue:s=64x64:r=10:d=2.5",
        "-i",
        source.to_str().unwrap(),
        "-c:v",
        "mpeg4",
        "-c:a",
        "aac",
        "-shortest",
        path.to_str().unwrap(),
    ]);
    check_decoded(&path, 1.0);
}

#[test]
fn mp3() {
    let dir = tempfile::tempdir().unwrap();
    check_decoded(
        &encode(dir.path(), "a.mp3", &["-c:a", "libmp3lame", "-b:a", "128k"]),
        1.0,
    );
}

#[test]
fn flac() {
    let dir = tempfile::tempdir().unwrap();
    check_decoded(&encode(dir.path(), "a.flac", &["-c:a", "flac"]), 0.05);
}

#[test]
fn ogg_vorbis() {
    let dir = tempfile::tempdir().unwrap();
    check_decoded(&encode(dir.path(), "a.ogg", &["-c:a", "libvorbis"]), 1.0);
}

#[test]
fn mkv_vorbis() {
    let dir = tempfile::tempdir().unwrap();
    check_decoded(&encode(dir.path(), "a.mkv", &["-c:a", "libvorbis"]), 1.0);
}

#[test]
fn webm_opus() {
    let dir = tempfile::tempdir().unwrap();
    check_decoded(&encode(dir.path(), "a.webm", &["-c:a", "libopus"]), 1.0);
}

#[test]
fn ogg_opus() {
    let dir = tempfile::tempdir().unwrap();
    check_decoded(&encode(dir.path(), "a.opus", &["-c:a", "libopus"]), 1.0);
    // Browsers and phones also name it .ogg.
    check_decoded(
        &encode(dir.path(), "b.ogg", &["-c:a", "libopus", "-b:a", "32k"]),
        1.0,
    );
}

/// 2.5 s of 44.1 kHz mono, silent but for a 200 → 3000 Hz chirp from 0.5 to 1.5 s: its
/// cross-correlation has one sharp peak, so a shift of one sample shows.
fn write_chirp(dir: &Path) -> PathBuf {
    write_wav(dir, "chirp.wav", &[0.5], |t| {
        let t = t - 0.5;
        if (0.0..1.0).contains(&t) {
            (std::f64::consts::TAU * (200.0 * t + 1400.0 * t * t)).sin()
        } else {
            0.0
        }
    })
}

/// The shift, in 16 kHz samples, that best lines `shifted` up with `reference`'s chirp,
/// searched over ±`max_lag` around `expected`.
fn lag(reference: &[f32], shifted: &[f32], expected: i64, max_lag: i64) -> i64 {
    let chirp = reference.len() / 5..reference.len() * 3 / 5 + 1;
    let score = |lag: i64| -> f64 {
        chirp
            .clone()
            .filter_map(|i| {
                let j = usize::try_from(i as i64 + lag).ok()?;
                Some(f64::from(reference[i]) * f64::from(*shifted.get(j)?))
            })
            .sum()
    };
    (expected - max_lag..=expected + max_lag)
        .map(|lag| (lag, score(lag)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap()
        .0
}

#[test]
fn every_container_keeps_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let source = write_chirp(dir.path());
    let reference = decode(&source).unwrap().samples;
    let max_lag = 800; // 50 ms: more than any encoder's delay.
    for (name, codec_args) in [
        ("a.mp4", &["-c:a", "aac"][..]),
        ("a.m4a", &["-c:a", "aac", "-ar", "48000"]),
        ("a.mov", &["-c:a", "aac"]),
        ("a.mp3", &["-c:a", "libmp3lame"]),
        ("a.webm", &["-c:a", "libopus"]),
        ("a.ogg", &["-c:a", "libvorbis"]),
        ("a.flac", &["-c:a", "flac"]),
    ] {
        let decoded = decode(&encode_file(&source, name, codec_args))
            .unwrap()
            .samples;
        let shift = lag(&reference, &decoded, 0, max_lag);
        assert!(shift.abs() <= 1, "{name}: shifted by {shift} samples");
        if name.ends_with(".mp4") || name.ends_with(".m4a") || name.ends_with(".mov") {
            // The edit list also cuts the encoder's final padding.
            let extra = decoded.len() as i64 - reference.len() as i64;
            assert!(extra.abs() <= 1, "{name}: {extra} samples longer");
        }
    }
}

/// The chirp as the audio of an mp4 video, starting 0.5 s after the video (an empty edit).
fn late_mp4(dir: &Path) -> PathBuf {
    let source = write_chirp(dir);
    let path = dir.join("late.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=blue:s=64x64:r=10:d=3",
        "-itsoffset",
        "0.5",
        "-i",
        source.to_str().unwrap(),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "mpeg4",
        "-c:a",
        "aac",
        path.to_str().unwrap(),
    ]);
    path
}

#[test]
fn an_mp4_audio_track_that_starts_late_stays_late() {
    let dir = tempfile::tempdir().unwrap();
    let decoded = decode(&late_mp4(dir.path())).unwrap().samples;
    let reference = decode(&write_chirp(dir.path())).unwrap().samples;
    let onset = |samples: &[f32]| samples.iter().position(|s| s.abs() > 0.1).unwrap() as i64;
    // The empty edit is in the movie's milliseconds: ±1 ms.
    let late = onset(&decoded) - onset(&reference);
    let expected = i64::from(SAMPLE_RATE_HZ) / 2;
    assert!(
        (late - expected).abs() <= 16,
        "starts {late} samples late, not {expected}"
    );
}

#[test]
fn an_edit_list_asking_for_days_of_silence_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = late_mp4(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    // The audio track's elst: version/flags, 2 entries, then the empty edit's duration.
    let elst = bytes
        .windows(12)
        .position(|w| w[..4] == *b"elst" && w[8..12] == 2u32.to_be_bytes())
        .unwrap();
    bytes[elst + 12..elst + 16].copy_from_slice(&u32::MAX.to_be_bytes());
    std::fs::write(&path, bytes).unwrap();
    let reason = audio_error(&path);
    assert!(reason.contains("over the limit"), "{reason}");
}

#[test]
fn text_and_html_are_not_media() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "These are not the samples you are looking for.\n".repeat(50),
    )
    .unwrap();
    assert!(audio_error(&text).starts_with("not a recognised media file"));
    // An error page saved under the name of the video that was asked for.
    let html = dir.path().join("video.mp4");
    std::fs::write(
        &html,
        "<!DOCTYPE html><html><head><title>403 Forbidden</title></head>\
         <body><h1>Forbidden</h1></body></html>\n",
    )
    .unwrap();
    assert!(audio_error(&html).starts_with("not a recognised media file"));
}

#[test]
fn empty_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    assert!(audio_error(&empty).contains("empty"));
    let missing = dir.path().join("missing.mp4");
    assert!(audio_error(&missing).starts_with("cannot open"));
    assert!(audio_error(dir.path()).contains("not a file"));
}

#[test]
fn video_without_audio() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent-film.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=64x64:r=10:d=1",
        "-c:v",
        "mpeg4",
        path.to_str().unwrap(),
    ]);
    let reason = audio_error(&path);
    assert!(reason.contains("no audio track"), "{reason}");
}

#[test]
fn unsupported_codec_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = encode(dir.path(), "dolby.mkv", &["-c:a", "ac3"]);
    let reason = audio_error(&path);
    assert!(reason.contains("unsupported audio codec: AC-3"), "{reason}");
}

/// Regression (fuzzing): a stated rate of 4294967295 Hz had the resampler allocate 3.4 GB.
#[test]
fn absurd_sample_rates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fast.wav");
    extensible_wav(&path, 1, u32::MAX, 4);
    let reason = audio_error(&path);
    assert!(
        reason.contains("unsupported sample rate: 4294967295 Hz"),
        "{reason}"
    );
}

/// Regression (fuzzing): NaN, infinite and huge samples in a float WAV made the resampler panic.
#[test]
fn non_finite_and_huge_float_samples_are_survived() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile-float.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 8_000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut wav = hound::WavWriter::create(&path, spec).unwrap();
    let hostile = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e30,
        -3e38,
        f32::MAX,
    ];
    for i in 0..16_000 {
        let tone = (i as f32 * 0.1).sin() * 0.5;
        let sample = if i % 97 == 0 {
            hostile[i / 97 % hostile.len()]
        } else {
            tone
        };
        wav.write_sample(sample).unwrap();
        wav.write_sample(tone).unwrap();
    }
    wav.finalize().unwrap();
    let audio = decode(&path).unwrap();
    assert!(
        (audio.duration_s() - 2.0).abs() < 0.05,
        "{}",
        audio.duration_s()
    );
    assert!(
        audio
            .samples
            .iter()
            .all(|s| s.is_finite() && s.abs() <= 8.0)
    );
}

/// A WAVE_FORMAT_EXTENSIBLE file of 16-bit PCM silence with any header values.
fn extensible_wav(path: &Path, channels: u16, rate: u32, channel_mask: u32) {
    let mut wav = Vec::new();
    wav.extend(b"RIFF\0\0\0\0WAVEfmt ");
    wav.extend(40u32.to_le_bytes());
    wav.extend(0xfffeu16.to_le_bytes());
    wav.extend(channels.to_le_bytes());
    wav.extend(rate.to_le_bytes());
    wav.extend(rate.wrapping_mul(u32::from(channels) * 2).to_le_bytes());
    wav.extend((channels.wrapping_mul(2)).to_le_bytes());
    wav.extend(16u16.to_le_bytes());
    wav.extend(22u16.to_le_bytes());
    wav.extend(16u16.to_le_bytes());
    wav.extend(channel_mask.to_le_bytes());
    wav.extend([
        1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71,
    ]); // PCM
    wav.extend(b"data");
    wav.extend(2_000u32.to_le_bytes());
    wav.extend([0u8; 2_000]);
    let riff_size = u32::try_from(wav.len() - 8).unwrap();
    wav[4..8].copy_from_slice(&riff_size.to_le_bytes());
    std::fs::write(path, wav).unwrap();
}

/// Regression (fuzzing): 50 channels and a one-channel mask make symphonia's WAV reader
/// shift past 32 bits, a panic where overflow is checked.
#[test]
fn a_reader_that_panics_fails_the_file_not_the_stage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fifty-channels.wav");
    extensible_wav(&path, 50, 8_000, 4);
    match decode(&path) {
        Err(StageError::Audio(reason)) => {
            assert!(reason.contains("its decoder failed"), "{reason}");
        }
        // Where overflow is not checked (release builds) the reader wraps and reads on.
        Ok(audio) if !cfg!(debug_assertions) => assert!(audio.duration_s() < 1.0),
        other => panic!("{other:?}"),
    }
}

fn limited(max_media: Duration, max_decode_time: Duration) -> MediaDecoder {
    MediaDecoder::with_limits(DecodeLimits {
        max_media,
        max_decode_time,
    })
}

fn limited_error(decoder: &MediaDecoder, path: &Path) -> String {
    match decoder.decode(path) {
        Err(StageError::Audio(reason)) => reason,
        other => panic!("expected an audio error, got {other:?}"),
    }
}

#[test]
fn media_over_the_length_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let one_second = limited(Duration::from_secs(1), Duration::from_secs(60));
    // A WAV header states the length: refused before anything is decoded.
    let wav = write_source(dir.path());
    let reason = limited_error(&one_second, &wav);
    assert_eq!(reason, "the media is 2 s long, over the limit of 1 s");
    // Matroska as symphonia reads it states none: refused once the decoded audio passes it.
    let mkv = encode(dir.path(), "a.mkv", &["-c:a", "libvorbis"]);
    let reason = limited_error(&one_second, &mkv);
    assert_eq!(reason, "the media is longer than the limit of 1 s");
    // Within the limit, the same decoder decodes.
    let three_seconds = limited(Duration::from_secs(3), Duration::from_secs(60));
    assert!(three_seconds.decode(&mkv).is_ok());
    assert!(three_seconds.decode(&wav).is_ok());
}

#[test]
fn decoding_past_the_time_limit_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let wav = write_source(dir.path());
    let reason = limited_error(&limited(Duration::from_secs(60), Duration::ZERO), &wav);
    assert_eq!(reason, "decoding took longer than the limit of 0 s");
}

/// Keeps the first `fraction` of a file.
fn truncate(path: &Path, fraction: f64) {
    let bytes = std::fs::read(path).unwrap();
    let keep = (bytes.len() as f64 * fraction) as usize;
    std::fs::write(path, &bytes[..keep]).unwrap();
}

#[test]
fn truncated_files_give_partial_audio_or_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    // Index at the end (ffmpeg's default): cut off, nothing says where the packets are.
    let mp4 = encode(dir.path(), "a.mp4", &["-c:a", "aac"]);
    truncate(&mp4, 0.6);
    let reason = audio_error(&mp4);
    assert!(
        reason.starts_with("damaged or incomplete media file"),
        "{reason}"
    );
    // Index first, as streaming sites serve it.
    let faststart = encode(
        dir.path(),
        "b.mp4",
        &["-c:a", "aac", "-movflags", "+faststart"],
    );
    truncate(&faststart, 0.6);
    match decode(&faststart) {
        Ok(audio) => assert!(
            audio.duration_s() < SOURCE_S + 0.1,
            "{}",
            audio.duration_s()
        ),
        Err(StageError::Audio(reason)) => assert!(reason.contains("truncated"), "{reason}"),
        Err(other) => panic!("{other:?}"),
    }
    // mp3 is a sequence of frames: half a file is half the audio.
    let mp3 = encode(dir.path(), "a.mp3", &["-c:a", "libmp3lame"]);
    truncate(&mp3, 0.5);
    let audio = decode(&mp3).unwrap();
    assert!(
        (audio.duration_s() - SOURCE_S / 2.0).abs() < 0.2,
        "{}",
        audio.duration_s()
    );
}

#[test]
fn corrupt_bytes_in_the_middle_are_survived() {
    let dir = tempfile::tempdir().unwrap();
    let mp3 = encode(dir.path(), "a.mp3", &["-c:a", "libmp3lame", "-b:a", "128k"]);
    let mut bytes = std::fs::read(&mp3).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 1_500].fill(0x55);
    std::fs::write(&mp3, &bytes).unwrap();
    let audio = decode(&mp3).unwrap();
    assert!(
        (audio.duration_s() - SOURCE_S).abs() < 0.15,
        "{}",
        audio.duration_s()
    );
}
