//! Request parsing on arbitrary bytes: the API's path from a body to a job, under each URL policy.
//! Besides not crashing, what is accepted must keep the policy's promises and survive the job
//! store's JSON round trip.

#![no_main]

use ecg_core::request::{JobSpec, MediaSource, UrlPolicy, is_metadata_ip, is_public_ip};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use url::Host;

fuzz_target!(|data: &[u8]| {
    // The API answers bytes that are not JSON with 400 before parsing a job.
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let strict = UrlPolicy::default();
    let local = UrlPolicy {
        allow_local: true,
        callback_hosts: Some("backend.example,127.0.0.1".parse().unwrap()),
    };
    for policy in [&strict, &local] {
        for spec in [
            JobSpec::parse_process_video(&body, policy),
            JobSpec::parse_transcribe(&body, policy),
        ]
        .into_iter()
        .flatten()
        {
            check(&spec, policy);
        }
    }
});

fn check(spec: &JobSpec, policy: &UrlPolicy) {
    let mut urls: Vec<&url::Url> = spec.callback_base.iter().collect();
    match &spec.source {
        MediaSource::Http { url } => urls.push(url),
        MediaSource::File { .. } => assert!(policy.allow_local, "a local path got through"),
        MediaSource::S3 { bucket, key } => assert!(!bucket.is_empty() && !key.is_empty()),
    }
    for url in urls {
        assert!(
            url.username().is_empty() && url.password().is_none(),
            "{url}"
        );
        assert!(matches!(url.scheme(), "http" | "https"), "{url}");
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => Some(ip.into()),
            Some(Host::Ipv6(ip)) => Some(ip.into()),
            Some(Host::Domain(_)) => None,
            None => panic!("no host: {url}"),
        };
        if let Some(ip) = ip {
            assert!(!is_metadata_ip(ip), "{url}");
            assert!(policy.allow_local || is_public_ip(ip), "{url}");
        }
        if !policy.allow_local {
            assert_eq!(url.scheme(), "https", "{url}");
        }
    }
    if let (Some(base), Some(allowed)) = (&spec.callback_base, &policy.callback_hosts) {
        assert!(allowed.contains(&base.host().unwrap()), "{base}");
    }
    // Jobs are stored as JSON and read back by the worker.
    let stored = serde_json::to_string(spec).unwrap();
    let read: JobSpec = serde_json::from_str(&stored).unwrap();
    assert_eq!(&read, spec);
}
