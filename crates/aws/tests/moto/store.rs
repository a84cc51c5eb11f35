use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use ecg_core::contract::AnalysisResult;
use ecg_core::error::ErrorCode;
use ecg_core::job::{Delivery, JobStatus, Outcome};
use ecg_core::ports::{Created, JobStore};
use serde_json::{Value, json};

use crate::{aws, new_record};

fn failed() -> Outcome {
    Outcome::Failed {
        code: ErrorCode::DownloadError,
        message: "S3 object not found".into(),
    }
}

#[tokio::test]
async fn create_is_idempotent_on_the_job_id() {
    let aws = aws().await;
    let store = aws.config.job_store(&aws.clients);
    let record = new_record();
    assert_eq!(
        store.create(record.clone()).await.unwrap(),
        Created::New(record.clone())
    );
    let mut changed = record.clone();
    changed.progress = 99;
    assert_eq!(
        store.create(changed).await.unwrap(),
        Created::Existing(record.clone()),
        "the stored job is returned and left as it was"
    );
    assert_eq!(store.get(record.spec.job_id).await.unwrap(), Some(record));
}

#[tokio::test]
async fn a_job_starts_once_and_ends_once() {
    let aws = aws().await;
    let store = aws.config.job_store(&aws.clients);
    let record = new_record();
    let id = record.spec.job_id;
    store.create(record).await.unwrap();

    let started = store.start(id, 1).await.unwrap().unwrap();
    assert_eq!(
        (started.status, started.attempt, started.version),
        (JobStatus::Processing, 1, 1)
    );
    assert!(
        store.start(id, 1).await.unwrap().is_none(),
        "a duplicate delivery must not start it again"
    );
    assert!(store.record_progress(id, 1, 25).await.unwrap());
    assert!(
        !store.record_progress(id, 1, 10).await.unwrap(),
        "progress never goes back"
    );
    assert!(
        !store.record_progress(id, 7, 40).await.unwrap(),
        "not this attempt's job"
    );

    let done = store.finish(id, 1, failed()).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Failed);
    assert!(
        store.finish(id, 1, failed()).await.unwrap().is_none(),
        "ended already"
    );
    assert!(
        store.start(id, 2).await.unwrap().is_none(),
        "terminal states are final"
    );
    let stored = store.get(id).await.unwrap().unwrap();
    assert_eq!(stored, done);
    assert_eq!(stored.error_code, Some(ErrorCode::DownloadError));
    assert_eq!(stored.version, 3, "start, one progress step, finish");
}

#[tokio::test]
async fn of_concurrent_starts_exactly_one_wins() {
    let aws = aws().await;
    let store = aws.config.job_store(&aws.clients);
    let record = new_record();
    let id = record.spec.job_id;
    store.create(record).await.unwrap();

    // Eight deliveries of the same message, racing on one item.
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        racers.spawn(async move { store.start(id, 1).await.unwrap() });
    }
    let winners = racers.join_all().await.into_iter().flatten().count();
    assert_eq!(winners, 1);
    let stored = store.get(id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.version), (JobStatus::Processing, 1));
}

#[tokio::test]
async fn a_later_delivery_takes_over_a_lost_attempt() {
    let aws = aws().await;
    let store = aws.config.job_store(&aws.clients);
    let record = new_record();
    let id = record.spec.job_id;
    store.create(record).await.unwrap();
    store.start(id, 1).await.unwrap().unwrap();
    assert!(store.record_progress(id, 1, 60).await.unwrap());

    // The message came back (receive count 2): the first worker is presumed dead.
    let taken = store.start(id, 2).await.unwrap().unwrap();
    assert_eq!(
        (taken.attempt, taken.progress),
        (2, 60),
        "the progress the backend has seen stays"
    );
    assert!(!store.record_progress(id, 2, 40).await.unwrap());
    assert!(store.record_progress(id, 2, 75).await.unwrap());
    assert!(
        store.start(id, 1).await.unwrap().is_none(),
        "an older delivery cannot take it back"
    );
    assert!(!store.record_progress(id, 1, 40).await.unwrap());
    assert!(
        store.finish(id, 1, failed()).await.unwrap().is_none(),
        "the lost attempt cannot finish it"
    );
    assert!(store.finish(id, 2, failed()).await.unwrap().is_some());
}

#[tokio::test]
async fn the_terminal_callback_is_claimed_once() {
    let aws = aws().await;
    let store = aws.config.job_store(&aws.clients);
    let record = new_record();
    let id = record.spec.job_id;
    store.create(record).await.unwrap();
    assert!(
        !store
            .set_delivery(id, Delivery::Pending, Delivery::Sending)
            .await
            .unwrap(),
        "not ended yet"
    );
    // A queued job may fail without starting (its message went to the dead-letter queue).
    store.finish(id, 0, failed()).await.unwrap().unwrap();
    assert_eq!(
        store.unsettled().await.unwrap().len(),
        1,
        "callback pending"
    );

    let (first, second) = tokio::join!(
        store.set_delivery(id, Delivery::Pending, Delivery::Sending),
        store.set_delivery(id, Delivery::Pending, Delivery::Sending),
    );
    assert!(first.unwrap() ^ second.unwrap(), "exactly one claim wins");
    assert!(
        store
            .set_delivery(id, Delivery::Sending, Delivery::Delivered)
            .await
            .unwrap()
    );
    assert!(store.unsettled().await.unwrap().is_empty());
    assert_eq!(
        store.get(id).await.unwrap().unwrap().delivery,
        Delivery::Delivered
    );
    assert!(
        !store.fail_delivery(id, "late".to_owned()).await.unwrap(),
        "only a callback being sent can fail"
    );
}

#[tokio::test]
async fn a_failed_callback_is_recorded_with_its_reason() {
    let aws = aws().await;
    let store = aws.config.job_store(&aws.clients);
    let record = new_record();
    let id = record.spec.job_id;
    store.create(record).await.unwrap();
    store.finish(id, 0, failed()).await.unwrap().unwrap();
    assert!(
        store
            .set_delivery(id, Delivery::Pending, Delivery::Sending)
            .await
            .unwrap()
    );
    let reason = "callback to http://127.0.0.1:9/api/upload-video/result failed after 4 attempt(s)";
    assert!(store.fail_delivery(id, reason.to_owned()).await.unwrap());
    let stored = store.get(id).await.unwrap().unwrap();
    assert_eq!(
        (stored.delivery, stored.delivery_failure.as_deref()),
        (Delivery::Failed, Some(reason))
    );
    assert!(store.unsettled().await.unwrap().is_empty());
}

#[tokio::test]
async fn items_carry_the_queryable_attributes_and_a_ttl_once_ended() {
    let aws = aws().await;
    let store = aws.config.job_store(&aws.clients);
    let record = new_record();
    let id = record.spec.job_id;
    store.create(record).await.unwrap();
    let raw = || async {
        aws.clients
            .dynamodb
            .get_item()
            .table_name(&aws.config.jobs_table)
            .key("job_id", AttributeValue::S(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap()
    };
    let item = raw().await;
    assert_eq!(item["status"], AttributeValue::S("queued".into()));
    assert_eq!(item["delivery"], AttributeValue::S("pending".into()));
    assert_eq!(item["attempt"], AttributeValue::N("0".into()));
    assert_eq!(item["version"], AttributeValue::N("0".into()));
    assert!(
        !item.contains_key("expires_at"),
        "a running job never expires"
    );

    store.start(id, 1).await.unwrap().unwrap();
    let done = store.finish(id, 1, failed()).await.unwrap().unwrap();
    let item = raw().await;
    assert_eq!(item["status"], AttributeValue::S("failed".into()));
    assert_eq!(item["attempt"], AttributeValue::N("1".into()));
    let expires: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
    let retention = Duration::from_secs(30 * 86_400).as_secs() as i64;
    assert_eq!(expires, done.finished_at.unwrap().as_second() + retention);
}

#[tokio::test]
async fn ping_tells_a_missing_table() {
    let aws = aws().await;
    aws.config.job_store(&aws.clients).ping().await.unwrap();
    let mut missing = aws.config.clone();
    missing.jobs_table = "no-such-table".into();
    let error = missing.job_store(&aws.clients).ping().await.unwrap_err();
    assert!(error.message.contains("DescribeTable"), "{error}");
    assert!(error.message.contains("ResourceNotFound"), "{error}");
}

/// About an hour of speech: 9000 words, which as JSON alone is several times DynamoDB's 400 KB.
/// Built as JSON so that fields added to the contract later (all optional) do not break it.
fn an_hour_of_results() -> AnalysisResult {
    // Rounded like the assembler's output (JSON numbers of a few decimals read back exactly).
    let r2 = |x: f64| (x * 100.0).round() / 100.0;
    let word = |i: u32| {
        let start = r2(f64::from(i) * 0.4);
        json!({"word": format!("단어{}", i % 97), "start": start, "end": r2(start + 0.3), "confidence": 0.93,
               "acoustic_features": {"volume_db": r2(-20.0 - start % 7.0), "pitch_hz": r2(120.0 + start % 50.0),
                                     "spectral_centroid": r2(1500.0 + start % 300.0)}})
    };
    let segments: Vec<Value> = (0..600)
        .map(|n| {
            let words: Vec<Value> = (n * 15..n * 15 + 15).map(word).collect();
            json!({"start_time": words[0]["start"], "end_time": words[14]["end"], "text": "…",
                   "speaker": {"speaker_id": format!("SPEAKER_0{}", n % 2)}, "words": words})
        })
        .collect();
    let word_segments: Vec<Value> = (0..9000)
        .map(|i| {
            let w = word(i);
            json!({"word": w["word"], "start_time": w["start"], "end_time": w["end"],
                   "speaker_id": "SPEAKER_00", "confidence": 0.93})
        })
        .collect();
    serde_json::from_value(json!({
        "segments": segments, "word_segments": word_segments,
        "speakers": {"SPEAKER_00": {"total_duration": 1800.0, "segment_count": 300}},
        "text": "…", "language": "ko", "duration": 3600.0,
        "metadata": {"model_version": "base", "processing_time": 1.0, "unique_speakers": 2,
                     "total_segments": 600, "language_requested": "ko", "language_detected": "ko",
                     "processing_mode": "targeted"}
    }))
    .unwrap()
}

#[tokio::test]
async fn a_completed_job_keeps_an_hour_of_results() {
    let aws = aws().await;
    let store = aws.config.job_store(&aws.clients);
    let record = new_record();
    let id = record.spec.job_id;
    store.create(record).await.unwrap();
    store.start(id, 1).await.unwrap().unwrap();
    let result = an_hour_of_results();
    let json = serde_json::to_vec(&result).unwrap().len();
    assert!(json > 1_000_000, "{json} bytes is not a stress");

    let done = store
        .finish(id, 1, Outcome::Completed(Box::new(result)))
        .await
        .unwrap()
        .unwrap();
    // `assert!`: a failing `assert_eq!` would print megabytes.
    assert!(store.get(id).await.unwrap().unwrap() == done);
    // Delivery changes rewrite the item; the result must survive them.
    assert!(
        store
            .set_delivery(id, Delivery::Pending, Delivery::Sending)
            .await
            .unwrap()
    );
    let stored = store.get(id).await.unwrap().unwrap();
    assert!(stored.result == done.result);
    assert_eq!(stored.status, JobStatus::Completed);
}
