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
    AudioCodecId, AudioCodecParameters, AudioDecoder, AudioDecoderOptions, CODEC_ID_NULL_AUDIO,
};
use symphonia::core::codecs::registry::CodecRegistry;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::well_known::FORMAT_ID_ISOMP4;
use symphonia::core::formats::{FormatOptions, FormatReader, Track};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::packet::Packet;
use symphonia::core::units::TimeBase;
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

/// The audio track chosen in a file.
struct Chosen {
    id: u32,
    params: AudioCodecParameters,
    time_base: Option<TimeBase>,
    /// 16 kHz samples to reserve for the output.
    reserve: usize,
}

/// Packets of the chosen track that decoded, and that were corrupt.
#[derive(Default)]
struct Counts {
    decoded: u64,
    corrupt: u64,
}

impl MediaDecoder {
    /// Opens and probes the file, picks its audio track, decodes that within the limits, and
    /// applies an mp4's edit list.
    fn decode_file(&self, path: &Path) -> Result<Vec<f32>, String> {
        let started = Instant::now();
        let mut format = open(path)?;
        let track = self.pick_track(format.as_ref())?;
        let is_mp4 = format.format_info().format == FORMAT_ID_ISOMP4;
        let mut decoder = self
            .codecs
            .make_audio_decoder(&track.params, &AudioDecoderOptions::default())
            .map_err(|e| {
                format!(
                    "cannot decode the {} audio: {e}",
                    self.codec_name(track.params.codec)
                )
            })?;
        let mut sink = Sink::with_capacity(track.reserve);
        let counts = self.decode_packets(
            format.as_mut(),
            decoder.as_mut(),
            &track,
            &mut sink,
            started,
        )?;
        let out = sink.finish()?;
        counts.check()?;
        if is_mp4 {
            self.apply_edits(path, track.id, out)
        } else {
            Ok(out)
        }
    }

    /// Decodes the chosen track's packets into `sink`, within the limits, until the media ends.
    fn decode_packets(
        &self,
        format: &mut dyn FormatReader,
        decoder: &mut dyn AudioDecoder,
        track: &Chosen,
        sink: &mut Sink,
        started: Instant,
    ) -> Result<Counts, String> {
        let mut counts = Counts::default();
        loop {
            self.check_limits(sink, started)?;
            let Some(packet) = next_packet(format, &counts, sink)? else {
                return Ok(counts);
            };
            if packet.track_id == track.id {
                self.decode_packet(decoder, &packet, track, sink, &mut counts)?;
            }
        }
    }

    /// An error once the decoded audio is longer, or decoding has taken longer, than allowed.
    fn check_limits(&self, sink: &Sink, started: Instant) -> Result<(), String> {
        let max_media_s = self.limits.max_media.as_secs_f64();
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
        Ok(())
    }

    /// Decodes one packet into `sink`; one that fails to decode becomes silence of its length.
    fn decode_packet(
        &self,
        decoder: &mut dyn AudioDecoder,
        packet: &Packet,
        track: &Chosen,
        sink: &mut Sink,
        counts: &mut Counts,
    ) -> Result<(), String> {
        match decoder.decode(packet) {
            Ok(buffer) => {
                if sink.push(&buffer)? {
                    counts.decoded += 1;
                }
            }
            Err(SymphoniaError::DecodeError(_) | SymphoniaError::IoError(_)) => {
                counts.corrupt += 1;
                if let Some(rate) = sink.rate().or(track.params.sample_rate) {
                    sink.push_silence(gap_frames(packet, track.time_base, rate), rate)?;
                }
            }
            // The stream's parameters change from the next packet on: nothing to keep here.
            Err(SymphoniaError::ResetRequired) => {}
            Err(e) => {
                return Err(format!(
                    "cannot decode the {} audio: {e}",
                    self.codec_name(track.params.codec)
                ));
            }
        }
        Ok(())
    }

    /// An mp4's edit list applied to its decoded audio, refused when the silence it asks for
    /// takes the media over the length limit.
    fn apply_edits(&self, path: &Path, track_id: u32, out: Vec<f32>) -> Result<Vec<f32>, String> {
        let Some(presentation) = mp4_edits::presentation(path, track_id) else {
            return Ok(out);
        };
        let max_media_s = self.limits.max_media.as_secs_f64();
        // Checked before the silence is made: a hostile edit list can ask for years of it.
        let seconds = presentation.delay_s + out.len() as f64 / f64::from(SAMPLE_RATE_HZ);
        if seconds > max_media_s {
            return Err(format!(
                "the media is {seconds:.0} s long, over the limit of {max_media_s:.0} s"
            ));
        }
        Ok(presentation.apply(out, SAMPLE_RATE_HZ))
    }

    /// The first audio track whose codec we decode, its parameters, and the number of 16 kHz
    /// samples to reserve for it; an error when its stated length is over the limit.
    fn pick_track(&self, format: &dyn FormatReader) -> Result<Chosen, String> {
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
        Ok(Chosen {
            id: track.id,
            params: params.clone(),
            // As packets name it: the first track with this id.
            time_base: format
                .tracks()
                .iter()
                .find(|t| t.id == track.id)
                .and_then(|t| t.time_base),
            reserve,
        })
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

impl Counts {
    /// An error when no packet decoded, or most did not.
    fn check(&self) -> Result<(), String> {
        let Self { decoded, corrupt } = *self;
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
        Ok(())
    }
}

/// Opens a media file and recognises its container.
fn open(path: &Path) -> Result<Box<dyn FormatReader>, String> {
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
    symphonia::default::get_probe()
        .probe(
            &hint,
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| probe_error(&e))
}

/// The next packet of any track; `None` at the end, and at a damaged end once some audio has
/// decoded.
fn next_packet(
    format: &mut dyn FormatReader,
    counts: &Counts,
    sink: &Sink,
) -> Result<Option<Packet>, String> {
    match format.next_packet() {
        Ok(packet) => Ok(packet),
        Err(e) if counts.decoded > 0 => {
            // A truncated or damaged end: keep what came before it.
            tracing::warn!(error = %e, kept_s = sink.seconds(), "media ends early");
            Ok(None)
        }
        Err(e) => Err(format!(
            "cannot read the audio packets (damaged or truncated file?): {e}"
        )),
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
fn gap_frames(packet: &Packet, time_base: Option<TimeBase>, rate: u32) -> usize {
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
