//! Hostile media, generated at test time with ffmpeg (installed by `make test`).

use std::path::Path;
use std::process::Command;

use crate::common::checked_stdout;

/// Runs ffmpeg quietly with `args`, writing `out` in `dir`.
fn ffmpeg(dir: &Path, args: &[&str], out: &str) {
    checked_stdout(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
            .args(args)
            .arg(dir.join(out)),
        "ffmpeg is installed (make test installs it)",
    );
}

/// Bytes from a fixed xorshift sequence: the same "corruption" on every run.
fn noise(len: usize) -> impl Iterator<Item = u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len).map(move |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state.to_le_bytes()[0]
    })
}

const TONE: [&str; 4] = ["-f", "lavfi", "-i", "sine=frequency=220:duration=3"];
const PICTURE: [&str; 4] = ["-f", "lavfi", "-i", "color=c=blue:s=64x64:r=10:d=2"];

/// Writes every hostile file into `dir`, under the names the cases use.
pub fn generate(dir: &Path) {
    // Two seconds of silence: what the cases that must succeed download.
    ffmpeg(
        dir,
        &["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "2"],
        "silence.wav",
    );
    std::fs::copy(dir.join("silence.wav"), dir.join("목소리 ✓.wav")).unwrap();
    std::fs::write(dir.join("empty.mp4"), b"").unwrap();

    // An mp4 cut at 60%: the index (at the end, ffmpeg's default) is gone.
    ffmpeg(dir, &[&TONE[..], &["-c:a", "aac"]].concat(), "whole.mp4");
    let whole = std::fs::read(dir.join("whole.mp4")).unwrap();
    std::fs::write(dir.join("truncated.mp4"), &whole[..whole.len() * 6 / 10]).unwrap();

    ffmpeg(
        dir,
        &[&PICTURE[..], &["-c:v", "mpeg4"]].concat(),
        "no-audio.mp4",
    );
    ffmpeg(
        dir,
        &[&PICTURE[..], &["-c:v", "mpeg4"]].concat(),
        "video-only.mkv",
    );

    // AAC whose frames are noise: the container (index first) is intact, the audio is not.
    ffmpeg(
        dir,
        &[&TONE[..], &["-c:a", "aac", "-movflags", "+faststart"]].concat(),
        "faststart.mp4",
    );
    let mut mp4 = std::fs::read(dir.join("faststart.mp4")).unwrap();
    let payload = mp4.windows(4).position(|w| w == b"mdat").unwrap() + 4;
    let len = mp4.len() - payload;
    mp4[payload..].copy_from_slice(&noise(len).collect::<Vec<_>>());
    std::fs::write(dir.join("corrupt-aac.mp4"), mp4).unwrap();

    // ADTS AAC: every frame keeps its 7-byte header, its payload is noise.
    ffmpeg(dir, &[&TONE[..], &["-c:a", "aac"]].concat(), "clean.aac");
    let mut adts = std::fs::read(dir.join("clean.aac")).unwrap();
    let mut at = 0;
    let mut fill = noise(adts.len());
    while at + 7 <= adts.len() && adts[at] == 0xff && adts[at + 1] & 0xf6 == 0xf0 {
        let frame = (usize::from(adts[at + 3] & 3) << 11)
            | (usize::from(adts[at + 4]) << 3)
            | usize::from(adts[at + 5] >> 5);
        let end = (at + frame).min(adts.len());
        for byte in &mut adts[at + 7..end] {
            *byte = fill.next().unwrap();
        }
        at += frame.max(7);
    }
    assert!(at > adts.len() / 2, "ADTS frames were found and corrupted");
    std::fs::write(dir.join("corrupt.aac"), adts).unwrap();

    // Twenty minutes of silence, cheaply: the suite's server allows ten. The mp3 states its
    // length up front; Matroska (as read here) does not, so it is refused while decoding.
    let long_silence = ["-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "1200"];
    ffmpeg(
        dir,
        &[&long_silence[..], &["-c:a", "libmp3lame", "-b:a", "8k"]].concat(),
        "long-silence.mp3",
    );
    ffmpeg(
        dir,
        &[&long_silence[..], &["-c:a", "libopus", "-b:a", "6k"]].concat(),
        "long-silence.mkv",
    );
}
