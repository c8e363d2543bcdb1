//! What a login offers to prove who it is, as OpenSSH would: the keys an ssh-agent
//! holds, key files (encrypted ones opened with their `passphrase_file`), and the
//! OpenSSH certificates that go with them.

use crate::error::TransportError;
use dcmon_inventory::{Identity, SshEndpoint};
use russh::keys::{Certificate, PrivateKey};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One way of authenticating, tried in order.
pub(crate) enum Offer {
    /// The keys (and certificates) of the ssh-agent at `socket`. `required`: the
    /// inventory asked for the agent, so an agent that cannot be reached is an error
    /// (otherwise the key files are tried next).
    Agent { socket: PathBuf, required: bool },
    /// A key file, opened, with its certificate when it has one.
    Key(Arc<KeyFile>),
}

pub(crate) struct KeyFile {
    pub path: PathBuf,
    pub key: Arc<PrivateKey>,
    pub certificate: Option<(PathBuf, Certificate)>,
}

/// Key files opened so far, by path: an encrypted key costs a bcrypt KDF to open
/// (~0.1 s), once per poller, not once per connection.
#[derive(Default)]
pub(crate) struct Keys {
    files: Mutex<HashMap<PathBuf, Arc<KeyFile>>>,
}

/// The key files tried, in OpenSSH's order, when the inventory names none.
const DEFAULT_KEYS: [&str; 3] = ["id_ed25519", "id_ecdsa", "id_rsa"];

impl Keys {
    /// What `endpoint` offers, in the order it is tried. Notes say why a default key
    /// was left out (encrypted, unreadable), for the error if nothing works.
    pub(crate) fn offers(
        &self,
        endpoint: &SshEndpoint,
    ) -> Result<(Vec<Offer>, Vec<String>), TransportError> {
        let agent = std::env::var_os("SSH_AUTH_SOCK")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let passphrase = endpoint.passphrase_file.as_deref();
        let certificate = endpoint.certificate.as_deref();
        match &endpoint.identity {
            Identity::Agent => match agent {
                Some(socket) => Ok((
                    vec![Offer::Agent {
                        socket,
                        required: true,
                    }],
                    Vec::new(),
                )),
                None => Err(TransportError::Agent {
                    socket: "(none)".to_string(),
                    why: "identity = \"agent\" but SSH_AUTH_SOCK is not set: start ssh-agent, \
                          ssh-add the key, and run dcmon where SSH_AUTH_SOCK is exported"
                        .to_string(),
                }),
            },
            Identity::File(path) => {
                let file = self.open(path, passphrase, certificate, true)?;
                Ok((vec![Offer::Key(file)], Vec::new()))
            }
            Identity::Default => {
                let home = std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_default();
                let files: Vec<PathBuf> = DEFAULT_KEYS
                    .iter()
                    .map(|name| home.join(".ssh").join(name))
                    .filter(|path| path.is_file())
                    .collect();
                self.agent_then_files(agent, &files, passphrase, certificate)
            }
            Identity::SshConfig {
                files,
                identities_only,
            } => {
                let agent = agent.filter(|_| !identities_only);
                self.agent_then_files(agent, files, passphrase, certificate)
            }
        }
    }

    /// As OpenSSH without an explicit key: the agent's keys first, then each key file
    /// that opens. A file that does not open is a note for the final error, unless
    /// nothing else is left to try.
    fn agent_then_files(
        &self,
        agent: Option<PathBuf>,
        files: &[PathBuf],
        passphrase: Option<&Path>,
        certificate: Option<&Path>,
    ) -> Result<(Vec<Offer>, Vec<String>), TransportError> {
        let mut offers = Vec::new();
        let mut notes = Vec::new();
        if let Some(socket) = agent {
            offers.push(Offer::Agent {
                socket,
                required: false,
            });
        }
        let mut first_error = None;
        for path in files {
            match self.open(path, passphrase, certificate, files.len() == 1) {
                Ok(file) => offers.push(Offer::Key(file)),
                Err(e) => {
                    notes.push(e.to_string());
                    first_error.get_or_insert(e);
                }
            }
        }
        if offers.is_empty() {
            return Err(first_error.unwrap_or(TransportError::NoIdentity));
        }
        Ok((offers, notes))
    }

    /// Opens a key file (once). `alone`: it is the only key offered, so a named
    /// certificate that is for another key is an error rather than left out.
    fn open(
        &self,
        path: &Path,
        passphrase_file: Option<&Path>,
        certificate: Option<&Path>,
        alone: bool,
    ) -> Result<Arc<KeyFile>, TransportError> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = files.get(path) {
            return Ok(file.clone());
        }
        let key = open_key(path, passphrase_file)?;
        // As OpenSSH: `KEY-cert.pub` beside the key is its certificate unless one is named.
        let beside = PathBuf::from(format!("{}-cert.pub", path.display()));
        let certificate = match certificate {
            // Among several key files, a named certificate goes with the one it certifies.
            Some(named) if !alone => open_certificate(named, &key).ok(),
            Some(named) => Some(open_certificate(named, &key)?),
            None if beside.is_file() => Some(open_certificate(&beside, &key)?),
            None => None,
        };
        let file = Arc::new(KeyFile {
            path: path.to_path_buf(),
            key: Arc::new(key),
            certificate,
        });
        files.insert(path.to_path_buf(), file.clone());
        Ok(file)
    }
}

/// A private key file, decrypted with the passphrase in `passphrase_file` if it is
/// encrypted. A wrong passphrase is said as such, not left to look like a refused key.
pub(crate) fn open_key(
    path: &Path,
    passphrase_file: Option<&Path>,
) -> Result<PrivateKey, TransportError> {
    let shown = path.display().to_string();
    let failed = |why: String| TransportError::Identity {
        path: shown.clone(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?;
    let passphrase = passphrase_file.map(read_passphrase).transpose()?;
    match PrivateKey::from_openssh(&text) {
        Ok(key) if key.is_encrypted() => {
            let (Some(passphrase), Some(file)) = (passphrase, passphrase_file) else {
                return Err(failed(
                    "the key is encrypted: set passphrase_file = \"FILE\" (the passphrase, \
                     mode 0600), or add it to ssh-agent with ssh-add and set identity = \"agent\""
                        .to_string(),
                ));
            };
            key.decrypt(passphrase.as_bytes())
                .map_err(|_| TransportError::Passphrase {
                    path: shown.clone(),
                    passphrase_file: file.display().to_string(),
                })
        }
        Ok(key) => Ok(key),
        // PEM and PKCS#8 keys (`BEGIN RSA PRIVATE KEY`, ...): russh reads those.
        Err(_) => {
            russh::keys::decode_secret_key(&text, passphrase.as_deref()).map_err(|e| {
                match (e, passphrase_file) {
                    (russh::keys::Error::KeyIsEncrypted, None) => {
                        failed("the key is encrypted: set passphrase_file = \"FILE\"".to_string())
                    }
                    (russh::keys::Error::KeyIsEncrypted, Some(file)) => {
                        TransportError::Passphrase {
                            path: shown.clone(),
                            passphrase_file: file.display().to_string(),
                        }
                    }
                    (e, _) => failed(e.to_string()),
                }
            })
        }
    }
}

/// The passphrase: the file's first line, without its line ending.
fn read_passphrase(file: &Path) -> Result<String, TransportError> {
    use std::io::Read as _;
    let failed = |why: String| TransportError::Identity {
        path: file.display().to_string(),
        why,
    };
    // Only the first line counts: a huge file (a key given by mistake, /dev/zero) is
    // read no further than a passphrase can be long.
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(PASSPHRASE_MAX as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| failed(format!("cannot read the passphrase file: {e}")))?;
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    if line.len() > PASSPHRASE_MAX {
        return Err(failed(format!(
            "the passphrase file's first line is longer than {PASSPHRASE_MAX} bytes: is it the right file?"
        )));
    }
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8(line.to_vec())
        .map_err(|_| failed("the passphrase file's first line is not UTF-8 text".to_string()))
}

/// The longest passphrase line read (OpenSSH's own prompt reads at most 1 KiB).
const PASSPHRASE_MAX: usize = 4096;

/// An OpenSSH user certificate, which must certify `key`.
fn open_certificate(
    path: &Path,
    key: &PrivateKey,
) -> Result<(PathBuf, Certificate), TransportError> {
    let failed = |why: String| TransportError::Identity {
        path: path.display().to_string(),
        why,
    };
    let cert = russh::keys::load_openssh_certificate(path).map_err(|e| failed(e.to_string()))?;
    if cert.public_key() != key.public_key().key_data() {
        return Err(failed(
            "the certificate is for another key than the identity file's".to_string(),
        ));
    }
    Ok((path.to_path_buf(), cert))
}

/// Whether a certificate is valid now; if not, its validity window in words.
pub(crate) fn outside_validity(cert: &Certificate) -> Option<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (after, before) = (cert.valid_after(), cert.valid_before());
    if now >= after && now < before {
        return None;
    }
    let state = if now < after {
        "not yet valid"
    } else {
        "expired"
    };
    Some(format!(
        "{state}: valid from {} to {}, and it is now {}",
        date(after),
        date(before),
        date(now)
    ))
}

/// A certificate time as people read it: RFC 3339 in UTC; `forever` for OpenSSH's
/// "no end" (u64::MAX) and anything past year 9999.
pub(crate) fn date(unix_seconds: u64) -> String {
    const YEAR_10000: u64 = 253_402_300_800;
    if unix_seconds >= YEAR_10000 {
        return "forever".to_string();
    }
    let at = UNIX_EPOCH + Duration::from_secs(unix_seconds);
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_dates_read_as_people_write_them() {
        assert_eq!(date(0), "1970-01-01T00:00:00Z");
        assert_eq!(date(1_764_547_200), "2025-12-01T00:00:00Z");
        assert_eq!(date(u64::MAX), "forever");
        assert_eq!(date(253_402_300_799), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn a_passphrase_is_the_first_line_without_its_ending() {
        let dir = tempfile::tempdir().unwrap();
        for (text, want) in [
            ("s3cret\n", "s3cret"),
            ("s3cret\r\n", "s3cret"),
            ("s3cret", "s3cret"),
            (" spaced pass \nsecond line\n", " spaced pass "),
            ("\n", ""),
        ] {
            let file = dir.path().join("p");
            std::fs::write(&file, text).unwrap();
            assert_eq!(read_passphrase(&file).unwrap(), want, "{text:?}");
        }
        let file = dir.path().join("big");
        std::fs::write(&file, vec![b'x'; 10 * PASSPHRASE_MAX]).unwrap();
        let error = read_passphrase(&file).unwrap_err().to_string();
        assert!(error.contains("longer than 4096 bytes"), "{error}");
        std::fs::write(&file, b"\xff\xfe\n").unwrap();
        let error = read_passphrase(&file).unwrap_err().to_string();
        assert!(error.contains("not UTF-8"), "{error}");
        // A file that never ends is read no further than the limit.
        let error = read_passphrase(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("longer than"), "{error}");
    }
}
