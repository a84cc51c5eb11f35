//! Failures a test can ask for, so that the GPU fallbacks run where there is no GPU. Compiled
//! in only with the `fault-injection` feature (tests turn it on); without it nothing is ever
//! injected.
//!
//! `ECG_FAULTS` lists them, comma-separated:
//! - `gpu-out-of-memory`: the model counts as loaded on the GPU, and allocating a decoding state
//!   there fails as it does when the GPU's memory is full;
//! - `cpu-out-of-memory`: allocating one on the CPU fails the same way.

#[derive(Clone, Copy, Debug)]
pub(super) enum Fault {
    GpuOutOfMemory,
    CpuOutOfMemory,
}

impl Fault {
    /// The out-of-memory fault for a context on the GPU or on the CPU.
    pub(super) fn out_of_memory(on_gpu: bool) -> Self {
        if on_gpu {
            Fault::GpuOutOfMemory
        } else {
            Fault::CpuOutOfMemory
        }
    }

    #[cfg(feature = "fault-injection")]
    fn name(self) -> &'static str {
        match self {
            Fault::GpuOutOfMemory => "gpu-out-of-memory",
            Fault::CpuOutOfMemory => "cpu-out-of-memory",
        }
    }
}

#[cfg(feature = "fault-injection")]
pub(super) fn injected(fault: Fault) -> bool {
    std::env::var("ECG_FAULTS")
        .is_ok_and(|faults| faults.split(',').any(|f| f.trim() == fault.name()))
}

#[cfg(not(feature = "fault-injection"))]
pub(super) fn injected(_: Fault) -> bool {
    false
}
