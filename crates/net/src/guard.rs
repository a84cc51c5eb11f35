//! SSRF guard: when local URLs are not allowed, no request may reach a loopback, private,
//! link-local, unique-local or cloud-metadata address; when they are, cloud-metadata addresses
//! stay out of reach (a developer's `ECG_ALLOW_LOCAL_URLS=true` on a cloud machine must not hand
//! out its credentials).
//!
//! Three checks, because each covers a gap the others leave:
//! - [`check_url`] before a request: IP-literal hosts never go through a resolver.
//! - [`GuardedResolver`] at connect time: the addresses checked are the addresses dialled,
//!   so a name cannot resolve to a public address for the check and a private one for the
//!   connection (DNS rebinding).
//! - [`redirect_policy`] on every redirect: the new URL's scheme and IP-literal host.

use std::error::Error;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ecg_core::request::{is_metadata_ip, is_public_ip};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::{Attempt, Policy};
use url::{Host, Url};

/// A URL or address the guard will not let a request reach.
#[derive(Debug)]
pub(crate) struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused: {}", self.0)
    }
}

impl Error for Refused {}

/// Whether `err` or one of its sources is the guard's refusal.
pub(crate) fn refused(err: &(dyn Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<Refused>() {
            return true;
        }
        next = e.source();
    }
    false
}

fn check_ip(ip: IpAddr, allow_local: bool) -> Result<(), Refused> {
    if is_metadata_ip(ip) {
        Err(Refused(format!("{ip} is a cloud metadata address")))
    } else if allow_local || is_public_ip(ip) {
        Ok(())
    } else {
        Err(Refused(format!("{ip} is not a public address")))
    }
}

/// Only http(s), and an IP-literal host must pass [`check_ip`]. Names are left to the resolver.
pub(crate) fn check_url(url: &Url, allow_local: bool) -> Result<(), Refused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused(format!("scheme {:?} is not http(s)", url.scheme())));
    }
    match url.host() {
        None => Err(Refused("the URL has no host".to_owned())),
        Some(Host::Domain(_)) => Ok(()),
        Some(Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip), allow_local),
        Some(Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip), allow_local),
    }
}

/// A redirect must pass [`check_url`] and, unless local URLs are allowed, must not downgrade
/// https to plain http.
fn check_redirect(from: Option<&Url>, to: &Url, allow_local: bool) -> Result<(), Refused> {
    if !allow_local && from.is_some_and(|f| f.scheme() == "https") && to.scheme() == "http" {
        return Err(Refused(format!(
            "redirect from https to plain http ({})",
            crate::http::shown(to)
        )));
    }
    check_url(to, allow_local)
        .map_err(|Refused(why)| Refused(format!("redirect to {}: {why}", crate::http::shown(to))))
}

/// Resolves names with the system resolver and refuses any name with an address that
/// [`check_ip`] refuses.
#[derive(Debug)]
pub(crate) struct GuardedResolver {
    pub allow_local: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_local = self.allow_local;
        Box::pin(async move {
            let host = name.as_str();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
            // One refused address is enough to refuse: such a name is not meant for us to call.
            for addr in &addrs {
                check_ip(addr.ip(), allow_local)
                    .map_err(|Refused(why)| Refused(format!("{host}: {why}")))?;
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Follows at most `max` redirects, each target checked by the guard.
pub(crate) fn redirect_policy(max: usize, allow_local: bool) -> Policy {
    Policy::custom(move |attempt: Attempt| {
        // `previous` starts with the original URL, so it also counts the redirects followed so far.
        if attempt.previous().len() > max {
            return attempt.error(format!("more than {max} redirects"));
        }
        if attempt.previous().contains(attempt.url()) {
            let looped = crate::http::shown(attempt.url());
            return attempt.error(format!("redirect loop at {looped}"));
        }
        if let Err(refused) = check_redirect(attempt.previous().last(), attempt.url(), allow_local)
        {
            return attempt.error(refused);
        }
        attempt.follow()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn refused_url(raw: &str) -> bool {
        check_url(&Url::parse(raw).unwrap(), false).is_err()
    }

    #[test]
    fn local_and_private_addresses_are_refused() {
        for raw in [
            "http://127.0.0.1/",
            "http://127.8.9.10:8080/x",
            "http://10.0.0.1/",
            "http://172.16.0.1/",
            "http://172.31.255.254/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:169.254.169.254]/",
            // Other spellings of 127.0.0.1 that the URL parser normalises.
            "http://2130706433/",
            "http://0x7f.1/",
        ] {
            assert!(refused_url(raw), "{raw} was accepted");
        }
    }

    #[test]
    fn public_addresses_and_names_pass_the_url_check() {
        for raw in [
            "https://93.184.215.14/v.mp4",
            "https://[2606:4700::1111]/",
            "https://172.32.0.1/",
            "https://example.com/v.mp4",
        ] {
            assert!(!refused_url(raw), "{raw} was refused");
        }
    }

    #[test]
    fn other_schemes_are_refused() {
        assert!(refused_url("file:///etc/passwd"));
        assert!(refused_url("ftp://example.com/x"));
    }

    #[test]
    fn redirects_may_not_downgrade_to_plain_http() {
        let https = Url::parse("https://example.com/a").unwrap();
        let http = Url::parse("http://example.com/b").unwrap();
        assert!(check_redirect(Some(&https), &http, false).is_err());
        assert!(check_redirect(Some(&http), &https, false).is_ok());
        assert!(check_redirect(Some(&http), &http, false).is_ok());
        assert!(check_redirect(Some(&https), &http, true).is_ok());
    }

    #[test]
    fn metadata_addresses_are_refused_even_when_local_urls_are_allowed() {
        for raw in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://[::ffff:169.254.169.254]/",
        ] {
            let err = check_url(&Url::parse(raw).unwrap(), true).unwrap_err();
            assert!(err.to_string().contains("metadata"), "{raw}: {err}");
        }
        assert!(check_url(&Url::parse("http://127.0.0.1:8/").unwrap(), true).is_ok());
        assert!(check_url(&Url::parse("file:///etc/passwd").unwrap(), true).is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_local_addresses() {
        let err = GuardedResolver { allow_local: false }
            .resolve(Name::from_str("localhost").unwrap())
            .await
            .err()
            .unwrap();
        assert!(refused(&*err), "{err}");
        assert!(err.to_string().contains("localhost"), "{err}");
    }

    #[test]
    fn refusals_are_found_in_an_error_chain() {
        #[derive(Debug)]
        struct Outer(Refused);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("outer")
            }
        }
        impl Error for Outer {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        assert!(refused(&Outer(Refused("x".into()))));
        assert!(!refused(&fmt::Error));
    }
}
