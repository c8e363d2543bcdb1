//! `bmc = { address, port, user, password_file, protocol, redfish_port, ca_file,
//! tls_fingerprint, insecure_tls }`: merged across levels like the rest, with `{host}` in
//! the address standing for the host's name and an address range set on a group paired
//! with the group's hosts one by one. Password files are checked here (present, not
//! readable by every user) but read only when used; `insecure_tls` is taken only from a
//! host's own entry.

use super::{Checker, expand_path};
use crate::hostrange;
use crate::location::Seg;
use crate::model::{Bmc, BmcProtocol, BmcTls};
use crate::path;
use crate::raw::{RawBmc, RawInventory};
use std::collections::HashMap;

/// The RMCP+ cipher suite ipmi-rs uses, fixed in the crate.
pub const CIPHER_SUITE: i64 = 3;

/// IPMI over LAN's port.
const DEFAULT_PORT: u16 = 623;

/// HTTPS, where Redfish lives.
const DEFAULT_REDFISH_PORT: u16 = 443;

/// Firmware changes with maintenance, and BMCs are slow to list it: hourly.
const DEFAULT_FIRMWARE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// A group's address range: its hosts, in order, and the addresses they pair with.
pub(super) type Ranges = HashMap<String, (Vec<String>, Vec<String>)>;

impl Checker<'_> {
    /// Every group address range, expanded and paired with the group's hosts.
    pub(super) fn bmc_ranges(&mut self, raw: &RawInventory) -> Ranges {
        let mut ranges = Ranges::new();
        for (group, entry) in &raw.groups {
            let Some(pattern) = entry.bmc.as_ref().and_then(|b| b.address.as_ref()) else {
                continue;
            };
            if !pattern.contains('[') {
                continue;
            }
            let at = path!["groups", group.as_str(), "bmc", "address"];
            let members: Vec<String> = entry
                .hosts
                .iter()
                .flatten()
                .filter_map(|p| hostrange::expand(p).ok())
                .flatten()
                .collect();
            match hostrange::expand(pattern) {
                Ok(addresses) if addresses.len() == members.len() => {
                    ranges.insert(pattern.clone(), (members, addresses));
                }
                Ok(addresses) => self.problem(
                    &at,
                    false,
                    format!(
                        "bmc address `{pattern}` gives {} addresses for the group's {} hosts: they pair one by one",
                        addresses.len(),
                        members.len()
                    ),
                ),
                Err(e) => self.problem(&at, false, e.to_string()),
            }
        }
        ranges
    }

    /// Where a host's settings come from, for locating a problem with its BMC.
    fn host_path(&self, raw: &RawInventory, name: &str) -> Vec<Seg> {
        match raw
            .hosts
            .iter()
            .position(|h| h.name.as_deref() == Some(name))
        {
            Some(i) => path!["hosts", i].to_vec(),
            None => {
                raw.groups
                    .iter()
                    .find(|(_, g)| {
                        g.hosts.iter().flatten().any(|p| {
                            hostrange::expand(p).is_ok_and(|n| n.iter().any(|n| n == name))
                        })
                    })
                    .map_or_else(
                        || path!["defaults"].to_vec(),
                        |(g, _)| path!["groups", g.as_str()].to_vec(),
                    )
            }
        }
    }

    pub(super) fn resolve_bmc(
        &mut self,
        name: &str,
        b: &RawBmc,
        ranges: &Ranges,
        raw: &RawInventory,
    ) -> Option<Bmc> {
        let missing: Vec<&str> = [
            (
                "address",
                b.address.as_deref().is_none_or(|a| a.trim().is_empty()),
            ),
            ("user", b.user.is_none()),
            ("password_file", b.password_file.is_none()),
        ]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(k, _)| *k)
        .collect();
        if !missing.is_empty() {
            let at = self.host_path(raw, name);
            self.problem(
                &at,
                true,
                format!(
                    "host `{name}`: bmc has no {} (set it in [defaults], the group or the host)",
                    missing.join(", ")
                ),
            );
            return None;
        }
        let pattern = b.address.clone().unwrap_or_default();
        let address = if pattern.contains('[') {
            let Some((members, addresses)) = ranges.get(&pattern) else {
                return None; // reported by bmc_ranges
            };
            match members.iter().position(|m| m == name) {
                Some(i) => addresses[i].clone(),
                None => {
                    let at = self.host_path(raw, name);
                    self.problem(
                        &at,
                        true,
                        format!("host `{name}` takes bmc address range `{pattern}` but is not one of that group's hosts"),
                    );
                    return None;
                }
            }
        } else {
            pattern.replace("{host}", name)
        };
        // Bad names are reported where they are written (check_tls_settings).
        let protocol = b
            .protocol
            .as_deref()
            .and_then(BmcProtocol::from_name)
            .unwrap_or_default();
        // `port` is the port of the protocol named; under `auto`, IPMI's.
        let (port, redfish_port) = match protocol {
            BmcProtocol::Redfish => (DEFAULT_PORT, b.redfish_port.or(b.port)),
            BmcProtocol::Ipmi | BmcProtocol::Auto => {
                (b.port.unwrap_or(DEFAULT_PORT), b.redfish_port)
            }
        };
        // Taken from the host's own entry only (elsewhere it is refused).
        let insecure = raw
            .hosts
            .iter()
            .filter(|h| h.name.as_deref() == Some(name))
            .find_map(|h| h.bmc.as_ref()?.insecure_tls)
            .unwrap_or(false);
        if insecure && (b.ca_file.is_some() || b.tls_fingerprint.is_some()) {
            let at = self.host_path(raw, name);
            self.problem(
                &at,
                true,
                format!("host `{name}`: bmc insecure_tls = true with a ca_file or tls_fingerprint: keep the check, drop insecure_tls"),
            );
        }
        Some(Bmc {
            address,
            port,
            user: b.user.clone().unwrap_or_default(),
            password_file: expand_path(
                b.password_file.as_deref().unwrap_or_default(),
                &self.base_dir,
            ),
            protocol,
            redfish_port: redfish_port.unwrap_or(DEFAULT_REDFISH_PORT),
            tls: BmcTls {
                ca_file: b.ca_file.as_deref().map(|f| expand_path(f, &self.base_dir)),
                fingerprint: b.tls_fingerprint.as_deref().and_then(fingerprint),
                insecure,
            },
            // Bad durations are reported where they are written (check_tls_settings).
            firmware_interval: b
                .firmware_interval
                .as_deref()
                .and_then(|d| super::parse_duration(d).ok())
                .unwrap_or(DEFAULT_FIRMWARE_INTERVAL),
        })
    }

    /// Each `protocol`, `ca_file`, `tls_fingerprint` and `insecure_tls` where it is
    /// written: a known protocol, a readable CA file, a SHA-256 fingerprint, and
    /// `insecure_tls` on hosts only (one BMC's exception never covers a whole group).
    pub(super) fn check_tls_settings(&mut self, raw: &RawInventory) {
        for (at, name) in bmc_fields(raw, "protocol", |b| b.protocol.clone()) {
            if BmcProtocol::from_name(&name).is_none() {
                self.problem(
                    &at,
                    false,
                    format!(
                        "bmc protocol `{name}`: use one of {}",
                        BmcProtocol::NAMES.join(", ")
                    ),
                );
            }
        }
        for (at, file) in bmc_fields(raw, "ca_file", |b| b.ca_file.clone()) {
            let path = expand_path(&file, &self.base_dir);
            if let Err(e) = std::fs::File::open(&path) {
                self.problem(&at, false, format!("bmc ca_file {}: {e}", path.display()));
            }
        }
        for (at, text) in bmc_fields(raw, "tls_fingerprint", |b| b.tls_fingerprint.clone()) {
            if fingerprint(&text).is_none() {
                self.problem(
                    &at,
                    false,
                    format!(
                        "bmc tls_fingerprint `{text}`: write the certificate's SHA-256 as 64 hex digits, colons allowed (`openssl x509 -noout -fingerprint -sha256 -in CERT` prints it)"
                    ),
                );
            }
        }
        for (at, text) in bmc_fields(raw, "firmware_interval", |b| b.firmware_interval.clone()) {
            if let Err(why) = super::parse_duration(&text) {
                self.problem(&at, false, format!("bmc firmware_interval `{text}` {why}"));
            }
        }
        for (at, insecure) in bmc_fields(raw, "insecure_tls", |b| b.insecure_tls) {
            if insecure && !matches!(at.first(), Some(Seg::Key(k)) if k == "hosts") {
                self.problem(
                    &at,
                    false,
                    "bmc insecure_tls is taken only on a host's own bmc ([[hosts]]), so that one BMC's exception never covers a group: give the group a ca_file, or set it on each host that needs it".to_string(),
                );
            }
        }
    }

    /// Each `cipher_suite` named anywhere is 3, the one suite ipmi-rs implements.
    pub(super) fn check_cipher_suites(&mut self, raw: &RawInventory) {
        let places = bmc_fields(raw, "cipher_suite", |b| b.cipher_suite);
        for (at, suite) in places {
            if suite != CIPHER_SUITE {
                self.problem(
                    &at,
                    false,
                    format!(
                        "bmc cipher_suite {suite}: dcmon speaks RMCP+ cipher suite {CIPHER_SUITE} only \
                         (RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128); enable it on the BMC \
                         (`ipmitool lan print` lists the suites it offers) and remove this line"
                    ),
                );
            }
        }
    }

    /// Each password file named anywhere: present, and not readable by every user.
    pub(super) fn check_password_files(&mut self, raw: &RawInventory) {
        use std::os::unix::fs::PermissionsExt as _;
        let places = bmc_fields(raw, "password_file", |b| b.password_file.clone());
        for (at, file) in places {
            let path = expand_path(&file, &self.base_dir);
            let shown = path.display();
            match std::fs::metadata(&path) {
                Err(e) => self.problem(&at, false, format!("bmc password_file {shown}: {e}")),
                Ok(meta) if meta.permissions().mode() & 0o004 != 0 => self.problem(
                    &at,
                    false,
                    format!(
                        "bmc password_file {shown} is readable by every user (mode {:04o}): run `chmod o-rwx {shown}`",
                        meta.permissions().mode() & 0o777
                    ),
                ),
                Ok(_) => {}
            }
        }
    }
}

/// A SHA-256 fingerprint as people copy it (`AB:CD:...`, `sha256:abcd...`, what
/// `openssl x509 -fingerprint` prints), as 64 lowercase hex digits.
fn fingerprint(text: &str) -> Option<String> {
    let text = text.trim();
    let text = text.rsplit_once('=').map_or(text, |(_, v)| v);
    let text = text
        .strip_prefix("sha256:")
        .or_else(|| text.strip_prefix("SHA256:"))
        .unwrap_or(text);
    let hex: String = text
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
}

/// Every `bmc` table (defaults, groups, hosts) that sets `field`: where it is, and its value.
fn bmc_fields<T>(
    raw: &RawInventory,
    field: &str,
    value: impl Fn(&RawBmc) -> Option<T>,
) -> Vec<(Vec<Seg>, T)> {
    let tables = std::iter::once((path!["defaults"].to_vec(), &raw.defaults.bmc))
        .chain(
            raw.groups
                .iter()
                .map(|(g, e)| (path!["groups", g.as_str()].to_vec(), &e.bmc)),
        )
        .chain(
            raw.hosts
                .iter()
                .enumerate()
                .map(|(i, e)| (path!["hosts", i].to_vec(), &e.bmc)),
        );
    tables
        .filter_map(|(mut at, b)| {
            let v = value(b.as_ref()?)?;
            at.extend([Seg::Key("bmc".into()), Seg::Key(field.into())]);
            Some((at, v))
        })
        .collect()
}
