//! Speaker clustering with an automatic count.
//!
//! 1. Spectral clustering of the windows' cosine affinities with the normalised maximum eigengap
//!    rule (NME-SC, Park et al. 2019): each row of the affinity keeps its `p` strongest
//!    neighbours; for each `p` the eigengaps of the graph Laplacian propose a count, and the `p`
//!    whose largest gap stands out most (relative to `p`) wins. One speaker is a valid answer:
//!    then the first gap (λ₂ − λ₁) is the largest.
//! 2. k-means on the sphere over all windows, from the spectral clusters' centroids.
//! 3. Clusters whose centroids are more alike than a calibrated similarity are one speaker: the
//!    eigengap sometimes splits one voice in two (most often a lone speaker, whose affinities
//!    have no cluster structure to find), and their centroids then stay far closer than two
//!    voices' do.
//!
//! Windows that share audio (overlapping windows of one region) are alike because they hear the
//! same sound, not only the same voice. Their affinity is left out of step 1: otherwise each
//! row's strongest neighbours are its overlapping windows, the graph falls apart into chains along
//! time, and a short clip's turns split into many "speakers", mid-sentence.
//!
//! The affinity matrix and its eigendecomposition grow with the square and cube of the number of
//! windows, so at most 600 evenly spaced windows (`MAX_SPECTRAL_POINTS`) enter step 1 and every
//! window enters step 2: the cost is then linear in the audio's length.

use faer::{Mat, Side};

use crate::encoder::{Embedding, similarity};

/// Windows in the spectral step at most (every ⌈n / this⌉-th window beyond).
const MAX_SPECTRAL_POINTS: usize = 600;
/// Neighbours each row keeps at least. With a few dozen windows a 5 % pruning would keep one or
/// two: the graph falls apart into fragments and each fragment looks like a speaker.
const MIN_NEIGHBOURS: usize = 5;
/// The pruning fractions tried by NME-SC.
const PRUNING: [f64; 10] = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5];
/// k-means rounds at most (they stop when nothing moves).
const KMEANS_ROUNDS: usize = 30;

/// How many speakers are allowed; `min == max` when the count is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub min: usize,
    pub max: usize,
}

impl Bounds {
    fn exact(self) -> bool {
        self.min == self.max
    }
}

/// Each point's speaker (0..k) and each speaker's centroid (unit length).
#[derive(Clone, Debug)]
pub struct Clusters {
    pub labels: Vec<usize>,
    pub centroids: Vec<Embedding>,
}

/// Clusters `points` into a number of speakers within `bounds` (clamped to the number of points).
/// Without an exact count, clusters whose centroids are more alike than `merge_similarity` merge.
/// `shares_audio(i, j)` says whether points `i` and `j` were embedded from overlapping audio.
pub fn cluster(
    points: &[Embedding],
    shares_audio: &dyn Fn(usize, usize) -> bool,
    bounds: Bounds,
    merge_similarity: f32,
) -> Clusters {
    let n = points.len();
    let max = bounds.max.clamp(1, n.max(1));
    let bounds = Bounds {
        min: bounds.min.clamp(1, max),
        max,
    };
    if n == 0 {
        return Clusters {
            labels: Vec::new(),
            centroids: Vec::new(),
        };
    }
    if bounds.max == 1 {
        return refine(points, vec![0; n], 1);
    }
    if bounds.min == n {
        // As many speakers as points: each point is one.
        return refine(points, (0..n).collect(), n);
    }
    let step = n.div_ceil(MAX_SPECTRAL_POINTS);
    let sample: Vec<Embedding> = points.iter().step_by(step).cloned().collect();
    let (sample_labels, k) = spectral(&sample, &|i, j| shares_audio(i * step, j * step), bounds);
    // Should the eigendecomposition fail, the bounds still hold.
    let k = k.max(bounds.min);
    let seeds = centroids(&sample, &sample_labels, k);
    let labels = points.iter().map(|e| nearest(&seeds, e)).collect();
    let mut clusters = refine(points, labels, k);
    if !bounds.exact() {
        merge_alike(points, &mut clusters, bounds.min, merge_similarity);
    }
    clusters
}

/// NME-SC on a few hundred points: labels 0..k and k, within `bounds` (and below the points).
fn spectral(
    points: &[Embedding],
    shares_audio: &dyn Fn(usize, usize) -> bool,
    bounds: Bounds,
) -> (Vec<usize>, usize) {
    let m = points.len();
    let max = bounds.max.min(m - 1).max(1);
    let min = bounds.min.min(max);
    // A point heard apart from too few others keeps its overlapping neighbours (a clip of a few
    // seconds): without them it would stand alone in the graph and look like a speaker.
    let apart: Vec<usize> = (0..m)
        .map(|i| (0..m).filter(|&j| !shares_audio(i, j)).count())
        .collect();
    let masked = |i: usize, j: usize| {
        i != j && apart[i] >= MIN_NEIGHBOURS && apart[j] >= MIN_NEIGHBOURS && shares_audio(i, j)
    };
    let affinity = Mat::<f64>::from_fn(m, m, |i, j| {
        if masked(i, j) {
            0.0
        } else {
            f64::from(similarity(&points[i], &points[j]))
        }
    });
    // (score, p, k): the smaller the score, the clearer the gap.
    let mut best: Option<(f64, f64, usize)> = None;
    for p in PRUNING {
        let laplacian = laplacian(&affinity, p);
        let Ok(eigenvalues) = laplacian.self_adjoint_eigenvalues(Side::Lower) else {
            continue;
        };
        let largest = eigenvalues[m - 1];
        // k speakers: the gap between the k-th and (k+1)-th smallest eigenvalues.
        let Some((k, gap)) = (min..=max)
            .map(|k| (k, eigenvalues[k] - eigenvalues[k - 1]))
            .max_by(|a, b| a.1.total_cmp(&b.1))
        else {
            continue;
        };
        if largest <= 0.0 || gap <= 0.0 {
            continue;
        }
        let score = p / (gap / largest);
        if best.is_none_or(|(s, _, _)| score < s) {
            best = Some((score, p, k));
        }
    }
    let one = (vec![0; m], 1);
    let Some((_, p, k)) = best else {
        return one;
    };
    if k == 1 {
        return one;
    }
    let Ok(eigen) = laplacian(&affinity, p).self_adjoint_eigen(Side::Lower) else {
        return one;
    };
    // Each point's coordinates in the k eigenvectors of the smallest eigenvalues.
    let u = eigen.U();
    let rows: Vec<Vec<f64>> = (0..m)
        .map(|i| (0..k).map(|j| u[(i, j)]).collect())
        .collect();
    (kmeans(&rows, k), k)
}

/// L = D − A of the affinity after keeping, in each row, the `p` fraction of strongest
/// neighbours (then symmetrised); the pruning removes the weak cross-speaker links.
fn laplacian(affinity: &Mat<f64>, p: f64) -> Mat<f64> {
    let m = affinity.nrows();
    let keep = ((p * m as f64).ceil() as usize)
        .max(MIN_NEIGHBOURS)
        .clamp(1, m - 1);
    let mut pruned = Mat::<f64>::zeros(m, m);
    let mut order: Vec<usize> = Vec::with_capacity(m);
    for i in 0..m {
        order.clear();
        order.extend((0..m).filter(|&j| j != i));
        order.select_nth_unstable_by(keep - 1, |&a, &b| {
            affinity[(i, b)].total_cmp(&affinity[(i, a)])
        });
        for &j in &order[..keep] {
            pruned[(i, j)] += 0.5 * affinity[(i, j)].max(0.0);
            pruned[(j, i)] += 0.5 * affinity[(i, j)].max(0.0);
        }
    }
    let degree: Vec<f64> = (0..m)
        .map(|i| (0..m).map(|j| pruned[(i, j)]).sum())
        .collect();
    Mat::from_fn(m, m, |i, j| {
        if i == j {
            degree[i] - pruned[(i, j)]
        } else {
            -pruned[(i, j)]
        }
    })
}

/// Lloyd's k-means in the spectral coordinates, seeded deterministically by farthest points.
fn kmeans(rows: &[Vec<f64>], k: usize) -> Vec<usize> {
    let dist = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>();
    let dim = rows[0].len();
    let mean: Vec<f64> = (0..dim)
        .map(|d| rows.iter().map(|r| r[d]).sum::<f64>() / rows.len() as f64)
        .collect();
    let farthest_from = |centres: &[Vec<f64>]| {
        rows.iter()
            .max_by(|a, b| {
                let da = centres.iter().map(|c| dist(a, c)).fold(f64::MAX, f64::min);
                let db = centres.iter().map(|c| dist(b, c)).fold(f64::MAX, f64::min);
                da.total_cmp(&db)
            })
            .cloned()
            .unwrap_or_else(|| mean.clone())
    };
    let mut centres = vec![farthest_from(std::slice::from_ref(&mean))];
    while centres.len() < k {
        centres.push(farthest_from(&centres));
    }
    let mut labels = vec![usize::MAX; rows.len()];
    for _ in 0..KMEANS_ROUNDS {
        let mut moved = false;
        for (label, row) in labels.iter_mut().zip(rows) {
            let best = (0..k)
                .min_by(|&a, &b| dist(row, &centres[a]).total_cmp(&dist(row, &centres[b])))
                .unwrap_or(0);
            moved |= *label != best;
            *label = best;
        }
        if !moved {
            break;
        }
        for (c, centre) in centres.iter_mut().enumerate() {
            let members: Vec<&Vec<f64>> = rows
                .iter()
                .zip(&labels)
                .filter(|&(_, &l)| l == c)
                .map(|(r, _)| r)
                .collect();
            if !members.is_empty() {
                for (d, x) in centre.iter_mut().enumerate() {
                    *x = members.iter().map(|r| r[d]).sum::<f64>() / members.len() as f64;
                }
            }
        }
    }
    labels
}

/// The normalised mean embedding of each label 0..k (zero for an empty label).
fn centroids(points: &[Embedding], labels: &[usize], k: usize) -> Vec<Embedding> {
    let dim = points.first().map_or(0, Vec::len);
    let mut sums = vec![vec![0f32; dim]; k];
    for (e, &l) in points.iter().zip(labels) {
        for (s, x) in sums[l].iter_mut().zip(e) {
            *s += x;
        }
    }
    for s in &mut sums {
        let norm = s.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            s.iter_mut().for_each(|x| *x /= norm);
        }
    }
    sums
}

fn nearest(centroids: &[Embedding], e: &Embedding) -> usize {
    (0..centroids.len())
        .max_by(|&a, &b| similarity(&centroids[a], e).total_cmp(&similarity(&centroids[b], e)))
        .unwrap_or(0)
}

/// k-means on the sphere over every point from `labels`, keeping all k clusters non-empty.
fn refine(points: &[Embedding], mut labels: Vec<usize>, k: usize) -> Clusters {
    for _ in 0..KMEANS_ROUNDS {
        keep_every_cluster(points, &mut labels, k);
        let centres = centroids(points, &labels, k);
        let next: Vec<usize> = points.iter().map(|e| nearest(&centres, e)).collect();
        if next == labels {
            break;
        }
        labels = next;
    }
    keep_every_cluster(points, &mut labels, k);
    let centroids = centroids(points, &labels, k);
    Clusters { labels, centroids }
}

/// An emptied cluster takes the point least like its own cluster's centroid, so that a count that
/// was asked for is kept.
fn keep_every_cluster(points: &[Embedding], labels: &mut [usize], k: usize) {
    loop {
        let mut sizes = vec![0usize; k];
        labels.iter().for_each(|&l| sizes[l] += 1);
        let Some(empty) = sizes.iter().position(|&s| s == 0) else {
            return;
        };
        let centres = centroids(points, labels, k);
        let Some(worst) = (0..points.len())
            .filter(|&i| sizes[labels[i]] > 1)
            .min_by(|&a, &b| {
                similarity(&points[a], &centres[labels[a]])
                    .total_cmp(&similarity(&points[b], &centres[labels[b]]))
            })
        else {
            return;
        };
        labels[worst] = empty;
    }
}

/// Merges the most alike pair of clusters while their centroids' similarity exceeds `threshold`
/// and more than `min` clusters remain.
fn merge_alike(points: &[Embedding], clusters: &mut Clusters, min: usize, threshold: f32) {
    loop {
        let k = clusters.centroids.len();
        if k <= min {
            return;
        }
        let Some((a, b, sim)) = (0..k)
            .flat_map(|a| (a + 1..k).map(move |b| (a, b)))
            .map(|(a, b)| {
                let c = &clusters.centroids;
                (a, b, similarity(&c[a], &c[b]))
            })
            .max_by(|x, y| x.2.total_cmp(&y.2))
        else {
            return;
        };
        if sim < threshold {
            return;
        }
        // b joins a; the last label takes b's place so labels stay 0..k-1.
        let labels = clusters
            .labels
            .iter()
            .map(|&l| match l {
                l if l == b => a,
                l if l == k - 1 => b,
                l => l,
            })
            .collect();
        *clusters = refine(points, labels, k - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIM: usize = 256;

    /// Unit vectors near `axis` with a little deterministic spread, like one speaker's windows.
    fn voice(axis: usize, count: usize, spread: f32) -> Vec<Embedding> {
        (0..count)
            .map(|i| {
                let mut e = vec![0f32; DIM];
                e[axis] = 1.0;
                e[(axis + 1 + i % 7) % DIM] = spread * ((i % 5) as f32 - 2.0) / 2.0;
                e[(axis + 11 + i % 3) % DIM] = spread * ((i % 3) as f32 - 1.0);
                let n = e.iter().map(|x| x * x).sum::<f32>().sqrt();
                e.into_iter().map(|x| x / n).collect()
            })
            .collect()
    }

    /// Points embedded from separate stretches of audio.
    fn apart(_: usize, _: usize) -> bool {
        false
    }

    fn count(points: &[Embedding], bounds: Bounds) -> usize {
        cluster(points, &apart, bounds, 0.87).centroids.len()
    }

    const AUTO: Bounds = Bounds { min: 1, max: 10 };

    #[test]
    fn counts_well_separated_voices() {
        let one = voice(0, 40, 0.3);
        assert_eq!(count(&one, AUTO), 1);
        let two: Vec<Embedding> = [voice(0, 30, 0.3), voice(50, 25, 0.3)].concat();
        let c = cluster(&two, &apart, AUTO, 0.87);
        assert_eq!(c.centroids.len(), 2);
        assert!(c.labels[..30].iter().all(|&l| l == c.labels[0]));
        assert!(
            c.labels[30..]
                .iter()
                .all(|&l| l == c.labels[30] && l != c.labels[0])
        );
        let three: Vec<Embedding> =
            [voice(0, 20, 0.3), voice(50, 20, 0.3), voice(100, 20, 0.3)].concat();
        assert_eq!(count(&three, AUTO), 3);
    }

    #[test]
    fn bounds_are_honoured() {
        let one = voice(0, 40, 0.3);
        assert_eq!(count(&one, Bounds { min: 2, max: 2 }), 2);
        assert_eq!(count(&one, Bounds { min: 3, max: 5 }), 3);
        let three: Vec<Embedding> =
            [voice(0, 20, 0.3), voice(50, 20, 0.3), voice(100, 20, 0.3)].concat();
        assert_eq!(count(&three, Bounds { min: 1, max: 2 }), 2);
        assert_eq!(count(&three, Bounds { min: 4, max: 4 }), 4);
        // More speakers than points cannot be: each point is one.
        assert_eq!(count(&three[..2], Bounds { min: 3, max: 3 }), 2);
        assert!(cluster(&[], &apart, AUTO, 0.87).labels.is_empty());
    }

    #[test]
    fn shared_audio_does_not_split_a_voice() {
        // One voice heard in runs of four overlapping windows: a run's windows nearly alike (the
        // same sound), separate runs only as alike as one voice's separate sentences are (≈ 0.75).
        let mut seed = 0x9e37_79b9_u32;
        let mut noise = move |scale: f32| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            scale * (seed as f32 / u32::MAX as f32 - 0.5)
        };
        let unit = |e: [f32; DIM]| -> Embedding {
            let n = e.iter().map(|x| x * x).sum::<f32>().sqrt();
            e.iter().map(|x| x / n).collect()
        };
        let mut points = Vec::new();
        for _ in 0..12 {
            let mut run = [0f32; DIM];
            run[0] = 1.0;
            run.iter_mut().for_each(|x| *x += noise(0.13));
            for _ in 0..4 {
                points.push(unit(run.map(|x| x + noise(0.02))));
            }
        }
        let same_run = |i: usize, j: usize| i / 4 == j / 4;
        let found = |shares: &dyn Fn(usize, usize) -> bool| {
            cluster(&points, shares, AUTO, 0.87).centroids.len()
        };
        assert_eq!(found(&same_run), 1);
        assert!(found(&apart) > 1, "the runs alone would look like speakers");
    }
}
