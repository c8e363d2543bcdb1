//! SSH login settings beyond address and user: the identity's passphrase and
//! certificate files, and `jump` chains through bastion hosts.

use super::{Checker, expand_path};
use crate::location::Seg;
use crate::model::{Host, Identity, SshEndpoint, Transport};
use crate::raw::Entry;
use std::collections::BTreeMap;

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

    /// Turns each host's `jump` into its chain of hops. `specs[i]` is host `i`'s
    /// setting and where it was made.
    pub(super) fn resolve_jumps(
        &mut self,
        hosts: &mut [Host],
        specs: &[Option<(String, Vec<Seg>)>],
    ) {
        let by_name: BTreeMap<&str, usize> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.as_str(), i))
            .collect();
        let mut chains = Vec::with_capacity(hosts.len());
        for i in 0..hosts.len() {
            let chain = match &specs[i] {
                None => Ok(Vec::new()),
                Some(_) if hosts[i].transport == Transport::Local => Ok(Vec::new()),
                Some(_) => chain_of(hosts, specs, &by_name, i, &mut vec![i]),
            };
            chains.push(chain);
        }
        for (i, chain) in chains.into_iter().enumerate() {
            match chain {
                Ok(chain) => hosts[i].jump = chain,
                Err(why) => {
                    let at = specs[i]
                        .as_ref()
                        .map(|(_, at)| at.clone())
                        .unwrap_or_default();
                    let name = &hosts[i].name;
                    self.problem(&at, false, format!("jump of host `{name}`: {why}"));
                }
            }
        }
    }
}

/// The hops before host `i`, outermost first; `path` holds the hosts being resolved
/// (to name a loop).
fn chain_of(
    hosts: &[Host],
    specs: &[Option<(String, Vec<Seg>)>],
    by_name: &BTreeMap<&str, usize>,
    i: usize,
    path: &mut Vec<usize>,
) -> Result<Vec<SshEndpoint>, String> {
    let Some((spec, _)) = &specs[i] else {
        return Ok(Vec::new());
    };
    if is_direct(spec) {
        return Ok(Vec::new());
    }
    let owner = &hosts[i];
    let mut chain = Vec::new();
    for hop in spec.split(',').map(str::trim) {
        let written = parse_hop(hop)?;
        match by_name.get(hop) {
            Some(&j) => {
                if let Some(at) = path.iter().position(|&k| k == j) {
                    let names: Vec<&str> = path[at..]
                        .iter()
                        .chain([&j])
                        .map(|&k| hosts[k].name.as_str())
                        .collect();
                    return Err(format!(
                        "the chain loops: {} (set `jump = \"none\"` on the jump host)",
                        names.join(" → ")
                    ));
                }
                let via = &hosts[j];
                if via.transport == Transport::Local {
                    return Err(format!(
                        "`{hop}` is reached with transport = \"local\", not SSH: it cannot forward"
                    ));
                }
                path.push(j);
                let before = chain_of(hosts, specs, by_name, j, path);
                path.pop();
                chain.extend(before?);
                chain.push(via.ssh_endpoint());
            }
            // Not an inventory host: reached as written, with the login settings of the
            // host whose `jump` names it.
            None => chain.push(SshEndpoint {
                name: hop.to_string(),
                address: written.host.to_string(),
                port: written.port.unwrap_or(JUMP_PORT),
                user: written
                    .user
                    .map_or_else(|| owner.user.clone(), str::to_string),
                identity: owner.identity.clone(),
                passphrase_file: owner.passphrase_file.clone(),
                certificate: owner.certificate.clone(),
                known_hosts: owner.known_hosts.clone(),
                accept_new_host_keys: owner.accept_new_host_keys,
                connect_timeout: owner.connect_timeout,
            }),
        }
        if chain.len() > MAX_HOPS {
            return Err(format!("more than {MAX_HOPS} hops"));
        }
    }
    Ok(chain)
}

/// `identity` as written: `agent`, or a key file.
pub(super) fn identity(written: Option<&str>, base_dir: &std::path::Path) -> Identity {
    match written {
        None => Identity::Default,
        Some("agent") => Identity::Agent,
        Some(file) => Identity::File(expand_path(file, base_dir)),
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
