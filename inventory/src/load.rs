//! Reading `inventory.toml`: parse, collect every problem with its `LINE:COL`, then
//! resolve inheritance (defaults < groups < host) into a list of hosts.

use crate::hostrange;
use crate::location::{Seg, line_col, span_of};
use crate::model::{Host, Inventory, Transport};
use crate::path;
use crate::raw::{Entry, RawInventory};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// One problem in an inventory file, located for an editor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub col: usize,
    pub message: String,
    /// A problem in another file than the inventory (its `alerts = "FILE"`).
    pub file: Option<String>,
}

/// Every problem found in one inventory file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems {
    pub file: String,
    pub list: Vec<Problem>,
}

impl fmt::Display for Problems {
    /// One `FILE:LINE:COL: message` line per problem, the format editors jump to.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.list.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let file = p.file.as_deref().unwrap_or(&self.file);
            write!(f, "{file}:{}:{}: {}", p.line, p.col, p.message)?;
        }
        Ok(())
    }
}

#[derive(Debug, Error)]
pub enum InventoryError {
    #[error("cannot read inventory {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Problems),
}

/// Built-in settings for whatever neither the file nor a group sets.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub user: String,
    pub port: u16,
    pub known_hosts: PathBuf,
    /// Of commands (`dcmon exec`); a probe run's is its own default unless set.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub interval: Duration,
    pub offline_after: u32,
    pub probes: Vec<String>,
}

impl Defaults {
    pub fn builtin() -> Self {
        Defaults {
            user: std::env::var("USER").unwrap_or_else(|_| "root".to_string()),
            port: 22,
            known_hosts: expand_path("~/.ssh/known_hosts", Path::new(".")),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            interval: Duration::from_secs(30),
            offline_after: 3,
            probes: vec!["os".to_string()],
        }
    }
}

/// Reads and resolves an inventory file. `known_probes` are the probe names the
/// binary knows; any other name in `probes` is a problem.
pub fn load(path: &Path, known_probes: &[&str]) -> Result<Inventory, InventoryError> {
    let bytes = std::fs::read(path).map_err(|source| InventoryError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let text = utf8(&bytes, path)?;
    parse(text, path, known_probes).map_err(InventoryError::Invalid)
}

/// The file as text, or one problem at the first byte that is not UTF-8.
fn utf8<'a>(bytes: &'a [u8], path: &Path) -> Result<&'a str, InventoryError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        let good = std::str::from_utf8(&bytes[..offset]).unwrap_or_default();
        let at = line_col(good, offset);
        InventoryError::Invalid(Problems {
            file: path.display().to_string(),
            list: vec![Problem {
                line: at.line,
                col: at.col,
                message: format!(
                    "not UTF-8 text: byte {offset} is 0x{:02x}; save the inventory as UTF-8",
                    bytes[offset]
                ),
                file: None,
            }],
        })
    })
}

/// Parses inventory text; `file` names it in messages and anchors relative paths.
pub fn parse(text: &str, file: &Path, known_probes: &[&str]) -> Result<Inventory, Problems> {
    let mut checker = Checker::new(text, file, known_probes);
    let result = checker.run();
    let mut list = checker.problems(None);
    list.append(&mut checker.elsewhere);
    match result {
        Some(inventory) if list.is_empty() => Ok(inventory),
        _ => Err(Problems {
            file: file.display().to_string(),
            list,
        }),
    }
}

#[path = "load_web.rs"]
mod web;

#[path = "load_bmc.rs"]
mod bmc;

#[path = "load_ssh.rs"]
mod ssh;

#[path = "load_alerts.rs"]
mod alerts;

#[path = "load_remote.rs"]
mod remote;

#[path = "builtin_alerts.rs"]
pub mod builtin_alerts;

pub use alerts::annotation_template;

struct Checker<'a> {
    text: &'a str,
    doc: Option<toml_edit::Document<&'a str>>,
    found: Vec<(Option<Range<usize>>, String)>,
    /// Values left out for having the wrong type: what follows from their absence (no
    /// hosts, a host without a name) is not reported a second time.
    mistyped: Vec<Vec<Seg>>,
    base_dir: PathBuf,
    /// The inventory's path, as given: origins say `FILE:LINE`.
    file: String,
    /// ssh_config files read so far; `None` for one that could not be (a problem says
    /// why) and for a default `~/.ssh/config` that does not exist.
    ssh_configs: BTreeMap<PathBuf, Option<std::sync::Arc<crate::ssh_config::SshConfigFile>>>,
    known_probes: &'a [&'a str],
    /// `alerts = "FILE"`: the rules live in that file (as written, and resolved).
    alerts_file: Option<(String, PathBuf)>,
    /// Problems found in another file (the alerts file), already located.
    elsewhere: Vec<Problem>,
}

impl<'a> Checker<'a> {
    fn new(text: &'a str, file: &Path, known_probes: &'a [&'a str]) -> Checker<'a> {
        Checker {
            text,
            doc: None,
            found: Vec::new(),
            mistyped: Vec::new(),
            base_dir: file.parent().map(Path::to_path_buf).unwrap_or_default(),
            file: file.display().to_string(),
            ssh_configs: BTreeMap::new(),
            known_probes,
            alerts_file: None,
            elsewhere: Vec::new(),
        }
    }

    /// What was found, in file order, located in this checker's text.
    fn problems(&mut self, file: Option<&str>) -> Vec<Problem> {
        let mut found = std::mem::take(&mut self.found);
        found.sort_by_key(|(span, _)| span.as_ref().map_or(0, |s| s.start));
        found
            .into_iter()
            .map(|(span, message)| {
                let at = line_col(self.text, span.map_or(0, |s| s.start));
                Problem {
                    line: at.line,
                    col: at.col,
                    message,
                    file: file.map(str::to_string),
                }
            })
            .collect()
    }
}

const ENTRY_KEYS: &[&str] = &[
    "name",
    "address",
    "groups",
    "hosts",
    "transport",
    "user",
    "port",
    "identity",
    "passphrase_file",
    "certificate",
    "jump",
    "ssh_config",
    "known_hosts",
    "accept_new_host_keys",
    "timeout",
    "connect_timeout",
    "interval",
    "offline_after",
    "become",
    "probes",
    "labels",
    "log_files",
    "custom_scripts",
    "expected_gpus",
    "fan_profile",
    "shell",
    "bmc",
];

impl<'a> Checker<'a> {
    fn problem(&mut self, path: &[Seg], key_only: bool, message: String) {
        let span = self.doc.as_ref().and_then(|d| span_of(d, path, key_only));
        self.found.push((span, message));
    }

    /// Whether the value at `path` (or a value inside it) was left out as mistyped.
    fn was_mistyped(&self, path: &[Seg]) -> bool {
        self.mistyped.iter().any(|m| m.starts_with(path))
    }

    fn run(&mut self) -> Option<Inventory> {
        let doc = match toml_edit::Document::parse(self.text) {
            Ok(doc) => doc,
            Err(e) => {
                self.found
                    .push((e.span(), format!("TOML syntax: {}", e.message().trim())));
                return None;
            }
        };
        self.doc = Some(doc);
        let mut raw = self.deserialize()?;
        if let Some((written, resolved)) = self.alerts_file.clone() {
            raw.alerts = self.alerts_from_file(&written, &resolved)?;
        }
        self.check_level_keys(&raw);
        self.check_schedules(&raw);
        self.check_web(&raw.web);
        self.check_alerting(&raw);
        self.check_cluster(&raw.cluster);
        self.check_remote_writes(&raw.remote_write);
        self.check_entry(&raw.defaults, &path!["defaults"]);
        for (name, group) in &raw.groups {
            self.check_entry(group, &path!["groups", name.as_str()]);
        }
        for (i, host) in raw.hosts.iter().enumerate() {
            self.check_entry(host, &path!["hosts", i]);
        }
        self.resolve(&raw)
    }

    fn deserialize(&mut self) -> Option<RawInventory> {
        let mut unknown: Vec<Vec<Seg>> = Vec::new();
        // Every value of the wrong type is a problem of its own; serde then reads the
        // file without them, so it finds the unknown keys and the rest is still checked.
        let mistyped = self
            .doc
            .as_ref()
            .map(|doc| crate::types::check(doc.as_item()))
            .unwrap_or_default();
        let cleaned = if mistyped.is_empty() {
            None
        } else {
            let paths: Vec<Vec<Seg>> = mistyped.iter().map(|m| m.path.clone()).collect();
            crate::types::without(self.text, &paths)
        };
        // `alerts = "FILE"` names a file of `[[alerts]]`: not a mistyped value.
        let alerts_file = self
            .doc
            .as_ref()
            .and_then(|d| d.get("alerts"))
            .and_then(|a| a.as_str())
            .map(str::to_string);
        let mistyped: Vec<_> = match alerts_file {
            Some(file) => {
                let resolved = expand_path(&file, &self.base_dir);
                self.alerts_file = Some((file, resolved));
                mistyped
                    .into_iter()
                    .filter(|m| m.path != [Seg::Key("alerts".into())])
                    .collect()
            }
            None => mistyped,
        };
        for m in mistyped {
            self.problem(&m.path, false, m.message);
            self.mistyped.push(m.path);
        }
        let text = cleaned.as_deref().unwrap_or(self.text);
        let deserializer = match toml::de::Deserializer::parse(text) {
            Ok(d) => d,
            Err(e) => {
                self.found.push((e.span(), e.message().trim().to_string()));
                return None;
            }
        };
        let raw = serde_ignored::deserialize(deserializer, |p| unknown.push(segments(&p)));
        for key_path in unknown {
            let key = match key_path.last() {
                Some(Seg::Key(k)) => k.clone(),
                _ => continue,
            };
            let table = describe(&key_path[..key_path.len() - 1]);
            let hint = if key_path.len() == 1 {
                suggestion(
                    &key,
                    &[
                        "defaults",
                        "groups",
                        "hosts",
                        "probes",
                        "retention",
                        "web",
                        "alerting",
                        "alerts_defaults",
                        "alerts",
                        "notify",
                        "cluster",
                        "remote_write",
                    ],
                )
            } else {
                let known = match key_path.as_slice() {
                    [Seg::Key(w), Seg::Key(t), _] if w == "web" && t == "thresholds" => {
                        web::THRESHOLD_KEYS
                    }
                    [Seg::Key(w), _] if w == "web" => web::WEB_KEYS,
                    [Seg::Key(a), _] if a == "alerting" => {
                        &["evaluation_interval", "builtin", "disable"]
                    }
                    [Seg::Key(a), _] if a == "alerts_defaults" => alerts::DEFAULTS_KEYS,
                    [Seg::Key(a), Seg::Index(_), _] if a == "alerts" => alerts::ALERT_KEYS,
                    [Seg::Key(n), Seg::Index(_), _] if n == "notify" => alerts::NOTIFY_KEYS,
                    [Seg::Key(c), _] if c == "cluster" => remote::CLUSTER_KEYS,
                    [Seg::Key(r), Seg::Index(_), _] if r == "remote_write" => {
                        remote::REMOTE_WRITE_KEYS
                    }
                    [Seg::Key(r), Seg::Index(_), Seg::Key(t), _] if r == "remote_write" => {
                        match t.as_str() {
                            "basic_auth" => remote::BASIC_AUTH_KEYS,
                            "tls" => remote::TLS_KEYS,
                            _ => remote::QUEUE_KEYS,
                        }
                    }
                    [Seg::Key(n), Seg::Index(_), Seg::Key(s), _]
                        if n == "notify" && s == "smtp" =>
                    {
                        alerts::SMTP_KEYS
                    }
                    [.., Seg::Key(b), _] if b == "bmc" => &[
                        "address",
                        "port",
                        "user",
                        "password_file",
                        "cipher_suite",
                        "protocol",
                        "redfish_port",
                        "ca_file",
                        "tls_fingerprint",
                        "insecure_tls",
                        "firmware_interval",
                    ],
                    _ => ENTRY_KEYS,
                };
                suggestion(&key, known)
            };
            self.problem(
                &key_path,
                true,
                format!("unknown key `{key}` in {table}{hint}"),
            );
        }
        match raw {
            Ok(raw) => Some(raw),
            // A type the schema walk missed, in the text without the values it caught:
            // its span means nothing in the file, its message still does.
            Err(e) if cleaned.is_some() => {
                self.found.push((None, plain_words(e.message().trim())));
                None
            }
            Err(e) => {
                let key = match (&self.doc, e.span()) {
                    (Some(doc), Some(span)) => key_at(doc.as_item(), span.start),
                    _ => None,
                };
                let message = plain_words(e.message().trim());
                self.found.push((
                    e.span(),
                    key.map_or(message.clone(), |k| format!("`{k}`: {message}")),
                ));
                None
            }
        }
    }

    /// `[probes.NAME]`: a known probe; an interval or a cron schedule, not both; and
    /// `[retention]` durations.
    fn check_schedules(&mut self, raw: &RawInventory) {
        for (name, p) in &raw.probes {
            if !self.known_probes.contains(&name.as_str()) {
                let hint = suggestion(name, self.known_probes);
                self.problem(
                    &path!["probes", name.as_str()],
                    true,
                    format!("[probes.{name}]: unknown probe `{name}`{hint}"),
                );
            }
            for (key, value) in [("interval", &p.interval), ("timeout", &p.timeout)] {
                if let Some(v) = value
                    && let Err(why) = parse_duration(v)
                {
                    self.problem(
                        &path!["probes", name.as_str(), key],
                        false,
                        format!("{key} `{v}` {why}"),
                    );
                }
            }
            if let Some(cron) = &p.schedule {
                if p.interval.is_some() {
                    self.problem(
                        &path!["probes", name.as_str(), "schedule"],
                        true,
                        format!("[probes.{name}] sets both `interval` and `schedule`: keep one"),
                    );
                }
                let parsed = croner::parser::CronParser::builder()
                    .seconds(croner::parser::Seconds::Required)
                    .build()
                    .parse(cron);
                if let Err(e) = parsed {
                    self.problem(
                        &path!["probes", name.as_str(), "schedule"],
                        false,
                        format!("schedule `{cron}` is not a cron expression with seconds, like \"0 */5 * * * *\" ({e})"),
                    );
                }
            }
        }
        for (key, value) in [
            ("samples", &raw.retention.samples),
            ("logs", &raw.retention.logs),
        ] {
            if let Some(v) = value
                && let Err(why) = parse_duration(v)
            {
                self.problem(
                    &path!["retention", key],
                    false,
                    format!("retention {key} `{v}` {why}"),
                );
            }
        }
    }

    /// Keys that exist but belong to another level.
    fn check_level_keys(&mut self, raw: &RawInventory) {
        let misplaced = |e: &Entry, allowed_name: bool, allowed_hosts: bool| {
            let mut keys = Vec::new();
            if !allowed_name {
                for (k, set) in [
                    ("name", e.name.is_some()),
                    ("address", e.address.is_some()),
                    ("groups", e.groups.is_some()),
                ] {
                    if set {
                        keys.push(k);
                    }
                }
            }
            if !allowed_hosts && e.hosts.is_some() {
                keys.push("hosts");
            }
            keys
        };
        for k in misplaced(&raw.defaults, false, false) {
            self.problem(
                &path!["defaults", k],
                true,
                format!(
                    "`{k}` is not allowed in [defaults]: it belongs in [[hosts]] or [groups.NAME]"
                ),
            );
        }
        for (name, g) in &raw.groups {
            for k in misplaced(g, false, true) {
                self.problem(
                    &path!["groups", name.as_str(), k],
                    true,
                    format!(
                        "`{k}` is not allowed in [groups.{name}]: it belongs in a [[hosts]] entry"
                    ),
                );
            }
        }
        for (i, h) in raw.hosts.iter().enumerate() {
            for k in misplaced(h, true, false) {
                self.problem(&path!["hosts", i, k], true, format!("`{k}` is not allowed in [[hosts]]: list host patterns under [groups.NAME] hosts = [...]"));
            }
        }
    }

    /// Checks one entry's own values, wherever it stands.
    fn check_entry(&mut self, e: &Entry, at: &[Seg]) {
        let here = |k: &str| {
            let mut p = at.to_vec();
            p.push(Seg::Key(k.to_string()));
            p
        };
        if let Some(t) = &e.transport
            && t != "ssh"
            && t != "local"
        {
            self.problem(
                &here("transport"),
                false,
                format!("transport `{t}` is unknown: use \"ssh\" or \"local\""),
            );
        }
        if let Some(p) = &e.fan_profile
            && crate::model::FanProfile::from_name(p).is_none()
        {
            let hint = suggestion(p, &crate::model::FanProfile::NAMES);
            self.problem(
                &here("fan_profile"),
                false,
                format!(
                    "fan_profile `{p}` is unknown: use {}{hint}",
                    crate::model::FanProfile::NAMES.join(", ")
                ),
            );
        }
        if let Some(s) = &e.shell
            && crate::model::ShellMode::from_name(s).is_none()
        {
            let hint = suggestion(s, &crate::model::ShellMode::NAMES);
            self.problem(
                &here("shell"),
                false,
                format!(
                    "shell `{s}` is unknown: use {}{hint}",
                    crate::model::ShellMode::NAMES.join(", ")
                ),
            );
        }
        if e.port == Some(0) {
            self.problem(
                &here("port"),
                false,
                "port 0 is not a usable SSH port".to_string(),
            );
        }
        if e.user.as_deref() == Some("") {
            self.problem(&here("user"), false, "user is empty".to_string());
        }
        for (key, value) in [
            ("timeout", &e.timeout),
            ("connect_timeout", &e.connect_timeout),
            ("interval", &e.interval),
        ] {
            if let Some(v) = value
                && let Err(why) = parse_duration(v)
            {
                self.problem(&here(key), false, format!("{key} `{v}` {why}"));
            }
        }
        self.check_key_files(e, at);
        if let Some(identity) = &e.identity
            && identity != "agent"
        {
            let file = expand_path(identity, &self.base_dir);
            if !file.is_file() {
                self.problem(
                    &here("identity"),
                    false,
                    format!("identity file {} not found", file.display()),
                );
            }
        }
        if let Some(probes) = &e.probes {
            let mut seen = BTreeSet::new();
            for (i, p) in probes.iter().enumerate() {
                let mut at = here("probes");
                at.push(Seg::Index(i));
                let kind = dcmon_probes::find(p).map(|probe| probe.kind);
                if kind == Some(dcmon_probes::ProbeKind::Bmc) {
                    self.problem(
                        &at,
                        false,
                        format!("`{p}` is not listed in probes: every host with a `bmc` setting has its BMC read (schedule it with [probes.{p}])"),
                    );
                } else if !self.known_probes.contains(&p.as_str()) {
                    // Only the probes that may be listed: not those that read the BMC.
                    let listable: Vec<&str> = self
                        .known_probes
                        .iter()
                        .copied()
                        .filter(|name| {
                            dcmon_probes::find(name)
                                .is_none_or(|probe| probe.kind == dcmon_probes::ProbeKind::Script)
                        })
                        .collect();
                    let hint = suggestion(p, &listable);
                    let known = listable.join(", ");
                    self.problem(
                        &at,
                        false,
                        format!("unknown probe `{p}`{hint} (known probes: {known})"),
                    );
                } else if !seen.insert(p) {
                    self.problem(&at, false, format!("probe `{p}` is listed twice"));
                }
            }
        }
        for key in ["log_files", "custom_scripts"] {
            let paths = if key == "log_files" {
                &e.log_files
            } else {
                &e.custom_scripts
            };
            for (i, path) in paths.iter().flatten().enumerate() {
                let mut at = here(key);
                at.push(Seg::Index(i));
                // These paths travel to the host in a tab- and newline-separated list.
                // A NUL byte no shell reads as written.
                if !path.starts_with('/') || path.contains(['\t', '\n', '\r', '\0']) {
                    let shown = path.escape_debug();
                    self.problem(&at, false, format!("{key} entry `{shown}` must be an absolute path on the host, without tabs, newlines or NUL bytes"));
                }
            }
        }
        if let Some(labels) = &e.labels {
            for key in labels.keys() {
                if !is_label_name(key) {
                    let mut at = here("labels");
                    at.push(Seg::Key(key.clone()));
                    self.problem(
                        &at,
                        true,
                        format!("label name `{key}` must match [a-zA-Z_][a-zA-Z0-9_]*"),
                    );
                }
            }
        }
    }

    fn resolve(&mut self, raw: &RawInventory) -> Option<Inventory> {
        // Which groups claim each name through their `hosts` patterns.
        let mut claimed: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for (group, entry) in &raw.groups {
            let mut members = BTreeSet::new();
            for (i, pattern) in entry.hosts.iter().flatten().enumerate() {
                let at = path!["groups", group.as_str(), "hosts", i];
                match hostrange::expand(pattern) {
                    Ok(names) => {
                        for name in names {
                            if let Err(why) = check_host_name(&name) {
                                self.problem(&at, false, why);
                                break;
                            }
                            if !members.insert(name.clone()) {
                                self.problem(
                                    &at,
                                    false,
                                    format!("host `{name}` is listed twice in group `{group}`"),
                                );
                                break;
                            }
                            claimed.entry(name).or_default().push(group);
                        }
                    }
                    Err(e) => self.problem(&at, false, e.to_string()),
                }
            }
        }
        let mut explicit: BTreeMap<String, usize> = BTreeMap::new();
        for (i, entry) in raw.hosts.iter().enumerate() {
            let Some(name) = &entry.name else {
                if self.was_mistyped(&path!["hosts", i, "name"]) {
                    continue;
                }
                self.problem(
                    &path!["hosts", i],
                    false,
                    "[[hosts]] entry has no `name`".to_string(),
                );
                continue;
            };
            if let Err(why) = check_host_name(name) {
                self.problem(&path!["hosts", i, "name"], false, why);
                continue;
            }
            if let Some(&first) = explicit.get(name) {
                let first_at = self
                    .doc
                    .as_ref()
                    .and_then(|d| span_of(d, &path!["hosts", first, "name"], false));
                let line = first_at.map_or(0, |s| line_col(self.text, s.start).line);
                self.problem(
                    &path!["hosts", i, "name"],
                    false,
                    format!("duplicate host `{name}` (first defined on line {line})"),
                );
                continue;
            }
            explicit.insert(name.clone(), i);
            for (j, group) in entry.groups.iter().flatten().enumerate() {
                if !raw.groups.contains_key(group) {
                    let hint = suggestion(
                        group,
                        &raw.groups.keys().map(String::as_str).collect::<Vec<_>>(),
                    );
                    self.problem(
                        &path!["hosts", i, "groups", j],
                        false,
                        format!("unknown group `{group}`{hint}"),
                    );
                }
            }
        }
        let names: BTreeSet<&String> = claimed.keys().chain(explicit.keys()).collect();
        let lists_hosts = !raw.hosts.is_empty()
            || raw
                .groups
                .values()
                .any(|g| g.hosts.as_ref().is_some_and(|h| !h.is_empty()));
        // Hosts were listed, with the wrong type: the type error says it.
        let hosts_mistyped = self.mistyped.iter().any(|m| match m.as_slice() {
            [Seg::Key(top), ..] if top == "hosts" => true,
            [Seg::Key(top)] | [Seg::Key(top), _] if top == "groups" => true,
            [Seg::Key(top), _, Seg::Key(key), ..] => top == "groups" && key == "hosts",
            _ => false,
        });
        if !lists_hosts && !hosts_mistyped {
            self.found.push((Some(0..0), "the inventory defines no hosts: add [[hosts]] entries or [groups.NAME] hosts = [...]".to_string()));
        }
        let bmc_ranges = self.bmc_ranges(raw);
        let builtin = Defaults::builtin();
        let mut jump_specs = Vec::new();
        let mut configs = Vec::new();
        let mut hosts: Vec<Host> = names
            .into_iter()
            .map(|name| {
                let host_entry = explicit.get(name).map(|&i| &raw.hosts[i]);
                let mut groups: Vec<&str> = host_entry
                    .and_then(|h| h.groups.as_ref())
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                for g in claimed.get(name).into_iter().flatten() {
                    if !groups.contains(g) {
                        groups.push(g);
                    }
                }
                let mut merged = raw.defaults.clone();
                for g in &groups {
                    if let Some(entry) = raw.groups.get(*g) {
                        overlay(&mut merged, entry);
                    }
                }
                let host_index = explicit.get(name).copied();
                if let Some(entry) = host_entry {
                    overlay(&mut merged, entry);
                }
                let setter = |key: &str| ssh::where_set(raw, &groups, host_index, key);
                let config = self.ssh_config_of(&merged, setter("ssh_config"));
                let said = config.as_ref().map(|c| c.lookup(name)).unwrap_or_default();
                jump_specs.push(ssh::jump_spec(&merged, setter("jump"), &said));
                let config_path = config.as_ref().map(|c| c.path.clone());
                configs.push(config);
                let mut host = finish(name, &merged, &groups, &builtin, &self.base_dir, &said);
                host.origins = self.origins(&host, &said, &setter);
                host.ssh_config = config_path;
                host.bmc = merged
                    .bmc
                    .as_ref()
                    .and_then(|b| self.resolve_bmc(name, b, &bmc_ranges, raw));
                host
            })
            .collect();
        self.resolve_jumps(&mut hosts, &jump_specs, &configs);
        self.check_password_files(raw);
        self.check_cipher_suites(raw);
        self.check_tls_settings(raw);
        let duration = |v: &Option<String>| v.as_deref().and_then(|s| parse_duration(s).ok());
        let defaults = crate::model::Retention::default();
        Some(Inventory {
            hosts,
            groups: raw.groups.keys().cloned().collect(),
            probe_schedules: raw
                .probes
                .iter()
                .map(|(name, p)| {
                    let schedule = crate::model::ProbeSchedule {
                        interval: duration(&p.interval),
                        schedule: p.schedule.clone(),
                        timeout: duration(&p.timeout),
                    };
                    (name.clone(), schedule)
                })
                .collect(),
            retention: crate::model::Retention {
                samples: duration(&raw.retention.samples).unwrap_or(defaults.samples),
                logs: duration(&raw.retention.logs).unwrap_or(defaults.logs),
            },
            web: self.resolve_web(&raw.web),
            alerting: self.resolve_alerting(raw, &self.resolve_web(&raw.web).thresholds),
            cluster: self.resolve_cluster(&raw.cluster),
            remote_writes: self.resolve_remote_writes(&raw.remote_write),
        })
    }
}

/// Lays `top` over `base`: set values win, labels merge.
fn overlay(base: &mut Entry, top: &Entry) {
    macro_rules! take {
        ($($field:ident),*) => { $( if top.$field.is_some() { base.$field = top.$field.clone(); } )* };
    }
    take!(
        address,
        transport,
        user,
        port,
        identity,
        passphrase_file,
        certificate,
        jump,
        ssh_config,
        known_hosts,
        accept_new_host_keys,
        timeout,
        connect_timeout,
        interval,
        offline_after,
        become_,
        probes,
        log_files,
        custom_scripts,
        expected_gpus,
        fan_profile,
        shell
    );
    if let Some(labels) = &top.labels {
        base.labels
            .get_or_insert_with(BTreeMap::new)
            .extend(labels.clone());
    }
    // BMC settings merge field by field: a group gives user and password, a host its address.
    if let Some(top) = &top.bmc {
        let b = base.bmc.get_or_insert_with(Default::default);
        for (slot, value) in [
            (&mut b.address, &top.address),
            (&mut b.user, &top.user),
            (&mut b.password_file, &top.password_file),
            (&mut b.protocol, &top.protocol),
            (&mut b.ca_file, &top.ca_file),
            (&mut b.tls_fingerprint, &top.tls_fingerprint),
            (&mut b.firmware_interval, &top.firmware_interval),
        ] {
            if value.is_some() {
                *slot = value.clone();
            }
        }
        for (slot, value) in [
            (&mut b.port, top.port),
            (&mut b.redfish_port, top.redfish_port),
        ] {
            if value.is_some() {
                *slot = value;
            }
        }
    }
}

/// The host from its merged entry: what the inventory sets, else what ssh_config says
/// (`said`), else dcmon's default.
fn finish(
    name: &str,
    e: &Entry,
    groups: &[&str],
    builtin: &Defaults,
    base_dir: &Path,
    said: &crate::ssh_config::Said,
) -> Host {
    use crate::ssh_config::value as given;
    // Values were validated above; a bad one already made `parse` fail.
    let duration = |v: &Option<String>, default| {
        v.as_deref()
            .and_then(|s| parse_duration(s).ok())
            .unwrap_or(default)
    };
    Host {
        name: name.to_string(),
        address: e
            .address
            .clone()
            .or_else(|| given(&said.host_name))
            .unwrap_or_else(|| name.to_string()),
        transport: if e.transport.as_deref() == Some("local") {
            Transport::Local
        } else {
            Transport::Ssh
        },
        port: e.port.or(given(&said.port)).unwrap_or(builtin.port),
        user: e
            .user
            .clone()
            .or_else(|| given(&said.user))
            .unwrap_or_else(|| builtin.user.clone()),
        identity: ssh::identity(e.identity.as_deref(), base_dir, said),
        passphrase_file: e
            .passphrase_file
            .as_deref()
            .map(|p| expand_path(p, base_dir)),
        certificate: e
            .certificate
            .as_deref()
            .map(|p| expand_path(p, base_dir))
            .or_else(|| given(&said.certificate_file)),
        // Resolved by `resolve_jumps`, which needs every host.
        jump: Vec::new(),
        known_hosts: e
            .known_hosts
            .as_deref()
            .map(|p| expand_path(p, base_dir))
            .or_else(|| given(&said.known_hosts))
            .unwrap_or_else(|| builtin.known_hosts.clone()),
        accept_new_host_keys: e.accept_new_host_keys.unwrap_or(false),
        timeout: e.timeout.as_deref().and_then(|s| parse_duration(s).ok()),
        connect_timeout: duration(
            &e.connect_timeout,
            given(&said.connect_timeout).unwrap_or(builtin.connect_timeout),
        ),
        server_alive_interval: given(&said.server_alive_interval),
        // Filled by `resolve`, which knows the inventory's text and the file read.
        ssh_config: None,
        origins: BTreeMap::new(),
        interval: duration(&e.interval, builtin.interval),
        offline_after: e.offline_after.unwrap_or(builtin.offline_after).max(1),
        become_: e.become_.unwrap_or(false),
        probes: with_brought(e.probes.clone().unwrap_or_else(|| builtin.probes.clone())),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        labels: e.labels.clone().unwrap_or_default(),
        log_files: e.log_files.clone().unwrap_or_default(),
        custom_scripts: e.custom_scripts.clone().unwrap_or_default(),
        expected_gpus: e.expected_gpus,
        fan_profile: e
            .fan_profile
            .as_deref()
            .and_then(crate::model::FanProfile::from_name)
            .unwrap_or_default(),
        shell: e
            .shell
            .as_deref()
            .and_then(crate::model::ShellMode::from_name)
            .unwrap_or_default(),
        // Resolved by `resolve_bmc`, which needs the group's address ranges.
        bmc: None,
    }
}

/// Parses `10s`, `1m30s`, `500ms`; zero is refused (a run that may take no time never runs).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be longer than zero".to_string()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("is not a duration like \"10s\" or \"1m30s\" ({e})")),
    }
}

/// Expands `~/` to the home directory and anchors relative paths at `base_dir`.
pub fn expand_path(raw: &str, base_dir: &Path) -> PathBuf {
    if raw == "~" || raw.starts_with("~/") {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/"));
        return home.join(raw.trim_start_matches('~').trim_start_matches('/'));
    }
    let p = Path::new(raw);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}

/// Host names appear in URLs, selectors and file names: no blanks, slashes or selector syntax.
fn check_host_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("host name is empty".to_string());
    }
    if let Some(c) = name.chars().find(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c, '/' | ',' | '*' | '?' | '[' | ']' | '"' | '\'')
    }) {
        return Err(format!(
            "host name `{name}` contains {c:?}, which host names may not"
        ));
    }
    if name.starts_with('-') {
        return Err(format!("host name `{name}` may not start with `-`"));
    }
    if name.contains(':') && name.parse::<std::net::Ipv6Addr>().is_err() {
        return Err(format!(
            "host name `{name}` contains `:` but is not an IPv6 address"
        ));
    }
    Ok(())
}

fn is_label_name(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn segments(path: &serde_ignored::Path<'_>) -> Vec<Seg> {
    use serde_ignored::Path as P;
    let mut out = match path {
        P::Root => return Vec::new(),
        P::Seq { parent, .. }
        | P::Map { parent, .. }
        | P::Some { parent }
        | P::NewtypeStruct { parent }
        | P::NewtypeVariant { parent } => segments(parent),
    };
    match path {
        P::Seq { index, .. } => out.push(Seg::Index(*index)),
        P::Map { key, .. } => out.push(Seg::Key(key.clone())),
        _ => {}
    }
    out
}

fn describe(table: &[Seg]) -> String {
    match table {
        [] => "the top level".to_string(),
        [Seg::Key(d)] if d == "defaults" => "[defaults]".to_string(),
        [Seg::Key(g), Seg::Key(name), ..] if g == "groups" => format!("[groups.{name}]"),
        [Seg::Key(h), Seg::Index(i), ..] if h == "hosts" => format!("[[hosts]] entry #{}", i + 1),
        [Seg::Key(p), Seg::Key(name), ..] if p == "probes" => {
            format!("[probes.{name}] (keys: interval, schedule, timeout)")
        }
        [Seg::Key(r), ..] if r == "retention" => "[retention] (keys: samples, logs)".to_string(),
        [Seg::Key(w), Seg::Key(t), ..] if w == "web" && t == "thresholds" => {
            format!(
                "[web.thresholds] (keys: {})",
                web::THRESHOLD_KEYS.join(", ")
            )
        }
        [Seg::Key(w), Seg::Key(b), ..] if w == "web" && b == "backend" => {
            format!("[web] backend (keys: {})", web::BACKEND_KEYS.join(", "))
        }
        [Seg::Key(w), ..] if w == "web" => format!("[web] (keys: {})", web::WEB_KEYS.join(", ")),
        [Seg::Key(a)] if a == "alerting" => {
            "[alerting] (keys: evaluation_interval, builtin, disable)".to_string()
        }
        [Seg::Key(a)] if a == "alerts_defaults" => format!(
            "[alerts_defaults] (keys: {})",
            alerts::DEFAULTS_KEYS.join(", ")
        ),
        [Seg::Key(a), Seg::Index(i), ..] if a == "alerts" => format!(
            "[[alerts]] entry #{} (keys: {})",
            i + 1,
            alerts::ALERT_KEYS.join(", ")
        ),
        [Seg::Key(c), ..] if c == "cluster" => {
            format!("[cluster] (keys: {})", remote::CLUSTER_KEYS.join(", "))
        }
        [Seg::Key(r), Seg::Index(i), Seg::Key(t), ..] if r == "remote_write" => {
            let keys = match t.as_str() {
                "basic_auth" => remote::BASIC_AUTH_KEYS,
                "tls" => remote::TLS_KEYS,
                _ => remote::QUEUE_KEYS,
            };
            format!(
                "[[remote_write]] entry #{} {t} (keys: {})",
                i + 1,
                keys.join(", ")
            )
        }
        [Seg::Key(r), Seg::Index(i), ..] if r == "remote_write" => format!(
            "[[remote_write]] entry #{} (keys: {})",
            i + 1,
            remote::REMOTE_WRITE_KEYS.join(", ")
        ),
        [Seg::Key(n), Seg::Index(i), ..] if n == "notify" => format!(
            "[[notify]] entry #{} (keys: {})",
            i + 1,
            alerts::NOTIFY_KEYS.join(", ")
        ),
        _ => "this table".to_string(),
    }
}

/// The innermost key whose value spans `offset`, for naming it in a type error.
fn key_at(item: &toml_edit::Item, offset: usize) -> Option<String> {
    if let Some(table) = item.as_table_like() {
        return key_in(table, offset);
    }
    item.as_array_of_tables()?
        .iter()
        .find_map(|t| key_in(t, offset))
}

fn key_in(table: &dyn toml_edit::TableLike, offset: usize) -> Option<String> {
    for (key, value) in table.iter() {
        let spans_offset = value.span().is_some_and(|s| s.contains(&offset));
        // Table headers have no span covering their keys: look inside them anyway.
        if spans_offset || value.is_table() || value.is_array_of_tables() {
            if let Some(inner) = key_at(value, offset) {
                return Some(inner);
            }
            if spans_offset {
                return Some(key.to_string());
            }
        }
    }
    None
}

/// serde speaks Rust (`u16`, `a sequence`); operators edit TOML.
fn plain_words(message: &str) -> String {
    message
        .replace("expected u16", "expected a whole number from 0 to 65535")
        .replace("a sequence", "an array")
        .replace("a map", "a table")
}

/// ", did you mean `x`?" when a known word is close to the typed one.
fn suggestion(typed: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(typed, k), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map_or_else(String::new, |(_, k)| format!(", did you mean `{k}`?"))
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;

/// The probes listed, each followed by those it brings (`os` brings `fs`) unless listed
/// already: a probe split in two keeps inventories that name the whole reading all of it.
fn with_brought(listed: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(listed.len() + 1);
    for name in &listed {
        if !out.contains(name) {
            out.push(name.clone());
        }
        let brings = dcmon_probes::find(name).map_or(&[][..], |p| p.brings);
        for brought in brings {
            if !listed.iter().chain(out.iter()).any(|n| n == brought) {
                out.push(brought.to_string());
            }
        }
    }
    out
}
