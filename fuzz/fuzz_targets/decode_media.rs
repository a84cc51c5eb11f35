//! Media decoding on arbitrary bytes, written to a file as a download would be. The first byte
//! picks the file extension the decoder takes as a hint, so every format's reader is reached.
//!
//! A panic is a finding, except one inside symphonia's readers and codecs: `MediaDecoder` turns
//! those into audio errors (AUDIO_EXTRACTION_ERROR), so they are tolerated here and each place is
//! printed once, to be reported upstream; anything else still aborts, as libFuzzer expects.

#![no_main]

use std::collections::HashSet;
use std::panic::PanicHookInfo;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use ecg_audio::{DecodeLimits, MediaDecoder};
use ecg_core::stages::Decoder;
use libfuzzer_sys::fuzz_target;

const EXTENSIONS: [&str; 14] = [
    "mp4", "m4a", "mov", "mp3", "wav", "flac", "ogg", "opus", "mkv", "webm", "aac", "caf", "aiff",
    "bin",
];

struct Fixture {
    _dir: tempfile::TempDir,
    paths: Vec<PathBuf>,
    decoder: MediaDecoder,
}

/// Wraps libFuzzer's hook (print, then abort) so that symphonia's panics unwind to the decoder.
fn tolerate_symphonia_panics() {
    static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let abort = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
        let place = info.location().map(ToString::to_string).unwrap_or_default();
        if !place.contains("/symphonia") {
            return abort(info);
        }
        let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
        if seen.get_or_insert_with(HashSet::new).insert(place.clone()) {
            eprintln!("tolerated (the decoder turns it into an audio error): {info}");
        }
    }));
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        tolerate_symphonia_panics();
        let dir = tempfile::tempdir().unwrap();
        let paths = EXTENSIONS
            .iter()
            .map(|ext| dir.path().join(format!("media.{ext}")))
            .collect();
        // Tight limits: a header claiming hours must be refused, not decoded or reserved for.
        let decoder = MediaDecoder::with_limits(DecodeLimits {
            max_media: Duration::from_secs(600),
            max_decode_time: Duration::from_secs(10),
        });
        Fixture {
            _dir: dir,
            paths,
            decoder,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, media)) = data.split_first() else {
        return;
    };
    let fixture = fixture();
    let path = &fixture.paths[usize::from(pick) % fixture.paths.len()];
    std::fs::write(path, media).unwrap();
    if let Ok(audio) = fixture.decoder.decode(path) {
        assert!(audio.duration_s() <= 601.0, "{} s", audio.duration_s());
        assert!(
            audio.samples.iter().all(|s| s.is_finite()),
            "non-finite samples"
        );
    }
});
