//! The user's OpenSSH client config (`~/.ssh/config`), read with the `ssh2-config`
//! crate: what it says of one host name, and where it says it.
//!
//! The crate gives values, not lines; a value's line is found again in the file by its
//! `Host` line and keyword (`origin`), and says only the block when the block came from
//! an included file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh2_config::{ParseRule, SshConfig};

/// One parsed config file.
pub struct SshConfigFile {
    pub path: PathBuf,
    config: SshConfig,
    /// `keyword_lines` of the file's text.
    lines: HashMap<(String, String), usize>,
}

/// A value the config gives, with where it comes from (`FILE:LINE (Host PATTERNS)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given<T> {
    pub value: T,
    pub origin: String,
}

/// The value of a setting the config may give.
pub fn value<T: Clone>(given: &Option<Given<T>>) -> Option<T> {
    given.as_ref().map(|g| g.value.clone())
}

/// Where a setting the config may give comes from.
pub fn origin<T>(given: &Option<Given<T>>) -> Option<String> {
    given.as_ref().map(|g| g.origin.clone())
}

/// What the config says of one host name. Each field is the first value of the
/// matching blocks in file order, as OpenSSH takes them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Said {
    pub host_name: Option<Given<String>>,
    pub user: Option<Given<String>>,
    pub port: Option<Given<u16>>,
    pub identity_files: Option<Given<Vec<PathBuf>>>,
    pub identities_only: Option<Given<bool>>,
    pub certificate_file: Option<Given<PathBuf>>,
    pub proxy_jump: Option<Given<String>>,
    pub known_hosts: Option<Given<PathBuf>>,
    pub connect_timeout: Option<Given<Duration>>,
    pub server_alive_interval: Option<Given<Duration>>,
}

impl SshConfigFile {
    /// Reads and parses `path`; `home` anchors `~` and relative `Include`s, as for ssh.
    pub fn load(path: &Path, home: &Path) -> Result<SshConfigFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let rules = ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS;
        let config = SshConfig::default()
            .home_dir(home)
            .parse(&mut text.as_bytes(), rules)
            .map_err(|e| e.to_string())?;
        Ok(SshConfigFile {
            path: path.to_path_buf(),
            config,
            lines: keyword_lines(&text),
        })
    }

    /// What the config says of `name` (the name dcmon knows the host by, as the name
    /// typed after `ssh`).
    pub fn lookup(&self, name: &str) -> Said {
        let mut said = Said::default();
        for block in self.config.intersecting_hosts(name) {
            let p = &block.params;
            let patterns: Vec<String> = block
                .pattern
                .iter()
                .map(|c| {
                    if c.negated {
                        format!("!{}", c.pattern)
                    } else {
                        c.pattern.clone()
                    }
                })
                .collect();
            let patterns = patterns.join(" ");
            let origin = |keyword: &str| self.origin(&patterns, keyword);
            fill(&mut said.host_name, p.host_name.as_ref(), || {
                origin("hostname")
            });
            fill(&mut said.user, p.user.as_ref(), || origin("user"));
            fill(&mut said.port, p.port.as_ref(), || origin("port"));
            fill(&mut said.identity_files, p.identity_file.as_ref(), || {
                origin("identityfile")
            });
            fill(
                &mut said.certificate_file,
                p.certificate_file.as_ref(),
                || origin("certificatefile"),
            );
            let jump = p.proxy_jump.as_ref().map(|hops| hops.join(","));
            fill(&mut said.proxy_jump, jump.as_ref(), || origin("proxyjump"));
            fill(
                &mut said.connect_timeout,
                p.connect_timeout.as_ref(),
                || origin("connecttimeout"),
            );
            fill(
                &mut said.server_alive_interval,
                p.server_alive_interval.as_ref(),
                || origin("serveraliveinterval"),
            );
            // Fields the crate keeps as words: the first word is the value.
            let word = |key: &str| {
                p.unsupported_fields
                    .get(key)
                    .and_then(|args| args.first())
                    .cloned()
            };
            let known_hosts = word("userknownhostsfile").map(PathBuf::from);
            fill(&mut said.known_hosts, known_hosts.as_ref(), || {
                origin("userknownhostsfile")
            });
            let only = word("identitiesonly").map(|w| w.eq_ignore_ascii_case("yes"));
            fill(&mut said.identities_only, only.as_ref(), || {
                origin("identitiesonly")
            });
        }
        if let Some(host) = &mut said.host_name {
            host.value = expand_tokens(&host.value, name);
        }
        said
    }

    /// `FILE:LINE (Host PATTERNS)`: the line setting `keyword` in the block whose `Host`
    /// line lists `patterns`; the block alone when it is not in this file.
    fn origin(&self, patterns: &str, keyword: &str) -> String {
        let file = self.path.display();
        match self.lines.get(&(patterns.to_string(), keyword.to_string())) {
            Some(line) => format!("{file}:{line} (Host {patterns})"),
            None => format!("{file} (Host {patterns}, in an included file)"),
        }
    }
}

/// Where each keyword of each `Host` block of `text` is set: (the block's patterns as
/// written, the keyword in lower case) → its first line. Read once per file, so the
/// origins of thousands of hosts are lookups, not scans.
fn keyword_lines(text: &str) -> HashMap<(String, String), usize> {
    let mut lines = HashMap::new();
    let mut block: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let mut words = line
            .split(|c: char| c.is_whitespace() || c == '=')
            .filter(|w| !w.is_empty());
        let Some(first) = words.next() else { continue };
        if first.starts_with('#') {
            continue;
        }
        if first.eq_ignore_ascii_case("host") {
            block = Some(words.collect::<Vec<_>>().join(" "));
        } else if first.eq_ignore_ascii_case("match") {
            block = None;
        } else if let Some(patterns) = &block {
            lines
                .entry((patterns.clone(), first.to_ascii_lowercase()))
                .or_insert(i + 1);
        }
    }
    lines
}

fn fill<T: Clone>(slot: &mut Option<Given<T>>, value: Option<&T>, origin: impl FnOnce() -> String) {
    if slot.is_none()
        && let Some(value) = value
    {
        *slot = Some(Given {
            value: value.clone(),
            origin: origin(),
        });
    }
}

/// `%h` (the name looked up) and `%%` in a HostName, as ssh_config(5) has them.
fn expand_tokens(text: &str, name: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(name),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, SshConfigFile) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".ssh/conf.d")).unwrap();
        std::fs::write(
            dir.path().join(".ssh/conf.d/bastion.conf"),
            "Host bastion\n  HostName 10.0.0.1\n  User jump\n",
        )
        .unwrap();
        let path = dir.path().join(".ssh/config");
        std::fs::write(&path, text).unwrap();
        let config = SshConfigFile::load(&path, dir.path()).unwrap();
        (dir, config)
    }

    #[test]
    fn the_first_matching_block_gives_each_value_with_its_line() {
        let (_dir, config) = file(
            "# fleet\n\
             Include conf.d/*.conf\n\
             Host gpu01\n    Port 2201\n\
             Host gpu* !gpu99\n    HostName %h.dc1.example\n    User ops\n    Port 22\n\
             \x20   IdentityFile /keys/gpu\n    IdentitiesOnly yes\n    ProxyJump bastion\n\
             \x20   UserKnownHostsFile /keys/known_hosts /keys/other\n    ConnectTimeout 7\n\
             \x20   ServerAliveInterval 5\n    ControlMaster auto\n\
             Host *\n    User fallback\n",
        );
        let p = config.path.display().to_string();
        let said = config.lookup("gpu01");
        assert_eq!(said.port.as_ref().map(|g| g.value), Some(2201));
        assert_eq!(said.port.unwrap().origin, format!("{p}:4 (Host gpu01)"));
        let host = said.host_name.unwrap();
        assert_eq!(host.value, "gpu01.dc1.example");
        assert_eq!(host.origin, format!("{p}:6 (Host gpu* !gpu99)"));
        assert_eq!(said.user.unwrap().value, "ops");
        assert_eq!(
            said.identity_files.unwrap().value,
            [PathBuf::from("/keys/gpu")]
        );
        assert!(said.identities_only.unwrap().value);
        assert_eq!(said.proxy_jump.unwrap().value, "bastion");
        let known = said.known_hosts.unwrap();
        assert_eq!(known.value, PathBuf::from("/keys/known_hosts"));
        assert_eq!(known.origin, format!("{p}:12 (Host gpu* !gpu99)"));
        assert_eq!(said.connect_timeout.unwrap().value, Duration::from_secs(7));
        assert_eq!(
            said.server_alive_interval.unwrap().value,
            Duration::from_secs(5)
        );
        // The negated pattern keeps gpu99 out of the block.
        let said = config.lookup("gpu99");
        assert_eq!(said.user.unwrap().value, "fallback");
        assert!(said.host_name.is_none());
        // A block from an included file.
        let said = config.lookup("bastion");
        assert_eq!(said.host_name.as_ref().unwrap().value, "10.0.0.1");
        assert!(
            said.user
                .unwrap()
                .origin
                .ends_with("(Host bastion, in an included file)"),
        );
    }

    #[test]
    fn a_broken_config_is_an_error_not_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, "Host a\n  Port notaport\n").unwrap();
        assert!(SshConfigFile::load(&path, dir.path()).is_err());
        assert!(SshConfigFile::load(&dir.path().join("missing"), dir.path()).is_err());
    }

    #[test]
    fn tokens_expand_as_ssh_config_says() {
        assert_eq!(expand_tokens("%h.dc1", "gpu1"), "gpu1.dc1");
        assert_eq!(expand_tokens("100%%", "x"), "100%");
        assert_eq!(expand_tokens("a%zb%", "x"), "a%zb%");
    }
}
