//! Host key checking against an OpenSSH known_hosts file.
//!
//! russh's helpers reread the file on every connection and read two keys of one type as
//! a change (see ../shared/TESTBED.md); for a thousand hosts the file is read once here
//! and matched in memory, with OpenSSH's rules: `[host]:port` for ports other than 22,
//! `*`/`?` wildcards, `!negated` patterns, hashed `|1|salt|hash` names, and `@revoked`.

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::ssh_key::certificate::CertType;
use russh::keys::{Certificate, HashAlg, PublicKey};
use sha1::Sha1;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

/// What the known_hosts file says of a presented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Trusted,
    /// No line names this host.
    Unknown,
    /// A line names this host with another key (of this or another type).
    Changed {
        line: usize,
        known: String,
    },
    /// The key is marked `@revoked`.
    Revoked {
        line: usize,
    },
}

#[derive(Debug)]
enum Pattern {
    Plain { negated: bool, glob: String },
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

#[derive(Debug)]
struct Entry {
    line: usize,
    marker: Marker,
    patterns: Vec<Pattern>,
    key: PublicKey,
}

/// What a line says of its key: a host's key, `@revoked`, or `@cert-authority` (a CA
/// whose host certificates are trusted for the line's hosts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Key,
    Revoked,
    Authority,
}

/// What the known_hosts file says of a presented host certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertVerdict {
    Trusted,
    /// The certificate, its key or its CA is marked `@revoked`.
    Revoked {
        line: usize,
    },
    /// Why it is not accepted (wrong CA, principal, dates, signature).
    Refused(String),
}

/// One known_hosts file, loaded once; new keys are appended under a lock.
#[derive(Debug)]
pub struct KnownHosts {
    path: PathBuf,
    entries: RwLock<Vec<Entry>>,
    append: Mutex<()>,
}

/// The name a host has in known_hosts: `host` on port 22, `[host]:port` otherwise.
pub fn host_port(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// `ED25519 SHA256:...`, the way OpenSSH shows a key to a person.
pub fn describe_key(key: &PublicKey) -> String {
    format!(
        "{} {}",
        key.algorithm().as_str(),
        key.fingerprint(HashAlg::Sha256)
    )
}

impl KnownHosts {
    /// Reads the file; a missing file is an empty one (every host is then unknown).
    pub fn load(path: &Path) -> std::io::Result<KnownHosts> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        Ok(KnownHosts {
            path: path.to_path_buf(),
            entries: RwLock::new(parse(&text)),
            append: Mutex::new(()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Verdict {
        let name = host_port(host, port);
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = entries
            .iter()
            .find(|e| e.marker == Marker::Revoked && e.key.key_data() == key.key_data())
        {
            return Verdict::Revoked { line: e.line };
        }
        let mut other = None;
        for e in entries
            .iter()
            .filter(|e| e.marker == Marker::Key && matches(&e.patterns, &name))
        {
            if e.key.key_data() == key.key_data() {
                return Verdict::Trusted;
            }
            // Prefer reporting a line with the same key type: that is the real change.
            if other.is_none() || e.key.algorithm() == key.algorithm() {
                other = Some((e.line, describe_key(&e.key)));
            }
        }
        match other {
            Some((line, known)) => Verdict::Changed { line, known },
            None => Verdict::Unknown,
        }
    }

    /// Whether a `@cert-authority` line names this host: then its certificate is asked
    /// for (OpenSSH offers certificate algorithms first too).
    pub fn has_authority(&self, host: &str, port: u16) -> bool {
        let name = host_port(host, port);
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .any(|e| e.marker == Marker::Authority && matches(&e.patterns, &name))
    }

    /// A host certificate is trusted when a `@cert-authority` line for the host holds
    /// the key that signed it, the signature holds, it is a host certificate naming the
    /// host (or no one), it is within its dates, and neither it nor its CA is revoked.
    pub fn check_certificate(&self, host: &str, port: u16, cert: &Certificate) -> CertVerdict {
        let name = host_port(host, port);
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = entries.iter().find(|e| {
            e.marker == Marker::Revoked
                && (e.key.key_data() == cert.public_key()
                    || e.key.key_data() == cert.signature_key())
        }) {
            return CertVerdict::Revoked { line: e.line };
        }
        let ca = PublicKey::new(cert.signature_key().clone(), "");
        let Some(authority) = entries.iter().find(|e| {
            e.marker == Marker::Authority
                && matches(&e.patterns, &name)
                && e.key.key_data() == cert.signature_key()
        }) else {
            return CertVerdict::Refused(format!(
                "it is signed by {}, which no @cert-authority line for {name} in {} holds",
                describe_key(&ca),
                self.path.display()
            ));
        };
        if cert.cert_type() != CertType::Host {
            return CertVerdict::Refused("it is a user certificate, not a host certificate".into());
        }
        if let Some(why) = crate::identity::outside_validity(cert) {
            return CertVerdict::Refused(format!("the certificate is {why}"));
        }
        let principals = cert.valid_principals();
        if !principals.is_empty() && !principals.iter().any(|p| p.eq_ignore_ascii_case(host)) {
            return CertVerdict::Refused(format!(
                "it is for {}, not {host}",
                principals.join(", ")
            ));
        }
        if let Some((option, _)) = cert.critical_options().iter().next() {
            return CertVerdict::Refused(format!(
                "it has the critical option `{option}`, unknown to dcmon"
            ));
        }
        let fingerprint = authority.key.fingerprint(HashAlg::Sha256);
        match cert.validate([&fingerprint]) {
            Ok(()) => CertVerdict::Trusted,
            Err(e) => CertVerdict::Refused(format!(
                "its signature by {} does not hold ({e}), @cert-authority at {}:{}",
                describe_key(&authority.key),
                self.path.display(),
                authority.line
            )),
        }
    }

    /// Records a key for a host (trust on first use), in the file and in memory.
    pub fn learn(&self, host: &str, port: u16, key: &PublicKey) -> std::io::Result<()> {
        let _guard = self.append.lock().unwrap_or_else(|e| e.into_inner());
        let name = host_port(host, port);
        if self.check(host, port, key) == Verdict::Trusted {
            return Ok(()); // another connection to the same host learned it first
        }
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let openssh = key.to_openssh().map_err(std::io::Error::other)?;
        let mut fields = openssh.split_whitespace();
        let (algorithm, base64) = (
            fields.next().unwrap_or_default(),
            fields.next().unwrap_or_default(),
        );
        let existing = std::fs::read(&self.path).unwrap_or_default();
        // A new file is the owner's alone (0600 whatever the umask), as OpenSSH keeps it.
        let mut file = std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new().create(true).append(true),
            0o600,
        )
        .open(&self.path)?;
        let newline = if existing.is_empty() || existing.ends_with(b"\n") {
            ""
        } else {
            "\n"
        };
        writeln!(file, "{newline}{name} {algorithm} {base64}")?;
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let line = String::from_utf8_lossy(&existing).lines().count() + 1;
        entries.push(Entry {
            line,
            marker: Marker::Key,
            patterns: vec![Pattern::Plain {
                negated: false,
                glob: name,
            }],
            key: key.clone(),
        });
        Ok(())
    }
}

fn parse(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_whitespace().peekable();
        if fields.peek().is_none_or(|f| f.starts_with('#')) {
            continue;
        }
        let marker = match fields.next_if(|f| f.starts_with('@')) {
            None => Marker::Key,
            Some("@revoked") => Marker::Revoked,
            Some("@cert-authority") => Marker::Authority,
            Some(_) => continue, // a marker OpenSSH does not know either
        };
        let (Some(hosts), Some(_algorithm), Some(base64)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Ok(key) = russh::keys::parse_public_key_base64(base64) else {
            continue; // a line of an unsupported key type never matches, as in OpenSSH
        };
        entries.push(Entry {
            line: i + 1,
            marker,
            patterns: hosts.split(',').filter_map(pattern).collect(),
            key,
        });
    }
    entries
}

fn pattern(text: &str) -> Option<Pattern> {
    if let Some(hashed) = text.strip_prefix("|1|") {
        let (salt, hash) = hashed.split_once('|')?;
        return Some(Pattern::Hashed {
            salt: BASE64.decode(salt.as_bytes()).ok()?,
            hash: BASE64.decode(hash.as_bytes()).ok()?,
        });
    }
    let (negated, glob) = match text.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    Some(Pattern::Plain {
        negated,
        glob: glob.to_ascii_lowercase(),
    })
}

/// OpenSSH: a line matches when some pattern matches and no negated one does.
fn matches(patterns: &[Pattern], name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let mut hit = false;
    for p in patterns {
        match p {
            Pattern::Plain { negated, glob } if wildcard(glob.as_bytes(), lower.as_bytes()) => {
                if *negated {
                    return false;
                }
                hit = true;
            }
            Pattern::Hashed { salt, hash } => {
                if let Ok(mac) = Hmac::<Sha1>::new_from_slice(salt)
                    && mac.chain_update(name.as_bytes()).verify_slice(hash).is_ok()
                {
                    hit = true;
                }
            }
            Pattern::Plain { .. } => {}
        }
    }
    hit
}

/// `*` and `?` wildcards, as in ssh_config patterns.
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard(&pattern[1..], text) || (!text.is_empty() && wildcard(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => wildcard(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => wildcard(&pattern[1..], &text[1..]),
        _ => false,
    }
}

#[cfg(test)]
#[path = "known_hosts/tests.rs"]
mod tests;
