//! How much memory a long-running worker keeps.
//!
//! glibc's malloc gives each thread that allocates an arena of its own, up to eight per core,
//! and keeps what is freed there for that arena's later use. Jobs run on whichever blocking
//! thread is free, and whisper.cpp, ONNX Runtime and the decoder each allocate and free hundreds
//! of MB per job, so every arena ends up holding a job's worth: 100 short jobs on two workers
//! (`make load`) peaked at 1710 MiB and stayed at 1500 MiB, against 785 and 550 MiB with two
//! arenas, at the same throughput.

/// Arenas when `MALLOC_ARENA_MAX` is not set: with fewer than the threads that allocate, those
/// threads share them, and two kept the throughput of `make load` with two workers.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Caps glibc's malloc arenas at [`ARENAS`] unless `MALLOC_ARENA_MAX` is set (glibc has read it
/// then). Call first thing in `main`, before any other thread starts: arenas made before stay.
#[allow(unsafe_code)]
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes a malloc tunable; no pointer is involved, and no other
        // thread is allocating yet.
        let accepted = unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
        if accepted != 1 {
            tracing::warn!("malloc did not take the arena limit");
        }
    }
}
