//! The HTTP API: one axum [`Router`] is the single definition of every endpoint of the contract.
//! `ecg serve` serves it with `axum::serve`; the Lambda function hands it to `lambda_http`.
//!
//! Layout: [`state`] (what handlers share), [`error`] (the only place HTTP statuses are chosen),
//! [`routes`] (the handlers, and the `/metrics` route the GPU runner serves alone), [`openapi`]
//! (the OpenAPI document and its page), [`upload`] (media sent with a request), [`openai`] (the
//! OpenAI-compatible transcription endpoint), [`auth`] (the bearer token). Knows the core's ports, never their
//! adapters.

pub mod auth;
pub mod error;
pub mod openai;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod upload;

pub use auth::ApiToken;
pub use routes::{metrics_routes, router};
pub use state::{ApiConfig, AppState, MetricsSource};
pub use upload::UploadConfig;
