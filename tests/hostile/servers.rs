//! Hostile media servers on 127.0.0.1: a scripted HTTP server (error statuses, a flaky server,
//! redirect loops and chains, redirects to forbidden places, an HTML page) and raw TCP servers
//! for what no well-behaved framework sends (lying lengths, a drip, an endless body).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common;

/// Names already asked for once at `/flaky/{name}`.
#[derive(Clone)]
struct Flaky {
    dir: PathBuf,
    seen: Arc<Mutex<HashSet<String>>>,
}

#[derive(Deserialize)]
struct Target {
    location: String,
}

/// The scripted server; its base URL. Routes:
/// - `/files/{name}`: the file from `dir`;
/// - `/status/{code}`: that status, with a small body;
/// - `/flaky/{name}`: 500 the first time, then the file;
/// - `/loop/a` ⇄ `/loop/b`: a redirect loop; `/hops/{n}`: an endless redirect chain;
/// - `/redirect?location=…`: a redirect anywhere;
/// - `/page.mp4`: an HTML page where a video was expected.
pub async fn scripted(dir: PathBuf) -> String {
    let flaky = Flaky {
        dir: dir.clone(),
        seen: Arc::default(),
    };
    let app =
        Router::new()
            .route("/files/{name}", get(common::file))
            .with_state(dir)
            .merge(
                Router::new()
                    .route("/flaky/{name}", get(flaky_file))
                    .with_state(flaky),
            )
            .route("/status/{code}", get(status))
            .route("/loop/a", get(|| async { Redirect::temporary("/loop/b") }))
            .route("/loop/b", get(|| async { Redirect::temporary("/loop/a") }))
            .route(
                "/hops/{n}",
                get(|Path(n): Path<u32>| async move {
                    Redirect::temporary(&format!("/hops/{}", n + 1))
                }),
            )
            .route(
                "/redirect",
                get(|Query(t): Query<Target>| async move { Redirect::temporary(&t.location) }),
            )
            .route("/page.mp4", get(html_page));
    format!("http://{}", common::serve(app).await)
}

async fn status(Path(code): Path<u16>) -> Response {
    let status = StatusCode::from_u16(code).unwrap();
    (status, format!("{status}")).into_response()
}

async fn flaky_file(State(flaky): State<Flaky>, Path(name): Path<String>) -> Response {
    let first = flaky.seen.lock().unwrap().insert(name.clone());
    if first {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    common::file(State(flaky.dir), Path(name))
        .await
        .into_response()
}

async fn html_page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!DOCTYPE html><html><head><title>Sign in</title></head>\
         <body><form action=/login><input name=user></form></body></html>",
    )
        .into_response()
}

/// What a raw server does after reading a request.
#[derive(Clone, Copy, Debug)]
pub enum Raw {
    /// Announces 1 MB, sends 1 KB and closes.
    LyingLength,
    /// Announces 10 TB and sends nothing.
    HugeLength,
    /// No length; zeros until the client hangs up.
    Endless,
    /// Announces 1 KB and sends one byte every 3 s.
    Drip,
}

/// A raw TCP server acting out `behaviour` on every connection; its media URL.
pub async fn raw(behaviour: Raw) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let head = |length: &str| {
                    format!("HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\n{length}\r\n")
                };
                // Write errors end the connection: the client gave up, as it should.
                match behaviour {
                    Raw::LyingLength => {
                        let mut out = head("content-length: 1000000\r\n").into_bytes();
                        out.extend([0u8; 1000]);
                        let _ = stream.write_all(&out).await;
                    }
                    Raw::HugeLength => {
                        let _ = stream
                            .write_all(head("content-length: 10000000000000\r\n").as_bytes())
                            .await;
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    Raw::Endless => {
                        let _ = stream
                            .write_all(head("connection: close\r\n").as_bytes())
                            .await;
                        let chunk = vec![0u8; 64 * 1024];
                        while stream.write_all(&chunk).await.is_ok() {}
                    }
                    Raw::Drip => {
                        let _ = stream
                            .write_all(head("content-length: 1000\r\n").as_bytes())
                            .await;
                        while stream.write_all(b"\0").await.is_ok() {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}/media.mp4")
}
