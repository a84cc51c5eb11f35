//! An mp4 track's edit list: which part of the decoded samples is the presentation.
//!
//! AAC encoders put priming samples before the audio (1024 with ffmpeg's encoder, 2112 with
//! Apple's) and state, in the track's edit list (`moov/trak/edts/elst`), that presentation starts
//! after them; a track that starts later than the video gets an empty edit before it. symphonia's
//! mp4 reader parses edit lists but does not apply them, so without this every word of an mp4
//! would come 21–48 ms late. Only what timing needs is read: leading empty edits and the first
//! media edit (ISO/IEC 14496-12, 8.6.6); later edits, rarely written, are not applied.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// `moov` boxes larger than this are not read for their edit list; a two-hour video's is a few
/// MiB.
const MAX_MOOV_BYTES: u64 = 64 << 20;

/// The presentation of one track, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Presentation {
    /// Silence before the track's first sample is presented (leading empty edits).
    pub delay_s: f64,
    /// Decoded audio that is not presented, at the start (encoder priming).
    pub skip_s: f64,
    /// How much of the audio is presented after the skip; `None` for all of it.
    pub length_s: Option<f64>,
}

impl Presentation {
    /// `samples` at `rate` cut and shifted to this presentation. An edit list that would leave
    /// no audio at all is taken for a broken one and ignored.
    pub fn apply(&self, mut samples: Vec<f32>, rate: u32) -> Vec<f32> {
        let at_rate = |seconds: f64| (seconds * f64::from(rate)).round().max(0.0) as usize;
        let skip = at_rate(self.skip_s);
        let keep = self.length_s.map_or(usize::MAX, at_rate);
        if skip >= samples.len() || keep == 0 {
            tracing::warn!(?self, "the mp4 edit list leaves no audio; not applied");
            return samples;
        }
        samples.drain(..skip);
        samples.truncate(keep);
        let delay = at_rate(self.delay_s);
        if delay > 0 {
            samples.splice(0..0, std::iter::repeat_n(0.0, delay));
        }
        samples
    }
}

/// The presentation of track `track_id` (its `tkhd` id, which symphonia uses as the track id)
/// of the mp4 file at `path`; `None` when the file states no edit list for it, or one this
/// reader does not apply (a dwell or a rate other than 1), or cannot be read.
pub(crate) fn presentation(path: &Path, track_id: u32) -> Option<Presentation> {
    let moov = read_moov(path)?;
    let movie_timescale = timescale(child(&moov, b"mvhd")?)?;
    children(&moov)
        .filter(|(kind, _)| kind == b"trak")
        .find(|(_, trak)| child(trak, b"tkhd").and_then(tkhd_track_id) == Some(track_id))
        .and_then(|(_, trak)| {
            let elst = child(child(trak, b"edts")?, b"elst")?;
            let media_timescale = timescale(child(child(trak, b"mdia")?, b"mdhd")?)?;
            from_edits(&edits(elst)?, movie_timescale, media_timescale)
        })
}

/// One edit: its duration in the movie's timescale, where it starts in the media's (−1 for an
/// empty edit) and its rate's integer part.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Edit {
    segment_duration: u64,
    media_time: i64,
    rate: i16,
}

fn from_edits(edits: &[Edit], movie_timescale: u32, media_timescale: u32) -> Option<Presentation> {
    let movie_s = |units: u64| units as f64 / f64::from(movie_timescale);
    let delay_s = edits
        .iter()
        .take_while(|e| e.media_time == -1)
        .map(|e| movie_s(e.segment_duration))
        .sum();
    let first = edits.iter().find(|e| e.media_time != -1)?;
    if first.rate != 1 || first.media_time < 0 {
        return None;
    }
    Some(Presentation {
        delay_s,
        skip_s: first.media_time as f64 / f64::from(media_timescale),
        // A duration of 0 is written by fragmented files: the edit runs to the end.
        length_s: (first.segment_duration > 0).then(|| movie_s(first.segment_duration)),
    })
}

/// The body of the file's top-level `moov` box, found by skipping over the others (`mdat` may
/// come first and be gigabytes long).
fn read_moov(path: &Path) -> Option<Vec<u8>> {
    let mut file = File::open(path).ok()?;
    let file_len = file.metadata().ok()?.len();
    let mut at = 0u64;
    while at < file_len {
        file.seek(SeekFrom::Start(at)).ok()?;
        let mut head = [0u8; 16];
        let available = usize::try_from((file_len - at).min(16)).ok()?;
        file.read_exact(&mut head[..available]).ok()?;
        let (kind, header_len, size) = box_header(&head[..available], file_len - at)?;
        if &kind == b"moov" {
            let body_len = size - header_len;
            if body_len > MAX_MOOV_BYTES {
                return None;
            }
            file.seek(SeekFrom::Start(at + header_len)).ok()?;
            let mut body = vec![0u8; usize::try_from(body_len).ok()?];
            file.read_exact(&mut body).ok()?;
            return Some(body);
        }
        at += size;
    }
    None
}

/// A box header at the start of `bytes`, with `remaining` bytes from there to the end of the
/// enclosing box or file: its type, header length and total size; `None` when malformed.
fn box_header(bytes: &[u8], remaining: u64) -> Option<([u8; 4], u64, u64)> {
    let size32 = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?);
    let kind: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
    let (header_len, size) = match size32 {
        0 => (8, remaining),
        1 => (16, u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?)),
        n => (8, u64::from(n)),
    };
    (size >= header_len && size <= remaining).then_some((kind, header_len, size))
}

/// The boxes inside `bytes`, as (type, body); stops at the first malformed header.
fn children(bytes: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let (kind, header_len, size) = box_header(rest, rest.len() as u64)?;
        let (this, next) = rest.split_at(usize::try_from(size).ok()?);
        rest = next;
        Some((kind, &this[usize::try_from(header_len).ok()?..]))
    })
}

fn child<'a>(bytes: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(bytes)
        .find(|(k, _)| k == kind)
        .map(|(_, body)| body)
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// A full box's field after its creation and modification times (32-bit in version 0, 64-bit
/// in version 1): the timescale of `mvhd` and `mdhd`, the track id of `tkhd`.
fn after_times(body: &[u8]) -> Option<u32> {
    match body.first()? {
        0 => be_u32(body, 12),
        1 => be_u32(body, 20),
        _ => None,
    }
}

fn timescale(header_box: &[u8]) -> Option<u32> {
    after_times(header_box).filter(|&t| t > 0)
}

fn tkhd_track_id(tkhd: &[u8]) -> Option<u32> {
    after_times(tkhd)
}

fn edits(elst: &[u8]) -> Option<Vec<Edit>> {
    let version = *elst.first()?;
    let count = be_u32(elst, 4)? as usize;
    let entry_len = match version {
        0 => 12,
        1 => 20,
        _ => return None,
    };
    (0..count)
        .map(|i| {
            let at = 8 + i * entry_len;
            let (segment_duration, media_time, rate_at) = if version == 0 {
                let time = be_u32(elst, at + 4)? as i32;
                (u64::from(be_u32(elst, at)?), i64::from(time), at + 8)
            } else {
                (be_u64(elst, at)?, be_u64(elst, at + 8)? as i64, at + 16)
            };
            let rate = i16::from_be_bytes(elst.get(rate_at..rate_at + 2)?.try_into().ok()?);
            Some(Edit {
                segment_duration,
                media_time,
                rate,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(segment_duration: u64, media_time: i64) -> Edit {
        Edit {
            segment_duration,
            media_time,
            rate: 1,
        }
    }

    #[test]
    fn priming_is_skipped_and_padding_cut() {
        // ffmpeg's AAC in mp4: 2.5 s presented from media sample 1024 at 44.1 kHz.
        let p = from_edits(&[edit(2500, 1024)], 1000, 44_100).unwrap();
        assert_eq!(p.delay_s, 0.0);
        assert!((p.skip_s - 1024.0 / 44_100.0).abs() < 1e-12);
        assert_eq!(p.length_s, Some(2.5));
    }

    #[test]
    fn leading_empty_edits_delay_the_track() {
        let p = from_edits(&[edit(300, -1), edit(176, -1), edit(2524, 0)], 1000, 48_000).unwrap();
        assert!((p.delay_s - 0.476).abs() < 1e-12);
        assert_eq!(p.skip_s, 0.0);
    }

    #[test]
    fn what_is_not_applied_is_refused() {
        let dwell = Edit {
            rate: 0,
            ..edit(1000, 0)
        };
        assert_eq!(from_edits(&[dwell], 1000, 1000), None);
        assert_eq!(from_edits(&[edit(1000, -1)], 1000, 1000), None);
        assert_eq!(from_edits(&[], 1000, 1000), None);
        // Fragmented files: a zero duration runs to the end.
        assert_eq!(
            from_edits(&[edit(0, 0)], 1000, 1000).unwrap().length_s,
            None
        );
    }

    #[test]
    fn apply_cuts_and_shifts() {
        let samples: Vec<f32> = (0..10).map(|i| i as f32).collect();
        let p = Presentation {
            delay_s: 0.2,
            skip_s: 0.3,
            length_s: Some(0.5),
        };
        assert_eq!(
            p.apply(samples.clone(), 10),
            [0.0, 0.0, 3.0, 4.0, 5.0, 6.0, 7.0]
        );
        let everything = Presentation { skip_s: 5.0, ..p };
        assert_eq!(everything.apply(samples.clone(), 10), samples);
    }

    #[test]
    fn malformed_boxes_end_the_walk() {
        // A box claiming more bytes than there are, after a good one.
        let mut bytes = vec![0, 0, 0, 12, b'f', b'r', b'e', b'e', 1, 2, 3, 4];
        bytes.extend_from_slice(&[0, 0, 1, 0, b'm', b'o', b'o', b'v']);
        let kinds: Vec<[u8; 4]> = children(&bytes).map(|(k, _)| k).collect();
        assert_eq!(kinds, [*b"free"]);
        assert_eq!(box_header(&[0, 0, 0, 4, b'b', b'a', b'd', b'!'], 8), None);
    }
}
