//! Packing speech regions into recogniser windows, and mapping window time back to the audio.
//!
//! Whisper always encodes 30 s; a short clip is padded with silence and costs as much as a full
//! window. So regions are concatenated, with a short silence between them so that words of
//! different regions do not run together, until a window holds 30 s. Regions a short pause
//! apart are heard as one, pause included: Whisper learnt on continuous speech, and a sentence
//! cut from the one before it and from its own onset is misheard more often.

use ecg_core::audio::{Audio, SAMPLE_RATE_HZ, TimeSpan};

/// What Whisper encodes at once.
pub(super) const WINDOW_S: f64 = 30.0;
/// The same in samples: a longer window is decoded in several passes.
pub(super) const WINDOW_SAMPLES: usize = WINDOW_S as usize * SAMPLE_RATE_HZ as usize;
/// Frames, in seconds, over which the voice is looked for at a word's edges.
const VOICE_FRAME_S: f64 = 0.01;
/// A frame is silence below this share of its word's peak amplitude (-26 dB)…
const WORD_FLOOR: f32 = 0.05;
/// …or of its piece's peak (-40 dB).
const PIECE_FLOOR: f32 = 0.01;
/// What moving on to the next piece costs, in seconds of misplacement, between two words without
/// punctuation between them.
const UNMARKED_CROSSING_S: f64 = 0.5;
/// Silence between packed regions: long enough to read as a pause, short enough to waste little.
const GAP_S: f64 = 0.3;
/// Regions at most this far apart are heard as one, with the audio between them as it was:
/// pauses between sentences and turns of a conversation. Longer silences are cut out.
/// (faster-whisper keeps pauses under 2 s; on the benchmark's synthetic clips 1 s and 2 s gave
/// the same error rates, on its real voice 1 s did better.)
const PAUSE_KEPT_S: f64 = 1.0;
/// A stretch joined over pauses stops growing here, so that what Whisper holds at once (the
/// samples and their mel spectrogram, about 170 MB for half an hour) stays bounded on hours of
/// talk. Each cut costs a few words (a cut at 10 minutes: 76 → 85 errors on 20 minutes).
const MAX_STRETCH_S: f64 = 1800.0;

/// A speech region placed in a window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Piece {
    /// Where the region starts inside the window, in seconds.
    pub window_start_s: f64,
    /// The region in the original audio.
    pub source: TimeSpan,
    /// The region's loudest sample, the reference for silence.
    pub peak: f32,
}

fn peak(samples: &[f32]) -> f32 {
    samples.iter().fold(0f32, |m, s| m.max(s.abs()))
}

impl Piece {
    fn window_span(self) -> TimeSpan {
        TimeSpan::new(
            self.window_start_s,
            self.window_start_s + self.source.duration_s(),
        )
    }
}

/// Samples for one recogniser call and where they came from.
#[derive(Debug, Default)]
pub(super) struct Window {
    pub samples: Vec<f32>,
    pub pieces: Vec<Piece>,
}

impl Window {
    fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / f64::from(SAMPLE_RATE_HZ)
    }

    /// Seconds of a window span that lie on speech rather than on gaps or padding.
    pub fn speech_overlap_s(&self, span: TimeSpan) -> f64 {
        self.pieces
            .iter()
            .map(|p| p.window_span().overlap_s(span))
            .sum()
    }

    /// Assigns words, in order, to pieces. Whisper's times drift by up to about half a second,
    /// enough to put a sentence's last word into the next region, so the assignment is global:
    /// pieces never go backwards, each word lies as close to its piece as possible, and moving on
    /// to a later piece costs extra between words where nothing marks a pause.
    pub fn assign(&self, spans: &[TimeSpan], pause_before: &[bool]) -> Vec<usize> {
        let n = self.pieces.len();
        if n == 0 || spans.is_empty() {
            return vec![0; spans.len()];
        }
        let misplaced =
            |word: usize, piece: usize| self.pieces[piece].window_span().gap_s(spans[word]);
        let mut cost: Vec<f64> = (0..n).map(|p| misplaced(0, p)).collect();
        // came_from[i][p]: the piece of word i - 1 on the cheapest path that puts word i in p.
        let mut came_from = vec![vec![0; n]; spans.len()];
        for i in 1..spans.len() {
            let crossing = if pause_before[i] {
                0.0
            } else {
                UNMARKED_CROSSING_S
            };
            let mut earlier: Option<(f64, usize)> = None;
            let mut next = vec![0.0; n];
            for p in 0..n {
                let mut best = (cost[p], p);
                if let Some((c, q)) = earlier
                    && c + crossing < best.0
                {
                    best = (c + crossing, q);
                }
                next[p] = best.0 + misplaced(i, p);
                came_from[i][p] = best.1;
                if earlier.is_none_or(|(c, _)| cost[p] < c) {
                    earlier = Some((cost[p], p));
                }
            }
            cost = next;
        }
        let mut piece = (0..n)
            .min_by(|&a, &b| cost[a].total_cmp(&cost[b]))
            .unwrap_or(0);
        let mut assigned = vec![0; spans.len()];
        for i in (0..spans.len()).rev() {
            assigned[i] = piece;
            piece = came_from[i][piece];
        }
        assigned
    }

    /// Where a word goes inside its piece: on its voice. One timed outside the piece (in a gap or
    /// in the padding) or over silence takes the room its neighbours leave instead. The flag is
    /// false when no voice was found there either.
    pub fn place(&self, piece: usize, span: TimeSpan, room: TimeSpan) -> (TimeSpan, bool) {
        let bounds = self.pieces[piece].window_span();
        let clamp = |s: TimeSpan| {
            TimeSpan::new(
                s.start_s.clamp(bounds.start_s, bounds.end_s),
                s.end_s.clamp(bounds.start_s, bounds.end_s),
            )
        };
        let within = bounds.start_s <= span.start_s && span.end_s <= bounds.end_s;
        let on_piece = (within || bounds.overlap_s(span) > 0.0).then(|| clamp(span));
        let room = clamp(room);
        match on_piece
            .and_then(|s| self.voiced(piece, s))
            .or_else(|| self.voiced(piece, room))
        {
            Some(voiced) => (voiced, true),
            None => (room, false),
        }
    }

    /// A span without the silence at its edges, or `None` when it is all silence. Timestamps
    /// often stretch a word over the pause before or after it; the signal shows where the voice
    /// is. Silence is quiet next to the word's own peak or next to its piece's.
    fn voiced(&self, piece: usize, span: TimeSpan) -> Option<TimeSpan> {
        let rate = f64::from(SAMPLE_RATE_HZ);
        let frame = (VOICE_FRAME_S * rate) as usize;
        let first = (span.start_s * rate) as usize;
        let last = ((span.end_s * rate) as usize).min(self.samples.len());
        let levels: Vec<f32> = self
            .samples
            .get(first..last)?
            .chunks(frame)
            .map(peak)
            .collect();
        let word_peak = levels.iter().fold(0f32, |m, &l| m.max(l));
        let floor = (word_peak * WORD_FLOOR).max(self.pieces[piece].peak * PIECE_FLOOR);
        let voiced = |l: &f32| *l > floor;
        let a = levels.iter().position(voiced)?;
        let b = levels.iter().rposition(voiced)?;
        let at = |i: usize| (first + i * frame) as f64 / rate;
        Some(TimeSpan::new(at(a), at(b + 1).min(span.end_s)))
    }

    /// A window span mapped into the original audio, clamped to its piece's region.
    pub fn to_source(&self, piece: usize, span: TimeSpan) -> TimeSpan {
        let p = self.pieces[piece];
        let map = |t: f64| {
            (p.source.start_s + (t - p.window_start_s)).clamp(p.source.start_s, p.source.end_s)
        };
        TimeSpan::new(map(span.start_s), map(span.end_s))
    }
}

/// Sorted regions clamped to the audio, overlapping ones merged, and those at most
/// `join_within_s` apart joined while the stretch stays within `MAX_STRETCH_S`.
pub(super) fn merged(audio: &Audio, speech: &[TimeSpan], join_within_s: f64) -> Vec<TimeSpan> {
    let duration = audio.duration_s();
    let mut spans: Vec<TimeSpan> = speech
        .iter()
        .map(|s| TimeSpan::new(s.start_s.max(0.0), s.end_s.min(duration)))
        .filter(|s| s.duration_s() > 0.0)
        .collect();
    spans.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let mut merged: Vec<TimeSpan> = Vec::with_capacity(spans.len());
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.start_s <= last.end_s => last.end_s = last.end_s.max(span.end_s),
            Some(last)
                if span.start_s - last.end_s <= join_within_s
                    && span.end_s - last.start_s <= MAX_STRETCH_S =>
            {
                last.end_s = span.end_s;
            }
            _ => merged.push(span),
        }
    }
    merged
}

/// Greedy packing in time order, regions a short pause apart joined. A region is never split:
/// one longer than a window gets a window of its own, through which Whisper seeks by its own
/// timestamps.
pub(super) fn pack(audio: &Audio, speech: &[TimeSpan]) -> Vec<Window> {
    let gap = vec![0.0; (GAP_S * f64::from(SAMPLE_RATE_HZ)).round() as usize];
    let mut windows = Vec::new();
    let mut current = Window::default();
    for region in merged(audio, speech, PAUSE_KEPT_S) {
        if !current.pieces.is_empty()
            && current.duration_s() + GAP_S + region.duration_s() > WINDOW_S
        {
            windows.push(std::mem::take(&mut current));
        }
        if !current.pieces.is_empty() {
            current.samples.extend_from_slice(&gap);
        }
        let samples = audio.slice(region);
        current.pieces.push(Piece {
            window_start_s: current.duration_s(),
            source: region,
            peak: peak(samples),
        });
        current.samples.extend_from_slice(samples);
    }
    if !current.pieces.is_empty() {
        windows.push(current);
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio(seconds: f64) -> Audio {
        Audio::new(vec![0.1; (seconds * f64::from(SAMPLE_RATE_HZ)) as usize])
    }

    #[test]
    fn short_regions_share_a_window_with_gaps_between() {
        let a = audio(100.0);
        let w = pack(
            &a,
            &[
                TimeSpan::new(50.0, 52.0),
                TimeSpan::new(10.0, 12.5),
                TimeSpan::new(11.0, 13.0),
            ],
        );
        assert_eq!(w.len(), 1);
        let pieces = &w[0].pieces;
        assert_eq!(pieces.len(), 2, "overlapping regions merge");
        assert_eq!(pieces[0].source, TimeSpan::new(10.0, 13.0));
        assert!((pieces[1].window_start_s - 3.3).abs() < 1e-9);
        assert!((w[0].duration_s() - 5.3).abs() < 1e-3);
    }

    #[test]
    fn windows_hold_at_most_thirty_seconds_and_long_regions_stay_whole() {
        let a = audio(200.0);
        let w = pack(
            &a,
            &[
                TimeSpan::new(0.0, 20.0),
                TimeSpan::new(21.5, 30.0),
                TimeSpan::new(31.5, 40.0),
                TimeSpan::new(50.0, 95.0),
                TimeSpan::new(100.0, 101.0),
            ],
        );
        let lens: Vec<usize> = w.iter().map(|w| w.pieces.len()).collect();
        assert_eq!(lens, [2, 1, 1, 1]);
        assert!(w[0].duration_s() <= WINDOW_S);
        assert!((w[2].duration_s() - 45.0).abs() < 1e-3);
    }

    #[test]
    fn regions_a_short_pause_apart_are_heard_as_one() {
        let a = audio(100.0);
        let w = pack(
            &a,
            &[
                TimeSpan::new(10.0, 12.0),
                TimeSpan::new(12.6, 15.0),
                TimeSpan::new(15.9, 17.0),
                TimeSpan::new(20.0, 22.0),
            ],
        );
        let sources: Vec<TimeSpan> = w[0].pieces.iter().map(|p| p.source).collect();
        assert_eq!(
            sources,
            [TimeSpan::new(10.0, 17.0), TimeSpan::new(20.0, 22.0)]
        );
        assert!(
            (w[0].duration_s() - 9.3).abs() < 1e-3,
            "the pauses are kept, not the 3 s"
        );
    }

    #[test]
    fn a_stretch_joined_over_pauses_is_bounded() {
        let a = audio(2000.0);
        let speech: Vec<TimeSpan> = (0..2000)
            .map(|i| TimeSpan::new(f64::from(i), f64::from(i) + 0.5))
            .collect();
        let stretches = merged(&a, &speech, PAUSE_KEPT_S);
        assert_eq!(
            stretches,
            [TimeSpan::new(0.0, 1799.5), TimeSpan::new(1800.0, 1999.5)]
        );
    }

    #[test]
    fn words_are_placed_on_their_voice() {
        let mut samples = vec![0.0; 16_000 * 5];
        samples[4_000..8_000].fill(0.5);
        samples[16_000..30_000].fill(0.5);
        let w = Window {
            samples,
            pieces: vec![Piece {
                window_start_s: 0.0,
                source: TimeSpan::new(40.0, 42.0),
                peak: 0.5,
            }],
        };
        let anywhere = TimeSpan::new(0.0, 2.0);
        let close = |a: TimeSpan, b: (f64, f64)| {
            (a.start_s - b.0).abs() < 0.011 && (a.end_s - b.1).abs() < 0.011
        };
        // Silent edges are trimmed.
        let (placed, voiced) = w.place(0, TimeSpan::new(0.1, 0.9), anywhere);
        assert!(voiced && close(placed, (0.25, 0.5)), "{placed:?}");
        // Timed past the piece, or over silence: placed in the room after its neighbour.
        for timed in [TimeSpan::new(2.5, 2.6), TimeSpan::new(0.6, 0.9)] {
            let (placed, _) = w.place(0, timed, TimeSpan::new(1.5, 2.5));
            assert!(close(placed, (1.5, 1.875)), "{timed:?} → {placed:?}");
        }
        // No voice in the room either: the room, flagged.
        let (placed, voiced) = w.place(0, TimeSpan::new(0.6, 0.9), TimeSpan::new(0.55, 0.95));
        assert!(!voiced && close(placed, (0.55, 0.95)), "{placed:?}");
        // Overlapping the piece's end: clamped to it first.
        let (placed, _) = w.place(0, TimeSpan::new(1.5, 2.4), anywhere);
        assert!(close(placed, (1.5, 1.875)), "{placed:?}");
        let mapped = w.to_source(0, placed);
        assert!((mapped.start_s - 41.5).abs() < 0.011, "{mapped:?}");
    }

    #[test]
    fn a_late_sentence_end_stays_with_its_sentence() {
        let a = audio(100.0);
        let w = &pack(&a, &[TimeSpan::new(10.0, 12.0), TimeSpan::new(50.0, 52.0)])[0];
        // Pieces at 0–2 s and 2.3–4.3 s of the window. "end." was timed 0.1 s into the second
        // piece, but only its first word opens a new sentence.
        let spans = [
            TimeSpan::new(1.0, 1.5),
            TimeSpan::new(1.6, 1.7),
            TimeSpan::new(2.4, 2.45),
            TimeSpan::new(2.6, 3.0),
            TimeSpan::new(3.0, 3.5),
        ];
        let pauses = [false, false, false, true, false];
        assert_eq!(w.assign(&spans, &pauses), [0, 0, 0, 1, 1]);
        // Without any mark of a pause, the times decide.
        assert_eq!(w.assign(&spans, &[false; 5]), [0, 0, 1, 1, 1]);
    }

    #[test]
    fn window_times_map_back_inside_their_region() {
        let a = audio(100.0);
        let w = &pack(&a, &[TimeSpan::new(10.0, 12.0), TimeSpan::new(50.0, 52.0)])[0];
        let mapped = w.to_source(1, TimeSpan::new(2.1, 2.5));
        assert!((mapped.start_s - 50.0).abs() < 1e-9 && (mapped.end_s - 50.2).abs() < 1e-9);
        assert_eq!(
            w.to_source(1, TimeSpan::new(6.0, 7.0)),
            TimeSpan::new(52.0, 52.0)
        );
        assert!(w.speech_overlap_s(TimeSpan::new(6.0, 7.0)) < 1e-9);
    }
}
