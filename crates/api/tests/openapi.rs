//! The OpenAPI document: committed as `docs/openapi.json` and kept current, a valid OpenAPI 3.1
//! document by an independent validator, and true to the contract: every JSON example of
//! `shared/spec/ml-server-api.md` (requests, responses, the three callback shapes) satisfies the
//! schema it illustrates.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `make openapi` rewrites the file (`ECG_UPDATE_OPENAPI=1`).
#[test]
fn the_committed_document_is_current() {
    let path = repo().join("docs/openapi.json");
    let current = ecg_api::openapi::document();
    if std::env::var_os("ECG_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &current).expect("docs/openapi.json is writable");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == current,
        "docs/openapi.json is not what the code generates: run `make openapi` and commit it"
    );
}

#[test]
fn the_contract_examples_satisfy_the_document() {
    let spec = repo().join("../shared/spec/ml-server-api.md");
    ecg_testkit::run_python(
        &repo().join("crates/api/tests/validate_openapi.py"),
        &[&repo().join("docs/openapi.json"), &spec],
    );
}
