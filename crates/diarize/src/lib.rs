//! Speaker diarization for the ECG Audio Analyzer: who speaks when, with the number of speakers
//! found automatically (one is a valid answer) or taken from the request's hint.
//!
//! [`SpeakerDiarizer`] implements [`ecg_core::stages::Diarizer`]. Inside the voice-activity
//! regions it:
//! 1. computes the speaker model's features: Resemblyzer's power mel ([`mel`]) for the GE2E
//!    encoder, Kaldi's log-mel fbank ([`fbank`]) for 80-band models,
//! 2. embeds 1.6 s windows every `hop` (shorter regions as one shorter window) with the speaker
//!    model through ONNX Runtime ([`encoder`]): by default CAM++ with 8-bit convolutions
//!    (`speaker_campplus.onnx`; the float graph is `speaker_campplus_float.onnx`), which runs
//!    each region once in chunks of up to 8 s and pools every window from the frames it
//!    covers, or Resemblyzer's GE2E encoder (`speaker_encoder.onnx`), or any standard
//!    speaker-embedding ONNX model `ECG_SPEAKER_MODEL` names, which embed each window on its own,
//!    in batches,
//! 3. clusters the windows: spectral clustering with an eigengap rule where voices form clear
//!    groups, else a count from score-normalised agglomerative clustering ([`mod@cluster`]),
//! 4. labels every 10 ms frame by the windows around it, absorbs too-short turns and moves each
//!    change of speaker to the nearest pause ([`turns`]).
//!
//! Both models are converted to ONNX by `make models` (`infra/models/campplus.py`, then
//! `quantize_campplus.py`; `infra/models/speaker_encoder.py`); each has its own
//! [`Calibration`]. ONNX Runtime is the process's one environment from [`ecg_models`].
//! Pure computation on local samples and files: nothing here speaks HTTP or knows of AWS.

pub mod cluster;
pub mod encoder;
pub mod fbank;
pub mod mel;
pub mod turns;

use std::path::PathBuf;
use std::time::Instant;

use ecg_core::audio::{Audio, TimeSpan};
use ecg_core::error::StageError;
use ecg_core::request::SpeakerHint;
use ecg_core::stages::{Diarizer, SpeakerTurn};
use ecg_models::model_dir;
use serde::{Deserialize, Serialize};

use crate::cluster::{Bounds, Clusters, Merging, cluster};
use crate::encoder::{Embedding, Features, RegionWindows, SpeakerEncoder};
use crate::fbank::FbankFrontend;
use crate::mel::MelFrontend;
use crate::turns::{FRAME_S, Refinement, Region, Window};

/// Frames per window: the 1.6 s partial utterances the encoder was trained on.
pub const WINDOW_FRAMES: usize = 160;
/// Frames a window needs to help shape the speakers' clusters (0.5 s).
const MIN_CLUSTERED_FRAMES: usize = 50;
/// The default model's file, which `make models` provisions in the model directory.
const MODEL_FILE: &str = "speaker_campplus.onnx";

/// A speaker model's settings for telling voices apart, measured on real voices (the AMI meeting
/// excerpts of `make testdata`, wideband and over a phone line, and seven readers of telephone
/// prompts, alone and in pairs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Calibration {
    /// Milliseconds between window starts.
    pub hop_ms: u32,
    pub merging: Merging,
}

impl Calibration {
    /// CAM++ (3D-Speaker, 192 dimensions), and the default for every 80-band fbank model. One
    /// reader's 30-second stretches split by 2-means score 0.72 to 0.92 (median 0.85), two women
    /// in turns 0.38 (median; highest 0.79); 1.6 s windows of one voice score about 0.5 where
    /// GE2E's score 0.75, so small clusters' centroids are noisier and the leniency is twice
    /// GE2E's. A window every second: windows are pooled from frames computed once, so the hop
    /// costs nothing, but one every half second counted no better on the meeting excerpts (5 of 8
    /// wideband, 2 of 8 over a phone line, as with one a second) and split a pair of women.
    pub const CAMPPLUS: Self = Self {
        hop_ms: 1000,
        merging: Merging {
            similarity: 0.75,
            few_windows_leniency: 0.4,
        },
    };
    /// Resemblyzer's GE2E encoder. One reader's clusters of fifty to hundreds of windows score
    /// 0.89 to 0.98 (eight minutes of one woman: 0.915 at the lowest), two women in a telephone
    /// conversation 0.54 to 0.87 (the closest pair, 0.867 and 0.866 in two conversations, was one
    /// speaker at 0.86). The leniency is fitted so that one reader's clusters of 20 to 50 windows
    /// (0.89 to 0.90 alike) and one meeting participant's clusters of 5 to 30 (0.86 to 0.90)
    /// merge, and two women's clusters of 40 to 110 windows (0.83 to 0.87) do not.
    pub const GE2E: Self = Self {
        hop_ms: 500,
        merging: Merging {
            similarity: 0.89,
            few_windows_leniency: 0.2,
        },
    };

    fn of(features: Features) -> Self {
        match features {
            Features::Ge2eMel => Self::GE2E,
            Features::Fbank => Self::CAMPPLUS,
        }
    }
}

/// How speakers are told apart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiarizeConfig {
    /// The speaker-embedding ONNX model: `<model dir>/speaker_campplus.onnx` (CAM++) by default,
    /// `<model dir>/speaker_encoder.onnx` (GE2E), or a standard export taking 80-band log-mel
    /// fbank, `[batch, frames, 80]` or `[batch, 80, frames]`, and returning `[batch, dim]`; a
    /// second input `pooling [windows, chunks, frames]` says it pools windows over chunks itself.
    pub model: Option<PathBuf>,
    /// ONNX Runtime threads for the encoder.
    pub threads: usize,
    /// Windows per encoder run (for a model that pools windows, chunks of about as many
    /// frames): larger batches use the CPU better, up to a point.
    pub batch: usize,
    /// Milliseconds between the starts of consecutive 1.6 s windows (100 to 1600); by default
    /// the model's [`Calibration`].
    pub hop_ms: Option<u32>,
    /// The most speakers found when the request gives no count or maximum.
    pub max_speakers: usize,
    /// Clusters whose centroids are at least this similar (cosine; lower for clusters of few
    /// windows, see [`cluster::cluster`]) are one speaker; by default the model's
    /// [`Calibration`]. A model other than the two `make models` provides has its own scale.
    pub merge_similarity: Option<f32>,
    /// Shorter turns are absorbed by a neighbour (a speaker's only turn is kept).
    pub min_turn_ms: u32,
    /// How far a change of speaker may move to reach a pause.
    pub snap_ms: u32,
}

impl Default for DiarizeConfig {
    fn default() -> Self {
        Self {
            model: None,
            threads: 2,
            batch: 32,
            hop_ms: None,
            max_speakers: 10,
            merge_similarity: None,
            min_turn_ms: 500,
            snap_ms: 400,
        }
    }
}

impl DiarizeConfig {
    /// The encoder file: the configured one, else the model directory's.
    pub fn model_path(&self) -> PathBuf {
        self.model
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| model_dir().join(MODEL_FILE))
    }
}

fn ms_to_frames(ms: u32) -> usize {
    (f64::from(ms) / 1000.0 / FRAME_S).round() as usize
}

/// The diarization stage: the encoder loads once and is shared by every job.
pub struct SpeakerDiarizer {
    encoder: SpeakerEncoder,
    mel: MelFrontend,
    fbank: FbankFrontend,
    config: DiarizeConfig,
    /// Frames between window starts (the hop is at most a window).
    hop_frames: usize,
    merging: Merging,
}

impl SpeakerDiarizer {
    pub fn new(config: DiarizeConfig) -> Result<Self, StageError> {
        let path = config.model_path();
        if !path.is_file() {
            return Err(StageError::ModelLoading(format!(
                "speaker encoder not found at {} (run `make models` or set ECG_SPEAKER_MODEL)",
                path.display()
            )));
        }
        let encoder = SpeakerEncoder::load(&path, config.threads, config.batch)?;
        let calibration = Calibration::of(encoder.features());
        let hop_ms = config.hop_ms.unwrap_or(calibration.hop_ms);
        let merging = Merging {
            similarity: config
                .merge_similarity
                .unwrap_or(calibration.merging.similarity),
            ..calibration.merging
        };
        Ok(Self {
            encoder,
            mel: MelFrontend::new(),
            fbank: FbankFrontend::new(),
            config,
            hop_frames: ms_to_frames(hop_ms).clamp(1, WINDOW_FRAMES),
            merging,
        })
    }

    /// The allowed speaker counts: exactly `num` when given, else `min..=max` with this stage's
    /// maximum standing in for a missing one.
    fn bounds(&self, hint: SpeakerHint) -> Bounds {
        if let Some(num) = hint.num {
            let num = usize::from(num);
            return Bounds { min: num, max: num };
        }
        let min = hint.min.map_or(1, usize::from);
        let max = hint.max.map_or(self.config.max_speakers, usize::from);
        Bounds {
            min,
            max: max.max(min),
        }
    }
}

impl SpeakerDiarizer {
    /// The model's feature frames `first..first + count` (row-major `[count, bands]`) and each
    /// frame's energy, for finding pauses.
    fn features(
        &self,
        audio: &Audio,
        gain: f32,
        first: usize,
        count: usize,
    ) -> (Vec<f32>, Vec<f32>) {
        match self.encoder.features() {
            Features::Ge2eMel => {
                let mels = self.mel.frames(&audio.samples, gain, first, count);
                let energy = mels
                    .chunks_exact(mel::N_MELS)
                    .map(|f| f.iter().sum())
                    .collect();
                (mels, energy)
            }
            Features::Fbank => {
                let bank = self.fbank.frames(&audio.samples, first, count);
                let energy = bank
                    .chunks_exact(fbank::N_BANDS)
                    .map(|f| f.iter().map(|v| v.exp()).sum())
                    .collect();
                (bank, energy)
            }
        }
    }
}

/// The speech regions cut into windows, with the features the encoder embeds.
struct Cut {
    regions: Vec<Region>,
    windows: Vec<Window>,
    /// Each region's feature frames, row-major `[frames, bands]`.
    features: Vec<Vec<f32>>,
}

impl SpeakerDiarizer {
    /// Cuts each speech region into windows every `hop` (a region shorter than a window is one
    /// window of its own length) and computes the frames' features and energy.
    fn cut(&self, audio: &Audio, spans: &[TimeSpan]) -> Cut {
        // Resemblyzer normalises the loudness of the speech it embeds, so measure the speech only.
        let gain = mel::volume_gain(spans.iter().map(|&s| audio.slice(s)));
        let mut cut = Cut {
            regions: Vec::with_capacity(spans.len()),
            windows: Vec::new(),
            features: Vec::with_capacity(spans.len()),
        };
        for (r, &span) in spans.iter().enumerate() {
            let first = (span.start_s / FRAME_S).round() as usize;
            let frames = ((span.end_s / FRAME_S).round() as usize)
                .saturating_sub(first)
                .max(1);
            let (features, energy) = self.features(audio, gain, first, frames);
            if frames >= WINDOW_FRAMES {
                for start in window_starts(frames, self.hop_frames) {
                    cut.windows.push(window(r, start, WINDOW_FRAMES));
                }
            } else {
                cut.windows.push(window(r, 0, frames));
            }
            cut.features.push(features);
            cut.regions.push(Region {
                span,
                frames,
                energy,
            });
        }
        cut
    }

    /// Embeds every window.
    fn embed(&self, cut: &mut Cut) -> Result<(), StageError> {
        let mut requests: Vec<RegionWindows<'_>> = cut
            .features
            .iter()
            .map(|features| RegionWindows {
                features,
                windows: Vec::new(),
            })
            .collect();
        for w in &cut.windows {
            requests[w.region].windows.push(w.start..w.start + w.len);
        }
        // Windows are cut region by region, so the answers come back in the windows' order.
        let embeddings = self.encoder.embed(&requests)?;
        for (w, e) in cut.windows.iter_mut().zip(embeddings) {
            w.embedding = e;
        }
        Ok(())
    }

    /// Groups the windows' embeddings into speakers, within the request's hint.
    fn cluster_windows(&self, windows: &[Window], hint: SpeakerHint) -> Clusters {
        // Windows under half a second hear too little to shape the clusters unless there is
        // nothing else; the half-second regions between them are often a meeting's quieter
        // participants' only words, so they count.
        let any_heard = windows.iter().any(|w| w.len >= MIN_CLUSTERED_FRAMES);
        let clustered: Vec<&Window> = windows
            .iter()
            .filter(|w| !any_heard || w.len >= MIN_CLUSTERED_FRAMES)
            .collect();
        let points: Vec<Embedding> = clustered.iter().map(|w| w.embedding.clone()).collect();
        let shares_audio = |i: usize, j: usize| clustered[i].overlaps(clustered[j]);
        cluster(&points, &shares_audio, self.bounds(hint), self.merging)
    }
}

impl Diarizer for SpeakerDiarizer {
    fn speaker_turns(
        &self,
        audio: &Audio,
        speech: &[TimeSpan],
        hint: SpeakerHint,
    ) -> Result<Vec<SpeakerTurn>, StageError> {
        let spans: Vec<TimeSpan> = speech
            .iter()
            .filter(|s| s.duration_s() > 0.0)
            .copied()
            .collect();
        if spans.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let mut cut = self.cut(audio, &spans);
        let features_done = Instant::now();
        self.embed(&mut cut)?;
        let embeddings_done = Instant::now();
        let clusters = self.cluster_windows(&cut.windows, hint);
        let refinement = Refinement {
            min_turn: ms_to_frames(self.config.min_turn_ms),
            snap: ms_to_frames(self.config.snap_ms),
        };
        let clustering_done = Instant::now();
        let turns =
            turns::speaker_turns(&cut.regions, &cut.windows, &clusters.centroids, refinement);
        tracing::debug!(
            windows = cut.windows.len(),
            speakers = clusters.centroids.len(),
            turns = turns.len(),
            features_ms = (features_done - started).as_millis(),
            embeddings_ms = (embeddings_done - features_done).as_millis(),
            clustering_ms = (clustering_done - embeddings_done).as_millis(),
            turns_ms = clustering_done.elapsed().as_millis(),
            "diarized"
        );
        Ok(turns)
    }

    fn readiness(&self) -> Result<String, String> {
        let model = self.config.model_path();
        let name = model.file_name().unwrap_or(model.as_os_str());
        Ok(format!("{} loaded", name.to_string_lossy()))
    }
}

fn window(region: usize, start: usize, len: usize) -> Window {
    Window {
        region,
        start,
        len,
        embedding: Vec::new(),
    }
}

/// Window starts every `hop` frames, the last one flush with the end so every frame is covered.
fn window_starts(frames: usize, hop: usize) -> Vec<usize> {
    let last = frames - WINDOW_FRAMES;
    let mut starts: Vec<usize> = (0..=last).step_by(hop).collect();
    if starts.last() != Some(&last) {
        starts.push(last);
    }
    starts
}
