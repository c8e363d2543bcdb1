//! Receivers dcmon sends to itself (e-mail, webhook, Slack), grouped as Alertmanager
//! groups: alerts alike in the receiver's `group_by` labels share one message; a new
//! group waits `group_wait` for company, a changed group is sent again after
//! `group_interval`, an unchanged firing one after `repeat_interval`.
//!
//! What was sent lives in each alert's `notified` (stored), so the schedule survives a
//! restart and nothing is kept twice: a group's last message is the newest `notified`
//! time of its alerts, and its pending news are the alerts whose state differs from
//! what this receiver was last told.

use crate::Engine;
use crate::silence::Silences;
use dcmon_inventory::Receiver;
use dcmon_store::alerts::AlertRow;
use std::collections::BTreeMap;

/// A resolved alert a receiver was told was firing is kept (owed) this long at most
/// while the receiver cannot be reached; then it is given up, counted as dropped.
pub const OWED_MAX_MS: i64 = 24 * 3600 * 1000;

/// Most alerts in one message (the rest follow in the next, `group_interval` later).
pub const MAX_ALERTS_PER_MESSAGE: usize = 500;

/// One message due to one receiver.
#[derive(Debug)]
pub struct Notification<'a> {
    /// The group's labels (`alertname` and whatever `group_by` names).
    pub group: BTreeMap<String, String>,
    /// Its alerts, each with the state to announce: `firing` or `resolved`.
    pub alerts: Vec<(&'a AlertRow, &'static str)>,
}

impl Notification<'_> {
    /// `firing` if any alert fires, else `resolved` (as Alertmanager's `status`).
    pub fn status(&self) -> &'static str {
        if self.alerts.iter().any(|(_, s)| *s == "firing") {
            "firing"
        } else {
            "resolved"
        }
    }

    pub fn firing(&self) -> usize {
        self.alerts.iter().filter(|(_, s)| *s == "firing").count()
    }

    /// Labels every alert shares.
    pub fn common_labels(&self) -> BTreeMap<String, String> {
        common(self.alerts.iter().map(|(a, _)| &a.labels))
    }

    pub fn common_annotations(&self) -> BTreeMap<String, String> {
        common(self.alerts.iter().map(|(a, _)| &a.annotations))
    }
}

fn common<'a>(
    mut maps: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let Some(first) = maps.next() else {
        return BTreeMap::new();
    };
    let mut out = first.clone();
    for m in maps {
        out.retain(|k, v| m.get(k) == Some(v));
    }
    out
}

/// The group an alert falls in for `receiver`.
fn group_of(receiver: &Receiver, alert: &AlertRow) -> BTreeMap<String, String> {
    if receiver.group_by.iter().any(|l| l == "...") {
        return alert.labels.clone();
    }
    receiver
        .group_by
        .iter()
        .filter_map(|l| alert.labels.get(l).map(|v| (l.clone(), v.clone())))
        .collect()
}

/// Does this alert go to this receiver at all?
pub fn routes_to(receiver: &Receiver, alert: &AlertRow) -> bool {
    receiver
        .matchers
        .iter()
        .all(|(k, v)| alert.labels.get(k) == Some(v))
}

impl Engine {
    /// The messages `receiver` is owed at `now`.
    pub fn due(&self, receiver: &Receiver, silences: &Silences, now: i64) -> Vec<Notification<'_>> {
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let mut groups: BTreeMap<BTreeMap<String, String>, Vec<&AlertRow>> = BTreeMap::new();
        for alert in self.states() {
            if (alert.state == "firing" || alert.state == "resolved")
                && routes_to(receiver, alert)
                && silences.silencing(&alert.labels).is_none()
            {
                groups
                    .entry(group_of(receiver, alert))
                    .or_default()
                    .push(alert);
            }
        }
        let mut out = Vec::new();
        for (group, mut alerts) in groups {
            alerts.sort_by(|a, b| a.key.cmp(&b.key));
            let told = |a: &AlertRow| {
                a.notified
                    .get(&receiver.name)
                    .map(|(s, at)| (s.clone(), *at))
            };
            let last_sent = alerts.iter().filter_map(|a| told(a).map(|t| t.1)).max();
            let news: Vec<&&AlertRow> = alerts
                .iter()
                .filter(|a| match (a.state.as_str(), told(a)) {
                    ("firing", t) => t.is_none_or(|t| t.0 != "firing"),
                    ("resolved", Some(t)) => t.0 == "firing" && receiver.send_resolved,
                    _ => false,
                })
                .collect();
            let firing = alerts.iter().any(|a| a.state == "firing");
            let due_at = match (news.is_empty(), last_sent) {
                // A new group: its first alert's firing time, plus the wait.
                (false, None) => news
                    .iter()
                    .filter_map(|a| a.fired_at)
                    .min()
                    .unwrap_or(now)
                    .saturating_add(ms(receiver.group_wait)),
                (false, Some(last)) => last.saturating_add(ms(receiver.group_interval)),
                (true, Some(last)) if firing => last.saturating_add(ms(receiver.repeat_interval)),
                (true, _) => continue,
            };
            if now < due_at {
                continue;
            }
            let listed: Vec<(&AlertRow, &'static str)> = alerts
                .iter()
                .filter_map(|a| match a.state.as_str() {
                    "firing" => Some((*a, "firing")),
                    "resolved"
                        if receiver.send_resolved && told(a).is_some_and(|t| t.0 == "firing") =>
                    {
                        Some((*a, "resolved"))
                    }
                    _ => None,
                })
                .take(MAX_ALERTS_PER_MESSAGE)
                .collect();
            if !listed.is_empty() {
                out.push(Notification {
                    group,
                    alerts: listed,
                });
            }
        }
        out
    }
}

/// Prometheus's fingerprint of a label set (FNV-1a 64 over sorted names and values,
/// each followed by 0xff), as Alertmanager's webhook JSON carries it.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut add = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (k, v) in labels {
        add(k.as_bytes());
        add(&[0xff]);
        add(v.as_bytes());
        add(&[0xff]);
    }
    format!("{hash:016x}")
}

/// Alertmanager's webhook JSON (version 4) for one message.
pub fn webhook_body(receiver: &str, n: &Notification<'_>, external_url: &str, now: i64) -> String {
    let alerts: Vec<serde_json::Value> = n
        .alerts
        .iter()
        .map(|(a, state)| {
            let ends = match *state {
                "resolved" => crate::alertmanager::rfc3339(a.resolved_at.unwrap_or(now)),
                _ => "0001-01-01T00:00:00Z".to_string(),
            };
            serde_json::json!({
                "status": state,
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": crate::alertmanager::rfc3339(a.active_since),
                "endsAt": ends,
                "generatorURL": external_url,
                "fingerprint": fingerprint(&a.labels),
            })
        })
        .collect();
    let group_key = format!(
        "{{}}:{{{}}}",
        n.group
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    serde_json::json!({
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": n.status(),
        "receiver": receiver,
        "groupLabels": n.group,
        "commonLabels": n.common_labels(),
        "commonAnnotations": n.common_annotations(),
        "externalURL": external_url,
        "alerts": alerts,
    })
    .to_string()
}

/// One line per alert: `GpuHot on gpu01 (value 95): GPU 1 on gpu01 at 95 °C`.
fn alert_line(a: &AlertRow, state: &str) -> String {
    let host = a
        .labels
        .get("host")
        .map(|h| format!(" on {h}"))
        .unwrap_or_default();
    let value = a.value.map(|v| format!(" (value {v})")).unwrap_or_default();
    let summary = a
        .annotations
        .get("summary")
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    let mark = if state == "resolved" {
        "[RESOLVED] "
    } else {
        ""
    };
    format!("{mark}{}{host}{value}{summary}", a.rule).replace(['\r', '\n'], " ")
}

/// `[FIRING:2] GpuHot on gpu01, gpu02`, or for one alert `[FIRING] GpuHot on gpu01: summary`.
pub fn title(n: &Notification<'_>) -> String {
    let status = n.status().to_uppercase();
    let text = match n.alerts.as_slice() {
        [(a, state)] => {
            let host = a
                .labels
                .get("host")
                .map(|h| format!(" on {h}"))
                .unwrap_or_default();
            let summary = a
                .annotations
                .get("summary")
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            format!("[{}] {}{host}{summary}", state.to_uppercase(), a.rule)
        }
        alerts => {
            let mut names: Vec<&str> = alerts.iter().map(|(a, _)| a.rule.as_str()).collect();
            names.dedup();
            let mut hosts: Vec<&str> = alerts
                .iter()
                .filter_map(|(a, _)| a.labels.get("host").map(String::as_str))
                .collect();
            hosts.sort_unstable();
            hosts.dedup();
            let shown = hosts.len().min(3);
            let more = match hosts.len() - shown {
                0 => String::new(),
                n => format!(" +{n}"),
            };
            let on = if hosts.is_empty() {
                String::new()
            } else {
                format!(" on {}{more}", hosts[..shown].join(", "))
            };
            let count = match n.status() {
                "firing" => n.firing(),
                _ => alerts.len(),
            };
            format!("[{status}:{count}] {}{on}", names.join(", "))
        }
    };
    text.replace(['\r', '\n'], " ")
}

/// A plain-text body: one paragraph per alert with its value, annotations and labels.
pub fn text_body(n: &Notification<'_>) -> String {
    let mut text = String::new();
    for (a, state) in &n.alerts {
        text.push_str(&format!("{} is {state}.\n", a.rule));
        if let Some(value) = a.value {
            text.push_str(&format!("value: {value}\n"));
        }
        for (k, v) in &a.annotations {
            text.push_str(&format!("{k}: {v}\n"));
        }
        text.push_str("labels:\n");
        for (k, v) in &a.labels {
            text.push_str(&format!("  {k} = {v}\n"));
        }
        text.push('\n');
    }
    text
}

/// Slack's incoming-webhook message: a bold title and one line per alert.
pub fn slack_body(n: &Notification<'_>) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut text = format!("*{}*", escape(&title(n)));
    for (a, state) in &n.alerts {
        text.push_str(&format!("\n• {}", escape(&alert_line(a, state))));
    }
    serde_json::json!({ "text": text }).to_string()
}
