//! `ecg serve` as a real process on 127.0.0.1 for black-box tests, shared by the e2e,
//! hostile-input and load suites; the other fixtures come from `ecg-testkit`.

// Each suite compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub use ecg_testkit::*;

/// `ecg serve` as a child process on a free port, killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    /// Local URLs allowed, callbacks signed with [`SECRET`].
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    /// [`Server::start`] with more environment variables, which win over its own.
    pub fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        assert!(
            model_dir().join("ggml-base-q8_0.bin").exists(),
            "models missing in {}: run `make models`",
            model_dir().display()
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_ecg"))
            .args(["serve", "--port", "0", "--data-dir"])
            .arg(data_dir)
            .env("ECG_MODEL_DIR", model_dir())
            .env("ECG_ALLOW_LOCAL_URLS", "true")
            .env("ECG_CALLBACK_SECRET", SECRET)
            .env("ECG_ASR_THREADS", "1")
            .env_remove("BACKEND_URL")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("ecg serve starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("ecg serve prints its address");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .expect("a 'listening on' line")
            .to_owned();
        Self { child, base }
    }

    /// [`Server::start_with`], its jobs downloading into `scratch` (its `TMPDIR`), so that a
    /// test can count what they leave there ([`job_dirs`]).
    pub fn start_in(data_dir: &Path, scratch: &Path, env: &[(&str, &str)]) -> Self {
        let mut all = vec![("TMPDIR", scratch.to_str().unwrap())];
        all.extend_from_slice(env);
        Self::start_with(data_dir, &all)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `GET /health`, as JSON.
    pub async fn health(&self) -> Value {
        get_json(&reqwest::Client::new(), &format!("{}/health", self.base)).await
    }

    /// Waits up to `limit` for the process to end by itself; whether it did. Asynchronous, so
    /// that the test's own servers (the callback receiver) keep answering meanwhile.
    /// Whether the process ends within `limit`; it must end cleanly (exit code 0, no signal).
    pub async fn exits_within(&mut self, limit: std::time::Duration) -> bool {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "ecg serve ended with {status}");
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        false
    }

    /// Ends the process at once, as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `ecg-job-*` directories a server's jobs left in its scratch directory (`TMPDIR`).
pub fn job_dirs(scratch: &Path) -> Vec<String> {
    std::fs::read_dir(scratch)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("ecg-job-"))
        .collect()
}
