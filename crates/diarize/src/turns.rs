//! From clustered windows to speaker turns, refined at the boundaries.
//!
//! Windows overlap (1.6 s long, a fraction of that apart), so each 10 ms frame is seen by several.
//! A frame goes to the speaker whose centroid its covering windows resemble most, each window
//! weighted by a sine taper so that the windows centred near the frame count most. Runs shorter
//! than the minimum turn are absorbed by a neighbour (never a speaker's last run, so a requested
//! count survives). A change of speaker then moves to the quietest moment within reach, since
//! people take turns at pauses.

use ecg_core::audio::TimeSpan;
use ecg_core::stages::SpeakerTurn;

use crate::encoder::{Embedding, similarity};

/// Seconds per mel frame.
pub const FRAME_S: f64 = 0.01;

/// A speech region and its mel frames.
#[derive(Clone, Debug)]
pub struct Region {
    pub span: TimeSpan,
    pub frames: usize,
    /// Each frame's energy (sum of its mel bands), for finding pauses.
    pub energy: Vec<f32>,
}

/// An embedded stretch of frames `start..start + len` of one region.
#[derive(Clone, Debug)]
pub struct Window {
    pub region: usize,
    pub start: usize,
    pub len: usize,
    pub embedding: Embedding,
}

impl Window {
    /// Whether the two windows hear some of the same frames.
    pub fn overlaps(&self, other: &Window) -> bool {
        self.region == other.region
            && self.start < other.start + other.len
            && other.start < self.start + self.len
    }
}

/// How turns are cleaned up, in frames.
#[derive(Clone, Copy, Debug)]
pub struct Refinement {
    pub min_turn: usize,
    pub snap: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    region: usize,
    start: usize,
    end: usize,
    speaker: usize,
}

impl Run {
    fn len(self) -> usize {
        self.end - self.start
    }
}

/// Turns covering every region; `windows` must cover every frame of every region.
pub fn speaker_turns(
    regions: &[Region],
    windows: &[Window],
    centroids: &[Embedding],
    refinement: Refinement,
) -> Vec<SpeakerTurn> {
    let k = centroids.len().max(1);
    let scores: Vec<Vec<f32>> = regions
        .iter()
        .enumerate()
        .map(|(r, region)| frame_scores(region.frames, windows, r, centroids))
        .collect();
    let mut runs = Vec::new();
    for (r, region) in regions.iter().enumerate() {
        let mut start = 0;
        for f in 1..=region.frames {
            let best = |f: usize| argmax(&scores[r][f * k..(f + 1) * k]);
            if f == region.frames || best(f) != best(start) {
                runs.push(Run {
                    region: r,
                    start,
                    end: f,
                    speaker: best(start),
                });
                start = f;
            }
        }
    }
    absorb_short_runs(&mut runs, &scores, k, refinement.min_turn);
    snap_to_pauses(&mut runs, regions, refinement.snap);
    runs.iter()
        .map(|run| {
            let span = regions[run.region].span;
            let at = |f: usize| {
                if f == regions[run.region].frames {
                    span.end_s
                } else {
                    (span.start_s + f as f64 * FRAME_S).min(span.end_s)
                }
            };
            SpeakerTurn {
                span: TimeSpan::new(at(run.start), at(run.end)),
                speaker: run.speaker,
            }
        })
        .collect()
}

/// Per frame, row-major `[frames, k]`: the taper-weighted similarity of the covering windows to
/// each centroid.
fn frame_scores(
    frames: usize,
    windows: &[Window],
    region: usize,
    centroids: &[Embedding],
) -> Vec<f32> {
    let k = centroids.len().max(1);
    let mut scores = vec![0f32; frames * k];
    for w in windows.iter().filter(|w| w.region == region) {
        let sims: Vec<f32> = centroids
            .iter()
            .map(|c| similarity(&w.embedding, c))
            .collect();
        for t in 0..w.len.min(frames.saturating_sub(w.start)) {
            let weight = (std::f32::consts::PI * (t as f32 + 0.5) / w.len as f32).sin();
            let row = &mut scores[(w.start + t) * k..(w.start + t + 1) * k];
            for (s, sim) in row.iter_mut().zip(&sims) {
                *s += weight * sim;
            }
        }
    }
    scores
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len())
        .max_by(|&a, &b| row[a].total_cmp(&row[b]))
        .unwrap_or(0)
}

/// Gives each run shorter than `min_turn` to the neighbour in its region that its frames resemble
/// more, shortest first, unless it is its speaker's last run.
fn absorb_short_runs(runs: &mut Vec<Run>, scores: &[Vec<f32>], k: usize, min_turn: usize) {
    loop {
        let runs_of =
            |speaker: usize, runs: &[Run]| runs.iter().filter(|r| r.speaker == speaker).count();
        let neighbours = |i: usize, runs: &[Run]| {
            let before = i
                .checked_sub(1)
                .filter(|&j| runs[j].region == runs[i].region);
            let after = Some(i + 1).filter(|&j| j < runs.len() && runs[j].region == runs[i].region);
            (before, after)
        };
        let candidate = (0..runs.len())
            .filter(|&i| runs[i].len() < min_turn && runs_of(runs[i].speaker, runs) > 1)
            .filter(|&i| neighbours(i, runs) != (None, None))
            .min_by_key(|&i| runs[i].len());
        let Some(i) = candidate else {
            return;
        };
        let run = runs[i];
        let support = |speaker: usize| -> f32 {
            (run.start..run.end)
                .map(|f| scores[run.region][f * k + speaker])
                .sum()
        };
        let (before, after) = neighbours(i, runs);
        let into = match (before, after) {
            (Some(b), Some(a)) if support(runs[a].speaker) > support(runs[b].speaker) => a,
            (Some(b), _) => b,
            (None, Some(a)) => a,
            (None, None) => return,
        };
        runs[i].speaker = runs[into].speaker;
        // Join the neighbours that now share a speaker.
        let mut merged: Vec<Run> = Vec::with_capacity(runs.len());
        for r in runs.drain(..) {
            match merged.last_mut() {
                Some(last) if last.region == r.region && last.speaker == r.speaker => {
                    last.end = r.end;
                }
                _ => merged.push(r),
            }
        }
        *runs = merged;
    }
}

/// Moves each change of speaker inside a region to the quietest frame (energy smoothed over
/// 50 ms) within `snap` frames, the nearest one on a tie, keeping both runs non-empty.
fn snap_to_pauses(runs: &mut [Run], regions: &[Region], snap: usize) {
    for i in 1..runs.len() {
        let (prev, next) = (runs[i - 1], runs[i]);
        if prev.region != next.region {
            continue;
        }
        let energy = &regions[prev.region].energy;
        let smoothed = |f: usize| -> f32 {
            let (lo, hi) = (f.saturating_sub(2), (f + 3).min(energy.len()));
            energy[lo..hi].iter().sum::<f32>() / (hi - lo).max(1) as f32
        };
        let boundary = next.start;
        let lo = (prev.start + 1).max(boundary.saturating_sub(snap));
        let hi = (next.end - 1)
            .min(boundary + snap)
            .min(energy.len().saturating_sub(1));
        let Some(best) = (lo..=hi).min_by(|&a, &b| {
            smoothed(a)
                .total_cmp(&smoothed(b))
                .then(a.abs_diff(boundary).cmp(&b.abs_diff(boundary)))
        }) else {
            continue;
        };
        runs[i - 1].end = best;
        runs[i].start = best;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIM: usize = 256;

    fn axis(i: usize) -> Embedding {
        let mut e = vec![0f32; DIM];
        e[i] = 1.0;
        e
    }

    const REFINE: Refinement = Refinement {
        min_turn: 50,
        snap: 40,
    };

    fn region(seconds: f64, energy: impl Fn(usize) -> f32) -> Region {
        let frames = (seconds / FRAME_S).round() as usize;
        Region {
            span: TimeSpan::new(10.0, 10.0 + seconds),
            frames,
            energy: (0..frames).map(energy).collect(),
        }
    }

    /// Windows of 160 frames every 50 over `frames`, the last one flush with the end; each takes
    /// the speaker of the majority of its frames.
    fn windows(frames: usize, speaker_at: impl Fn(usize) -> usize) -> Vec<Window> {
        let mut starts: Vec<usize> = (0..=frames - 160).step_by(50).collect();
        if starts.last() != Some(&(frames - 160)) {
            starts.push(frames - 160);
        }
        starts
            .into_iter()
            .map(|start| {
                let ones = (start..start + 160).filter(|&f| speaker_at(f) == 1).count();
                Window {
                    region: 0,
                    start,
                    len: 160,
                    embedding: axis(usize::from(ones > 80)),
                }
            })
            .collect()
    }

    #[test]
    fn a_change_lands_in_the_pause_between_speakers() {
        // Speaker 0 for 4 s, a pause at 4.0-4.3 s, speaker 1 for 4.7 s.
        let reg = region(9.0, |f| if (400..430).contains(&f) { 0.0 } else { 1.0 });
        let ws = windows(reg.frames, |f| usize::from(f >= 415));
        let turns = speaker_turns(&[reg], &ws, &[axis(0), axis(1)], REFINE);
        assert_eq!(turns.len(), 2, "{turns:?}");
        assert_eq!((turns[0].speaker, turns[1].speaker), (0, 1));
        assert!((14.0..=14.3).contains(&turns[0].span.end_s), "{turns:?}");
        assert!((turns[0].span.end_s - turns[1].span.start_s).abs() < 1e-9);
        assert!((turns[0].span.start_s - 10.0).abs() < 1e-9);
        assert!((turns[1].span.end_s - 19.0).abs() < 1e-9);
    }

    #[test]
    fn short_runs_are_absorbed_but_a_speakers_last_run_stays() {
        // Five frames, two speakers: alternating runs, all shorter than the minimum turn.
        let scores = vec![vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.4, 0.6, 0.4, 0.6]];
        let mut runs = vec![
            Run {
                region: 0,
                start: 0,
                end: 1,
                speaker: 0,
            },
            Run {
                region: 0,
                start: 1,
                end: 2,
                speaker: 1,
            },
            Run {
                region: 0,
                start: 2,
                end: 3,
                speaker: 0,
            },
            Run {
                region: 0,
                start: 3,
                end: 5,
                speaker: 1,
            },
        ];
        absorb_short_runs(&mut runs, &scores, 2, 3);
        // Everything merges but each speaker keeps a run.
        assert_eq!(runs.len(), 2, "{runs:?}");
        assert_ne!(runs[0].speaker, runs[1].speaker);
        assert_eq!((runs[0].start, runs[1].end), (0, 5));
    }
}
