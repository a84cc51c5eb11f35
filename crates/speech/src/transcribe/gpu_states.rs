//! Jobs share one model on the GPU, each decoding with a state of its own (whisper.cpp's
//! key-value caches and compute buffers). How many states fit beside the weights is measured
//! when the model loads: the GPU's free memory before and after one state. A job beyond that
//! number waits for a state to be freed instead of running the card out of memory.

use std::sync::{Condvar, Mutex, PoisonError};

use whisper_rs::WhisperContext;

use super::cuda;

/// Memory kept free on the card beyond the states: cuBLAS workspaces and ggml's memory pool
/// grow on first use, after the measurement.
const HEADROOM: f64 = 0.10;

/// What one decoding state takes on the GPU, and how many fit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct StateMemory {
    pub bytes: usize,
    pub fit: usize,
}

impl StateMemory {
    /// From the free memory before and after allocating one state, of `total`.
    fn from_free(before: usize, after: usize, total: usize) -> Self {
        let bytes = before.saturating_sub(after).max(1);
        let spare = after.saturating_sub((total as f64 * HEADROOM) as usize);
        Self {
            bytes,
            fit: 1 + spare / bytes,
        }
    }
}

/// Measures one state of `context` (on the GPU), or `None` where CUDA cannot say.
pub(super) fn measure(context: &WhisperContext) -> Option<StateMemory> {
    let (before, total) = cuda::free_memory()?;
    let state = context.create_state().ok()?;
    let (after, _) = cuda::free_memory()?;
    drop(state);
    Some(StateMemory::from_free(before, after, total))
}

/// At most `limit` states at once; further jobs wait their turn.
pub(super) struct StateGate {
    limit: usize,
    in_use: Mutex<usize>,
    freed: Condvar,
}

impl StateGate {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            in_use: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free state; the pass frees it when dropped.
    pub(super) fn enter(&self) -> Pass<'_> {
        let mut in_use = self.in_use.lock().unwrap_or_else(PoisonError::into_inner);
        while *in_use >= self.limit {
            in_use = self
                .freed
                .wait(in_use)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *in_use += 1;
        Pass(self)
    }
}

pub(super) struct Pass<'a>(&'a StateGate);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        *self.0.in_use.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_states_that_fit_leave_the_headroom_free() {
        const MIB: usize = 1 << 20;
        // A T4: 15 GiB free after the weights, 230 MiB a state.
        let memory = StateMemory::from_free(15_000 * MIB, 14_770 * MIB, 15_360 * MIB);
        assert_eq!(memory.bytes, 230 * MIB);
        assert_eq!(memory.fit, 1 + (14_770 - 1_536) / 230);
        // Less free than the headroom: the one state measured, no more.
        assert_eq!(StateMemory::from_free(1_000, 900, 100_000).fit, 1);
    }

    #[test]
    fn no_more_than_the_limit_hold_a_state_at_once() {
        let gate = Arc::new(StateGate::new(2));
        let holding = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..6)
            .map(|_| {
                let (gate, holding, most) = (gate.clone(), holding.clone(), most.clone());
                std::thread::spawn(move || {
                    let _pass = gate.enter();
                    let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    holding.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for job in jobs {
            job.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }
}
