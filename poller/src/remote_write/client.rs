//! One receiver's HTTP client: POSTs remote-write bodies with the receiver's auth and
//! TLS, and sorts each answer into sent, refused for good (4xx), or worth retrying.

use bytes::Bytes;
use dcmon_inventory::cluster::{RemoteAuth, RemoteWrite};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client as Hyper;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use std::time::Duration;

/// How much of a refusal's body is kept for the log (receivers say why).
const REASON_CHARS: usize = 300;

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// A 4xx other than 429: sending the same body again cannot work.
    Refused(String),
    /// 5xx, 429, a network error or a timeout: the body is sent again after a pause.
    Retry(String),
}

pub struct Client {
    http: Hyper<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    url: hyper::Uri,
    shown: String,
    auth: RemoteAuth,
    timeout: Duration,
}

impl Client {
    /// The client, or why there is none (a CA or client certificate file that cannot be
    /// read, a URL hyper refuses).
    pub fn new(config: &RemoteWrite) -> Result<Client, String> {
        let url: hyper::Uri = config
            .url
            .parse()
            .map_err(|e| format!("remote write url `{}`: {e}", config.url))?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.queue.timeout.min(Duration::from_secs(10))));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls(config)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Client {
            http: Hyper::builder(TokioExecutor::new()).build(https),
            url,
            shown: config.url.clone(),
            auth: config.auth.clone(),
            timeout: config.queue.timeout,
        })
    }

    /// POSTs one snappy-compressed `WriteRequest`.
    pub async fn post(&self, body: Vec<u8>) -> Outcome {
        let authorization = match self.authorization() {
            Ok(a) => a,
            // The file may be fixed while samples wait: keep them.
            Err(why) => return Outcome::Retry(why),
        };
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .header("User-Agent", concat!("dcmon/", env!("CARGO_PKG_VERSION")));
        if let Some(a) = authorization {
            request = request.header("Authorization", a);
        }
        let request = match request.body(Full::new(Bytes::from(body))) {
            Ok(r) => r,
            Err(e) => return Outcome::Refused(format!("{}: {e}", self.shown)),
        };
        let exchange = async {
            let response =
                self.http.request(request).await.map_err(|e| {
                    format!("{}: {}", self.shown, dcmon_alerts::http::error_chain(&e))
                })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), 64 * 1024)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok::<_, String>((status, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Outcome::Retry(format!(
                "{}: no answer within {:?}",
                self.shown, self.timeout
            )),
            Ok(Err(why)) => Outcome::Retry(why),
            Ok(Ok((status, body))) => judge(status, &body, &self.shown),
        }
    }

    /// `Authorization`, read from its file at each request so a rotated token is used
    /// at once.
    fn authorization(&self) -> Result<Option<String>, String> {
        let first_line = |path: &std::path::Path| {
            std::fs::read_to_string(path)
                .map(|t| t.lines().next().unwrap_or_default().trim().to_string())
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        };
        Ok(match &self.auth {
            RemoteAuth::None => None,
            RemoteAuth::Bearer(file) => Some(format!("Bearer {}", first_line(file)?)),
            RemoteAuth::Basic {
                username,
                password_file,
            } => {
                use data_encoding::BASE64;
                let pair = format!("{username}:{}", first_line(password_file)?);
                Some(format!("Basic {}", BASE64.encode(pair.as_bytes())))
            }
        })
    }
}

/// The answer's meaning, with the receiver's own words for a refusal.
fn judge(status: StatusCode, body: &[u8], url: &str) -> Outcome {
    if status.is_success() {
        return Outcome::Sent;
    }
    let said: String = String::from_utf8_lossy(body)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(REASON_CHARS)
        .collect();
    let why = format!("{url} answered {status}: {said}");
    if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
        Outcome::Refused(why)
    } else {
        Outcome::Retry(why)
    }
}

fn tls(config: &RemoteWrite) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_file {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(file) => {
            let shown = file.display();
            let certs = CertificateDer::pem_file_iter(file)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("remote write ca_file {shown}: {e}"))?;
            if roots.add_parsable_certificates(certs).0 == 0 {
                return Err(format!(
                    "remote write ca_file {shown} holds no CA certificate (PEM `BEGIN CERTIFICATE` blocks)"
                ));
            }
        }
    }
    let builder = builder.with_root_certificates(roots);
    match &config.client_cert {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("remote write cert_file {}: {e}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("remote write key_file {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("remote write client certificate: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_sorted_into_sent_refused_and_retry() {
        let url = "http://vm/api/v1/write";
        assert_eq!(judge(StatusCode::NO_CONTENT, b"", url), Outcome::Sent);
        assert_eq!(
            judge(StatusCode::UNAUTHORIZED, b"bad\n  token\x07", url),
            Outcome::Refused(format!("{url} answered 401 Unauthorized: bad token"))
        );
        assert!(matches!(
            judge(StatusCode::TOO_MANY_REQUESTS, b"", url),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            judge(StatusCode::SERVICE_UNAVAILABLE, b"", url),
            Outcome::Retry(_)
        ));
        let long = vec![b'x'; 10_000];
        let Outcome::Refused(why) = judge(StatusCode::BAD_REQUEST, &long, url) else {
            panic!()
        };
        assert!(why.len() < 400);
    }
}
