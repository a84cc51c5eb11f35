//! Embedded adapters for running the whole service on one machine with no cloud services:
//! [`SqliteJobStore`] keeps job state on disk (it survives restarts) and [`InProcessQueue`]
//! hands job messages to the worker in the same process.
//!
//! Depends only on `ecg-core`'s ports; nothing here knows about HTTP or AWS.

mod queue;
mod store;

pub use queue::InProcessQueue;
pub use store::SqliteJobStore;
