//! Load: `LOAD_JOBS` (default 100) concurrent submissions of short generated clips to one
//! `ecg serve` on 127.0.0.1. Every job must reach a terminal state, every backend must get its
//! complete, signed callback sequence, and the server must end with the file descriptors and
//! scratch entries it started with. Prints the time taken, peak RSS and the counts.
//!
//! On demand, in release: `make load` (`cargo test --release --test load -- --ignored --nocapture`).

// Helpers panic on purpose: in a test, a broken fixture is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinSet;

use common::{
    Receiver, Server, job_dirs, media_server, signed_correctly, speech_wav, wait_for_callbacks,
    wait_for_end,
};

/// Progress steps of a completed job with emotion detection on, then the completion.
const SEQUENCE: [u64; 7] = [10, 25, 40, 60, 75, 90, 100];

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Open file descriptors of `pid` by kind: sockets, pipes, anonymous inodes and files.
fn descriptors(pid: u32) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        // A descriptor closed between the listing and the look is not open any more.
        let Ok(target) = std::fs::read_link(entry.unwrap().path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        let kind = match target.split_once(':') {
            Some((kind @ ("socket" | "pipe" | "anon_inode"), _)) => kind.to_owned(),
            _ => "file".to_owned(),
        };
        *kinds.entry(kind).or_default() += 1;
    }
    kinds
}

/// A field of `/proc/<pid>/status` in MiB (VmRSS, VmHWM).
fn memory_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load test: run on demand with `make load`"]
async fn concurrent_jobs_all_end_with_nothing_leaked() {
    let jobs = env_or("LOAD_JOBS", 100);
    let workers = env_or("LOAD_WORKERS", 2).to_string();
    let media = tempfile::tempdir().unwrap();
    let clips = [
        "Thank you for watching.",
        "Subtitles follow the speaker.",
        "Every word has a time.",
        "Short clips load quickly.",
    ];
    for (i, text) in clips.iter().enumerate() {
        speech_wav(&media.path().join(format!("clip{i}.wav")), text);
    }
    let media_base = media_server(media.path().to_path_buf()).await;
    let receiver = Receiver::start(0).await;
    let scratch = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_in(data.path(), scratch.path(), &[("ECG_WORKERS", &workers)]);
    let pid = server.pid();
    let client = reqwest::Client::new();
    let health = server.health().await;
    assert_eq!(health["status"], "healthy", "{health}");
    let fds_before = descriptors(pid);
    let rss_idle = memory_mib(pid, "VmRSS:");

    let started = Instant::now();
    let mut submissions = JoinSet::new();
    for n in 0..jobs {
        let (client, base) = (client.clone(), server.base.clone());
        let body = json!({
            "job_id": uuid::Uuid::new_v4().to_string(),
            "video_url": format!("{media_base}/clip{}.wav", n % clips.len()),
            "fastapi_base_url": receiver.base_url(),
            "language": "en",
        });
        submissions.spawn(async move {
            let response = client
                .post(format!("{base}/api/upload-video/process-video"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            body["job_id"].as_str().unwrap().to_owned()
        });
    }
    let ids = submissions.join_all().await;
    let accepted_s = started.elapsed().as_secs_f64();

    // Jobs run in the order they came, so waiting in that order samples memory as they end:
    // flat samples mean memory is bounded by the workers, not by the jobs run.
    let mut statuses = BTreeMap::<String, usize>::new();
    let mut rss_samples = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let job = wait_for_end(&client, &server.base, id, Duration::from_secs(1800)).await;
        *statuses
            .entry(job["status"].as_str().unwrap().to_owned())
            .or_default() += 1;
        if (n + 1) % (jobs / 4).max(1) == 0 {
            rss_samples.push(format!("{}: {:.0} MiB", n + 1, memory_mib(pid, "VmRSS:")));
        }
    }
    let all_done_s = started.elapsed().as_secs_f64();
    wait_for_callbacks(&receiver, jobs * SEQUENCE.len(), Duration::from_secs(60)).await;

    let calls = receiver.calls.lock().unwrap().clone();
    let unsigned = calls
        .iter()
        .filter(|(h, b)| !signed_correctly(h, b))
        .count();
    let mut sequences = BTreeMap::<String, Vec<u64>>::new();
    for callback in receiver.accepted() {
        sequences
            .entry(callback["job_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(callback["progress"].as_u64().unwrap_or_default());
    }
    let incomplete: Vec<_> = ids
        .iter()
        .filter(|id| sequences.get(*id).map(Vec::as_slice) != Some(&SEQUENCE[..]))
        .collect();

    // Pooled idle connections may stay open for a while; files, pipes and the like may not.
    drop(client);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fds_after = descriptors(pid);
    let peak_rss = memory_mib(pid, "VmHWM:");
    let scratch_left = job_dirs(scratch.path()).len();
    println!(
        "load: {jobs} jobs, {workers} workers: accepted in {accepted_s:.2} s, all ended in \
         {all_done_s:.1} s ({:.2} jobs/s); statuses {statuses:?}; {} callbacks, {unsigned} \
         unsigned, {} incomplete sequences; RSS idle {rss_idle:.0} MiB, peak {peak_rss:.0} MiB, \
         after jobs ended {rss_samples:?}; \
         fds before {fds_before:?}, after {fds_after:?}; scratch job dirs left: {scratch_left}",
        jobs as f64 / all_done_s,
        calls.len(),
        incomplete.len(),
    );
    assert_eq!(statuses.get("completed"), Some(&jobs), "{statuses:?}");
    assert!(
        incomplete.is_empty(),
        "incomplete sequences: {incomplete:?}"
    );
    assert_eq!(unsigned, 0);
    assert_eq!(scratch_left, 0);
    for kind in ["file", "pipe", "anon_inode"] {
        assert_eq!(
            fds_after.get(kind),
            fds_before.get(kind),
            "{kind} descriptors: {fds_before:?} → {fds_after:?}"
        );
    }
    let sockets = |fds: &BTreeMap<String, usize>| fds.get("socket").copied().unwrap_or(0);
    assert!(
        sockets(&fds_after) <= sockets(&fds_before) + 16,
        "sockets: {fds_before:?} → {fds_after:?}"
    );
}
