//! Times whisper.cpp on 30 s windows of a 16 kHz mono wav, under settings `ecg` does not expose.
//!
//! ecg-asr-probe --model FILE --wav FILE [--threads N] [--flash] [--dtw] [--beam N]
//!               [--audio-ctx N] [--lang auto|en] [--windows N] [--window-s S] [--encode-only]
//!               [--temperature-inc T]
//!
//! Decoding mirrors `ecg`'s recogniser (greedy best-of 5 or beam search, temperature 0 with 0.2
//! fallback steps, no context across windows, token timestamps, non-speech tokens suppressed);
//! `--temperature-inc 0` turns the fallback off, to see what it costs.
//! Prints one JSON object: load time, then per window the mel+encoder time (`--encode-only`) or
//! the whole `whisper_full` time and its text.

use std::time::Instant;

use whisper_rs::{
    DtwMode, DtwModelPreset, DtwParameters, FullParams, SamplingStrategy, WhisperContext,
    WhisperContextParameters,
};

struct Args {
    model: String,
    wav: String,
    threads: usize,
    flash: bool,
    dtw: bool,
    beam: i32,
    audio_ctx: i32,
    lang: String,
    windows: usize,
    window_s: f64,
    encode_only: bool,
    temperature_inc: f32,
}

fn args() -> Args {
    let mut a = Args {
        model: String::new(),
        wav: String::new(),
        threads: 2,
        flash: false,
        dtw: false,
        beam: 1,
        audio_ctx: 0,
        lang: "auto".into(),
        windows: usize::MAX,
        window_s: 30.0,
        encode_only: false,
        temperature_inc: 0.2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = value(),
            "--wav" => a.wav = value(),
            "--threads" => a.threads = value().parse().expect("threads"),
            "--flash" => a.flash = true,
            "--dtw" => a.dtw = true,
            "--beam" => a.beam = value().parse().expect("beam"),
            "--audio-ctx" => a.audio_ctx = value().parse().expect("audio-ctx"),
            "--lang" => a.lang = value(),
            "--windows" => a.windows = value().parse().expect("windows"),
            "--window-s" => a.window_s = value().parse().expect("window-s"),
            "--encode-only" => a.encode_only = true,
            "--temperature-inc" => a.temperature_inc = value().parse().expect("temperature-inc"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!a.model.is_empty() && !a.wav.is_empty(), "--model and --wav are required");
    a
}

/// 16-bit PCM mono 16 kHz wav → f32 samples (the benchmark writes exactly this format).
fn read_wav(path: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("read wav");
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("chunk")) as usize;
        if id == b"data" {
            let data = &bytes[pos + 8..(pos + 8 + len).min(bytes.len())];
            return data
                .chunks_exact(2)
                .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
                .collect();
        }
        pos += 8 + len + (len & 1);
    }
    panic!("no data chunk in {path}");
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn main() {
    let a = args();
    whisper_rs::install_logging_hooks();
    let samples = read_wav(&a.wav);

    let t0 = Instant::now();
    let mut cp = WhisperContextParameters::default();
    cp.use_gpu(false);
    cp.flash_attn(a.flash);
    if a.dtw {
        cp.dtw_parameters(DtwParameters {
            mode: DtwMode::ModelPreset {
                model_preset: DtwModelPreset::Base,
            },
            ..DtwParameters::default()
        });
    }
    let ctx = WhisperContext::new_with_params(&a.model, cp).expect("load model");
    let mut state = ctx.create_state().expect("state");
    let load_s = t0.elapsed().as_secs_f64();

    let step = (a.window_s * 16_000.0) as usize;
    let mut windows = Vec::new();
    for (i, chunk) in samples.chunks(step).enumerate().take(a.windows) {
        let start_s = (i * step) as f64 / 16_000.0;
        let t = Instant::now();
        let text = if a.encode_only {
            state.pcm_to_mel(chunk, a.threads).expect("mel");
            state.encode(0, a.threads).expect("encode");
            String::new()
        } else {
            let strategy = if a.beam > 1 {
                SamplingStrategy::BeamSearch {
                    beam_size: a.beam,
                    patience: -1.0,
                }
            } else {
                SamplingStrategy::Greedy { best_of: 5 }
            };
            let mut p = FullParams::new(strategy);
            p.set_n_threads(a.threads as i32);
            p.set_language(if a.lang == "auto" { None } else { Some(a.lang.as_str()) });
            p.set_translate(false);
            p.set_no_context(true);
            p.set_single_segment(false);
            p.set_token_timestamps(true);
            p.set_suppress_blank(true);
            p.set_suppress_nst(true);
            p.set_temperature(0.0);
            p.set_temperature_inc(a.temperature_inc);
            p.set_audio_ctx(a.audio_ctx);
            p.set_print_progress(false);
            p.set_print_realtime(false);
            p.set_print_special(false);
            p.set_print_timestamps(false);
            state.full(p, chunk).expect("full");
            state
                .as_iter()
                .map(|s| s.to_str_lossy().map(|t| t.to_string()).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("")
        };
        windows.push(format!(
            "{{\"start_s\":{start_s:.2},\"len_s\":{:.2},\"s\":{:.4},\"text\":{}}}",
            chunk.len() as f64 / 16_000.0,
            t.elapsed().as_secs_f64(),
            json_str(text.trim())
        ));
    }
    println!(
        "{{\"model\":{},\"threads\":{},\"flash\":{},\"dtw\":{},\"beam\":{},\"audio_ctx\":{},\"lang\":{},\"encode_only\":{},\"load_s\":{load_s:.4},\"windows\":[{}]}}",
        json_str(&a.model),
        a.threads,
        a.flash,
        a.dtw,
        a.beam,
        a.audio_ctx,
        json_str(&a.lang),
        a.encode_only,
        windows.join(",")
    );
}
