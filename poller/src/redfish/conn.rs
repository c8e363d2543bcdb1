//! One BMC's Redfish service: HTTPS with its own certificate check, a session token
//! (`X-Auth-Token`) kept between rounds and renewed when the BMC forgets it, HTTP Basic
//! where the BMC offers no sessions, and each resource's ETag so an unchanged one comes
//! back as a bodiless 304. Every request ends by the read's deadline.

use super::RedfishError;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// Largest resource read: a big server's Thermal is ~100 KB, a SEL page ~1 MB.
const MAX_BODY: usize = 8 << 20;

/// Resources whose body is kept with its ETag: those read every round are a dozen; log
/// entries fetched one by one would grow it without end, so past this it starts over.
const MAX_ETAGS: usize = 128;

/// Where sessions are made (Redfish spec, 13.3.4).
const SESSIONS: &str = "/redfish/v1/SessionService/Sessions";

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

#[derive(Clone)]
enum Auth {
    /// Not logged in yet (or the BMC forgot the session).
    None,
    /// A session: its token, and where to delete it when done.
    Token {
        token: String,
        session: Option<String>,
    },
    /// The `Authorization` header's value (the BMC made no session).
    Basic(String),
}

pub(super) struct Conn {
    /// `https://address:port`
    pub base: String,
    client: Client<Https, Full<Bytes>>,
    user: String,
    auth: Auth,
    /// Each resource's last ETag and body.
    etags: HashMap<String, (String, Bytes)>,
}

impl std::fmt::Debug for Conn {
    /// Never the token or the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("base", &self.base)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// An answer: its status and body (a 304's is the body kept with its ETag).
pub(super) struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Conn {
    pub fn new(
        base: String,
        user: String,
        tls: rustls::ClientConfig,
        connect_timeout: Duration,
    ) -> Conn {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        Conn {
            base,
            client: Client::builder(TokioExecutor::new()).build(https),
            user,
            auth: Auth::None,
            etags: HashMap::new(),
        }
    }

    /// GETs `path` (logging in first if needed, once more if the BMC forgot the
    /// session). 2xx and 404 come back as answers; anything else is an error.
    pub async fn get(
        &mut self,
        path: &str,
        password: &str,
        until: Instant,
    ) -> Result<Answer, RedfishError> {
        if matches!(self.auth, Auth::None) {
            self.login(password, until).await?;
        }
        let mut answer = self.get_once(path, until).await?;
        // The BMC forgot the session (a reboot), or the password file changed since the
        // Basic header was made: log in again, once.
        if answer.status == StatusCode::UNAUTHORIZED {
            self.auth = Auth::None;
            self.login(password, until).await?;
            answer = self.get_once(path, until).await?;
        }
        match answer.status {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(answer),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(RedfishError::Refused(format!(
                    "{}{path}: the BMC refused user `{}` ({})",
                    self.base, self.user, answer.status
                )))
            }
            s => Err(RedfishError::Answer(format!(
                "{}{path}: answered {s}: {}",
                self.base,
                excerpt(&answer.body)
            ))),
        }
    }

    /// PATCHes `path` with a JSON body, `If-Match` the resource's ETag (`if_match`, its
    /// `@odata.etag`, else the header's last seen): Supermicro refuses a PATCH without
    /// one. Ok on a 2xx answer.
    pub async fn patch(
        &mut self,
        path: &str,
        body: String,
        if_match: Option<&str>,
        password: &str,
        until: Instant,
    ) -> Result<(), RedfishError> {
        if matches!(self.auth, Auth::None) {
            self.login(password, until).await?;
        }
        for attempt in 0..2 {
            let mut request = self
                .request(Method::PATCH, path)
                .header("content-type", "application/json");
            if let Some(etag) = if_match.or(self.etags.get(path).map(|(e, _)| e.as_str())) {
                request = request.header("if-match", etag);
            }
            let request = request
                .body(Full::new(Bytes::from(body.clone())))
                .map_err(|e| RedfishError::Answer(format!("{}{path}: {e}", self.base)))?;
            let (status, _, answer) = self.send(request, path, until).await?;
            match status {
                s if s.is_success() => {
                    // The resource changed: its cached body no longer holds.
                    self.etags.remove(path);
                    return Ok(());
                }
                StatusCode::UNAUTHORIZED if attempt == 0 => {
                    self.auth = Auth::None;
                    self.login(password, until).await?;
                }
                s => {
                    return Err(RedfishError::Answer(format!(
                        "{}{path}: PATCH answered {s}: {}",
                        self.base,
                        excerpt(&answer)
                    )));
                }
            }
        }
        Err(RedfishError::Refused(format!(
            "{}{path}: the BMC refused user `{}`",
            self.base, self.user
        )))
    }

    /// A request with Redfish's headers and this service's credentials.
    fn request(&self, method: Method, path: &str) -> hyper::http::request::Builder {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("accept", "application/json")
            .header("odata-version", "4.0");
        match &self.auth {
            Auth::Token { token, .. } => request.header("x-auth-token", token.as_str()),
            Auth::Basic(header) => request.header("authorization", header.as_str()),
            Auth::None => request,
        }
    }

    async fn get_once(&mut self, path: &str, until: Instant) -> Result<Answer, RedfishError> {
        let mut request = self.request(Method::GET, path);
        let cached = self.etags.get(path);
        if let Some((etag, _)) = cached {
            request = request.header("if-none-match", etag.as_str());
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| RedfishError::Answer(format!("{}{path}: {e}", self.base)))?;
        let (status, headers, body) = self.send(request, path, until).await?;
        if status == StatusCode::NOT_MODIFIED
            && let Some((_, body)) = self.etags.get(path)
        {
            return Ok(Answer {
                status: StatusCode::OK,
                body: body.clone(),
            });
        }
        if status.is_success()
            && let Some(etag) = headers.get("etag").and_then(|v| v.to_str().ok())
        {
            if self.etags.len() >= MAX_ETAGS && !self.etags.contains_key(path) {
                self.etags.clear();
            }
            self.etags
                .insert(path.to_string(), (etag.to_string(), body.clone()));
        }
        Ok(Answer { status, body })
    }

    /// One request, its answer's head and whole body by `until`.
    async fn send(
        &self,
        request: Request<Full<Bytes>>,
        path: &str,
        until: Instant,
    ) -> Result<(StatusCode, hyper::HeaderMap, Bytes), RedfishError> {
        let url = format!("{}{path}", self.base);
        let stalled = |what: &str| {
            RedfishError::Unreachable(format!(
                "{url}: {what} by the deadline (the BMC stalled or is overloaded)"
            ))
        };
        let response = tokio::time::timeout_at(until, self.client.request(request))
            .await
            .map_err(|_| stalled("no answer"))?
            .map_err(|e| RedfishError::Unreachable(format!("{url}: {}", why(&e))))?;
        let (head, body) = response.into_parts();
        let body = tokio::time::timeout_at(until, Limited::new(body, MAX_BODY).collect())
            .await
            .map_err(|_| stalled("the answer was not complete"))?
            .map_err(|e| {
                RedfishError::Answer(format!(
                    "{url}: the answer broke off or passed {} MB: {e}",
                    MAX_BODY >> 20
                ))
            })?
            .to_bytes();
        Ok((head.status, head.headers, body))
    }

    /// Opens a session; where the BMC has no session service, HTTP Basic.
    async fn login(&mut self, password: &str, until: Instant) -> Result<(), RedfishError> {
        let body = serde_json::json!({ "UserName": self.user, "Password": password }).to_string();
        self.auth = Auth::None;
        let request = self
            .request(Method::POST, SESSIONS)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| RedfishError::Answer(format!("{}{SESSIONS}: {e}", self.base)))?;
        let (status, headers, answer) = self.send(request, SESSIONS, until).await?;
        let token = headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.auth = match (status, token) {
            (s, Some(token)) if s.is_success() => Auth::Token {
                token,
                session: headers
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .map(|l| self.path_of(l)),
            },
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST, _) => {
                return Err(RedfishError::Refused(format!(
                    "{}: the BMC refused user `{}` or its password ({status}: {})",
                    self.base,
                    self.user,
                    excerpt(&answer)
                )));
            }
            // No session service (404, 405, 501) or no token: Basic on every request.
            _ => Auth::Basic(format!(
                "Basic {}",
                data_encoding::BASE64.encode(format!("{}:{password}", self.user).as_bytes())
            )),
        };
        Ok(())
    }

    /// Deletes the session, if one is open (a BMC holds few).
    pub async fn logout(&mut self, until: Instant) {
        let Auth::Token {
            session: Some(session),
            ..
        } = &self.auth
        else {
            self.auth = Auth::None;
            return;
        };
        let session = session.clone();
        let request = self
            .request(Method::DELETE, &session)
            .body(Full::new(Bytes::new()));
        self.auth = Auth::None;
        if let Ok(request) = request {
            let _ = self.send(request, &session, until).await;
        }
    }

    /// A `Location` as a path on this service (BMCs send it absolute or not).
    fn path_of(&self, location: &str) -> String {
        match location
            .strip_prefix("https://")
            .or(location.strip_prefix("http://"))
        {
            Some(rest) => rest
                .find('/')
                .map_or("/".to_string(), |i| rest[i..].to_string()),
            None => location.to_string(),
        }
    }
}

/// The start of an error answer, on one line (BMCs say why they refused).
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 200 {
        line = line.chars().take(200).collect::<String>() + "…";
    }
    line
}

/// Why a request failed, in words: hyper nests the cause (refused, TLS) a few sources
/// down; the certificate problems get the way out named.
fn why(e: &dyn std::error::Error) -> String {
    let mut text = dcmon_alerts::http::error_chain(e);
    if text.contains("UnknownIssuer") || text.contains("unknown issuer") {
        text.push_str(
            " (the certificate is not signed by a CA in bmc ca_file, or by a public CA when none is set: set ca_file to the CA that signed it, or pin it with tls_fingerprint)",
        );
    } else if text.contains("Expired") || text.contains("expired") {
        text.push_str(
            " (the BMC's certificate is past its validity: renew it on the BMC, or pin it with tls_fingerprint, which does not look at dates)",
        );
    } else if text.contains("NotValidForName") || text.contains("not valid for name") {
        text.push_str(
            " (the certificate does not name this address: use the name it was issued for, or pin it with tls_fingerprint)",
        );
    }
    text
}
