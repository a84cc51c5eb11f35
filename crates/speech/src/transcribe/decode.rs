//! Decoding one window: Whisper's parameters, its run over the samples, and each segment's text
//! tokens with their times and the numbers the guards read.

use std::sync::atomic::Ordering;

use ecg_core::error::StageError;
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperSegment, WhisperState, WhisperTokenData,
    WhisperTokenId,
};

use super::windows::{self, Window};
use super::words::Token;
use super::{ABANDONED, Failure, WhisperTranscriber};

/// One of Whisper's segments: its text tokens and the numbers the guards read.
pub(super) struct Decoded {
    pub tokens: Vec<Token>,
    pub no_speech_prob: f32,
    pub avg_logprob: f32,
}

fn centiseconds(t: i64) -> f64 {
    t.max(0) as f64 / 100.0
}

impl WhisperTranscriber {
    /// Runs Whisper on one window and returns its segments' text tokens.
    pub(super) fn decode(
        &self,
        context: &WhisperContext,
        state: &mut WhisperState,
        window: &Window,
        language: Option<&'static str>,
    ) -> Result<Vec<Decoded>, Failure> {
        let params = self.params(language);
        state.full(params, &window.samples).map_err(|e| match e {
            whisper_rs::WhisperError::NoSamples => {
                Failure::Other(StageError::Processing("an empty window".into()))
            }
            other => Failure::Resources(format!("Whisper failed: {other}")),
        })?;

        let eot = context.token_eot();
        let dtw = self.dtw.is_some();
        // With DTW a token starts where the one before it in the window was complete.
        let mut previous_end: Option<f64> = None;
        let mut out = Vec::new();
        for segment in state.as_iter() {
            out.push(read_segment(&segment, eot, dtw, &mut previous_end)?);
        }
        if window.samples.len() <= windows::WINDOW_SAMPLES {
            let p = self.no_speech_probability(context, state)?;
            for d in &mut out {
                d.no_speech_prob = p;
            }
        }
        Ok(out)
    }

    /// How every window is decoded.
    fn params(&self, language: Option<&'static str>) -> FullParams<'static, 'static> {
        let strategy = if self.beam_size > 1 {
            SamplingStrategy::BeamSearch {
                beam_size: i32::from(self.beam_size),
                patience: -1.0,
            }
        } else {
            SamplingStrategy::Greedy { best_of: 5 }
        };
        let mut params = FullParams::new(strategy);
        params.set_n_threads(i32::try_from(self.threads).unwrap_or(i32::MAX));
        params.set_language(language);
        params.set_translate(false);
        // Windows are unrelated stretches of speech: conditioning on the previous text only
        // carries errors and loops across them.
        params.set_no_context(true);
        // Timestamp tokens stay on: they let Whisper seek through a region longer than 30 s.
        params.set_single_segment(false);
        params.set_token_timestamps(true);
        params.set_suppress_blank(true);
        // Music notes, brackets and the like: what Whisper writes over non-speech.
        params.set_suppress_nst(true);
        params.set_temperature(0.0);
        params.set_temperature_inc(0.2);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        // A closure without captures: whisper-rs hands the callback its closure by address.
        params.set_abort_callback_safe(|| ABANDONED.load(Ordering::Relaxed));
        params
    }

    /// Whisper's no-speech probability: that of the no-speech token right after start-of-
    /// transcript, given the window just encoded. (whisper.cpp reads it after the language and
    /// task tokens, where it is always near zero.) A longer window is encoded in parts and
    /// keeps whisper.cpp's value.
    fn no_speech_probability(
        &self,
        context: &WhisperContext,
        state: &mut WhisperState,
    ) -> Result<f32, Failure> {
        state
            .decode(&[context.token_sot()], 0, self.threads)
            .map_err(|e| Failure::Resources(format!("Whisper failed: {e}")))?;
        let logits = state
            .get_logits()
            .map_err(|e| Failure::Other(StageError::Processing(format!("Whisper logits: {e}"))))?;
        let nosp = usize::try_from(context.token_nosp()).unwrap_or(usize::MAX);
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let total: f32 = logits.iter().map(|l| (l - max).exp()).sum();
        Ok(logits.get(nosp).map_or(0.0, |l| (l - max).exp() / total))
    }
}

/// One segment's text tokens, timed, with their mean log-probability.
fn read_segment(
    segment: &WhisperSegment<'_>,
    eot: WhisperTokenId,
    dtw: bool,
    previous_end: &mut Option<f64>,
) -> Result<Decoded, Failure> {
    let mut tokens = Vec::new();
    let mut logprob_sum = 0.0f32;
    for i in 0..segment.n_tokens() {
        let Some(token) = segment.get_token(i) else {
            continue;
        };
        // Everything from end-of-text on is special: timestamps, language, task.
        if token.token_id() >= eot {
            continue;
        }
        let data = token.token_data();
        let bytes = token.to_bytes().map_err(|e| {
            Failure::Other(StageError::Processing(format!("Whisper token text: {e}")))
        })?;
        logprob_sum += data.plog;
        let (start_s, end_s) = token_times(&data, dtw, previous_end);
        tokens.push(Token {
            bytes: bytes.to_vec(),
            probability: data.p,
            start_s,
            end_s,
        });
    }
    let avg_logprob = logprob_sum / tokens.len().max(1) as f32;
    Ok(Decoded {
        tokens,
        no_speech_prob: segment.no_speech_probability(),
        avg_logprob,
    })
}

/// A token's start and end in window time: with DTW it ends where the warping path reaches it
/// and starts where the token before it ended; else whisper.cpp's timestamp-token times.
fn token_times(data: &WhisperTokenData, dtw: bool, previous_end: &mut Option<f64>) -> (f64, f64) {
    // A pass of 0.14 s or less gets no DTW time (t_dtw −1, infra/whisper/patches.cmake):
    // its timestamp tokens place it.
    if dtw && data.t_dtw >= 0 {
        let end_s = centiseconds(data.t_dtw);
        let start_s = previous_end.unwrap_or(centiseconds(data.t0));
        *previous_end = Some(end_s);
        (start_s.min(end_s), end_s)
    } else {
        let end_s = centiseconds(data.t1);
        *previous_end = Some(end_s);
        (centiseconds(data.t0), end_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(t0: i64, t1: i64, t_dtw: i64) -> WhisperTokenData {
        WhisperTokenData {
            id: 0,
            tid: 0,
            p: 1.0,
            plog: 0.0,
            pt: 1.0,
            ptsum: 1.0,
            t0,
            t1,
            t_dtw,
            vlen: 0.0,
        }
    }

    #[test]
    fn a_token_without_a_dtw_time_keeps_its_timestamp_times() {
        let mut previous_end = None;
        assert_eq!(
            token_times(&token(100, 150, 140), true, &mut previous_end),
            (1.0, 1.4)
        );
        // A short pass's token: no DTW time, so its timestamp tokens place it, and the next
        // token with a DTW time starts where it ended.
        assert_eq!(
            token_times(&token(150, 160, -1), true, &mut previous_end),
            (1.5, 1.6)
        );
        assert_eq!(
            token_times(&token(160, 200, 190), true, &mut previous_end),
            (1.6, 1.9)
        );
    }
}
