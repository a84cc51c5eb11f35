//! Bearer-token authentication (`ECG_API_TOKEN`) for every endpoint but `/health`.

use std::fmt;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// Shorter tokens are refused at start-up: they can be guessed.
const MIN_TOKEN_CHARS: usize = 16;

/// The token callers must present as `Authorization: Bearer <token>`. Only its SHA-256 digest is
/// kept: comparing fixed-length digests in constant time tells a caller neither how much of a
/// guess was right nor how long the token is.
#[derive(Clone)]
pub struct ApiToken([u8; 32]);

impl ApiToken {
    /// The error never repeats the token: it ends up in logs.
    pub fn new(token: &str) -> Result<Self, String> {
        if token.chars().count() < MIN_TOKEN_CHARS {
            return Err(format!(
                "the API token must be at least {MIN_TOKEN_CHARS} characters long"
            ));
        }
        if !token.chars().all(|c| c.is_ascii_graphic()) {
            return Err(
                "the API token must be printable ASCII without spaces (it travels in a header)"
                    .to_owned(),
            );
        }
        Ok(Self(Sha256::digest(token.as_bytes()).into()))
    }

    pub fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        self.0.ct_eq(&digest).into()
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(..)")
    }
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive.
fn bearer(request: &Request) -> Option<&[u8]> {
    let value = request.headers().get(AUTHORIZATION)?.as_bytes();
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, token) = value.split_at(space);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| token.trim_ascii())
}

/// Middleware: lets a request through only with the right bearer token.
pub async fn require_token(
    State(token): State<Arc<ApiToken>>,
    request: Request,
    next: Next,
) -> Response {
    match bearer(&request) {
        Some(presented) if token.matches(presented) => next.run(request).await,
        presented => {
            let why = if presented.is_some() {
                "wrong bearer token"
            } else {
                "missing bearer token"
            };
            tracing::warn!(path = %request.uri().path(), why, "request refused");
            ApiError::Unauthorized(why).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly() {
        let token = ApiToken::new("0123456789abcdef-secret").unwrap();
        assert!(token.matches(b"0123456789abcdef-secret"));
        assert!(!token.matches(b"0123456789abcdef-secreT"));
        assert!(!token.matches(b"0123456789abcdef-secret "));
        assert!(!token.matches(b""));
        assert_eq!(format!("{token:?}"), "ApiToken(..)");
    }

    #[test]
    fn weak_or_unsendable_tokens_are_refused() {
        for bad in ["", "short", "sixteen chars  x", "0123456789abcdef\n"] {
            assert!(ApiToken::new(bad).is_err(), "{bad:?}");
        }
        assert!(!ApiToken::new("short").unwrap_err().contains("short"));
    }
}
