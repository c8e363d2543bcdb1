//! The one HTTP client of alerting (Alertmanager, webhooks, Slack): HTTP or HTTPS
//! (rustls, the web PKI's roots), connections reused, every request bounded in time.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Method;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Longest wait for an answer (headers and body each).
const DEADLINE: Duration = Duration::from_secs(10);

/// How much of an error answer is kept (receivers say why they refused).
const ERROR_BODY_CHARS: usize = 300;

/// Largest answer body read (Alertmanager's silence id is a few dozen bytes).
const MAX_BODY: usize = 64 * 1024;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

#[derive(Clone)]
pub struct Http {
    client: Client<Connector, Full<Bytes>>,
}

impl Default for Http {
    fn default() -> Self {
        // ring, as for SSH and the dashboard; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        Http {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }
}

impl Http {
    /// Sends a request; a 2xx answer's body, or an error naming the URL and the reason.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<String>,
    ) -> Result<Bytes, String> {
        self.send_limited(method, url, body, MAX_BODY).await
    }

    /// `GET url`: a 2xx answer's body of at most `limit` bytes (an answer cut by the
    /// limit is an error, never half read).
    pub async fn get(&self, url: &str, limit: usize) -> Result<Bytes, String> {
        self.send_limited(Method::GET, url, None, limit).await
    }

    async fn send_limited(
        &self,
        method: Method,
        url: &str,
        body: Option<String>,
        limit: usize,
    ) -> Result<Bytes, String> {
        let mut request = hyper::Request::builder().method(method).uri(url);
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| format!("{url}: {e}"))?;
        let response = tokio::time::timeout(DEADLINE, self.client.request(request))
            .await
            .map_err(|_| format!("{url}: no answer within {}s", DEADLINE.as_secs()))?
            .map_err(|e| format!("{url}: {}", error_chain(&e)))?;
        let status = response.status();
        let read = http_body_util::Limited::new(response.into_body(), limit).collect();
        let body = tokio::time::timeout(DEADLINE, read)
            .await
            .ok()
            .and_then(Result::ok)
            .map(|b| b.to_bytes());
        if status.is_success() {
            return body.ok_or_else(|| {
                format!("{url}: answered {status} but its body was cut or over {limit} bytes")
            });
        }
        let why: String = body
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .chars()
                    .take(ERROR_BODY_CHARS)
                    .collect()
            })
            .unwrap_or_default();
        Err(format!("{url}: answered {status}: {}", why.trim()))
    }
}

impl Http {
    /// Posts a JSON body; Ok on a 2xx answer.
    pub async fn post_json(&self, url: &str, body: String) -> Result<(), String> {
        self.send(Method::POST, url, Some(body)).await.map(|_| ())
    }
}

/// "connection refused" lives a few sources down in hyper's errors (the Redfish
/// client's too).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
