//! `[alerting]`, `[[alerts]]` and `[[notify]]`: every rule's PromQL parsed (and held to
//! dcmon's subset), its durations, labels and annotation templates checked, and every
//! receiver's address, each problem at its place in the file.

use super::{Checker, is_label_name, parse_duration};
use crate::model::{AlertRule, Alerting, Receiver};
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
        let rules = if on {
            super::builtin_alerts::rules(thresholds)
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

pub(super) const NOTIFY_KEYS: &[&str] = &["name", "alertmanager", "match"];

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
        let mut names = BTreeSet::new();
        for (i, rule) in raw.alerts.iter().enumerate() {
            self.check_rule(i, rule, &mut names);
        }
        let mut receivers = BTreeSet::new();
        for (i, notify) in raw.notify.iter().enumerate() {
            self.check_receiver(i, notify, &mut receivers);
        }
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
        match &notify.alertmanager {
            None => self.problem(
                &path!["notify", i],
                false,
                format!("receiver `{name}` has no `alertmanager` address"),
            ),
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => self
                .problem(
                    &path!["notify", i, "alertmanager"],
                    false,
                    format!(
                        "receiver `{name}`: alertmanager `{url}` is not an http:// or https:// address"
                    ),
                ),
            Some(_) => {}
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
                    Some(Receiver {
                        name: n.name.clone()?,
                        alertmanager: n.alertmanager.clone()?.trim_end_matches('/').to_string(),
                        matchers: n.matchers.clone().unwrap_or_default(),
                    })
                })
                .collect(),
        }
    }
}
