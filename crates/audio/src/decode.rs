//! Media file → 16 kHz mono, in-process, with symphonia and (for Opus) libopus.
//!
//! Why not shell out to ffmpeg: the service then needs no external program, every failure is a
//! typed error with a reason, and nothing is written to disk. Symphonia demuxes mp4/m4a, mp3,
//! wav, flac, ogg, mkv/webm, caf and aiff, and decodes AAC-LC, MP3, FLAC, Vorbis, ALAC and PCM;
//! Opus, what browsers record (webm/opus, ogg/opus), goes through the system libopus.
//!
//! Decoding streams: each packet is decoded, downmixed (mean of the channels) and fed to the
//! resampler, so memory holds the 16 kHz output and less than one resampler chunk at the
//! source rate, whatever the file's length.
//!
//! A packet that fails to decode is replaced by silence of its duration, so later words keep
//! their timestamps; a track where most packets fail, or none decodes, is an error. Encoder delay
//! and padding are trimmed where the container states them: mp3 LAME tags and ogg by symphonia,
//! mp4 edit lists by [`crate::mp4_edits`] (AAC priming would otherwise delay every timestamp by
//! 21–48 ms). AAC in mkv states no priming, so there the first 1024 samples stay.
//!
//! Limits ([`DecodeLimits`]): media longer than `max_media` is refused, by the length its
//! container states before anything is decoded, else as soon as the decoded audio passes it;
//! decoding that runs longer than `max_decode_time` is stopped. Both are audio errors.

use std::fs::File;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant};

use ecg_core::audio::{Audio, SAMPLE_RATE_HZ};
use ecg_core::error::StageError;
use ecg_core::stages::Decoder;
use symphonia::core::audio::GenericAudioBufferRef;
use symphonia::core::codecs::CodecParameters;
use symphonia::core::codecs::audio::well_known::{
    CODEC_ID_AC3, CODEC_ID_DCA, CODEC_ID_EAC3, CODEC_ID_SPEEX, CODEC_ID_TRUEHD, CODEC_ID_WMA,
};
use symphonia::core::codecs::audio::{
    AudioCodecId, AudioCodecParameters, AudioDecoderOptions, CODEC_ID_NULL_AUDIO,
};
use symphonia::core::codecs::registry::CodecRegistry;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::well_known::FORMAT_ID_ISOMP4;
use symphonia::core::formats::{FormatOptions, FormatReader, Track};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::packet::Packet;
use symphonia_adapter_libopus::OpusDecoder;

use crate::mp4_edits;
use crate::resample::To16k;

/// Longest stretch of silence that stands in for one undecodable packet: real packets hold
/// milliseconds, so a longer stated duration is itself corrupt.
const MAX_PACKET_GAP_S: f64 = 1.0;
/// What one decode may cost; past either limit the media is refused as an audio error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Longer media is refused (`ECG_MAX_MEDIA_SECONDS`). Also caps the output reserved up front
    /// from the container's stated length, so a lying header cannot make us reserve more.
    pub max_media: Duration,
    /// Decoding is stopped after this long (`ECG_MAX_DECODE_SECONDS`): a pathological file must
    /// not hold a worker for ever.
    pub max_decode_time: Duration,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_media: Duration::from_secs(4 * 3600),
            max_decode_time: Duration::from_secs(30 * 60),
        }
    }
}

/// Decodes the first decodable audio track of any media file that symphonia can demux.
pub struct MediaDecoder {
    codecs: CodecRegistry,
    limits: DecodeLimits,
}

impl MediaDecoder {
    /// A decoder with the default limits.
    pub fn new() -> Self {
        Self::with_limits(DecodeLimits::default())
    }

    pub fn with_limits(limits: DecodeLimits) -> Self {
        let mut codecs = CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut codecs);
        codecs.register_audio_decoder::<OpusDecoder>();
        Self { codecs, limits }
    }
}

impl Default for MediaDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for MediaDecoder {
    fn decode(&self, media: &Path) -> Result<Audio, StageError> {
        // Demuxers and codecs parse hostile bytes, and one that panics (fuzzing found an integer
        // overflow in symphonia's WAV reader) fails this file as an audio error, not the stage.
        // Unwind safety: the panicking reader and decoder are this call's own, and dropped.
        std::panic::catch_unwind(AssertUnwindSafe(|| self.decode_file(media)))
            .unwrap_or_else(|panic| {
                let why = panic
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("no reason given");
                Err(format!("damaged media file: its decoder failed ({why})"))
            })
            .map(Audio::new)
            .map_err(StageError::Audio)
    }
}

impl MediaDecoder {
    fn decode_file(&self, path: &Path) -> Result<Vec<f32>, String> {
        let started = Instant::now();
        let max_media_s = self.limits.max_media.as_secs_f64();
        let file = File::open(path).map_err(|e| format!("cannot open the media file: {e}"))?;
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot read the media file: {e}"))?;
        if !meta.is_file() {
            return Err("the media path is not a file".to_owned());
        }
        if meta.len() == 0 {
            return Err("the media file is empty (0 bytes)".to_owned());
        }
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let stream = MediaSourceStream::new(Box::new(file), Default::default());
        let mut format = symphonia::default::get_probe()
            .probe(
                &hint,
                stream,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|e| probe_error(&e))?;
        let (track_id, params, reserve) = self.pick_track(format.as_ref())?;
        let is_mp4 = format.format_info().format == FORMAT_ID_ISOMP4;
        let mut decoder = self
            .codecs
            .make_audio_decoder(&params, &AudioDecoderOptions::default())
            .map_err(|e| {
                format!(
                    "cannot decode the {} audio: {e}",
                    self.codec_name(params.codec)
                )
            })?;
        let time_base = format
            .tracks()
            .iter()
            .find(|t| t.id == track_id)
            .and_then(|t| t.time_base);

        let mut sink = Sink::with_capacity(reserve);
        let (mut decoded, mut corrupt) = (0u64, 0u64);
        loop {
            if sink.seconds() > max_media_s {
                return Err(format!(
                    "the media is longer than the limit of {max_media_s:.0} s"
                ));
            }
            if started.elapsed() > self.limits.max_decode_time {
                return Err(format!(
                    "decoding took longer than the limit of {:.0} s",
                    self.limits.max_decode_time.as_secs_f64()
                ));
            }
            let packet = match format.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) => break,
                Err(e) if decoded > 0 => {
                    // A truncated or damaged end: keep what came before it.
                    tracing::warn!(error = %e, kept_s = sink.seconds(), "media ends early");
                    break;
                }
                Err(e) => {
                    return Err(format!(
                        "cannot read the audio packets (damaged or truncated file?): {e}"
                    ));
                }
            };
            if packet.track_id != track_id {
                continue;
            }
            match decoder.decode(&packet) {
                Ok(buffer) => {
                    if sink.push(&buffer)? {
                        decoded += 1;
                    }
                }
                Err(SymphoniaError::DecodeError(_) | SymphoniaError::IoError(_)) => {
                    corrupt += 1;
                    if let Some(rate) = sink.rate().or(params.sample_rate) {
                        sink.push_silence(gap_frames(&packet, time_base, rate), rate)?;
                    }
                }
                // The stream's parameters change from the next packet on: nothing to keep here.
                Err(SymphoniaError::ResetRequired) => {}
                Err(e) => {
                    return Err(format!(
                        "cannot decode the {} audio: {e}",
                        self.codec_name(params.codec)
                    ));
                }
            }
        }
        let mut out = sink.finish()?;
        if decoded == 0 {
            return Err(if corrupt > 0 {
                format!("no audio could be decoded: all {corrupt} packets are corrupt")
            } else {
                "the audio track holds no audio".to_owned()
            });
        }
        if corrupt > decoded {
            return Err(format!(
                "the audio track is mostly corrupt: {corrupt} of {} packets could not be decoded",
                corrupt + decoded
            ));
        }
        if corrupt > 0 {
            tracing::warn!(corrupt, decoded, "skipped corrupt audio packets");
        }
        if let Some(presentation) = is_mp4
            .then(|| mp4_edits::presentation(path, track_id))
            .flatten()
        {
            // Checked before the silence is made: a hostile edit list can ask for years of it.
            let seconds = presentation.delay_s + out.len() as f64 / f64::from(SAMPLE_RATE_HZ);
            if seconds > max_media_s {
                return Err(format!(
                    "the media is {seconds:.0} s long, over the limit of {max_media_s:.0} s"
                ));
            }
            out = presentation.apply(out, SAMPLE_RATE_HZ);
        }
        Ok(out)
    }

    /// The first audio track whose codec we decode, its parameters, and the number of 16 kHz
    /// samples to reserve for it; an error when its stated length is over the limit.
    fn pick_track(
        &self,
        format: &dyn FormatReader,
    ) -> Result<(u32, AudioCodecParameters, usize), String> {
        let audio: Vec<(&Track, &AudioCodecParameters)> = format
            .tracks()
            .iter()
            .filter_map(|t| match &t.codec_params {
                Some(CodecParameters::Audio(p)) => Some((t, p)),
                _ => None,
            })
            .collect();
        let Some(&(track, params)) = audio
            .iter()
            .find(|(_, p)| self.codecs.get_audio_decoder(p.codec).is_some())
        else {
            return Err(match audio.first() {
                None => format!(
                    "no audio track in the media ({} other track(s))",
                    format.tracks().len()
                ),
                Some((_, p)) => format!("unsupported audio codec: {}", self.codec_name(p.codec)),
            });
        };
        let max_s = self.limits.max_media.as_secs();
        let reserve = match (track.num_frames, params.sample_rate) {
            (Some(frames), Some(rate)) if rate > 0 => {
                let stated_s = frames / u64::from(rate);
                if stated_s > max_s {
                    return Err(format!(
                        "the media is {stated_s} s long, over the limit of {max_s} s"
                    ));
                }
                usize::try_from((stated_s + 1) * u64::from(SAMPLE_RATE_HZ)).unwrap_or(0)
            }
            _ => 0,
        };
        Ok((track.id, params.clone(), reserve))
    }

    /// A codec's name for error messages: the decoder's own name, or for codecs we cannot
    /// decode, the usual suspects in video files by name.
    fn codec_name(&self, codec: AudioCodecId) -> String {
        if let Some(registered) = self.codecs.get_audio_decoder(codec) {
            return registered.codec.info.short_name.to_owned();
        }
        let name = match codec {
            CODEC_ID_AC3 => "AC-3",
            CODEC_ID_EAC3 => "E-AC-3",
            CODEC_ID_DCA => "DTS",
            CODEC_ID_TRUEHD => "TrueHD",
            CODEC_ID_WMA => "WMA",
            CODEC_ID_SPEEX => "Speex",
            CODEC_ID_NULL_AUDIO => "unknown",
            _ => return format!("codec {codec}"),
        };
        name.to_owned()
    }
}

/// Decoded buffers → 16 kHz mono: downmix, then the resampler for the buffers' rate.
struct Sink {
    out: Vec<f32>,
    resampler: Option<To16k>,
    interleaved: Vec<f32>,
    mono: Vec<f32>,
}

impl Sink {
    fn with_capacity(samples: usize) -> Self {
        Self {
            out: Vec::with_capacity(samples),
            resampler: None,
            interleaved: Vec::new(),
            mono: Vec::new(),
        }
    }

    /// The rate of the buffers so far, `None` before the first.
    fn rate(&self) -> Option<u32> {
        self.resampler.as_ref().map(To16k::rate)
    }

    /// Seconds of output so far.
    fn seconds(&self) -> f64 {
        self.out.len() as f64 / f64::from(SAMPLE_RATE_HZ)
    }

    /// Adds a decoded buffer; `false` when it held no audio.
    fn push(&mut self, buffer: &GenericAudioBufferRef<'_>) -> Result<bool, String> {
        let channels = buffer.spec().channels().count();
        if channels == 0 || buffer.frames() == 0 {
            return Ok(false);
        }
        buffer.copy_to_vec_interleaved::<f32>(&mut self.interleaved);
        self.mono.clear();
        // Mean, not sum: a stereo file with the voice on both channels keeps its level.
        let scale = 1.0 / channels as f32;
        self.mono.extend(
            self.interleaved
                .chunks_exact(channels)
                .map(|frame| sane(frame.iter().sum::<f32>() * scale)),
        );
        self.feed_mono(buffer.spec().rate())?;
        Ok(true)
    }

    /// Adds `frames` of silence at `rate`.
    fn push_silence(&mut self, frames: usize, rate: u32) -> Result<(), String> {
        self.mono.clear();
        self.mono.resize(frames, 0.0);
        self.feed_mono(rate)
    }

    /// Resamples what `mono` holds, at `rate`, onto the output; a change of rate (a chained
    /// stream, a codec that switches) flushes the current resampler and starts another.
    fn feed_mono(&mut self, rate: u32) -> Result<(), String> {
        if self.resampler.as_ref().is_some_and(|r| r.rate() != rate)
            && let Some(previous) = self.resampler.take()
        {
            previous.finish(&mut self.out)?;
        }
        if rate == 0 {
            return Err("the audio track has no sample rate".to_owned());
        }
        let resampler = match &mut self.resampler {
            Some(current) => current,
            empty => empty.insert(To16k::new(rate)?),
        };
        resampler.push(&self.mono, &mut self.out)
    }

    fn finish(mut self) -> Result<Vec<f32>, String> {
        if let Some(resampler) = self.resampler.take() {
            resampler.finish(&mut self.out)?;
        }
        Ok(self.out)
    }
}

/// Float samples of a hostile file can be NaN, infinite or huge; the resampler's FFT turns any of
/// them into NaN and panics (found by fuzzing). Non-finite samples become silence, others are
/// clipped far above full scale, where no real recording goes.
fn sane(sample: f32) -> f32 {
    const MAX_SAMPLE: f32 = 8.0;
    if sample.is_finite() {
        sample.clamp(-MAX_SAMPLE, MAX_SAMPLE)
    } else {
        0.0
    }
}

/// Source frames of silence standing in for an undecodable packet: its stated duration, or
/// nothing when the container does not say.
fn gap_frames(
    packet: &Packet,
    time_base: Option<symphonia::core::units::TimeBase>,
    rate: u32,
) -> usize {
    let seconds = time_base
        .and_then(|tb| tb.calc_duration(packet.dur))
        .map_or(0.0, |t| t.as_secs_f64())
        .clamp(0.0, MAX_PACKET_GAP_S);
    // Non-negative and at most one second of frames, so the cast is exact.
    (seconds * f64::from(rate)).round() as usize
}

/// Why the container could not be opened, in words for people who sent a file.
fn probe_error(e: &SymphoniaError) -> String {
    match e {
        // The probe's own verdict: no container's signature anywhere near the start.
        SymphoniaError::Unsupported(what) if what.starts_with("core (probe)") => {
            "not a recognised media file: no known audio or video format found".to_owned()
        }
        SymphoniaError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "not a recognised media file: the data ends before any media was found".to_owned()
        }
        // A container was recognised but its header is broken, e.g. an mp4 cut before its index.
        other => format!("damaged or incomplete media file: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::process::Command;

    use super::*;
    use crate::dsp::level::rms_dbfs;
    use crate::dsp::yin::Yin;

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

    /// Runs ffmpeg quietly; test media only, never at run time.
    fn ffmpeg(args: &[&str]) {
        let output = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("ffmpeg is needed to make the test media ({e}): `make test` installs it")
            });
        assert!(
            output.status.success(),
            "ffmpeg {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
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

    /// Peak resident memory of this process in MiB (Linux), for the benchmark below.
    fn peak_rss_mib() -> Option<f64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// Decode speed of a 5-minute mp4 (44.1 kHz stereo AAC), then features of 1000 words cut
    /// from it. `cargo test --release -p ecg-audio -- --ignored --nocapture speed`
    #[test]
    #[ignore = "benchmark: run in release with --ignored --nocapture"]
    fn speed_of_a_five_minute_mp4_and_1000_words() {
        use crate::AcousticAnalyzer;
        use ecg_core::stages::FeatureExtractor;

        let dir = tempfile::tempdir().unwrap();
        let speech = dir.path().join("speech.wav");
        let text = "The quick brown fox jumps over the lazy dog. \
                    Speech analysis measures pitch, level and brightness of every word. "
            .repeat(4);
        let espeak = Command::new("espeak-ng")
            .args(["-v", "en", "-w", speech.to_str().unwrap(), &text])
            .status()
            .is_ok_and(|s| s.success());
        let source = if espeak {
            vec!["-stream_loop", "-1", "-i", speech.to_str().unwrap()]
        } else {
            vec!["-f", "lavfi", "-i", "sine=frequency=220:sample_rate=44100"]
        };
        let mp4 = dir.path().join("five-minutes.mp4");
        let mut args = source;
        args.extend([
            "-t", "300", "-ar", "44100", "-ac", "2", "-c:a", "aac", "-b:a", "128k",
        ]);
        args.push(mp4.to_str().unwrap());
        ffmpeg(&args);

        let rss_before = peak_rss_mib();
        let decoder = MediaDecoder::new();
        let started = std::time::Instant::now();
        let audio = decoder.decode(&mp4).unwrap();
        let decode_s = started.elapsed().as_secs_f64();
        let rss_after = peak_rss_mib();
        println!(
            "decode: {:.1} s of {} in {decode_s:.3} s ({:.0}x real time); \
             16 kHz output {:.1} MiB; peak RSS {rss_before:?} -> {rss_after:?} MiB",
            audio.duration_s(),
            if espeak {
                "espeak-ng speech"
            } else {
                "220 Hz tone"
            },
            audio.duration_s() / decode_s,
            (audio.samples.len() * 4) as f64 / (1024.0 * 1024.0),
        );

        // 1000 words of 0.4 s, every 0.29 s across the file.
        let analyzer = AcousticAnalyzer::new();
        let started = std::time::Instant::now();
        let mut voiced = 0;
        for i in 0..1_000 {
            let start = i as f64 * 0.29;
            let word = audio.slice(ecg_core::audio::TimeSpan::new(start, start + 0.4));
            if analyzer.measure(word).pitch_hz > 0.0 {
                voiced += 1;
            }
        }
        let features_s = started.elapsed().as_secs_f64();
        let per_word_ms = features_s * 1e3 / 1_000.0;
        println!(
            "features: 1000 words of 0.4 s in {features_s:.3} s ({per_word_ms:.3} ms/word, \
             {voiced} voiced)"
        );
    }
}
