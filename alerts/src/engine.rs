//! The alert state machine: inactive → pending (while `for` runs) → firing → resolved,
//! one evaluation at a time, starting from the states stored before a restart. Each
//! evaluation returns what changed for the store, and the alerts to send.

use crate::silence::Silences;
use dcmon_inventory::{AlertRule, Alerting, Receiver};
use dcmon_promql::{self as promql, Labels, Source, Value};
use dcmon_store::alerts::{AlertChanges, AlertRow, Transition};
use dcmon_store::silences::Delivery;
use std::collections::{BTreeMap, HashMap};

/// How long a resolved alert is still sent (with its end time), as Prometheus does, so
/// a receiver that missed the first one still hears of it.
pub const RESOLVED_RESEND_MS: i64 = 15 * 60 * 1000;

/// A rule, its expression parsed.
#[derive(Debug, Clone)]
pub struct Rule {
    pub config: AlertRule,
    pub query: promql::Query,
}

/// The rules in force and every instance's state.
pub struct Engine {
    pub rules: Vec<Rule>,
    pub receivers: Vec<Receiver>,
    pub interval_ms: i64,
    states: HashMap<String, AlertRow>,
    templates: minijinja::Environment<'static>,
}

/// One rule that could not be evaluated this time, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleError {
    pub rule: String,
    pub error: String,
}

impl Engine {
    /// Rules from a checked inventory (their expressions parse), states as stored.
    pub fn new(alerting: &Alerting, stored: Vec<AlertRow>) -> Engine {
        let mut engine = Engine {
            rules: Vec::new(),
            receivers: Vec::new(),
            interval_ms: 30_000,
            states: stored.into_iter().map(|a| (a.key.clone(), a)).collect(),
            templates: minijinja::Environment::new(),
        };
        engine.configure(alerting);
        engine
    }

    /// New rules and receivers (a reload); states of rules that remain are kept.
    pub fn configure(&mut self, alerting: &Alerting) {
        self.rules = alerting
            .rules
            .iter()
            .filter_map(|r| {
                Some(Rule {
                    config: r.clone(),
                    query: promql::parse(&r.expr).ok()?,
                })
            })
            .collect();
        self.receivers = alerting.receivers.clone();
        self.interval_ms = alerting.evaluation_interval.as_millis() as i64;
    }

    pub fn states(&self) -> impl Iterator<Item = &AlertRow> {
        self.states.values()
    }

    /// Evaluates every rule at `now`; returns the changes to store and the rules that failed.
    pub fn evaluate(&mut self, source: &dyn Source, now: i64) -> (AlertChanges, Vec<RuleError>) {
        let mut changes = AlertChanges::default();
        let mut errors = Vec::new();
        // Taken out for the loop (put back below): no copy of every parsed rule each time.
        let rules = std::mem::take(&mut self.rules);
        // Each distinct read once for all rules.
        let source = promql::Memo::new(source);
        for rule in &rules {
            let found = match promql::eval(&rule.query, now, &source) {
                Ok(Value::Vector(samples)) => samples,
                Ok(Value::Scalar(v)) => vec![promql::Sample {
                    labels: Labels::new(),
                    value: v,
                }],
                Err(e) => {
                    // Its alerts keep their state until it evaluates again.
                    errors.push(RuleError {
                        rule: rule.config.name.clone(),
                        error: e.to_string(),
                    });
                    continue;
                }
            };
            let mut seen = std::collections::HashSet::new();
            for sample in found {
                let labels = alert_labels(&rule.config, sample.labels);
                let key = key_of(&rule.config.name, &labels);
                seen.insert(key.clone());
                let annotations = self.render(&rule.config, &labels, sample.value);
                let entry = self
                    .states
                    .get(&key)
                    .filter(|a| a.state != "resolved")
                    .cloned();
                let mut row = entry.unwrap_or_else(|| AlertRow {
                    key: key.clone(),
                    rule: rule.config.name.clone(),
                    labels: labels.clone(),
                    annotations: BTreeMap::new(),
                    state: String::new(),
                    active_since: now,
                    fired_at: None,
                    resolved_at: None,
                    last_active: now,
                    value: None,
                    notified: BTreeMap::new(),
                });
                let before = row.state.clone();
                row.last_active = now;
                row.value = Some(sample.value);
                row.annotations = annotations;
                let for_ms = rule.config.for_.as_millis() as i64;
                row.state = if row.state == "firing" || now - row.active_since >= for_ms {
                    "firing".to_string()
                } else {
                    "pending".to_string()
                };
                if row.state == "firing" && row.fired_at.is_none() {
                    row.fired_at = Some(now);
                }
                if row.state != before {
                    changes.transitions.push(transition(&row, now));
                }
                changes.upserts.push(row.clone());
                self.states.insert(key, row);
            }
            // Instances the expression no longer returns.
            let keep_ms = rule.config.keep_firing_for.as_millis() as i64;
            let gone: Vec<String> = self
                .states
                .values()
                .filter(|a| a.rule == rule.config.name && !seen.contains(&a.key))
                .map(|a| a.key.clone())
                .collect();
            for key in gone {
                let Some(mut row) = self.states.remove(&key) else {
                    continue;
                };
                match row.state.as_str() {
                    "firing" if now - row.last_active < keep_ms => {
                        self.states.insert(key, row);
                    }
                    "firing" => {
                        row.state = "resolved".to_string();
                        row.resolved_at = Some(now);
                        changes.transitions.push(transition(&row, now));
                        changes.upserts.push(row.clone());
                        self.states.insert(key, row);
                    }
                    "resolved" if now - row.resolved_at.unwrap_or(now) < RESOLVED_RESEND_MS => {
                        self.states.insert(key, row);
                    }
                    "resolved" => {
                        // Kept while a receiver dcmon sends to itself is still owed its
                        // end, up to a day; then given up, counted.
                        let owed: Vec<String> = self.owed(&row);
                        let age = now - row.resolved_at.unwrap_or(now);
                        if !owed.is_empty() && age < crate::notify::OWED_MAX_MS {
                            self.states.insert(key, row);
                        } else {
                            for receiver in owed {
                                changes.deliveries.push(Delivery {
                                    receiver,
                                    at: now,
                                    sent: 0,
                                    dropped: 1,
                                    error: None,
                                });
                            }
                            changes.removed.push(key);
                        }
                    }
                    // A pending alert that stopped never fired: nothing to announce.
                    _ => changes.removed.push(key),
                }
            }
        }
        // Instances of rules that no longer exist (a reload removed them) are dropped.
        let orphaned: Vec<String> = self
            .states
            .values()
            .filter(|a| !rules.iter().any(|r| r.config.name == a.rule))
            .map(|a| a.key.clone())
            .collect();
        for key in orphaned {
            self.states.remove(&key);
            changes.removed.push(key);
        }
        self.rules = rules;
        (changes, errors)
    }

    fn render(
        &self,
        rule: &AlertRule,
        labels: &BTreeMap<String, String>,
        value: f64,
    ) -> BTreeMap<String, String> {
        let context = minijinja::context! { labels => labels, value => value };
        rule.annotations
            .iter()
            .map(|(k, text)| {
                let template = dcmon_inventory::annotation_template(text);
                let rendered = self
                    .templates
                    .render_str(&template, &context)
                    .unwrap_or_else(|e| format!("{text} (template error: {e})"));
                (k.clone(), rendered)
            })
            .collect()
    }

    /// What an Alertmanager is sent now: every firing alert, and those resolved in the
    /// last 15 minutes, that match its labels. An alert under a silence that is not yet
    /// copied to it is held back (Alertmanager would announce it).
    pub fn to_send(&self, receiver: &Receiver, silences: &Silences) -> Vec<&AlertRow> {
        let mut out: Vec<&AlertRow> = self
            .states
            .values()
            .filter(|a| a.state == "firing" || a.state == "resolved")
            .filter(|a| crate::notify::routes_to(receiver, a))
            .filter(|a| {
                silences
                    .silencing(&a.labels)
                    .is_none_or(|s| s.mirrored.contains_key(&receiver.name))
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Receivers dcmon sends to itself that were told this alert fires and not yet that
    /// it ended.
    fn owed(&self, row: &AlertRow) -> Vec<String> {
        self.receivers
            .iter()
            .filter(|r| r.is_direct() && r.send_resolved)
            .filter(|r| {
                row.notified
                    .get(&r.name)
                    .is_some_and(|(s, _)| s == "firing")
            })
            .map(|r| r.name.clone())
            .collect()
    }
}

impl Engine {
    /// Records that `receiver` was sent `state` about `key`; the row to store.
    pub fn mark_sent(
        &mut self,
        receiver: &str,
        key: &str,
        state: &str,
        now: i64,
    ) -> Option<AlertRow> {
        let row = self.states.get_mut(key)?;
        row.notified
            .insert(receiver.to_string(), (state.to_string(), now));
        Some(row.clone())
    }
}

/// An instance's labels: the result's (without the series name), the rule's own, its
/// name and severity.
fn alert_labels(rule: &AlertRule, result: Labels) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = result
        .into_iter()
        .filter(|(k, _)| k != "__name__")
        .collect();
    labels.extend(rule.labels.clone());
    labels.insert("alertname".into(), rule.name.clone());
    labels.insert("severity".into(), rule.severity.clone());
    labels
}

fn key_of(rule: &str, labels: &BTreeMap<String, String>) -> String {
    format!(
        "{rule}{}",
        serde_json::to_string(labels).unwrap_or_default()
    )
}

fn transition(row: &AlertRow, now: i64) -> Transition {
    Transition {
        ts: now,
        rule: row.rule.clone(),
        labels: row.labels.clone(),
        state: row.state.clone(),
        value: row.value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dcmon_promql::RawSeries;
    use std::cell::RefCell;
    use std::time::Duration;

    /// One series whose value the test sets before each evaluation.
    struct Temperature(RefCell<Vec<(i64, f64)>>);

    impl Source for Temperature {
        fn series(
            &self,
            name: &str,
            _: Option<&str>,
            from: i64,
            to: i64,
        ) -> Result<Vec<RawSeries>, String> {
            if name != "t" {
                return Ok(Vec::new());
            }
            let labels = [("__name__", "t"), ("host", "h")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let points = self
                .0
                .borrow()
                .iter()
                .copied()
                .filter(|p| p.0 >= from && p.0 <= to)
                .collect();
            Ok(vec![RawSeries { labels, points }])
        }
    }

    fn alerting(for_s: u64, keep_s: u64) -> Alerting {
        Alerting {
            evaluation_interval: Duration::from_secs(10),
            rules: vec![AlertRule {
                name: "Hot".into(),
                expr: "t > 80".into(),
                for_: Duration::from_secs(for_s),
                keep_firing_for: Duration::from_secs(keep_s),
                severity: "critical".into(),
                labels: BTreeMap::from([("team".into(), "gpu".into())]),
                annotations: BTreeMap::from([(
                    "summary".into(),
                    "{{ $labels.host }} at {{ $value }}".into(),
                )]),
                builtin: false,
            }],
            ..Alerting::default()
        }
    }

    fn states(changes: &AlertChanges) -> Vec<String> {
        changes
            .transitions
            .iter()
            .map(|t| t.state.clone())
            .collect()
    }

    #[test]
    fn pending_until_for_then_firing_then_resolved() {
        let source = Temperature(RefCell::new(vec![(0, 90.0)]));
        let mut engine = Engine::new(&alerting(20, 0), Vec::new());
        let (c, _) = engine.evaluate(&source, 1_000);
        assert_eq!(states(&c), ["pending"]);
        let row = &c.upserts[0];
        assert_eq!(row.labels["alertname"], "Hot");
        assert_eq!(row.labels["team"], "gpu");
        assert_eq!(row.annotations["summary"], "h at 90.0");
        let (c, _) = engine.evaluate(&source, 11_000);
        assert!(states(&c).is_empty(), "still pending after 10 s of 20");
        let (c, _) = engine.evaluate(&source, 21_000);
        assert_eq!(states(&c), ["firing"]);
        source.0.borrow_mut().push((25_000, 70.0));
        let (c, _) = engine.evaluate(&source, 31_000);
        assert_eq!(states(&c), ["resolved"]);
        assert_eq!(engine.states().next().unwrap().resolved_at, Some(31_000));
        // Sent as resolved for 15 minutes, then forgotten.
        let (c, _) = engine.evaluate(&source, 31_000 + RESOLVED_RESEND_MS + 1);
        assert_eq!(c.removed.len(), 1);
        assert_eq!(engine.states().count(), 0);
    }

    #[test]
    fn a_pending_alert_that_stops_is_forgotten_without_a_word() {
        let source = Temperature(RefCell::new(vec![(0, 90.0)]));
        let mut engine = Engine::new(&alerting(60, 0), Vec::new());
        engine.evaluate(&source, 1_000);
        source.0.borrow_mut().push((5_000, 10.0));
        let (c, _) = engine.evaluate(&source, 11_000);
        assert!(states(&c).is_empty());
        assert_eq!(c.removed.len(), 1);
    }

    #[test]
    fn keep_firing_for_holds_a_flapping_alert() {
        let source = Temperature(RefCell::new(vec![(0, 90.0)]));
        let mut engine = Engine::new(&alerting(0, 30), Vec::new());
        let (c, _) = engine.evaluate(&source, 1_000);
        assert_eq!(states(&c), ["firing"]);
        source.0.borrow_mut().push((5_000, 10.0));
        let (c, _) = engine.evaluate(&source, 11_000);
        assert!(states(&c).is_empty(), "kept firing");
        let (c, _) = engine.evaluate(&source, 41_000);
        assert_eq!(states(&c), ["resolved"]);
    }

    #[test]
    fn a_restart_continues_from_the_stored_state() {
        let source = Temperature(RefCell::new(vec![(0, 90.0)]));
        let mut engine = Engine::new(&alerting(0, 0), Vec::new());
        let (c, _) = engine.evaluate(&source, 1_000);
        let stored = c.upserts.clone();
        let mut restarted = Engine::new(&alerting(0, 0), stored);
        let (c, _) = restarted.evaluate(&source, 11_000);
        assert!(states(&c).is_empty(), "no new transition after a restart");
        assert_eq!(c.upserts[0].active_since, 1_000);
        assert_eq!(c.upserts[0].fired_at, Some(1_000));
        // A rule removed by a reload takes its alerts with it.
        restarted.configure(&Alerting::default());
        let (c, _) = restarted.evaluate(&source, 21_000);
        assert_eq!(c.removed.len(), 1);
    }

    fn receiver(severity: &str, target: dcmon_inventory::Target) -> Receiver {
        Receiver {
            name: "r".into(),
            target,
            matchers: BTreeMap::from([("severity".into(), severity.into())]),
            group_by: vec!["alertname".into()],
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(3600),
            send_resolved: true,
        }
    }

    #[test]
    fn alertmanager_gets_what_matches_it_unless_silenced_there_first() {
        let source = Temperature(RefCell::new(vec![(0, 90.0)]));
        let mut engine = Engine::new(&alerting(0, 0), Vec::new());
        engine.evaluate(&source, 1_000);
        let am = |s| receiver(s, dcmon_inventory::Target::Alertmanager("http://x".into()));
        let none = Silences::default();
        assert_eq!(engine.to_send(&am("critical"), &none).len(), 1);
        assert!(engine.to_send(&am("info"), &none).is_empty());
        let mut silence = dcmon_store::silences::Silence {
            id: 1,
            matchers: crate::silence::parse("host=h").unwrap(),
            starts_at: 0,
            ends_at: 10_000,
            comment: "c".into(),
            created_by: "t".into(),
            mirrored: BTreeMap::new(),
        };
        let silenced = Silences::active(vec![silence.clone()], 2_000);
        assert!(
            engine.to_send(&am("critical"), &silenced).is_empty(),
            "held back until copied"
        );
        silence.mirrored.insert("r".into(), "uuid".into());
        let silenced = Silences::active(vec![silence], 2_000);
        assert_eq!(
            engine.to_send(&am("critical"), &silenced).len(),
            1,
            "muted there"
        );
    }

    #[test]
    fn direct_receivers_wait_group_repeat_and_resolve() {
        let source = Temperature(RefCell::new(vec![(0, 90.0)]));
        let mut engine = Engine::new(&alerting(0, 0), Vec::new());
        engine.evaluate(&source, 1_000);
        let mail = receiver(
            "critical",
            dcmon_inventory::Target::Webhook("http://x".into()),
        );
        let none = Silences::default();
        // The group waits 30 s after its first alert fired.
        assert!(engine.due(&mail, &none, 30_000).is_empty());
        let due = engine.due(&mail, &none, 31_000);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].group["alertname"], "Hot");
        assert_eq!(due[0].status(), "firing");
        let key = due[0].alerts[0].0.key.clone();
        drop(due);
        let stored = engine.mark_sent("r", &key, "firing", 31_000).unwrap();
        assert_eq!(stored.notified["r"], ("firing".to_string(), 31_000));
        assert!(engine.due(&mail, &none, 32_000).is_empty());
        // Unchanged: again after the repeat interval.
        assert_eq!(engine.due(&mail, &none, 31_000 + 3_600_000).len(), 1);
        // Resolved: a change, sent after the group interval.
        source.0.borrow_mut().push((35_000, 10.0));
        engine.evaluate(&source, 40_000);
        assert!(engine.due(&mail, &none, 100_000).is_empty());
        let due = engine.due(&mail, &none, 331_000);
        assert_eq!(due[0].status(), "resolved");
        drop(due);
        engine.mark_sent("r", &key, "resolved", 331_000);
        assert!(engine.due(&mail, &none, 10_000_000).is_empty());
        // Forgotten 15 minutes after it resolved: nothing owed any more.
        let (c, _) = engine.evaluate(&source, 40_000 + RESOLVED_RESEND_MS + 1);
        assert_eq!(c.removed.len(), 1);
        assert!(c.deliveries.is_empty());
    }

    #[test]
    fn an_end_never_delivered_is_kept_a_day_then_counted_as_dropped() {
        let source = Temperature(RefCell::new(vec![(0, 90.0)]));
        let mail = receiver(
            "critical",
            dcmon_inventory::Target::Webhook("http://x".into()),
        );
        let config = Alerting {
            receivers: vec![mail],
            ..alerting(0, 0)
        };
        let mut engine = Engine::new(&config, Vec::new());
        let (c, _) = engine.evaluate(&source, 1_000);
        engine.mark_sent("r", &c.upserts[0].key, "firing", 31_000);
        source.0.borrow_mut().push((35_000, 10.0));
        engine.evaluate(&source, 40_000);
        let (c, _) = engine.evaluate(&source, 40_000 + RESOLVED_RESEND_MS + 1);
        assert!(c.removed.is_empty(), "still owed");
        let (c, _) = engine.evaluate(&source, 40_000 + crate::notify::OWED_MAX_MS);
        assert_eq!(c.removed.len(), 1);
        assert_eq!(c.deliveries[0].dropped, 1);
        assert_eq!(c.deliveries[0].receiver, "r");
    }
}
