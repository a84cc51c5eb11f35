//! What the CUDA runtime says about the GPU: whether there is one whisper.cpp can use, and its
//! free memory. Without the `cuda` feature there is never a GPU.

/// How many CUDA devices the runtime sees: 0 without a GPU, or with a driver too old for the
/// runtime the build links (whisper.cpp then decodes on the CPU whatever it was asked).
pub(super) fn devices() -> usize {
    runtime::devices()
}

/// Free and total memory of the current device, in bytes.
pub(super) fn free_memory() -> Option<(usize, usize)> {
    runtime::free_memory()
}

#[cfg(feature = "cuda")]
#[allow(unsafe_code)]
mod runtime {
    use std::ffi::c_int;

    unsafe extern "C" {
        fn cudaGetDeviceCount(count: *mut c_int) -> c_int;
        fn cudaMemGetInfo(free: *mut usize, total: *mut usize) -> c_int;
    }

    pub(super) fn devices() -> usize {
        let mut count: c_int = 0;
        // SAFETY: the pointer is to a live local; the call only writes it.
        let status = unsafe { cudaGetDeviceCount(&mut count) };
        if status == 0 {
            usize::try_from(count).unwrap_or(0)
        } else {
            0
        }
    }

    pub(super) fn free_memory() -> Option<(usize, usize)> {
        let (mut free, mut total) = (0, 0);
        // SAFETY: both pointers are to live locals; the call only writes them.
        let status = unsafe { cudaMemGetInfo(&mut free, &mut total) };
        (status == 0).then_some((free, total))
    }
}

#[cfg(not(feature = "cuda"))]
mod runtime {
    pub(super) fn devices() -> usize {
        0
    }

    pub(super) fn free_memory() -> Option<(usize, usize)> {
        None
    }
}
