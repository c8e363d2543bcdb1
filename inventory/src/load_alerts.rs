//! `[alerting]`, `[[alerts]]` and `[[notify]]`: every rule's PromQL parsed (and held to
//! dcmon's subset), its durations, labels and annotation templates checked, and every
//! receiver's address, each problem at its place in the file.

use super::builtin_alerts::AlertDefaults;
use super::{Checker, is_label_name, parse_duration};
use crate::model::{AlertRule, Alerting, Receiver, Smtp, SmtpTls, Target};
use crate::path;
use crate::raw::{RawAlert, RawInventory, RawNotify};
use std::collections::BTreeSet;
use std::time::Duration;

pub(super) const ALERT_KEYS: &[&str] = &[
    "name",
    "expr",
    "for",
    "keep_firing_for",
    "severity",
    "labels",
    "annotations",
];

impl Checker<'_> {
    /// The built-in rules in force: all, unless turned off, disabled by name, or
    /// replaced by a rule of the same name.
    fn builtin_rules<'r>(
        &self,
        raw: &'r RawInventory,
        thresholds: &crate::model::Thresholds,
    ) -> impl Iterator<Item = AlertRule> + 'r {
        let on = raw.alerting.builtin.unwrap_or(true);
        let d = &raw.alerts_defaults;
        let from_web = AlertDefaults::from_thresholds(thresholds);
        let defaults = AlertDefaults {
            cpu: d.cpu.unwrap_or(from_web.cpu),
            memory: d.memory.unwrap_or(from_web.memory),
            filesystem: d.filesystem.unwrap_or(from_web.filesystem),
            gpu_temp: d.gpu_temp.unwrap_or(from_web.gpu_temp),
            nvme_wear: d.nvme_wear.unwrap_or(from_web.nvme_wear),
            probe_failures: d.probe_failures.unwrap_or(from_web.probe_failures),
        };
        let rules = if on {
            super::builtin_alerts::rules(&defaults)
        } else {
            Vec::new()
        };
        rules.into_iter().filter(move |rule| {
            let disabled = raw
                .alerting
                .disable
                .iter()
                .flatten()
                .any(|d| *d == rule.name);
            let replaced = raw
                .alerts
                .iter()
                .any(|r| r.name.as_deref() == Some(&rule.name));
            !disabled && !replaced
        })
    }
}

pub(super) const DEFAULTS_KEYS: &[&str] = &[
    "cpu",
    "memory",
    "filesystem",
    "gpu_temp",
    "nvme_wear",
    "probe_failures",
];

pub(super) const NOTIFY_KEYS: &[&str] = &[
    "name",
    "alertmanager",
    "smtp",
    "webhook",
    "slack",
    "match",
    "group_by",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "send_resolved",
];

pub(super) const SMTP_KEYS: &[&str] = &["server", "from", "to", "user", "password_file", "tls"];

/// Prometheus's annotation templates (`{{ $labels.host }}`, `{{ $value }}`) in the
/// syntax minijinja renders (`{{ labels.host }}`, `{{ value }}`).
pub fn annotation_template(text: &str) -> String {
    text.replace("$labels", "labels").replace("$value", "value")
}

impl Checker<'_> {
    pub(super) fn check_alerting(&mut self, raw: &RawInventory) {
        if let Some(v) = &raw.alerting.evaluation_interval
            && let Err(why) = parse_duration(v)
        {
            self.problem(
                &path!["alerting", "evaluation_interval"],
                false,
                format!("evaluation_interval `{v}` {why}"),
            );
        }
        let d = &raw.alerts_defaults;
        for (key, value, high) in [
            ("cpu", d.cpu, 100.0),
            ("memory", d.memory, 100.0),
            ("filesystem", d.filesystem, 100.0),
            ("gpu_temp", d.gpu_temp, 200.0),
            ("nvme_wear", d.nvme_wear, 255.0),
        ] {
            if let Some(v) = value
                && !(v.is_finite() && (0.0..=high).contains(&v))
            {
                self.problem(
                    &path!["alerts_defaults", key],
                    false,
                    format!("alerts_defaults.{key} = {v} is not a number from 0 to {high}"),
                );
            }
        }
        if let Some(n) = d.probe_failures
            && !(1..=10_000).contains(&n)
        {
            self.problem(
                &path!["alerts_defaults", "probe_failures"],
                false,
                format!("alerts_defaults.probe_failures = {n} is not from 1 to 10000"),
            );
        }
        let builtin = super::builtin_alerts::names();
        for (i, name) in raw.alerting.disable.iter().flatten().enumerate() {
            if !builtin.contains(&name.as_str()) {
                let hint = super::suggestion(name, &builtin);
                self.problem(
                    &path!["alerting", "disable", i],
                    false,
                    format!(
                        "`{name}` is not a built-in alert{hint} (built-in: {})",
                        builtin.join(", ")
                    ),
                );
            }
        }
        // Rules from an alerts file were checked in their own file.
        if self.alerts_file.is_none() {
            let mut names = BTreeSet::new();
            for (i, rule) in raw.alerts.iter().enumerate() {
                self.check_rule(i, rule, &mut names);
            }
        }
        let mut receivers = BTreeSet::new();
        for (i, notify) in raw.notify.iter().enumerate() {
            self.check_receiver(i, notify, &mut receivers);
        }
    }

    /// The `[[alerts]]` of the file `alerts = "FILE"` names, checked there; its problems
    /// are reported at their place in that file. `None`: it cannot be read at all.
    pub(super) fn alerts_from_file(
        &mut self,
        written: &str,
        path: &std::path::Path,
    ) -> Option<Vec<RawAlert>> {
        let shown = path.display().to_string();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                self.problem(
                    &path!["alerts"],
                    false,
                    format!("alerts file `{written}` ({shown}): {e}"),
                );
                return None;
            }
        };
        let text = match super::utf8(&bytes, path) {
            Ok(t) => t,
            Err(crate::InventoryError::Invalid(p)) => {
                self.elsewhere.extend(p.list.into_iter().map(|mut x| {
                    x.file = Some(shown.clone());
                    x
                }));
                return None;
            }
            Err(_) => return None,
        };
        let mut sub = super::Checker::new(text, path, self.known_probes);
        let rules = sub.alert_rules();
        self.elsewhere.extend(sub.problems(Some(&shown)));
        rules
    }

    /// This checker's text as an alerts file: only `[[alerts]]`, each rule checked.
    fn alert_rules(&mut self) -> Option<Vec<RawAlert>> {
        let doc = match toml_edit::Document::parse(self.text) {
            Ok(doc) => doc,
            Err(e) => {
                self.found
                    .push((e.span(), format!("TOML syntax: {}", e.message().trim())));
                return None;
            }
        };
        let others: Vec<String> = doc
            .as_table()
            .iter()
            .map(|(k, _)| k.to_string())
            .filter(|k| k != "alerts")
            .collect();
        self.doc = Some(doc);
        for key in others {
            self.problem(
                &path![key.as_str()],
                true,
                format!(
                    "`{key}` does not belong in an alerts file: it holds only [[alerts]] tables"
                ),
            );
        }
        if self
            .doc
            .as_ref()
            .and_then(|d| d.get("alerts"))
            .is_some_and(|a| a.is_str())
        {
            self.problem(
                &path!["alerts"],
                false,
                "an alerts file cannot name another alerts file".into(),
            );
            return None;
        }
        let raw = self.deserialize()?;
        let mut names = BTreeSet::new();
        for (i, rule) in raw.alerts.iter().enumerate() {
            self.check_rule(i, rule, &mut names);
        }
        Some(raw.alerts)
    }

    fn check_rule(&mut self, i: usize, rule: &RawAlert, names: &mut BTreeSet<String>) {
        let Some(name) = &rule.name else {
            self.problem(
                &path!["alerts", i],
                false,
                "[[alerts]] entry has no `name`".into(),
            );
            return;
        };
        if !is_label_name(name) {
            self.problem(
                &path!["alerts", i, "name"],
                false,
                format!("alert name `{name}` must match [a-zA-Z_][a-zA-Z0-9_]*"),
            );
        } else if !names.insert(name.clone()) {
            self.problem(
                &path!["alerts", i, "name"],
                false,
                format!("alert `{name}` is defined twice"),
            );
        }
        match &rule.expr {
            None => self.problem(
                &path!["alerts", i],
                false,
                format!("alert `{name}` has no `expr`"),
            ),
            Some(expr) => {
                if let Err(e) = dcmon_promql::parse(expr) {
                    self.problem(
                        &path!["alerts", i, "expr"],
                        false,
                        format!("alert `{name}`: {e}"),
                    );
                }
            }
        }
        for (key, value) in [
            ("for", &rule.for_),
            ("keep_firing_for", &rule.keep_firing_for),
        ] {
            if let Some(v) = value
                && v != "0s"
                && let Err(why) = parse_duration(v)
            {
                self.problem(
                    &path!["alerts", i, key],
                    false,
                    format!("alert `{name}`: {key} `{v}` {why}"),
                );
            }
        }
        for key in rule.labels.iter().flatten().map(|(k, _)| k) {
            if !is_label_name(key) || key == "alertname" || key == "severity" {
                self.problem(
                    &path!["alerts", i, "labels", key.as_str()],
                    true,
                    format!(
                        "alert `{name}`: label `{key}` must match [a-zA-Z_][a-zA-Z0-9_]* and not be alertname or severity (set `severity` on its own)"
                    ),
                );
            }
        }
        let env = minijinja::Environment::new();
        for (key, text) in rule.annotations.iter().flatten() {
            if let Err(e) = env.template_from_str(&annotation_template(text)) {
                self.problem(
                    &path!["alerts", i, "annotations", key.as_str()],
                    false,
                    format!(
                        "alert `{name}`: annotation `{key}` is not a template with {{{{ $labels.NAME }}}} and {{{{ $value }}}}: {}",
                        e.detail().unwrap_or("syntax error")
                    ),
                );
            }
        }
    }

    fn check_receiver(&mut self, i: usize, notify: &RawNotify, names: &mut BTreeSet<String>) {
        let Some(name) = &notify.name else {
            self.problem(
                &path!["notify", i],
                false,
                "[[notify]] entry has no `name`".into(),
            );
            return;
        };
        if !names.insert(name.clone()) {
            self.problem(
                &path!["notify", i, "name"],
                false,
                format!("receiver `{name}` is defined twice"),
            );
        }
        for (key, value) in [
            ("group_wait", &notify.group_wait),
            ("group_interval", &notify.group_interval),
            ("repeat_interval", &notify.repeat_interval),
        ] {
            if let Some(v) = value
                && let Err(why) = parse_duration(v)
            {
                self.problem(
                    &path!["notify", i, key],
                    false,
                    format!("receiver `{name}`: {key} `{v}` {why}"),
                );
            }
        }
        for (j, label) in notify.group_by.iter().flatten().enumerate() {
            if !(is_label_name(label) || label == "...") {
                self.problem(
                    &path!["notify", i, "group_by", j],
                    false,
                    format!("receiver `{name}`: group_by `{label}` must be a label name or `...`"),
                );
            }
        }
        let targets: Vec<&str> = [
            ("alertmanager", notify.alertmanager.is_some()),
            ("smtp", notify.smtp.is_some()),
            ("webhook", notify.webhook.is_some()),
            ("slack", notify.slack.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect();
        match targets.as_slice() {
            [] => self.problem(
                &path!["notify", i],
                false,
                format!(
                    "receiver `{name}` has no target: give one of `alertmanager`, `smtp`, `webhook`, `slack`"
                ),
            ),
            [_] => {}
            [_, second, ..] => self.problem(
                &path!["notify", i, *second],
                true,
                format!(
                    "receiver `{name}` has both `{}` and `{second}`: one target per receiver",
                    targets[0]
                ),
            ),
        }
        if let Some(smtp) = &notify.smtp {
            self.check_smtp(i, name, smtp);
        }
        for (key, url) in [
            ("alertmanager", &notify.alertmanager),
            ("webhook", &notify.webhook),
            ("slack", &notify.slack),
        ] {
            if let Some(url) = url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                self.problem(
                    &path!["notify", i, key],
                    false,
                    format!(
                        "receiver `{name}`: {key} `{url}` is not an http:// or https:// address"
                    ),
                );
            }
        }
        for key in notify.matchers.iter().flatten().map(|(k, _)| k) {
            if !is_label_name(key) {
                self.problem(
                    &path!["notify", i, "match", key.as_str()],
                    true,
                    format!("receiver `{name}`: label `{key}` must match [a-zA-Z_][a-zA-Z0-9_]*"),
                );
            }
        }
    }

    fn check_smtp(&mut self, i: usize, name: &str, smtp: &crate::raw::RawSmtp) {
        let at = |key: &str| path!["notify", i, "smtp", key].to_vec();
        match smtp.server.as_deref().map(split_server) {
            None => self.problem(
                &path!["notify", i, "smtp"],
                false,
                format!("receiver `{name}`: smtp has no `server` (host:port)"),
            ),
            Some(None) => self.problem(
                &at("server"),
                false,
                format!(
                    "receiver `{name}`: smtp server `{}` is not host:port",
                    smtp.server.as_deref().unwrap_or_default()
                ),
            ),
            Some(Some(_)) => {}
        }
        let mailbox = |a: &str| a.contains('@') && !a.contains(['\n', '\r', ',']);
        match &smtp.from {
            None => self.problem(
                &path!["notify", i, "smtp"],
                false,
                format!("receiver `{name}`: smtp has no `from` address"),
            ),
            Some(a) if !mailbox(a) => self.problem(
                &at("from"),
                false,
                format!("receiver `{name}`: `{a}` is not an e-mail address"),
            ),
            Some(_) => {}
        }
        match &smtp.to {
            None => self.problem(
                &path!["notify", i, "smtp"],
                false,
                format!("receiver `{name}`: smtp has no `to` addresses"),
            ),
            Some(list) => {
                for (j, a) in list.iter().enumerate() {
                    if !mailbox(a) {
                        self.problem(
                            &path!["notify", i, "smtp", "to", j],
                            false,
                            format!("receiver `{name}`: `{a}` is not an e-mail address"),
                        );
                    }
                }
            }
        }
        if let Some(t) = &smtp.tls
            && !matches!(t.as_str(), "starttls" | "tls" | "none")
        {
            self.problem(
                &at("tls"),
                false,
                format!("receiver `{name}`: tls `{t}` is unknown: use starttls, tls or none"),
            );
        }
        if smtp.user.is_some() != smtp.password_file.is_some() {
            self.problem(
                &path!["notify", i, "smtp"],
                false,
                format!("receiver `{name}`: smtp `user` and `password_file` go together"),
            );
        }
        if let Some(file) = &smtp.password_file {
            let path = super::expand_path(file, &self.base_dir);
            match std::fs::metadata(&path) {
                Err(e) => self.problem(
                    &at("password_file"),
                    false,
                    format!("receiver `{name}`: password_file {}: {e}", path.display()),
                ),
                Ok(m) => {
                    use std::os::unix::fs::PermissionsExt as _;
                    let mode = m.permissions().mode() & 0o777;
                    if mode & 0o004 != 0 {
                        self.problem(&at("password_file"), false, format!("receiver `{name}`: password_file {} is readable by every user (mode {mode:04o}): run `chmod o-rwx {}`", path.display(), path.display()));
                    }
                }
            }
        }
    }

    pub(super) fn resolve_alerting(
        &self,
        raw: &RawInventory,
        thresholds: &crate::model::Thresholds,
    ) -> Alerting {
        let duration = |v: &Option<String>, default: Duration| {
            v.as_deref()
                .and_then(|s| parse_duration(s).ok())
                .unwrap_or(default)
        };
        Alerting {
            rules_file: self.alerts_file.as_ref().map(|(_, path)| path.clone()),
            evaluation_interval: duration(
                &raw.alerting.evaluation_interval,
                Alerting::default().evaluation_interval,
            ),
            rules: self
                .builtin_rules(raw, thresholds)
                .chain(raw.alerts.iter().filter_map(|r| {
                    Some(AlertRule {
                        name: r.name.clone()?,
                        expr: r.expr.clone()?,
                        for_: duration(&r.for_, Duration::ZERO),
                        keep_firing_for: duration(&r.keep_firing_for, Duration::ZERO),
                        severity: r.severity.clone().unwrap_or_else(|| "warning".into()),
                        labels: r.labels.clone().unwrap_or_default(),
                        annotations: r.annotations.clone().unwrap_or_default(),
                        builtin: false,
                    })
                }))
                .collect(),
            receivers: raw
                .notify
                .iter()
                .filter_map(|n| {
                    let target = if let Some(url) = &n.alertmanager {
                        Target::Alertmanager(url.trim_end_matches('/').to_string())
                    } else if let Some(smtp) = &n.smtp {
                        Target::Smtp(self.resolve_smtp(smtp)?)
                    } else if let Some(url) = &n.webhook {
                        Target::Webhook(url.clone())
                    } else {
                        Target::Slack(n.slack.clone()?)
                    };
                    Some(Receiver {
                        name: n.name.clone()?,
                        target,
                        matchers: n.matchers.clone().unwrap_or_default(),
                        group_by: n
                            .group_by
                            .clone()
                            .unwrap_or_else(|| vec!["alertname".to_string()]),
                        group_wait: duration(&n.group_wait, Duration::from_secs(30)),
                        group_interval: duration(&n.group_interval, Duration::from_secs(300)),
                        repeat_interval: duration(
                            &n.repeat_interval,
                            Duration::from_secs(4 * 3600),
                        ),
                        send_resolved: n.send_resolved.unwrap_or(true),
                    })
                })
                .collect(),
        }
    }
}

impl Checker<'_> {
    fn resolve_smtp(&self, smtp: &crate::raw::RawSmtp) -> Option<Smtp> {
        let (host, port) = split_server(smtp.server.as_deref()?)?;
        Some(Smtp {
            host,
            port,
            from: smtp.from.clone()?,
            to: smtp.to.clone()?,
            login: smtp.user.clone().zip(
                smtp.password_file
                    .as_deref()
                    .map(|p| super::expand_path(p, &self.base_dir)),
            ),
            tls: match smtp.tls.as_deref() {
                Some("tls") => SmtpTls::Implicit,
                Some("none") => SmtpTls::None,
                _ => SmtpTls::StartTls,
            },
        })
    }
}

/// `host:port` (`[v6]:port` too).
fn split_server(text: &str) -> Option<(String, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    (!host.is_empty()).then(|| (host.to_string(), port))
}
