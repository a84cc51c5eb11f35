//! Job state in SQLite. Each change is read-modify-write inside one transaction and guarded by
//! the record's version, the same compare-and-set a DynamoDB conditional write gives.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ecg_core::job::{Delivery, JobId, JobRecord, Outcome};
use ecg_core::ports::{BackendError, Created, JobStore};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

/// Jobs in one SQLite file (WAL mode, so a crash loses no committed change).
#[derive(Clone)]
pub struct SqliteJobStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteJobStore {
    /// Opens (or creates) `jobs.sqlite3` in `dir`.
    pub fn open(dir: &Path) -> Result<Self, BackendError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            BackendError::new(format!("cannot create data dir {}: {e}", dir.display()))
        })?;
        let conn = Connection::open(dir.join("jobs.sqlite3")).map_err(db_error)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS jobs (
                 job_id   TEXT PRIMARY KEY,
                 status   TEXT NOT NULL,
                 delivery TEXT NOT NULL,
                 version  INTEGER NOT NULL,
                 record   TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS jobs_unsettled ON jobs (status, delivery);
             CREATE TABLE IF NOT EXISTS health (
                 id         INTEGER PRIMARY KEY CHECK (id = 1),
                 checked_at TEXT NOT NULL
             );",
        )
        .map_err(db_error)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs blocking SQLite work off the async runtime.
    async fn with_conn<T, F>(&self, work: F) -> Result<T, BackendError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, BackendError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn
                .lock()
                .map_err(|_| BackendError::new("job store lock poisoned"))?;
            work(&mut conn)
        })
        .await
        .map_err(|e| BackendError::new(format!("job store task failed: {e}")))?
    }

    /// Applies `change` to the stored record if it returns true, as one conditional write.
    /// Returns the record after the change, or `None` when `change` declined or the job is unknown.
    async fn modify<F>(&self, id: JobId, change: F) -> Result<Option<JobRecord>, BackendError>
    where
        F: FnOnce(&mut JobRecord) -> bool + Send + 'static,
    {
        self.with_conn(move |conn| {
            let tx = conn.transaction().map_err(db_error)?;
            let Some(mut record) = load(&tx, id)? else {
                return Ok(None);
            };
            let expected = record.version;
            if !change(&mut record) {
                return Ok(None);
            }
            record.version = expected + 1;
            let updated = tx
                .execute(
                    "UPDATE jobs SET status = ?2, delivery = ?3, version = ?4, record = ?5
                     WHERE job_id = ?1 AND version = ?6",
                    params![
                        id.to_string(),
                        record.status.as_str(),
                        record.delivery.as_str(),
                        record.version,
                        to_json(&record)?,
                        expected
                    ],
                )
                .map_err(db_error)?;
            if updated == 0 {
                return Ok(None);
            }
            tx.commit().map_err(db_error)?;
            Ok(Some(record))
        })
        .await
    }
}

#[async_trait]
impl JobStore for SqliteJobStore {
    async fn create(&self, record: JobRecord) -> Result<Created, BackendError> {
        self.with_conn(move |conn| {
            let id = record.spec.job_id;
            let inserted = conn
                .execute(
                    "INSERT INTO jobs (job_id, status, delivery, version, record) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (job_id) DO NOTHING",
                    params![
                        id.to_string(),
                        record.status.as_str(),
                        record.delivery.as_str(),
                        record.version,
                        to_json(&record)?
                    ],
                )
                .map_err(db_error)?;
            if inserted == 1 {
                return Ok(Created::New(record));
            }
            let existing = load(conn, id)?.ok_or_else(|| BackendError::new("job vanished during create"))?;
            Ok(Created::Existing(existing))
        })
        .await
    }

    async fn get(&self, id: JobId) -> Result<Option<JobRecord>, BackendError> {
        self.with_conn(move |conn| load(conn, id)).await
    }

    async fn start(&self, id: JobId, attempt: u32) -> Result<Option<JobRecord>, BackendError> {
        self.modify(id, move |r| r.start(attempt, Timestamp::now()))
            .await
    }

    async fn requeue(&self, id: JobId, attempt: u32) -> Result<bool, BackendError> {
        let changed = self.modify(id, move |r| r.requeue(attempt)).await?;
        Ok(changed.is_some())
    }

    async fn record_progress(
        &self,
        id: JobId,
        attempt: u32,
        percent: u8,
    ) -> Result<bool, BackendError> {
        let changed = self
            .modify(id, move |r| r.raise_progress(attempt, percent))
            .await?;
        Ok(changed.is_some())
    }

    async fn finish(
        &self,
        id: JobId,
        attempt: u32,
        outcome: Outcome,
    ) -> Result<Option<JobRecord>, BackendError> {
        self.modify(id, move |r| r.finish(attempt, outcome, Timestamp::now()))
            .await
    }

    async fn set_delivery(
        &self,
        id: JobId,
        from: Delivery,
        to: Delivery,
    ) -> Result<bool, BackendError> {
        let changed = self.modify(id, move |r| r.move_delivery(from, to)).await?;
        Ok(changed.is_some())
    }

    async fn fail_delivery(&self, id: JobId, reason: String) -> Result<bool, BackendError> {
        let changed = self.modify(id, move |r| r.fail_delivery(reason)).await?;
        Ok(changed.is_some())
    }

    async fn unsettled(&self) -> Result<Vec<JobRecord>, BackendError> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT record FROM jobs
                     WHERE status IN ('queued', 'processing') OR delivery IN ('pending', 'sending')",
                )
                .map_err(db_error)?;
            let rows = stmt.query_map([], |row| row.get::<_, String>(0)).map_err(db_error)?;
            rows.map(|raw| from_json(&raw.map_err(db_error)?)).collect()
        })
        .await
    }

    /// A one-row write: a full disk or a read-only file fails every job's first write, and
    /// `/health` should say so before a job finds out.
    async fn ping(&self) -> Result<(), BackendError> {
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO health (id, checked_at) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
                params![Timestamp::now().to_string()],
            )
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }
}

fn load(conn: &Connection, id: JobId) -> Result<Option<JobRecord>, BackendError> {
    let raw: Option<String> = conn
        .query_row(
            "SELECT record FROM jobs WHERE job_id = ?1",
            params![id.to_string()],
            |row| row.get(0),
        )
        .optional()
        .map_err(db_error)?;
    raw.map(|raw| from_json(&raw)).transpose()
}

fn to_json(record: &JobRecord) -> Result<String, BackendError> {
    serde_json::to_string(record)
        .map_err(|e| BackendError::new(format!("cannot encode job record: {e}")))
}

fn from_json(raw: &str) -> Result<JobRecord, BackendError> {
    serde_json::from_str(raw).map_err(|e| BackendError::new(format!("corrupt job record: {e}")))
}

#[expect(clippy::needless_pass_by_value, reason = "used as map_err(db_error)")]
fn db_error(e: rusqlite::Error) -> BackendError {
    BackendError::new(format!("job store: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecg_core::error::ErrorCode;
    use ecg_core::job::JobStatus;
    use ecg_core::request::{JobSpec, UrlPolicy};
    use serde_json::json;

    fn spec() -> JobSpec {
        JobSpec::parse_process_video(
            &json!({"job_id": JobId::new().to_string(), "video_url": "https://example.com/v.mp4"}),
            &UrlPolicy::default(),
        )
        .unwrap()
    }

    fn failed() -> Outcome {
        Outcome::Failed {
            code: ErrorCode::DownloadError,
            message: "404".into(),
        }
    }

    #[tokio::test]
    async fn create_is_idempotent_on_the_job_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteJobStore::open(dir.path()).unwrap();
        let record = JobRecord::new(spec(), Timestamp::now());
        assert!(matches!(
            store.create(record.clone()).await.unwrap(),
            Created::New(_)
        ));
        assert!(matches!(
            store.create(record).await.unwrap(),
            Created::Existing(_)
        ));
    }

    #[tokio::test]
    async fn only_one_start_wins_and_terminal_states_are_final() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteJobStore::open(dir.path()).unwrap();
        let record = JobRecord::new(spec(), Timestamp::now());
        let id = record.spec.job_id;
        store.create(record).await.unwrap();
        assert!(store.start(id, 1).await.unwrap().is_some());
        assert!(
            store.start(id, 1).await.unwrap().is_none(),
            "a duplicate delivery must not start it again"
        );
        assert!(store.record_progress(id, 1, 25).await.unwrap());
        assert!(
            !store.record_progress(id, 1, 10).await.unwrap(),
            "progress never goes back"
        );
        assert!(store.finish(id, 1, failed()).await.unwrap().is_some());
        assert!(store.finish(id, 1, failed()).await.unwrap().is_none());
        assert!(store.start(id, 2).await.unwrap().is_none());
        let stored = store.get(id).await.unwrap().unwrap();
        assert_eq!(stored.status, JobStatus::Failed);
        assert_eq!(stored.error_code, Some(ErrorCode::DownloadError));
    }

    #[tokio::test]
    async fn a_redelivered_message_takes_over_a_lost_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteJobStore::open(dir.path()).unwrap();
        let record = JobRecord::new(spec(), Timestamp::now());
        let id = record.spec.job_id;
        store.create(record).await.unwrap();
        store.start(id, 1).await.unwrap().unwrap();
        assert!(store.record_progress(id, 1, 60).await.unwrap());
        let taken = store.start(id, 2).await.unwrap().unwrap();
        assert_eq!(
            taken.progress, 60,
            "the progress the backend has seen stays"
        );
        assert!(!store.record_progress(id, 2, 40).await.unwrap());
        assert!(
            store.finish(id, 1, failed()).await.unwrap().is_none(),
            "the lost attempt cannot finish it"
        );
        assert!(!store.record_progress(id, 1, 40).await.unwrap());
        assert!(store.finish(id, 2, failed()).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn delivery_is_claimed_once_and_state_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let store = SqliteJobStore::open(dir.path()).unwrap();
            let record = JobRecord::new(spec(), Timestamp::now());
            let id = record.spec.job_id;
            store.create(record).await.unwrap();
            assert!(
                !store
                    .set_delivery(id, Delivery::Pending, Delivery::Sending)
                    .await
                    .unwrap(),
                "not ended yet"
            );
            store.finish(id, 0, failed()).await.unwrap().unwrap();
            assert!(
                store
                    .set_delivery(id, Delivery::Pending, Delivery::Sending)
                    .await
                    .unwrap()
            );
            assert!(
                !store
                    .set_delivery(id, Delivery::Pending, Delivery::Sending)
                    .await
                    .unwrap()
            );
            id
        };
        let reopened = SqliteJobStore::open(dir.path()).unwrap();
        let record = reopened.get(id).await.unwrap().unwrap();
        assert_eq!(record.delivery, Delivery::Sending);
        assert_eq!(reopened.unsettled().await.unwrap().len(), 1);
        reopened
            .set_delivery(id, Delivery::Sending, Delivery::Delivered)
            .await
            .unwrap();
        assert!(reopened.unsettled().await.unwrap().is_empty());
        reopened.ping().await.unwrap();
    }

    #[tokio::test]
    async fn ping_fails_when_the_store_cannot_be_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteJobStore::open(dir.path()).unwrap();
        store.ping().await.unwrap();
        // As a full disk or a read-only file would: reads work, writes fail.
        store
            .conn
            .lock()
            .unwrap()
            .execute_batch("PRAGMA query_only = ON")
            .unwrap();
        assert!(store.unsettled().await.unwrap().is_empty());
        let error = store.ping().await.unwrap_err();
        assert!(error.message.contains("readonly"), "{}", error.message);
    }
}
