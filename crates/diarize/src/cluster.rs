//! Speaker clustering with an automatic count, in two tiers.
//!
//! 1. **Clear structure**: spectral clustering of the windows' cosine affinities with the
//!    normalised maximum eigengap rule (NME-SC, Park et al. 2019): each row keeps its `p`
//!    strongest neighbours; for each `p` the eigengaps of the graph Laplacian propose a count, and
//!    the `p` whose largest gap stands out most (relative to `p`) wins. Then k-means on the sphere
//!    over all windows, clusters of too few windows dissolved, and clusters whose centroids are
//!    too alike merged. Where this finds two or more speakers it is the answer: distinct voices
//!    in separate turns (a call, an interview, read speech) form groups it cannot miss.
//! 2. **No clear structure** (the eigengap says one): voices in one room or on one line can be
//!    nearly as alike as one voice twice, and then the count comes from average-linkage
//!    clustering of score-normalised affinities (`normalised_scores`). A raw cosine means
//!    different things in different recordings (with GE2E, two women on one phone line score
//!    0.8 where a man and a woman in a studio score 0.5, and a far microphone lowers every
//!    score), so each pair's cosine is z-scored against both windows' similarities to the rest
//!    of the recording (symmetric S-norm), and two groups of windows are one speaker while their
//!    average score stays above `SAME_SPEAKER_SCORE`. For that count, spectral clustering
//!    proposes a second partition, and the one with the higher cosine silhouette wins: spectral
//!    clustering draws better borders between voices that each hold long stretches, the
//!    agglomerative grouping keeps a speaker who says little.
//!
//! In both tiers groups of fewer than `MIN_SPEAKER_WINDOWS` windows or `MIN_SPEAKER_SHARE`
//! of them are no speaker (a laugh, a cough, someone else's one word): their windows go to the
//! nearest speaker. Speakers whose centroids are more alike than the calibrated merge similarity
//! are one (a lone voice split by either tier). With GE2E, on the AMI training excerpts the
//! second tier raises the right counts from 2 to 5 of 8; on real readers the first tier keeps
//! counts exact. With CAM++ the first tier decides on every real recording we have.
//!
//! Windows that share audio (overlapping windows of one region) are alike because they hear the
//! same sound, not only the same voice. They are left out of each window's score statistics and
//! of the spectral affinities: otherwise each window's strongest neighbours are its overlapping
//! windows, the graph falls apart into chains along time, and a short clip's turns split into
//! many "speakers", mid-sentence.
//!
//! Both tiers grow with the square (or cube) of the number of windows, so at most 600 evenly
//! spaced windows (`MAX_SAMPLE`) enter them and every window enters k-means: the cost is then
//! linear in the audio's length.

use faer::{Mat, Side};
use kodama::{Method, linkage};

use crate::encoder::{Embedding, similarity};

/// Windows in the counting and spectral steps at most (every ⌈n / this⌉-th window beyond).
const MAX_SAMPLE: usize = 600;
/// Groups of windows whose average normalised score reaches this are one speaker. Calibrated on
/// real recordings (AMI meeting excerpts, real voices on telephone prompts) and synthetic voices:
/// counts hold from 0.5 to 0.6, split meeting participants below 0.5 (their scores sit lower)
/// and split a lone voice above 0.6.
const SAME_SPEAKER_SCORE: f64 = 0.55;
/// The fewest windows that make a speaker: about 2.5 s of speech at GE2E's hop of 0.5 s, 3.6 s at
/// CAM++'s 1 s.
const MIN_SPEAKER_WINDOWS: usize = 3;
/// The smallest share of the windows that makes a speaker in longer recordings, where a few
/// windows of a voice's odd moments (a laugh, a raised voice) would otherwise stand alone.
const MIN_SPEAKER_SHARE: f64 = 0.05;
/// Windows heard apart that a window's score statistics need; with fewer it uses all others.
const MIN_APART: usize = 3;
/// Neighbours each row keeps at least. With a few dozen windows a 5 % pruning would keep one or
/// two: the graph falls apart into fragments and each fragment looks like a speaker.
const MIN_NEIGHBOURS: usize = 5;
/// The pruning fractions tried by NME-SC.
const PRUNING: [f64; 10] = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5];
/// k-means rounds at most (they stop when nothing moves).
const KMEANS_ROUNDS: usize = 30;

/// When two clusters are one speaker: calibrated per speaker model, since each model has its own
/// scale of similarity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Merging {
    /// Clusters whose centroids are at least this similar (cosine) are one speaker.
    pub similarity: f32,
    /// How much lower the threshold is per 1/windows of the two clusters (see [`merge_alike`]):
    /// a centroid of few windows carries their noise.
    pub few_windows_leniency: f32,
}

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
/// Without an exact count, speakers whose centroids are as alike as `merging` says are one.
/// `shares_audio(i, j)` says whether points `i` and `j` were embedded from overlapping audio.
pub fn cluster(
    points: &[Embedding],
    shares_audio: &dyn Fn(usize, usize) -> bool,
    bounds: Bounds,
    merging: Merging,
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
    let step = n.div_ceil(MAX_SAMPLE);
    let sample: Vec<Embedding> = points.iter().step_by(step).cloned().collect();
    let sample_shares = |i: usize, j: usize| shares_audio(i * step, j * step);
    let spectral_partition = |bounds: Bounds| {
        let (labels, found) = spectral(&sample, &sample_shares, bounds);
        // Should the eigendecomposition fail, the bounds still hold.
        let k = found.max(bounds.min);
        let seeds = centroids(&sample, &labels, k);
        refine(
            points,
            points.iter().map(|e| nearest(&seeds, e)).collect(),
            k,
        )
    };
    let exactly = |k: usize| Bounds { min: k, max: k };
    if bounds.exact() {
        return spectral_partition(bounds);
    }
    let mut structured = spectral_partition(bounds);
    dissolve_small(
        points,
        &mut structured,
        bounds.min,
        min_speaker_windows(sample.len()) * step,
    );
    merge_alike(points, &mut structured, bounds.min, merging);
    if structured.centroids.len() > 1 {
        return structured;
    }
    let counted = count_speakers(points, &sample, &sample_shares, step, merging);
    let k = counted.centroids.len();
    if !(bounds.min..=bounds.max).contains(&k) {
        return spectral_partition(exactly(k.clamp(bounds.min, bounds.max)));
    }
    if k == 1 {
        return counted;
    }
    let spectral = spectral_partition(exactly(k));
    let sampled = |c: &Clusters| -> Vec<usize> { c.labels.iter().step_by(step).copied().collect() };
    if silhouette(&sample, &sampled(&spectral)) > silhouette(&sample, &sampled(&counted)) {
        spectral
    } else {
        counted
    }
}

/// The second tier's count: speakers as groups of score-normalised affinities (see the module's
/// documentation), over every point.
fn count_speakers(
    points: &[Embedding],
    sample: &[Embedding],
    shares_audio: &dyn Fn(usize, usize) -> bool,
    step: usize,
    merging: Merging,
) -> Clusters {
    let m = sample.len();
    let scores = normalised_scores(sample, shares_audio);
    let top = scores.iter().copied().fold(f64::MIN, f64::max);
    // Average linkage over dissimilarities `top − score`: the shift keeps them non-negative and
    // leaves every average's order unchanged.
    let mut condensed: Vec<f64> = scores.iter().map(|s| top - s).collect();
    let dendrogram = linkage(&mut condensed, m, Method::Average);
    let mut parent: Vec<usize> = (0..2 * m).collect();
    for (created, merge) in dendrogram.steps().iter().enumerate() {
        if merge.dissimilarity > top - SAME_SPEAKER_SCORE {
            break;
        }
        parent[merge.cluster1] = m + created;
        parent[merge.cluster2] = m + created;
    }
    let root = |mut c: usize| {
        while parent[c] != c {
            c = parent[c];
        }
        c
    };
    let roots: Vec<usize> = (0..m).map(root).collect();
    let min_windows = min_speaker_windows(m);
    let mut groups: Vec<(usize, usize)> = Vec::new(); // (root, windows)
    for &r in &roots {
        match groups.iter_mut().find(|(g, _)| *g == r) {
            Some((_, size)) => *size += 1,
            None => groups.push((r, 1)),
        }
    }
    let speakers: Vec<usize> = groups
        .iter()
        .filter(|&&(_, size)| size >= min_windows)
        .map(|&(r, _)| r)
        .collect();
    // The windows in no group that large seed one more speaker when there are enough of them: a
    // voice whose windows are too evenly alike to group. Should they be a grouped voice's, the
    // merge below joins them to it.
    let rest = speakers.len();
    let labels: Vec<usize> = roots
        .iter()
        .map(|r| speakers.iter().position(|s| s == r).unwrap_or(rest))
        .collect();
    let mut seeds = centroids(sample, &labels, rest + 1);
    if rest > 0 && labels.iter().filter(|&&l| l == rest).count() < min_windows {
        seeds.pop();
    }
    let all_labels = points.iter().map(|e| nearest(&seeds, e)).collect();
    let mut clusters = refine(points, all_labels, seeds.len());
    dissolve_small(points, &mut clusters, 1, min_windows * step);
    merge_alike(points, &mut clusters, 1, merging);
    clusters
}

/// The fewest of `m` sampled windows that make a speaker.
fn min_speaker_windows(m: usize) -> usize {
    MIN_SPEAKER_WINDOWS.max((MIN_SPEAKER_SHARE * m as f64).ceil() as usize)
}

/// The condensed (upper triangle, row by row) symmetric S-norm scores of the points' pairs: each
/// cosine z-scored against the first point's similarities to the points heard apart from it,
/// likewise for the second, and the two averaged.
fn normalised_scores(
    points: &[Embedding],
    shares_audio: &dyn Fn(usize, usize) -> bool,
) -> Vec<f64> {
    let m = points.len();
    let cosine = Mat::<f64>::from_fn(m, m, |i, j| f64::from(similarity(&points[i], &points[j])));
    let stats: Vec<(f64, f64)> = (0..m)
        .map(|i| {
            let apart: Vec<f64> = (0..m)
                .filter(|&j| j != i && !shares_audio(i, j))
                .map(|j| cosine[(i, j)])
                .collect();
            let cohort = if apart.len() >= MIN_APART {
                apart
            } else {
                (0..m).filter(|&j| j != i).map(|j| cosine[(i, j)]).collect()
            };
            let mean = cohort.iter().sum::<f64>() / cohort.len().max(1) as f64;
            let variance =
                cohort.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / cohort.len().max(1) as f64;
            // The floor keeps identical points (a test tone) from dividing by zero.
            (mean, variance.sqrt() + 1e-3)
        })
        .collect();
    let mut scores = Vec::with_capacity(m * (m - 1) / 2);
    for i in 0..m {
        for j in i + 1..m {
            let c = cosine[(i, j)];
            scores.push(0.5 * ((c - stats[i].0) / stats[i].1 + (c - stats[j].0) / stats[j].1));
        }
    }
    scores
}

/// Mean cosine silhouette of a partition: how much nearer each point is to its own speaker's
/// points than to the next speaker's (a point alone in its speaker scores 0).
fn silhouette(points: &[Embedding], labels: &[usize]) -> f64 {
    let k = labels.iter().max().map_or(0, |&l| l + 1);
    let sizes = cluster_sizes(labels, k);
    let total: f64 = (0..points.len())
        .map(|i| {
            if sizes[labels[i]] < 2 {
                return 0.0;
            }
            let mut distance = vec![0f64; k];
            for (j, p) in points.iter().enumerate() {
                if j != i {
                    distance[labels[j]] += 1.0 - f64::from(similarity(&points[i], p));
                }
            }
            let own = distance[labels[i]] / (sizes[labels[i]] - 1) as f64;
            let other = (0..k)
                .filter(|&c| c != labels[i] && sizes[c] > 0)
                .map(|c| distance[c] / sizes[c] as f64)
                .fold(f64::MAX, f64::min);
            if other == f64::MAX {
                0.0
            } else {
                (other - own) / own.max(other).max(f64::EPSILON)
            }
        })
        .sum();
    total / points.len().max(1) as f64
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

/// How many points each label 0..k has.
fn cluster_sizes(labels: &[usize], k: usize) -> Vec<usize> {
    let mut sizes = vec![0; k];
    labels.iter().for_each(|&l| sizes[l] += 1);
    sizes
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
        let sizes = cluster_sizes(labels, k);
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

/// Merges the most alike pair of clusters while their centroids' similarity reaches the merging
/// threshold, lowered for small clusters, and more than `min` clusters remain. A centroid of few
/// windows carries their noise, about 1/windows of it (with GE2E, one voice's centroids of a few
/// windows each score 0.82 to 0.90 on the meeting excerpts where centroids of hundreds score 0.92
/// to 0.98), so the threshold drops by the leniency × (1/a + 1/b) for clusters of a and b
/// windows.
fn merge_alike(points: &[Embedding], clusters: &mut Clusters, min: usize, merging: Merging) {
    loop {
        let k = clusters.centroids.len();
        if k <= min {
            return;
        }
        let sizes = cluster_sizes(&clusters.labels, k);
        let margin = |a: usize, b: usize| {
            let noise = 1.0 / sizes[a].max(1) as f32 + 1.0 / sizes[b].max(1) as f32;
            let c = &clusters.centroids;
            similarity(&c[a], &c[b]) - (merging.similarity - merging.few_windows_leniency * noise)
        };
        let Some((a, b, margin)) = (0..k)
            .flat_map(|a| (a + 1..k).map(move |b| (a, b)))
            .map(|(a, b)| (a, b, margin(a, b)))
            .max_by(|x, y| x.2.total_cmp(&y.2))
        else {
            return;
        };
        if margin < 0.0 {
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

/// While more than `min` speakers remain, the smallest with fewer than `min_points` points is no
/// speaker: its points go to the nearest of the others.
fn dissolve_small(points: &[Embedding], clusters: &mut Clusters, min: usize, min_points: usize) {
    loop {
        let k = clusters.centroids.len();
        let sizes = cluster_sizes(&clusters.labels, k);
        let Some(smallest) = (0..k).min_by_key(|&c| sizes[c]) else {
            return;
        };
        if k <= min.max(1) || sizes[smallest] >= min_points {
            return;
        }
        let mut rest = clusters.centroids.clone();
        rest.remove(smallest);
        let labels = points.iter().map(|e| nearest(&rest, e)).collect();
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

    /// The GE2E encoder's calibration.
    fn merge() -> Merging {
        crate::Calibration::GE2E.merging
    }

    fn count(points: &[Embedding], bounds: Bounds) -> usize {
        cluster(points, &apart, bounds, merge()).centroids.len()
    }

    const AUTO: Bounds = Bounds { min: 1, max: 10 };

    #[test]
    fn counts_well_separated_voices() {
        let one = voice(0, 40, 0.3);
        assert_eq!(count(&one, AUTO), 1);
        let two: Vec<Embedding> = [voice(0, 30, 0.3), voice(50, 25, 0.3)].concat();
        let c = cluster(&two, &apart, AUTO, merge());
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
        assert!(cluster(&[], &apart, AUTO, merge()).labels.is_empty());
    }

    #[test]
    fn a_few_odd_windows_are_no_speaker_but_a_short_speaker_is_one() {
        let voice_a = voice(0, 40, 0.3);
        let cough = voice(100, 2, 0.3);
        assert_eq!(count(&[voice_a.clone(), cough].concat(), AUTO), 1);
        let short_answer = voice(100, 4, 0.3);
        let c = cluster(&[voice_a, short_answer].concat(), &apart, AUTO, merge());
        assert_eq!(c.centroids.len(), 2);
        assert!(c.labels[40..].iter().all(|&l| l != c.labels[0]));
    }

    #[test]
    fn voices_close_in_raw_similarity_are_told_apart_by_their_spread() {
        // Two voices on one line: every window of either is 0.8 alike the other voice's windows'
        // direction, and each voice's windows are tight around its own.
        let blend = |axis: usize, count: usize| -> Vec<Embedding> {
            voice(axis, count, 0.15)
                .into_iter()
                .map(|mut e| {
                    e[200] += 1.3;
                    let n = e.iter().map(|x| x * x).sum::<f32>().sqrt();
                    e.iter_mut().for_each(|x| *x /= n);
                    e
                })
                .collect()
        };
        let two = [blend(0, 30), blend(50, 30)].concat();
        let cross = similarity(&two[0], &two[30]);
        assert!(
            (0.55..0.86).contains(&cross),
            "cross-voice similarity {cross}"
        );
        assert_eq!(count(&two, AUTO), 2);
        assert_eq!(count(&blend(0, 60), AUTO), 1);
    }
}
