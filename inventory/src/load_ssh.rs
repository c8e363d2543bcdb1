//! SSH login settings beyond address and user: the identity's passphrase and
//! certificate files, and `jump` chains through bastion hosts.

use super::{Checker, expand_path};
use crate::location::{Seg, line_col, span_of};
use crate::model::{Host, Identity, SshEndpoint, Transport};
use crate::raw::{Entry, RawInventory};
use crate::ssh_config::{Said, SshConfigFile};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// More hops than this is a mistake, not a network (OpenSSH has no limit; a loop
/// through names it cannot see would connect forever).
const MAX_HOPS: usize = 8;

/// The port a hop written without one is reached on, as OpenSSH's ProxyJump.
const JUMP_PORT: u16 = 22;

/// `jump = "none"` (or empty): this host is reached directly, whatever its groups say
/// (a bastion under a `[defaults] jump` naming itself, as OpenSSH's `ProxyJump none`).
pub(super) fn is_direct(spec: &str) -> bool {
    let spec = spec.trim();
    spec.is_empty() || spec == "none"
}

/// One hop as written: an inventory host name or `[user@]host[:port]`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Written<'a> {
    pub user: Option<&'a str>,
    pub host: &'a str,
    pub port: Option<u16>,
}

/// Parses `[user@]host[:port]`, `[user@][v6addr]:port` or a bare IPv6 address.
pub(super) fn parse_hop(hop: &str) -> Result<Written<'_>, String> {
    if hop.is_empty() {
        return Err("an empty hop (two commas, or a comma at an end)".to_string());
    }
    if let Some(c) = hop.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("hop `{hop}` contains {c:?}"));
    }
    let (user, rest) = match hop.rsplit_once('@') {
        Some(("", _)) => return Err(format!("hop `{hop}` has an empty user")),
        Some((u, r)) => (Some(u), r),
        None => (None, hop),
    };
    let port = |p: &str| match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("hop `{hop}`: port `{p}` is not a port (1-65535)")),
        Ok(p) => Ok(p),
    };
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let Some((h, after)) = bracketed.split_once(']') else {
            return Err(format!("hop `{hop}`: `[` without `]`"));
        };
        match after {
            "" => (h, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (h, Some(port(p)?)),
                None => return Err(format!("hop `{hop}`: `{after}` after `]`")),
            },
        }
    } else if rest.parse::<std::net::Ipv6Addr>().is_ok() {
        (rest, None)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(port(p)?)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(format!("hop `{hop}` has no host"));
    }
    Ok(Written { user, host, port })
}

impl Checker<'_> {
    /// `passphrase_file` and `certificate`: files that exist, the passphrase readable by
    /// no one else (it unlocks the key, as the BMC password file unlocks the BMC).
    pub(super) fn check_key_files(&mut self, e: &Entry, at: &[Seg]) {
        use std::os::unix::fs::PermissionsExt as _;
        let here = |k: &str| {
            let mut p = at.to_vec();
            p.push(Seg::Key(k.to_string()));
            p
        };
        if let Some(file) = &e.passphrase_file {
            let path = expand_path(file, &self.base_dir);
            let shown = path.display();
            match std::fs::metadata(&path) {
                Err(err) => {
                    self.problem(&here("passphrase_file"), false, format!("passphrase_file {shown}: {err}"))
                }
                Ok(meta) if meta.permissions().mode() & 0o077 != 0 => self.problem(
                    &here("passphrase_file"),
                    false,
                    format!(
                        "passphrase_file {shown} is readable by other users (mode {:04o}): run `chmod 600 {shown}`",
                        meta.permissions().mode() & 0o777
                    ),
                ),
                Ok(_) => {}
            }
        }
        if let Some(file) = &e.certificate {
            let path = expand_path(file, &self.base_dir);
            if !path.is_file() {
                self.problem(
                    &here("certificate"),
                    false,
                    format!("certificate file {} not found", path.display()),
                );
            }
        }
        if let Some(spec) = &e.jump
            && !is_direct(spec)
        {
            for hop in spec.split(',') {
                if let Err(why) = parse_hop(hop.trim()) {
                    self.problem(&here("jump"), false, format!("jump `{spec}`: {why}"));
                }
            }
        }
    }

    /// The ssh_config file a host's settings are read with: `ssh_config` as set
    /// (`at`), or `~/.ssh/config` when it exists; none for `ssh_config = "none"`.
    /// A file that cannot be read or parsed is a problem, reported once.
    pub(super) fn ssh_config_of(
        &mut self,
        merged: &Entry,
        at: Option<Vec<Seg>>,
    ) -> Option<Arc<SshConfigFile>> {
        let path = match merged.ssh_config.as_deref() {
            Some("none") => return None,
            Some(p) => expand_path(p, &self.base_dir),
            None => expand_path("~/.ssh/config", &self.base_dir),
        };
        if let Some(loaded) = self.ssh_configs.get(&path) {
            return loaded.clone();
        }
        if merged.ssh_config.is_none() && !path.is_file() {
            // No default file: remembered, so the next host does not look again.
            self.ssh_configs.insert(path, None);
            return None;
        }
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from);
        let loaded = match SshConfigFile::load(&path, &home) {
            Ok(config) => Some(Arc::new(config)),
            Err(why) => {
                let shown = path.display();
                let (at, hint) = match at {
                    Some(at) => (at, ""),
                    None => (
                        Vec::new(),
                        " (read because it exists; set ssh_config = \"none\" in [defaults] to ignore it)",
                    ),
                };
                self.problem(&at, false, format!("ssh_config {shown}: {why}{hint}"));
                None
            }
        };
        self.ssh_configs.insert(path, loaded.clone());
        loaded
    }

    /// Where each SSH setting of `host` came from: the inventory line that set it, the
    /// ssh_config line, or dcmon's default.
    pub(super) fn origins(
        &self,
        host: &Host,
        said: &Said,
        setter: &dyn Fn(&str) -> Option<Vec<Seg>>,
    ) -> BTreeMap<String, String> {
        let from_config = |key: &str| -> Option<String> {
            use crate::ssh_config::origin;
            match key {
                "address" => origin(&said.host_name),
                "user" => origin(&said.user),
                "port" => origin(&said.port),
                "identity" => origin(&said.identity_files),
                "certificate" => origin(&said.certificate_file),
                "known_hosts" => origin(&said.known_hosts),
                "connect_timeout" => origin(&said.connect_timeout),
                "jump" => origin(&said.proxy_jump),
                "server_alive_interval" => origin(&said.server_alive_interval),
                _ => None,
            }
        };
        let mut origins = BTreeMap::new();
        for key in ORIGIN_KEYS {
            let origin = match setter(key) {
                Some(at) => {
                    let line = self
                        .doc
                        .as_ref()
                        .and_then(|d| span_of(d, &at, true))
                        .map_or(0, |span| line_col(self.text, span.start).line);
                    format!("{}:{line}", self.file)
                }
                None => match from_config(key) {
                    Some(origin) => format!("ssh_config {origin}"),
                    None if key == "address" => "the host's name".to_string(),
                    None if key == "jump" && host.jump.is_empty() => "none".to_string(),
                    None => "default".to_string(),
                },
            };
            origins.insert(key.to_string(), origin);
        }
        origins
    }

    /// Turns each host's `jump` into its chain of hops. `specs[i]` is host `i`'s
    /// setting and where it was made; `configs[i]` its ssh_config, which hops that
    /// are not inventory hosts are looked up in.
    pub(super) fn resolve_jumps(
        &mut self,
        hosts: &mut [Host],
        specs: &[Option<JumpSpec>],
        configs: &[Option<Arc<SshConfigFile>>],
    ) {
        let by_name: BTreeMap<&str, usize> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.as_str(), i))
            .collect();
        let resolver = Resolver {
            hosts,
            specs,
            configs,
            by_name,
        };
        let chains: Vec<_> = (0..resolver.hosts.len())
            .map(|i| match &specs[i] {
                Some(_) if resolver.hosts[i].transport == Transport::Ssh => {
                    resolver.chain_of(i, &mut vec![resolver.hosts[i].name.clone()])
                }
                _ => Ok(Vec::new()),
            })
            .collect();
        for (i, chain) in chains.into_iter().enumerate() {
            match chain {
                Ok(chain) => hosts[i].jump = chain,
                Err(why) => {
                    let spec = specs[i].as_ref();
                    let at = spec.map(|s| s.at.clone()).unwrap_or_default();
                    let from = spec
                        .and_then(|s| s.origin.as_deref())
                        .map(|o| format!(" (ProxyJump at {o})"))
                        .unwrap_or_default();
                    let name = &hosts[i].name;
                    self.problem(&at, false, format!("jump of host `{name}`{from}: {why}"));
                }
            }
        }
    }
}

/// The SSH settings whose origin `dcmon inventory list --resolved` shows.
const ORIGIN_KEYS: [&str; 11] = [
    "address",
    "user",
    "port",
    "identity",
    "passphrase_file",
    "certificate",
    "known_hosts",
    "connect_timeout",
    "server_alive_interval",
    "jump",
    "ssh_config",
];

/// Where the value a host gets for `key` is set in the inventory: the host's entry,
/// else the last of its groups that sets it (the one `overlay` lets win), else
/// `[defaults]`.
pub(super) fn where_set(
    raw: &RawInventory,
    groups: &[&str],
    host: Option<usize>,
    key: &str,
) -> Option<Vec<Seg>> {
    let sets = |e: &Entry| match key {
        "address" => e.address.is_some(),
        "user" => e.user.is_some(),
        "port" => e.port.is_some(),
        "identity" => e.identity.is_some(),
        "passphrase_file" => e.passphrase_file.is_some(),
        "certificate" => e.certificate.is_some(),
        "known_hosts" => e.known_hosts.is_some(),
        "connect_timeout" => e.connect_timeout.is_some(),
        "jump" => e.jump.is_some(),
        "ssh_config" => e.ssh_config.is_some(),
        _ => false,
    };
    let key_seg = Seg::Key(key.to_string());
    if let Some(i) = host
        && sets(&raw.hosts[i])
    {
        return Some(vec![Seg::Key("hosts".into()), Seg::Index(i), key_seg]);
    }
    for g in groups.iter().rev() {
        if raw.groups.get(*g).is_some_and(sets) {
            return Some(vec![
                Seg::Key("groups".into()),
                Seg::Key(g.to_string()),
                key_seg,
            ]);
        }
    }
    sets(&raw.defaults).then(|| vec![Seg::Key("defaults".into()), key_seg])
}

/// A host's `jump` before it is resolved: as written, where (for problems), and the
/// ssh_config line when it came from `ProxyJump`.
pub(super) struct JumpSpec {
    pub spec: String,
    pub at: Vec<Seg>,
    pub origin: Option<String>,
}

/// The inventory's `jump` (set at `at`), else ssh_config's `ProxyJump`.
pub(super) fn jump_spec(merged: &Entry, at: Option<Vec<Seg>>, said: &Said) -> Option<JumpSpec> {
    match (&merged.jump, &said.proxy_jump) {
        (Some(spec), _) => Some(JumpSpec {
            spec: spec.clone(),
            at: at.unwrap_or_default(),
            origin: None,
        }),
        (None, Some(given)) => Some(JumpSpec {
            spec: given.value.clone(),
            at: Vec::new(),
            origin: Some(given.origin.clone()),
        }),
        (None, None) => None,
    }
}

struct Resolver<'a> {
    hosts: &'a [Host],
    specs: &'a [Option<JumpSpec>],
    configs: &'a [Option<Arc<SshConfigFile>>],
    by_name: BTreeMap<&'a str, usize>,
}

impl Resolver<'_> {
    /// The hops before host `i`, outermost first; `path` holds the names being
    /// resolved (to name a loop).
    fn chain_of(&self, i: usize, path: &mut Vec<String>) -> Result<Vec<SshEndpoint>, String> {
        let Some(spec) = &self.specs[i] else {
            return Ok(Vec::new());
        };
        self.hops(&spec.spec, i, path)
    }

    /// The chain a `jump` value (`hop,hop,...`) makes for host `owner`.
    fn hops(
        &self,
        spec: &str,
        owner: usize,
        path: &mut Vec<String>,
    ) -> Result<Vec<SshEndpoint>, String> {
        if is_direct(spec) {
            return Ok(Vec::new());
        }
        let mut chain = Vec::new();
        for hop in spec.split(',').map(str::trim) {
            let written = parse_hop(hop)?;
            let name = match self.by_name.get(hop) {
                Some(&j) => self.hosts[j].name.clone(),
                None => written.host.to_string(),
            };
            if let Some(at) = path.iter().position(|n| *n == name) {
                let mut names = path[at..].to_vec();
                names.push(name);
                return Err(format!(
                    "the chain loops: {} (set `jump = \"none\"` on the jump host)",
                    names.join(" → ")
                ));
            }
            path.push(name);
            let before = match self.by_name.get(hop) {
                Some(&j) => self.inventory_hop(j, hop, &mut chain, path),
                None => self.written_hop(owner, hop, &written, &mut chain, path),
            };
            path.pop();
            before?;
            if chain.len() > MAX_HOPS {
                return Err(format!("more than {MAX_HOPS} hops"));
            }
        }
        Ok(chain)
    }

    /// An inventory host as a hop: its own chain, then itself with its own settings.
    fn inventory_hop(
        &self,
        j: usize,
        hop: &str,
        chain: &mut Vec<SshEndpoint>,
        path: &mut Vec<String>,
    ) -> Result<(), String> {
        let via = &self.hosts[j];
        if via.transport == Transport::Local {
            return Err(format!(
                "`{hop}` is reached with transport = \"local\", not SSH: it cannot forward"
            ));
        }
        chain.extend(self.chain_of(j, path)?);
        chain.push(via.ssh_endpoint());
        Ok(())
    }

    /// A hop written out (`user@host:port`, or a name only ssh_config knows): what
    /// ssh_config says of it (its own ProxyJump first), and what neither says from the
    /// host whose `jump` names it.
    fn written_hop(
        &self,
        owner: usize,
        hop: &str,
        written: &Written<'_>,
        chain: &mut Vec<SshEndpoint>,
        path: &mut Vec<String>,
    ) -> Result<(), String> {
        let host = &self.hosts[owner];
        let said = self.configs[owner]
            .as_ref()
            .map(|c| c.lookup(written.host))
            .unwrap_or_default();
        if let Some(jump) = &said.proxy_jump {
            chain.extend(self.hops(&jump.value, owner, path)?);
        }
        use crate::ssh_config::value as given;
        chain.push(SshEndpoint {
            name: hop.to_string(),
            address: given(&said.host_name).unwrap_or_else(|| written.host.to_string()),
            port: written.port.or(given(&said.port)).unwrap_or(JUMP_PORT),
            user: written
                .user
                .map(str::to_string)
                .or_else(|| given(&said.user))
                .unwrap_or_else(|| host.user.clone()),
            identity: match &said.identity_files {
                Some(_) => identity(None, Path::new("/"), &said),
                None => host.identity.clone(),
            },
            passphrase_file: host.passphrase_file.clone(),
            certificate: given(&said.certificate_file).or_else(|| host.certificate.clone()),
            known_hosts: given(&said.known_hosts).unwrap_or_else(|| host.known_hosts.clone()),
            accept_new_host_keys: host.accept_new_host_keys,
            connect_timeout: given(&said.connect_timeout).unwrap_or(host.connect_timeout),
            server_alive_interval: given(&said.server_alive_interval)
                .or(host.server_alive_interval),
        });
        Ok(())
    }
}

/// `identity` as written (`agent`, or a key file), else ssh_config's `IdentityFile`s.
pub(super) fn identity(written: Option<&str>, base_dir: &Path, said: &Said) -> Identity {
    match (written, &said.identity_files) {
        (Some("agent"), _) => Identity::Agent,
        (Some(file), _) => Identity::File(expand_path(file, base_dir)),
        (None, Some(files)) => Identity::SshConfig {
            files: files.value.clone(),
            identities_only: said.identities_only.as_ref().is_some_and(|g| g.value),
        },
        (None, None) => Identity::Default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops_parse_as_openssh_writes_them() {
        let w = |user, host, port| Written { user, host, port };
        assert_eq!(parse_hop("bastion"), Ok(w(None, "bastion", None)));
        assert_eq!(
            parse_hop("ops@b.dc1:2222"),
            Ok(w(Some("ops"), "b.dc1", Some(2222)))
        );
        assert_eq!(parse_hop("[fe80::1]:22"), Ok(w(None, "fe80::1", Some(22))));
        assert_eq!(parse_hop("ops@[::1]"), Ok(w(Some("ops"), "::1", None)));
        assert_eq!(parse_hop("::1"), Ok(w(None, "::1", None)));
        for bad in [
            "", "@h", "h:0", "h:65536", "h:-1", "[::1", "[::1]x", "a b", "u@", ":22",
        ] {
            assert!(parse_hop(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
