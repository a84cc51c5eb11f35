use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use ecg_aws::fail_dead_letters;
use ecg_core::error::ErrorCode;
use ecg_core::job::{Delivery, JobId, JobStatus};
use ecg_core::ports::{JobMessage, JobQueue, JobStore};

use crate::{MAX_RECEIVES, aws, new_record};

const LEASE: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_lease_hides_the_message_until_released_and_ack_removes_it() {
    let aws = aws().await;
    let queue = aws.config.job_queue(&aws.clients, Some(LEASE));
    queue.ping().await.unwrap();
    let message = JobMessage {
        job_id: JobId::new(),
    };
    queue.enqueue(&message).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), 1);

    let first = queue.lease(WAIT).await.unwrap().unwrap();
    assert_eq!((&first.message, first.deliveries), (&message, 1));
    assert_eq!(
        queue.depth().await.unwrap(),
        0,
        "a leased message is not waiting"
    );
    queue.extend(&first, LEASE).await.unwrap();
    assert!(
        queue.lease(WAIT).await.unwrap().is_none(),
        "leased: hidden from other workers"
    );

    // Handed back with a delay (a failing job store): hidden until the delay ends.
    queue.release(&first, Duration::from_secs(2)).await.unwrap();
    assert!(
        queue.lease(Duration::ZERO).await.unwrap().is_none(),
        "released with a delay: not offered yet"
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let second = queue.lease(WAIT).await.unwrap().unwrap();
    assert_eq!(
        (&second.message, second.deliveries),
        (&message, 2),
        "the receive count goes up"
    );
    queue.ack(&second).await.unwrap();
    queue.release(&second, Duration::ZERO).await.unwrap_err();
    assert!(
        queue.lease(WAIT).await.unwrap().is_none(),
        "acknowledged: gone"
    );
}

#[tokio::test]
async fn a_message_that_is_not_a_job_is_left_for_the_dead_letter_queue() {
    let aws = aws().await;
    let queue = aws.config.job_queue(&aws.clients, Some(LEASE));
    aws.clients
        .sqs
        .send_message()
        .queue_url(&aws.config.queue_url)
        .message_body("not a job")
        .send()
        .await
        .unwrap();
    assert!(queue.lease(WAIT).await.unwrap().is_none());
    let attributes = aws
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(&aws.config.queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert_eq!(
        attributes[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible],
        "1"
    );
}

#[tokio::test]
async fn a_job_whose_message_reached_the_dead_letter_queue_fails_once() {
    let aws = aws().await;
    let store = aws.config.job_store(&aws.clients);
    let queue = aws.config.job_queue(&aws.clients, Some(LEASE));
    let dlq = aws.config.dead_letter_queue(&aws.clients).unwrap();
    let record = new_record();
    let id = record.spec.job_id;
    store.create(record).await.unwrap();
    queue.enqueue(&JobMessage { job_id: id }).await.unwrap();

    // Every worker that gets it dies (the message comes back), MAX_RECEIVES times.
    for delivery in 1..=MAX_RECEIVES {
        let lease = queue.lease(WAIT).await.unwrap().unwrap();
        assert_eq!(lease.deliveries, delivery);
        store.start(id, delivery).await.unwrap().unwrap();
        queue.release(&lease, Duration::ZERO).await.unwrap();
    }
    assert!(
        queue.lease(WAIT).await.unwrap().is_none(),
        "SQS moved it to the dead-letter queue"
    );
    // A duplicate dead letter for the same job must not fail it twice.
    dlq.enqueue(&JobMessage { job_id: id }).await.unwrap();

    let failed = fail_dead_letters(&dlq, &store).await.unwrap();
    assert_eq!(failed.len(), 1);
    let stored = store.get(id).await.unwrap().unwrap();
    assert_eq!(stored, failed[0]);
    assert_eq!(stored.status, JobStatus::Failed);
    assert_eq!(stored.error_code, Some(ErrorCode::ProcessingError));
    assert_eq!(stored.attempt, MAX_RECEIVES);
    assert_eq!(
        stored.delivery,
        Delivery::Pending,
        "the caller sends the callback"
    );
    assert!(
        fail_dead_letters(&dlq, &store).await.unwrap().is_empty(),
        "drained"
    );
}
