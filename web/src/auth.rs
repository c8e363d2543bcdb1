//! Who is asking: tokens from files, sessions in memory, CSRF tokens, login throttling.
//!
//! A token (read from its file at every login, so it can be rotated without a restart)
//! is exchanged for a session cookie (HttpOnly, SameSite=Strict, Secure under TLS).
//! Every POST carries the session's CSRF token; API clients may instead send the token
//! itself as `Authorization: Bearer`, which a browser never adds on its own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

pub const SESSION_COOKIE: &str = "dcmon_session";
pub const LOGIN_CSRF_COOKIE: &str = "dcmon_login";
/// A session lasts this long from login.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Failed logins allowed per client address in one window.
pub const LOGIN_ATTEMPTS: u32 = 5;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// Shorter tokens are refused: they could be guessed.
const MIN_TOKEN_LEN: usize = 16;

/// The dashboard's access settings.
#[derive(Debug, Clone, Default)]
pub struct AccessConfig {
    /// Looking needs a login too (otherwise only acting does).
    pub view_needs_login: bool,
    pub admin_token_file: Option<PathBuf>,
    pub viewer_token_file: Option<PathBuf>,
    /// Cookies get `Secure` (the dashboard is served over HTTPS).
    pub secure_cookies: bool,
    /// Reverse proxies whose `X-Forwarded-For` names the client (else every client
    /// behind one proxy would share one throttling bucket).
    pub trusted_proxies: Vec<IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Admin,
}

/// The caller of one request.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub role: Option<Role>,
    /// Set for a cookie session, not for a bearer token.
    pub session: Option<String>,
    pub csrf: Option<String>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Some(Role::Admin)
    }
}

struct Session {
    role: Role,
    csrf: String,
    expires: Instant,
    /// The token it was made with: once its file holds another, the session ends.
    token: String,
}

/// Login forms handed out and not used yet, so a login's CSRF token is one this server
/// issued (and only once), not merely one the cookie and the form agree on.
const MAX_OPEN_FORMS: usize = 10_000;
/// How long a login form stays valid.
pub const FORM_LIFETIME: Duration = Duration::from_secs(600);

/// A token file's content as last read, with what its metadata said then.
struct ReadToken {
    stamp: (std::time::SystemTime, u64, u64),
    token: Result<String, String>,
}

struct Failures {
    since: Instant,
    count: u32,
}

/// Sessions and throttling state, shared by every request.
pub struct Access {
    pub config: AccessConfig,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    forms: Mutex<HashMap<String, Instant>>,
    tokens: Mutex<HashMap<PathBuf, ReadToken>>,
}

/// 32 random bytes from the OS, as text for a cookie or a form field.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The OS random source failing is not something a web request can recover from.
    getrandom::fill(&mut bytes).expect("the OS random number source works");
    data_encoding::BASE64URL_NOPAD.encode(&bytes)
}

/// Reads a token file, refusing one that others may read or a token too short to be safe.
pub fn read_token(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("token file {shown}: {e}"))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o007 != 0 {
        return Err(format!(
            "token file {shown} is open to every user (mode {mode:04o}): run `chmod o-rwx {shown}`"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("token file {shown}: {e}"))?;
    let token = text.trim().to_string();
    if token.chars().count() < MIN_TOKEN_LEN {
        return Err(format!(
            "token file {shown} holds {} characters; use at least {MIN_TOKEN_LEN} \
             (e.g. `head -c 24 /dev/urandom | base64 > {shown}`)",
            token.chars().count()
        ));
    }
    Ok(token)
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Access {
    pub fn new(config: AccessConfig) -> Access {
        Access {
            config,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            forms: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Checks the token files at start, so a bad one stops `dcmon serve` with its reason.
    pub fn check_files(&self) -> Result<(), String> {
        for path in [
            &self.config.admin_token_file,
            &self.config.viewer_token_file,
        ]
        .into_iter()
        .flatten()
        {
            read_token(path)?;
        }
        Ok(())
    }

    /// A token file's token, reread only when its metadata changed (checked on every
    /// request that needs it, so a rotated file takes effect at once).
    fn token_in(&self, path: &Path) -> Result<String, String> {
        use std::os::unix::fs::MetadataExt as _;
        let stamp = std::fs::metadata(path)
            .map(|m| {
                (
                    m.modified().unwrap_or(std::time::UNIX_EPOCH),
                    m.len(),
                    m.ino(),
                )
            })
            .map_err(|e| format!("token file {}: {e}", path.display()))?;
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(read) = tokens.get(path).filter(|r| r.stamp == stamp) {
            return read.token.clone();
        }
        let token = read_token(path);
        tokens.insert(
            path.to_path_buf(),
            ReadToken {
                stamp,
                token: token.clone(),
            },
        );
        token
    }

    fn file_of(&self, role: Role) -> Option<&PathBuf> {
        match role {
            Role::Admin => self.config.admin_token_file.as_ref(),
            Role::Viewer => self.config.viewer_token_file.as_ref(),
        }
    }

    /// The role a presented token grants. An unreadable token file is logged and grants nothing.
    pub fn role_of_token(&self, presented: &str) -> Option<Role> {
        for role in [Role::Admin, Role::Viewer] {
            let Some(path) = self.file_of(role) else {
                continue;
            };
            match self.token_in(path) {
                Ok(token) if same(presented.trim(), &token) => return Some(role),
                Ok(_) => {}
                Err(e) => crate::log_line(&format!("dcmon web: cannot log in with it: {e}")),
            }
        }
        None
    }

    /// Starts a session for the holder of `token` (which grants `role`); returns
    /// (session id, CSRF token).
    pub fn start_session(&self, role: Role, token: &str) -> (String, String) {
        let id = random_token();
        let csrf = random_token();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(
            id.clone(),
            Session {
                role,
                csrf: csrf.clone(),
                expires: now + SESSION_LIFETIME,
                token: token.trim().to_string(),
            },
        );
        (id, csrf)
    }

    pub fn end_session(&self, id: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.remove(id);
    }

    /// Who sends these headers: a live session cookie whose token still holds, or a
    /// bearer token.
    pub fn caller(&self, headers: &axum::http::HeaderMap) -> Caller {
        if let Some(id) = cookie(headers, SESSION_COOKIE) {
            let session = {
                let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
                sessions
                    .get(&id)
                    .filter(|s| s.expires > Instant::now())
                    .map(|s| (s.role, s.csrf.clone(), s.token.clone()))
            };
            if let Some((role, csrf, token)) = session {
                let current = self.file_of(role).map(|path| self.token_in(path));
                if matches!(&current, Some(Ok(now)) if same(now, &token)) {
                    return Caller {
                        role: Some(role),
                        csrf: Some(csrf),
                        session: Some(id),
                    };
                }
                // The token was rotated (or its file is gone): its sessions end.
                self.end_session(&id);
            }
        }
        Caller {
            role: bearer(headers).and_then(|t| self.role_of_token(t)),
            ..Caller::default()
        }
    }

    /// A fresh login form's CSRF token, remembered until used or expired.
    pub fn issue_form(&self) -> String {
        let token = random_token();
        let mut forms = self.forms.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if forms.len() >= MAX_OPEN_FORMS {
            forms.retain(|_, issued| now.duration_since(*issued) < FORM_LIFETIME);
        }
        if forms.len() >= MAX_OPEN_FORMS {
            // Someone is fetching forms in bulk: the oldest half goes.
            let mut ages: Vec<Instant> = forms.values().copied().collect();
            ages.sort();
            let cut = ages[ages.len() / 2];
            forms.retain(|_, issued| *issued > cut);
        }
        forms.insert(token.clone(), now);
        token
    }

    /// Whether `sent` is a login form this server issued, not expired and not used yet
    /// (it is used up either way).
    pub fn take_form(&self, sent: &str) -> bool {
        let mut forms = self.forms.lock().unwrap_or_else(|e| e.into_inner());
        forms
            .remove(sent)
            .is_some_and(|issued| issued.elapsed() < FORM_LIFETIME)
    }

    /// The address of the client sending `request` (see `client_ip`).
    pub fn request_ip(&self, request: &axum::extract::Request) -> IpAddr {
        let peer = request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        self.client_ip(peer, request.headers())
    }

    /// The client's address: the connection's, or for a trusted proxy the last address
    /// in `X-Forwarded-For` that is not one of the trusted proxies.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &axum::http::HeaderMap) -> IpAddr {
        // Without connection info (handler tests) every caller shares one bucket.
        let peer = peer.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        if !self.config.trusted_proxies.contains(&peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map_while(|a| a.trim().parse::<IpAddr>().ok())
            .collect();
        forwarded
            .into_iter()
            .rev()
            .find(|a| !self.config.trusted_proxies.contains(a))
            .unwrap_or(peer)
    }

    /// Whether `ip` may try to log in now; otherwise how long until it may.
    pub fn may_try(&self, ip: IpAddr) -> Result<(), Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        failures.retain(|_, f| now.duration_since(f.since) < LOGIN_WINDOW);
        match failures.get(&ip) {
            Some(f) if f.count >= LOGIN_ATTEMPTS => {
                Err(LOGIN_WINDOW.saturating_sub(now.duration_since(f.since)))
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, ip: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let f = failures.entry(ip).or_insert(Failures {
            since: Instant::now(),
            count: 0,
        });
        f.count += 1;
    }
}

/// The token of an `Authorization: Bearer TOKEN` header.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// One cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Secure under TLS.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: Duration, secure: bool) -> String {
    cookie::Cookie::build((name, value))
        .path(path)
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(max_age.as_secs() as i64))
        .build()
        .to_string()
}

/// Whether a POST's CSRF token matches the one expected.
pub fn csrf_ok(expected: Option<&str>, sent: Option<&str>) -> bool {
    matches!((expected, sent), (Some(e), Some(s)) if same(e, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_open_to_everyone_or_too_short_are_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.token");
        std::fs::write(&path, "0123456789abcdef-long-enough\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_token(&path).unwrap_err();
        assert!(e.contains("open to every user (mode 0644)"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(read_token(&path).unwrap(), "0123456789abcdef-long-enough");
        std::fs::write(&path, "short\n").unwrap();
        let e = read_token(&path).unwrap_err();
        assert!(e.contains("holds 5 characters; use at least 16"), "{e}");
    }

    #[test]
    fn logins_are_throttled_per_address() {
        let access = Access::new(AccessConfig::default());
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..LOGIN_ATTEMPTS {
            assert!(access.may_try(a).is_ok());
            access.failed(a);
        }
        let wait = access.may_try(a).unwrap_err();
        assert!(wait > Duration::from_secs(50) && wait <= LOGIN_WINDOW);
        assert!(access.may_try(b).is_ok());
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        assert!(csrf_ok(Some("abc"), Some("abc")));
        assert!(!csrf_ok(Some("abc"), Some("abd")));
        assert!(!csrf_ok(Some("abc"), None));
        assert!(!csrf_ok(None, Some("abc")));
        assert!(!csrf_ok(Some("abc"), Some("abcd")));
    }
}
