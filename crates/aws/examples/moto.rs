//! A local stand-in for the stack in `template.yaml`: starts moto on 127.0.0.1 with a jobs table,
//! a job queue and its dead-letter queue, prints the environment for `ecg-api` (and the runner),
//! and runs until Ctrl-C or SIGTERM. Started by `infra/aws/moto.sh`.

use ecg_aws::testing::Moto;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let moto = Moto::start().await;
    let clients = moto.clients().await;
    // As in template.yaml: three deliveries before the dead-letter queue.
    let config = moto.create_resources(&clients, 3).await;
    for (name, value) in moto.env() {
        println!("export {name}={value}");
    }
    println!("export ECG_JOBS_TABLE={}", config.jobs_table);
    println!("export ECG_QUEUE_URL={}", config.queue_url);
    if let Some(dlq) = &config.dlq_url {
        println!("export ECG_DLQ_URL={dlq}");
    }
    eprintln!("moto is serving on {}; Ctrl-C stops it", moto.endpoint());
    // Return on SIGTERM too, so that dropping `moto` stops the server rather than orphaning it.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        stopped = tokio::signal::ctrl_c() => stopped,
        _ = term.recv() => Ok(()),
    }
}
