//! A speaker-embedding model through ONNX Runtime: windows of feature frames in, one
//! embedding per window out, made unit length here.
//!
//! The input layout is read from the model's first input:
//! - 40 features a frame, `[batch, frames, 40]`: the GE2E encoder that `make models` converts
//!   from Resemblyzer (`speaker_encoder.onnx`), fed Resemblyzer's power mel ([`crate::mel`]);
//! - 80 features a frame, `[batch, frames, 80]` (CAM++ as `make models` converts it,
//!   `speaker_campplus.onnx`, and other WeSpeaker, 3D-Speaker exports) or
//!   `[batch, 80, frames]` (NeMo-style): Kaldi log-mel fbank ([`crate::fbank`]), mean-normalised
//!   over each window as those recipes do.
//!
//! The first output is the embedding, `[batch, dim]` with any `dim`.
//!
//! A model with a second input, `pooling [windows, chunks, frames]` (CAM++ as `make models`
//! converts it), pools windows itself: each speech region runs through it once, in chunks of up
//! to 8 s, each mean-normalised, and every window is pooled from the frames it covers, so
//! overlapping windows cost nothing extra.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;

use ecg_core::error::StageError;
use ecg_models::onnx_session;
use ort::session::{Session, SessionInputs};

use crate::fbank;
use crate::mel::N_MELS;

/// A speaker embedding: unit length (or all zero when the encoder saw nothing it could use).
pub type Embedding = Vec<f32>;

/// Frames per chunk a pooling model runs over at most (8 s): each frame hears more of its
/// speaker than in a 1.6 s window. On the AMI excerpts of `make testdata` over a phone line, pairs
/// of windows of one speaker and of two were told apart better (AUC 0.94 with 4 or 8 s chunks,
/// 0.92 with each window alone or 1.6 s chunks), and batches of long chunks run as fast per frame.
pub const CHUNK_FRAMES: usize = 800;
/// Chunk lengths are multiples of this (0.16 s), or a whole region shorter than one.
const CHUNK_STEP: usize = 16;

/// The features a model reads, known from its input's width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Features {
    /// Resemblyzer's 40-band power mel.
    Ge2eMel,
    /// Kaldi's 80-band log-mel filterbank.
    Fbank,
}

impl Features {
    pub fn bands(self) -> usize {
        match self {
            Self::Ge2eMel => N_MELS,
            Self::Fbank => fbank::N_BANDS,
        }
    }
}

/// Cosine similarity of two embeddings (they are unit length, so the dot product).
pub fn similarity(a: &Embedding, b: &Embedding) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The windows to embed in one speech region.
pub struct RegionWindows<'a> {
    /// The region's feature frames, row-major `[frames, bands]`.
    pub features: &'a [f32],
    /// Frame ranges within the region, each at most [`CHUNK_FRAMES`] long.
    pub windows: Vec<Range<usize>>,
}

impl RegionWindows<'_> {
    fn frames(&self, bands: usize) -> usize {
        self.features.len() / bands
    }
}

/// One ONNX session shared by every job.
pub struct SpeakerEncoder {
    /// `Session::run` needs `&mut`; jobs take turns, each running whole batches.
    session: Mutex<Session>,
    batch: usize,
    features: Features,
    /// `[batch, bands, frames]` rather than `[batch, frames, bands]`.
    bands_first: bool,
    input: String,
    /// The model's `pooling` input, when it pools windows itself.
    pooling: Option<String>,
    output: String,
}

/// A stretch of one region run as chunks of equal length, the last flush with its end, and
/// the windows (by their index in the request) pooled from it.
struct Span {
    region: usize,
    chunk_starts: Vec<usize>,
    chunk_len: usize,
    windows: Vec<(usize, Range<usize>)>,
}

impl Span {
    /// Chunk and position within it of a frame of the span.
    fn locate(&self, frame: usize) -> (usize, usize) {
        let first = self.chunk_starts[0];
        let chunk = ((frame - first) / self.chunk_len).min(self.chunk_starts.len() - 1);
        (chunk, frame - self.chunk_starts[chunk])
    }
}

impl SpeakerEncoder {
    pub fn load(path: &Path, threads: usize, batch: usize) -> Result<Self, StageError> {
        let session = onnx_session(path, Some(threads))?;
        let load = |e: &dyn std::fmt::Display| {
            StageError::ModelLoading(format!("cannot load {}: {e}", path.display()))
        };
        let (Some(input), Some(output)) = (session.inputs().first(), session.outputs().first())
        else {
            return Err(load(&"the model has no input or no output"));
        };
        let shape: Vec<i64> = input
            .dtype()
            .tensor_shape()
            .map(|s| s.to_vec())
            .unwrap_or_default();
        let width = |axis: usize| shape.get(axis).copied();
        let (features, bands_first) = match (shape.len(), width(1), width(2)) {
            (3, _, Some(40)) => (Features::Ge2eMel, false),
            (3, _, Some(80)) => (Features::Fbank, false),
            (3, Some(80), _) => (Features::Fbank, true),
            _ => {
                return Err(load(&format!(
                    "input `{}` has shape {shape:?}; supported: [batch, frames, 40] (GE2E power \
                     mel), [batch, frames, 80] or [batch, 80, frames] (log-mel fbank)",
                    input.name()
                )));
            }
        };
        let pooling = match session.inputs() {
            [_] => None,
            [_, pooling]
                if features == Features::Fbank
                    && !bands_first
                    && pooling.dtype().tensor_shape().map(|s| s.len()) == Some(3) =>
            {
                Some(pooling.name().to_owned())
            }
            _ => {
                return Err(load(
                    &"a second input must be `pooling [windows, chunks, frames]`, \
                     beside fbank frames [chunks, frames, 80]",
                ));
            }
        };
        let (input, output) = (input.name().to_owned(), output.name().to_owned());
        tracing::info!(
            model = %path.display(), ?features, bands_first, pools = pooling.is_some(),
            "speaker model loaded"
        );
        Ok(Self {
            session: Mutex::new(session),
            batch: batch.max(1),
            features,
            bands_first,
            input,
            pooling,
            output,
        })
    }

    /// The features this model reads.
    pub fn features(&self) -> Features {
        self.features
    }

    /// One embedding per window, the regions' windows in order.
    pub fn embed(&self, regions: &[RegionWindows<'_>]) -> Result<Vec<Embedding>, StageError> {
        let bands = self.features.bands();
        for region in regions {
            let frames = region.frames(bands);
            if region.features.len() != frames * bands
                || region
                    .windows
                    .iter()
                    .any(|w| w.is_empty() || w.end > frames || w.len() > CHUNK_FRAMES)
            {
                return Err(StageError::Processing(format!(
                    "speaker encoder: windows {:?} do not fit {} values of {bands} bands",
                    region.windows,
                    region.features.len()
                )));
            }
        }
        let mut out = vec![Embedding::new(); regions.iter().map(|r| r.windows.len()).sum()];
        match &self.pooling {
            Some(pooling) => self.embed_pooled(pooling, regions, &mut out)?,
            None => self.embed_each(regions, &mut out)?,
        }
        Ok(out)
    }

    /// Each window through the model on its own, windows of one length in batches.
    fn embed_each(
        &self,
        regions: &[RegionWindows<'_>],
        out: &mut [Embedding],
    ) -> Result<(), StageError> {
        let bands = self.features.bands();
        let mut by_len: BTreeMap<usize, Vec<(usize, &[f32])>> = BTreeMap::new();
        let windows = regions.iter().flat_map(|r| {
            r.windows
                .iter()
                .map(|w| &r.features[w.start * bands..w.end * bands])
        });
        for (i, frames) in windows.enumerate() {
            by_len
                .entry(frames.len() / bands)
                .or_default()
                .push((i, frames));
        }
        for (frames, windows) in by_len {
            for batch in windows.chunks(self.batch) {
                let mut data: Vec<f32> =
                    batch.iter().flat_map(|(_, w)| w.iter().copied()).collect();
                if self.features == Features::Fbank {
                    data.chunks_exact_mut(frames * bands)
                        .for_each(|w| subtract_band_means(w, bands));
                }
                let n = batch.len();
                let fbank = if self.bands_first {
                    let data = bands_first(&data, frames, bands);
                    self.tensor([n, bands, frames], data)?
                } else {
                    self.tensor([n, frames, bands], data)?
                };
                let embeddings = self.run(ort::inputs![self.input.as_str() => fbank], n)?;
                for ((i, _), e) in batch.iter().zip(embeddings) {
                    out[*i] = e;
                }
            }
        }
        Ok(())
    }

    /// Each region through the model once, in chunks; each window pooled from its frames.
    fn embed_pooled(
        &self,
        pooling: &str,
        regions: &[RegionWindows<'_>],
        out: &mut [Embedding],
    ) -> Result<(), StageError> {
        let bands = self.features.bands();
        // A batch is about as many frames as `batch` windows.
        let chunks_per_run = (self.batch * crate::WINDOW_FRAMES / CHUNK_FRAMES).max(1);
        let mut by_len: BTreeMap<usize, Vec<Span>> = BTreeMap::new();
        let mut first_window = 0;
        for (r, region) in regions.iter().enumerate() {
            for span in spans(
                r,
                region.frames(bands),
                &region.windows,
                first_window,
                chunks_per_run,
            ) {
                by_len.entry(span.chunk_len).or_default().push(span);
            }
            first_window += region.windows.len();
        }
        for (chunk_len, spans) in by_len {
            let mut runs: Vec<Vec<Span>> = Vec::new();
            for span in spans {
                match runs.last_mut() {
                    Some(run)
                        if run.iter().map(|s| s.chunk_starts.len()).sum::<usize>()
                            + span.chunk_starts.len()
                            <= chunks_per_run =>
                    {
                        run.push(span);
                    }
                    _ => runs.push(vec![span]),
                }
            }
            for run in runs {
                self.run_pooled(pooling, &run, chunk_len, regions, out)?;
            }
        }
        Ok(())
    }

    /// One model run over the spans' chunks, pooling their windows.
    fn run_pooled(
        &self,
        pooling_input: &str,
        spans: &[Span],
        chunk_len: usize,
        regions: &[RegionWindows<'_>],
        out: &mut [Embedding],
    ) -> Result<(), StageError> {
        let bands = self.features.bands();
        let chunks: usize = spans.iter().map(|s| s.chunk_starts.len()).sum();
        let windows: usize = spans.iter().map(|s| s.windows.len()).sum();
        let mut fbank = Vec::with_capacity(chunks * chunk_len * bands);
        let mut pooling = vec![0f32; windows * chunks * chunk_len];
        let mut ids = Vec::with_capacity(windows);
        let mut first_chunk = 0;
        for span in spans {
            let region = regions[span.region].features;
            for &start in &span.chunk_starts {
                let at = fbank.len();
                fbank.extend_from_slice(&region[start * bands..(start + chunk_len) * bands]);
                subtract_band_means(&mut fbank[at..], bands);
            }
            for (id, range) in &span.windows {
                let row = &mut pooling[ids.len() * chunks * chunk_len..][..chunks * chunk_len];
                for frame in range.clone() {
                    let (chunk, at) = span.locate(frame);
                    row[(first_chunk + chunk) * chunk_len + at] = 1.0;
                }
                ids.push(*id);
            }
            first_chunk += span.chunk_starts.len();
        }
        let fbank = self.tensor([chunks, chunk_len, bands], fbank)?;
        let pooling = self.tensor([windows, chunks, chunk_len], pooling)?;
        let embeddings = self.run(
            ort::inputs![self.input.as_str() => fbank, pooling_input => pooling],
            windows,
        )?;
        for (id, e) in ids.into_iter().zip(embeddings) {
            out[id] = e;
        }
        Ok(())
    }

    fn tensor<const N: usize>(
        &self,
        shape: [usize; N],
        data: Vec<f32>,
    ) -> Result<ort::value::Tensor<f32>, StageError> {
        ort::value::Tensor::from_array((shape, data))
            .map_err(|e| StageError::Processing(format!("speaker encoder: {e}")))
    }

    /// Runs the model and returns its `n` embeddings, unit length.
    fn run<'i, 'v: 'i>(
        &self,
        inputs: impl Into<SessionInputs<'i, 'v>>,
        n: usize,
    ) -> Result<Vec<Embedding>, StageError> {
        let fail = |e: ort::Error| StageError::Processing(format!("speaker encoder: {e}"));
        let mut session = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let outputs = session.run(inputs).map_err(fail)?;
        let (shape, values) = outputs[self.output.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(fail)?;
        let dim = values.len() / n.max(1);
        if shape.len() != 2 || dim == 0 || values.len() != n * dim {
            return Err(StageError::Processing(format!(
                "speaker encoder: output shape {shape:?}, expected [{n}, dim]"
            )));
        }
        Ok(values.chunks_exact(dim).map(unit).collect())
    }
}

/// The spans a region runs as: stretches holding whole windows, each up to `chunks_per_run`
/// chunks of equal length (consecutive stretches overlap by up to a window). Chunks are as long
/// as a span needs, rounded up to a multiple of [`CHUNK_STEP`] so that spans of different regions
/// share lengths and run in one batch; a region shorter than that is one chunk of its own length.
fn spans(
    region: usize,
    frames: usize,
    windows: &[Range<usize>],
    first_window: usize,
    chunks_per_run: usize,
) -> Vec<Span> {
    let mut sorted: Vec<(usize, Range<usize>)> =
        (first_window..).zip(windows.iter().cloned()).collect();
    sorted.sort_by_key(|(_, w)| (w.start, w.end));
    let mut spans = Vec::new();
    let mut rest = &sorted[..];
    while let Some((_, first)) = rest.first() {
        let limit = first.start + chunks_per_run * CHUNK_FRAMES;
        let taken = rest.iter().take_while(|(_, w)| w.end <= limit).count();
        let end = rest[..taken]
            .iter()
            .map(|(_, w)| w.end)
            .max()
            .unwrap_or(first.end);
        let count = (end - first.start).div_ceil(CHUNK_FRAMES);
        let chunk_len = (end - first.start)
            .div_ceil(count)
            .next_multiple_of(CHUNK_STEP)
            .min(CHUNK_FRAMES)
            .min(frames);
        // A span shorter than its chunk takes in the frames around it.
        let end = end.max(first.start + chunk_len).min(frames);
        let start = first.start.min(end - chunk_len);
        let mut chunk_starts: Vec<usize> = (start..end - chunk_len).step_by(chunk_len).collect();
        chunk_starts.push(end - chunk_len);
        spans.push(Span {
            region,
            chunk_starts,
            chunk_len,
            windows: rest[..taken].to_vec(),
        });
        rest = &rest[taken..];
    }
    spans
}

/// Kaldi-style mean normalisation: each band's mean over the frames is subtracted.
fn subtract_band_means(frames: &mut [f32], bands: usize) {
    let count = frames.len() / bands;
    for b in 0..bands {
        let mean = (0..count).map(|t| frames[t * bands + b]).sum::<f32>() / count as f32;
        (0..count).for_each(|t| frames[t * bands + b] -= mean);
    }
}

/// `[windows, frames, bands]` as `[windows, bands, frames]`.
fn bands_first(data: &[f32], frames: usize, bands: usize) -> Vec<f32> {
    let mut transposed = vec![0f32; data.len()];
    for (window, dst) in data
        .chunks_exact(frames * bands)
        .zip(transposed.chunks_exact_mut(frames * bands))
    {
        for t in 0..frames {
            for b in 0..bands {
                dst[b * frames + t] = window[t * bands + b];
            }
        }
    }
    transposed
}

/// The row scaled to unit length (all zero stays all zero).
fn unit(row: &[f32]) -> Embedding {
    let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        row.iter().map(|x| x / norm).collect()
    } else {
        row.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows as the stage cuts them: 1.6 s every `hop`, the last flush with the end; a region
    /// shorter than a window is one window.
    fn windows(frames: usize, hop: usize) -> Vec<Range<usize>> {
        if frames < crate::WINDOW_FRAMES {
            return std::iter::once(0..frames).collect();
        }
        crate::window_starts(frames, hop)
            .into_iter()
            .map(|s| s..s + crate::WINDOW_FRAMES)
            .collect()
    }

    #[test]
    fn spans_hold_whole_windows_in_few_chunks_inside_the_region() {
        for frames in [1, 50, 160, 333, 800, 801, 1700, 5000, 12_345] {
            for hop in [70, 100, 160] {
                for chunks_per_run in [1, 6] {
                    let windows = windows(frames, hop);
                    let spans = spans(0, frames, &windows, 10, chunks_per_run);
                    let mut seen: Vec<usize> = spans
                        .iter()
                        .flat_map(|s| s.windows.iter().map(|(id, _)| *id))
                        .collect();
                    seen.sort_unstable();
                    assert_eq!(seen, (10..10 + windows.len()).collect::<Vec<_>>());
                    for span in &spans {
                        let len = span.chunk_len;
                        assert!(len <= CHUNK_FRAMES && len <= frames, "{frames}: {len}");
                        assert!(len % CHUNK_STEP == 0 || len == frames, "{frames}: {len}");
                        assert!(span.chunk_starts.len() <= chunks_per_run, "{frames}");
                        assert!(span.chunk_starts.iter().all(|&s| s + len <= frames));
                        for (_, window) in &span.windows {
                            for frame in window.clone() {
                                let (chunk, at) = span.locate(frame);
                                assert!(at < len, "{frames}: frame {frame} at {at}");
                                assert_eq!(span.chunk_starts[chunk] + at, frame);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_region_costs_little_more_than_its_frames() {
        let windows = windows(5000, 100);
        let spans = spans(0, 5000, &windows, 0, 6);
        let computed: usize = spans
            .iter()
            .map(|s| s.chunk_starts.len() * s.chunk_len)
            .sum();
        assert!(computed < 5000 * 11 / 10, "{computed} frames for 5000");
    }
}
