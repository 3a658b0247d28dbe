//! The only URLs Muster fetches on a sender's say-so: an SNS message's `SigningCertURL` (to
//! check its signature) and a subscription confirmation's `SubscribeURL` (to confirm it), and
//! only when [`is_aws_url`] accepts them: `https://sns.<region>.amazonaws.com[.cn]`.
//!
//! Requests are HTTPS only, follow no redirect, time out after [`TIMEOUT`], and read at most
//! [`MAX_CERT_BYTES`] of a certificate. Certificates are kept by URL (at most
//! [`CACHED_CERTS`]): AWS's certificate URLs name one certificate each and it rotates them
//! rarely, so one fetch serves every message signed with it.

use crate::ingest::sns::{self, is_aws_url};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long one request to AWS may take, connecting included.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest signing certificate read (AWS's are under 2 KiB).
pub const MAX_CERT_BYTES: usize = 64 * 1024;
/// How many signing certificates are kept.
pub const CACHED_CERTS: usize = 64;

/// Why an SNS message was not verified, or a subscription not confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnsError {
    /// The message cannot be used (a missing field, a `SubscribeURL` that is not AWS's): 400.
    Malformed(String),
    /// The message is not proven to come from SNS: no or a bad signature, a certificate URL
    /// that is not AWS's (not fetched), or a certificate AWS's host did not give: 401.
    Unverified(String),
    /// AWS could not be reached, timed out, or answered 429 or 5xx: worth sending again (503).
    Unavailable(String),
}

impl std::fmt::Display for SnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnsError::Malformed(m) | SnsError::Unverified(m) | SnsError::Unavailable(m) => {
                f.write_str(m)
            }
        }
    }
}

/// Fetches (and keeps) SNS signing certificates and confirms subscriptions.
pub struct SnsCerts {
    client: reqwest::Client,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    certs: HashMap<String, Arc<[u8]>>,
    /// The URLs in `certs`, oldest first: the first goes when a new one comes and it is full.
    order: VecDeque<String>,
}

impl SnsCerts {
    /// The production client. Installs rustls' ring crypto provider as the process default
    /// if none is installed yet (as `muster_notify`'s `Notifier::new` does).
    pub fn new() -> Result<SnsCerts, String> {
        SnsCerts::with_client_builder(reqwest::Client::builder())
    }

    /// Over a client made from `builder`, to which the production settings (HTTPS only, no
    /// redirects, [`TIMEOUT`]) are applied: tests add DNS overrides and a test root
    /// certificate. Only URLs [`is_aws_url`] accepts are ever requested, whatever the builder.
    pub fn with_client_builder(builder: reqwest::ClientBuilder) -> Result<SnsCerts, String> {
        // Ignore the error: it only says a provider was installed first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = builder
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .user_agent(concat!("muster/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("SNS HTTP client: {}", describe(e)))?;
        Ok(SnsCerts {
            client,
            cache: Mutex::new(Cache::default()),
        })
    }

    /// Checks an SNS message's signature with the certificate at its `SigningCertURL`
    /// ([`sns::verify`]), fetching that certificate unless it is kept.
    pub async fn verify(&self, body: &[u8]) -> Result<(), SnsError> {
        // The signed fields first: a message that lacks one is malformed, not unsigned.
        sns::string_to_sign(body).map_err(|e| SnsError::Malformed(e.0))?;
        let url = sns::signing_cert_url(body).map_err(|e| SnsError::Unverified(e.0))?;
        let cert = self.certificate(&url).await?;
        sns::verify(body, &cert).map_err(|e| SnsError::Unverified(e.0))
    }

    /// The PEM certificate at `url`: kept, or fetched when [`is_aws_url`] accepts `url`.
    pub async fn certificate(&self, url: &str) -> Result<Arc<[u8]>, SnsError> {
        if !is_aws_url(url) {
            return Err(SnsError::Unverified(
                "SigningCertURL: not an AWS SNS URL (https://sns.<region>.amazonaws.com/…); \
                 not fetched"
                    .into(),
            ));
        }
        if let Some(cert) = self.cache.lock().unwrap().certs.get(url) {
            return Ok(cert.clone());
        }
        let mut response = self.client.get(url).send().await.map_err(|e| {
            SnsError::Unavailable(format!(
                "cannot fetch the signing certificate: {}",
                describe(e)
            ))
        })?;
        let status = response.status();
        if !status.is_success() {
            let what = format!("the signing certificate URL answered {status}");
            return Err(if retryable(status) {
                SnsError::Unavailable(what)
            } else if status.is_redirection() {
                SnsError::Unverified(format!("{what} (redirects are not followed)"))
            } else {
                SnsError::Unverified(what)
            });
        }
        let too_large = || {
            SnsError::Unverified(format!(
                "the signing certificate is larger than {MAX_CERT_BYTES} bytes"
            ))
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_CERT_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut pem = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            SnsError::Unavailable(format!(
                "cannot read the signing certificate: {}",
                describe(e)
            ))
        })? {
            if pem.len() + chunk.len() > MAX_CERT_BYTES {
                return Err(too_large());
            }
            pem.extend_from_slice(&chunk);
        }
        // Only a certificate is kept.
        let is_cert = x509_parser::pem::parse_x509_pem(&pem)
            .is_ok_and(|(_, p)| p.label == "CERTIFICATE" && p.parse_x509().is_ok());
        if !is_cert {
            return Err(SnsError::Unverified(
                "the signing certificate URL did not give a PEM certificate".into(),
            ));
        }
        let cert: Arc<[u8]> = pem.into();
        self.keep(url, cert.clone());
        Ok(cert)
    }

    fn keep(&self, url: &str, cert: Arc<[u8]>) {
        let mut cache = self.cache.lock().unwrap();
        if cache.certs.insert(url.to_string(), cert).is_none() {
            cache.order.push_back(url.to_string());
            while cache.order.len() > CACHED_CERTS {
                if let Some(oldest) = cache.order.pop_front() {
                    cache.certs.remove(&oldest);
                }
            }
        }
    }

    /// How many certificates are kept.
    pub fn cached(&self) -> usize {
        self.cache.lock().unwrap().certs.len()
    }

    /// Confirms a subscription: a GET of its (verified) `SubscribeURL`, when [`is_aws_url`]
    /// accepts it. Any answer but 2xx, or none, is [`SnsError::Unavailable`]: SNS sends the
    /// confirmation again.
    pub async fn confirm(&self, subscribe_url: &str) -> Result<(), SnsError> {
        if !is_aws_url(subscribe_url) {
            return Err(SnsError::Malformed(
                "SubscribeURL: not an AWS SNS URL (https://sns.<region>.amazonaws.com/…); \
                 not fetched"
                    .into(),
            ));
        }
        let response = self.client.get(subscribe_url).send().await.map_err(|e| {
            SnsError::Unavailable(format!("cannot confirm the subscription: {}", describe(e)))
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(SnsError::Unavailable(format!(
                "confirming the subscription: SNS answered {status}"
            )));
        }
        Ok(())
    }
}

/// Whether AWS's answer says to try again later.
fn retryable(status: reqwest::StatusCode) -> bool {
    status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS
}

/// A `reqwest` error and its causes, without its URL (a `SubscribeURL` holds a token).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(n: u8) -> Arc<[u8]> {
        vec![n].into()
    }

    #[test]
    fn the_cache_keeps_the_newest_certificates() {
        let certs = SnsCerts::new().unwrap();
        for i in 0..CACHED_CERTS + 3 {
            certs.keep(&format!("u{i}"), pem(i as u8));
        }
        assert_eq!(certs.cached(), CACHED_CERTS);
        let cache = certs.cache.lock().unwrap();
        assert_eq!(cache.order.len(), CACHED_CERTS);
        for gone in ["u0", "u1", "u2"] {
            assert!(!cache.certs.contains_key(gone), "{gone}");
        }
        assert_eq!(cache.certs["u3"], pem(3));
        let last = format!("u{}", CACHED_CERTS + 2);
        assert_eq!(cache.certs[&last], pem((CACHED_CERTS + 2) as u8));
        drop(cache);
        // Keeping a URL again replaces its certificate without evicting another.
        certs.keep("u3", pem(99));
        assert_eq!(certs.cached(), CACHED_CERTS);
        assert_eq!(certs.cache.lock().unwrap().certs["u3"], pem(99));
        assert_eq!(certs.cache.lock().unwrap().order.len(), CACHED_CERTS);
    }
}
