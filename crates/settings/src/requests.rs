//! What requests may name, and who may call the API.

use clap::Args;
use ecg_core::request::{AllowedHosts, UrlPolicy};

/// How request URLs (media and callbacks) are checked.
#[derive(Args, Debug, Clone)]
pub struct UrlArgs {
    /// Allow plain http, local paths and loopback/private hosts (local use and tests); cloud
    /// metadata addresses stay refused.
    #[arg(long, env = "ECG_ALLOW_LOCAL_URLS", default_value_t = UrlPolicy::default().allow_local, action = clap::ArgAction::Set)]
    pub allow_local_urls: bool,
    /// Comma-separated hosts callbacks may go to: a request naming another host in
    /// `fastapi_base_url` is refused with 422, and no callback is sent elsewhere. Any host when
    /// unset.
    #[arg(long, env = "ECG_CALLBACK_ALLOWED_HOSTS")]
    pub callback_allowed_hosts: Option<AllowedHosts>,
}

impl UrlArgs {
    pub fn policy(&self) -> UrlPolicy {
        UrlPolicy {
            allow_local: self.allow_local_urls,
            callback_hosts: self.callback_allowed_hosts.clone(),
        }
    }
}

/// Which web origins may call the API from a browser.
#[derive(Args, Debug, Clone)]
pub struct CorsArgs {
    /// Comma-separated CORS allow-list.
    #[arg(
        long,
        env = "ECG_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = "http://localhost:3000,http://localhost:8000"
    )]
    pub cors_origins: Vec<String>,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        urls: UrlArgs,
        #[command(flatten)]
        cors: CorsArgs,
    }

    fn cli(args: &[&str]) -> Cli {
        crate::flags_only(args)
    }

    #[test]
    fn defaults_are_strict_and_local_origins() {
        let cli = cli(&[]);
        assert_eq!(cli.urls.policy(), UrlPolicy::default());
        assert_eq!(
            cli.cors.cors_origins,
            ["http://localhost:3000", "http://localhost:8000"]
        );
    }

    #[test]
    fn hosts_and_origins_are_lists() {
        let cli = cli(&[
            "--allow-local-urls",
            "true",
            "--callback-allowed-hosts",
            "backend.example,127.0.0.1",
            "--cors-origins",
            "https://a.example,https://b.example",
        ]);
        let policy = cli.urls.policy();
        assert!(policy.allow_local);
        assert!(
            policy
                .callback_base("fastapi_base_url", "https://evil.example")
                .is_err()
        );
        assert_eq!(cli.cors.cors_origins.len(), 2);
    }
}
