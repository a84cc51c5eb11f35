//! Job state in DynamoDB. Like the SQLite store, each change reads the record, decides in memory
//! and writes it back; here the write is conditional on the version (and state) that was read, so
//! two runners or a redelivered message cannot both win.
//!
//! Item: `job_id` (S, key), `status` (S), `delivery` (S), `attempt` (N), `version` (N),
//! `record` (S, the [`JobRecord`] as JSON, without its result), `result_gz` (B, the analysis
//! result as gzip-compressed JSON, once there is one) and, once the job has ended, `expires_at`
//! (N, epoch seconds) for the table's TTL.
//!
//! Why the result is apart and compressed: it is about 40 KB of JSON per minute of speech and a
//! DynamoDB item stops at 400 KB; compressed (about 8×) it fits for roughly an hour of speech.

use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use ecg_core::contract::AnalysisResult;
use ecg_core::job::{Delivery, JobId, JobRecord, JobStatus, Outcome};
use ecg_core::ports::{BackendError, Created, JobStore};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use jiff::Timestamp;

use crate::backend_error;

/// Lost races in a row before a change gives up. Each loss means another writer moved the job
/// forward, and a job has only a handful of states, so this is never reached in practice.
const MAX_RACES: u32 = 8;

/// Jobs in one DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoJobStore {
    client: Client,
    table: String,
    /// How long an ended job is kept: its `expires_at` is `finished_at` plus this.
    retention: Duration,
}

/// How a conditional write went.
enum Write {
    Done,
    /// The condition did not hold: another writer got there first.
    Lost,
}

impl DynamoJobStore {
    /// A store on `table`, which keeps ended jobs for `retention` (via its TTL on `expires_at`).
    pub fn new(client: Client, table: impl Into<String>, retention: Duration) -> Self {
        Self {
            client,
            table: table.into(),
            retention,
        }
    }

    /// Writes `record`; with `expected`, only if the stored item still has that version, status
    /// and delivery (the status and delivery also catch a hand edit that left the version alone).
    async fn put(
        &self,
        record: &JobRecord,
        expected: Option<&JobRecord>,
    ) -> Result<Write, BackendError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.item(record)?));
        let request = match expected {
            None => request.condition_expression("attribute_not_exists(job_id)"),
            Some(read) => request
                .condition_expression(
                    "#version = :version AND #status = :status AND #delivery = :delivery",
                )
                .expression_attribute_names("#version", "version")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#delivery", "delivery")
                .expression_attribute_values(":version", number(read.version))
                .expression_attribute_values(":status", text(read.status.as_str()))
                .expression_attribute_values(":delivery", text(read.delivery.as_str())),
        };
        match request.send().await {
            Ok(_) => Ok(Write::Done),
            Err(e)
                if e.as_service_error()
                    .is_some_and(PutItemError::is_conditional_check_failed_exception) =>
            {
                Ok(Write::Lost)
            }
            Err(e) => Err(backend_error("DynamoDB PutItem", &e)),
        }
    }

    /// Applies `change` to the stored record if it returns true, as one conditional write.
    /// Returns the record after the change, or `None` when `change` declined or the job is
    /// unknown. A lost race is decided again on the winner's state, as SQLite's serialised
    /// transactions would: two `start`s of one delivery still let exactly one through.
    async fn modify<F>(&self, id: JobId, mut change: F) -> Result<Option<JobRecord>, BackendError>
    where
        F: FnMut(&mut JobRecord) -> bool + Send,
    {
        for _ in 0..MAX_RACES {
            let Some(read) = self.get(id).await? else {
                return Ok(None);
            };
            let mut record = read.clone();
            if !change(&mut record) {
                return Ok(None);
            }
            record.version = read.version + 1;
            match self.put(&record, Some(&read)).await? {
                Write::Done => return Ok(Some(record)),
                Write::Lost => {
                    tracing::debug!(job_id = %id, "lost a race on the job; deciding again");
                }
            }
        }
        Err(BackendError::new(format!(
            "job {id} changed under every one of {MAX_RACES} attempts to update it"
        )))
    }

    fn item(&self, record: &JobRecord) -> Result<HashMap<String, AttributeValue>, BackendError> {
        let head = JobRecord {
            result: None,
            ..record.clone()
        };
        let json = serde_json::to_string(&head)
            .map_err(|e| BackendError::new(format!("cannot encode job record: {e}")))?;
        let mut item = HashMap::from([
            ("job_id".to_owned(), text(&record.spec.job_id.to_string())),
            ("status".to_owned(), text(record.status.as_str())),
            ("delivery".to_owned(), text(record.delivery.as_str())),
            ("attempt".to_owned(), number(record.attempt)),
            ("version".to_owned(), number(record.version)),
            ("record".to_owned(), AttributeValue::S(json)),
        ]);
        if let Some(result) = &record.result {
            item.insert("result_gz".to_owned(), AttributeValue::B(compress(result)?));
        }
        if let Some(finished) = record.finished_at {
            let expires = finished
                .as_second()
                .saturating_add(i64::try_from(self.retention.as_secs()).unwrap_or(i64::MAX));
            item.insert("expires_at".to_owned(), number(expires));
        }
        Ok(item)
    }
}

#[async_trait]
impl JobStore for DynamoJobStore {
    async fn create(&self, record: JobRecord) -> Result<Created, BackendError> {
        match self.put(&record, None).await? {
            Write::Done => Ok(Created::New(record)),
            Write::Lost => {
                let id = record.spec.job_id;
                let existing = self
                    .get(id)
                    .await?
                    .ok_or_else(|| BackendError::new(format!("job {id} vanished during create")))?;
                Ok(Created::Existing(existing))
            }
        }
    }

    async fn get(&self, id: JobId) -> Result<Option<JobRecord>, BackendError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("job_id", text(&id.to_string()))
            // Every decision is taken on what was read: it must include the last write.
            .consistent_read(true)
            .projection_expression("#record, result_gz")
            .expression_attribute_names("#record", "record")
            .send()
            .await
            .map_err(|e| backend_error("DynamoDB GetItem", &e))?;
        output.item.as_ref().map(decode).transpose()
    }

    async fn start(&self, id: JobId, attempt: u32) -> Result<Option<JobRecord>, BackendError> {
        self.modify(id, |r| r.start(attempt, Timestamp::now()))
            .await
    }

    async fn requeue(&self, id: JobId, attempt: u32) -> Result<bool, BackendError> {
        let changed = self.modify(id, |r| r.requeue(attempt)).await?;
        Ok(changed.is_some())
    }

    async fn record_progress(
        &self,
        id: JobId,
        attempt: u32,
        percent: u8,
    ) -> Result<bool, BackendError> {
        let changed = self
            .modify(id, |r| r.raise_progress(attempt, percent))
            .await?;
        Ok(changed.is_some())
    }

    async fn finish(
        &self,
        id: JobId,
        attempt: u32,
        outcome: Outcome,
    ) -> Result<Option<JobRecord>, BackendError> {
        // Cloned because a lost race decides again; `modify` sets the version itself.
        self.modify(id, |r| r.finish(attempt, outcome.clone(), Timestamp::now()))
            .await
    }

    async fn set_delivery(
        &self,
        id: JobId,
        from: Delivery,
        to: Delivery,
    ) -> Result<bool, BackendError> {
        let changed = self.modify(id, |r| r.move_delivery(from, to)).await?;
        Ok(changed.is_some())
    }

    async fn fail_delivery(&self, id: JobId, reason: String) -> Result<bool, BackendError> {
        let changed = self
            .modify(id, move |r| r.fail_delivery(reason.clone()))
            .await?;
        Ok(changed.is_some())
    }

    /// A filtered Scan: reads the whole table, which is fine for an operator's recovery tool.
    async fn unsettled(&self) -> Result<Vec<JobRecord>, BackendError> {
        let mut items = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .filter_expression(
                "#status IN (:queued, :processing) OR #delivery IN (:pending, :sending)",
            )
            .projection_expression("#record, result_gz")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#delivery", "delivery")
            .expression_attribute_names("#record", "record")
            .expression_attribute_values(":queued", text(JobStatus::Queued.as_str()))
            .expression_attribute_values(":processing", text(JobStatus::Processing.as_str()))
            .expression_attribute_values(":pending", text(Delivery::Pending.as_str()))
            .expression_attribute_values(":sending", text(Delivery::Sending.as_str()))
            .into_paginator()
            .items()
            .send();
        let mut records = Vec::new();
        while let Some(item) = items.next().await {
            let item = item.map_err(|e| backend_error("DynamoDB Scan", &e))?;
            records.push(decode(&item)?);
        }
        Ok(records)
    }

    async fn ping(&self) -> Result<(), BackendError> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| backend_error("DynamoDB DescribeTable", &e))?;
        Ok(())
    }
}

fn decode(item: &HashMap<String, AttributeValue>) -> Result<JobRecord, BackendError> {
    let corrupt = |e: &dyn std::fmt::Display| BackendError::new(format!("corrupt job record: {e}"));
    let raw = item
        .get("record")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| corrupt(&"no `record` string"))?;
    let mut record: JobRecord = serde_json::from_str(raw).map_err(|e| corrupt(&e))?;
    if let Some(gz) = item.get("result_gz").and_then(|v| v.as_b().ok()) {
        let mut json = Vec::new();
        GzDecoder::new(gz.as_ref())
            .read_to_end(&mut json)
            .map_err(|e| corrupt(&e))?;
        let result: AnalysisResult = serde_json::from_slice(&json).map_err(|e| corrupt(&e))?;
        record.result = Some(Box::new(result));
    }
    Ok(record)
}

fn compress(result: &AnalysisResult) -> Result<Blob, BackendError> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    serde_json::to_writer(&mut gz, result)
        .map_err(|e| BackendError::new(format!("cannot encode job result: {e}")))?;
    gz.finish()
        .map(Blob::new)
        .map_err(|e| BackendError::new(format!("cannot compress job result: {e}")))
}

fn text(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn number(value: impl Into<i128>) -> AttributeValue {
    AttributeValue::N(value.into().to_string())
}
