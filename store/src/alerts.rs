//! Alert state, kept so a restart neither forgets a firing alert nor announces it anew:
//! each alert instance (a rule and its labels) in `alerts`, every transition with its
//! value in `alert_history`. The evaluator decides; the writer thread stores its changes
//! in one transaction (`apply_alerts`).

use crate::{Store, StoreError, sql};
use rusqlite::params;
use serde::Serialize;

/// Migration 9.
pub(crate) const MIGRATION: &str = "
    CREATE TABLE alerts (
        key          TEXT PRIMARY KEY,  -- rule name and labels, as JSON
        rule         TEXT NOT NULL,
        labels       TEXT NOT NULL,     -- JSON object: alertname, severity, the result's labels
        annotations  TEXT NOT NULL,     -- JSON object, rendered
        state        TEXT NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
        active_since INTEGER NOT NULL,  -- ms: first evaluation that found it
        fired_at     INTEGER,           -- ms: when it became firing
        resolved_at  INTEGER,           -- ms: when it stopped
        last_active  INTEGER NOT NULL,  -- ms: last evaluation that found it
        value        REAL
    ) WITHOUT ROWID;
    CREATE TABLE alert_history (
        id     INTEGER PRIMARY KEY,
        ts     INTEGER NOT NULL,        -- ms
        rule   TEXT NOT NULL,
        labels TEXT NOT NULL,
        state  TEXT NOT NULL,           -- the state entered: pending, firing, resolved
        value  REAL
    );
    CREATE INDEX alert_history_by_time ON alert_history (ts);
";

/// Migration 10: what each direct receiver (e-mail) was last sent about each alert, so a
/// restart does not send it again before its repeat interval.
pub(crate) const NOTIFIED: &str = "
    ALTER TABLE alerts ADD COLUMN notified TEXT NOT NULL DEFAULT '{}';
";

/// Migration 12: the history filtered by alert, host or state, newest first, reads only
/// what it returns.
pub(crate) const HISTORY_INDEXES: &str = "
    CREATE INDEX alert_history_by_rule ON alert_history (rule, ts);
    CREATE INDEX alert_history_by_host ON alert_history (json_extract(labels, '$.host'), ts);
    CREATE INDEX alert_history_by_state ON alert_history (state, ts);
";

/// One alert instance as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRow {
    pub key: String,
    pub rule: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub annotations: std::collections::BTreeMap<String, String>,
    pub state: String,
    pub active_since: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub last_active: i64,
    pub value: Option<f64>,
    /// Receiver name → (state sent: `firing` or `resolved`, when, ms).
    pub notified: std::collections::BTreeMap<String, (String, i64)>,
}

/// A transition, for the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    pub ts: i64,
    pub rule: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub state: String,
    pub value: Option<f64>,
}

/// Which transitions a history read returns (None: any).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryFilter {
    pub rule: Option<String>,
    pub host: Option<String>,
    pub state: Option<String>,
}

/// What one evaluation changed.
#[derive(Debug, Clone, Default)]
pub struct AlertChanges {
    /// Rows written whole (new, or their state or value changed).
    pub upserts: Vec<AlertRow>,
    /// Keys of instances that are gone (pending that stopped, resolved long enough).
    pub removed: Vec<String>,
    pub transitions: Vec<Transition>,
    /// Delivery attempts, per receiver.
    pub deliveries: Vec<crate::silences::Delivery>,
    /// Silences copied to (Some: its id there) or lifted from (None) an Alertmanager:
    /// (silence, receiver, Alertmanager's id).
    pub mirrors: Vec<(i64, String, Option<String>)>,
}

/// The `ALERTS` series of the pending and firing alerts, as Prometheus exposes its
/// own: `alertstate`, then the alert's labels (`alertname`, `severity`, the result's),
/// names that are not label names left out. `/metrics` shows them; remote write sends
/// them, so the central view can list every poller's alerts.
pub fn alert_series(alerts: &[AlertRow]) -> Vec<Vec<(String, String)>> {
    alerts
        .iter()
        .filter(|a| a.state != "resolved")
        .map(|a| {
            std::iter::once(("alertstate".to_string(), a.state.clone()))
                .chain(
                    a.labels
                        .iter()
                        .filter(|(k, _)| is_label_name(k) && k.as_str() != "alertstate")
                        .map(|(k, v)| (k.clone(), v.clone())),
                )
                .collect()
        })
        .collect()
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`: what Prometheus takes as a label name.
pub fn is_label_name(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl AlertChanges {
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty()
            && self.removed.is_empty()
            && self.transitions.is_empty()
            && self.deliveries.is_empty()
            && self.mirrors.is_empty()
    }
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string())
}

impl Store {
    /// Stores one evaluation's changes in one transaction.
    pub fn apply_alerts(&mut self, changes: &AlertChanges) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction()
            .map_err(sql("begin alert changes"))?;
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO alerts (key, rule, labels, annotations, state, active_since, fired_at, resolved_at, last_active, value, notified)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(sql("prepare alert upsert"))?;
            for a in &changes.upserts {
                upsert
                    .execute(params![
                        a.key,
                        a.rule,
                        json(&a.labels),
                        json(&a.annotations),
                        a.state,
                        a.active_since,
                        a.fired_at,
                        a.resolved_at,
                        a.last_active,
                        a.value,
                        json(&a.notified)
                    ])
                    .map_err(sql("upsert alert"))?;
            }
            let mut remove = tx
                .prepare_cached("DELETE FROM alerts WHERE key = ?1")
                .map_err(sql("prepare alert delete"))?;
            for key in &changes.removed {
                remove.execute([key]).map_err(sql("delete alert"))?;
            }
            let mut history = tx
                .prepare_cached(
                    "INSERT INTO alert_history (ts, rule, labels, state, value) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(sql("prepare alert history insert"))?;
            for t in &changes.transitions {
                history
                    .execute(params![t.ts, t.rule, json(&t.labels), t.state, t.value])
                    .map_err(sql("insert alert history"))?;
            }
        }
        for d in &changes.deliveries {
            crate::silences::record_delivery(&tx, d)?;
        }
        for (id, receiver, am_id) in &changes.mirrors {
            crate::silences::set_silence_mirror(&tx, *id, receiver, am_id.as_deref())?;
        }
        tx.commit().map_err(sql("commit alert changes"))
    }

    /// How many alerts fire (silenced ones too), for the navigation bar.
    pub fn firing_count(&self) -> Result<i64, StoreError> {
        self.conn
            .prepare_cached("SELECT count(*) FROM alerts WHERE state = 'firing'")
            .map_err(sql("prepare firing count"))?
            .query_row([], |r| r.get(0))
            .map_err(sql("count firing alerts"))
    }

    /// Every alert instance, pending, firing or recently resolved.
    pub fn alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT key, rule, labels, annotations, state, active_since, fired_at, resolved_at, last_active, value, notified
                 FROM alerts ORDER BY rule, key",
            )
            .map_err(sql("prepare alerts read"))?;
        let rows = stmt
            .query_map([], |r| {
                let labels: String = r.get(2)?;
                let annotations: String = r.get(3)?;
                Ok(AlertRow {
                    key: r.get(0)?,
                    rule: r.get(1)?,
                    labels: serde_json::from_str(&labels).unwrap_or_default(),
                    annotations: serde_json::from_str(&annotations).unwrap_or_default(),
                    state: r.get(4)?,
                    active_since: r.get(5)?,
                    fired_at: r.get(6)?,
                    resolved_at: r.get(7)?,
                    last_active: r.get(8)?,
                    value: r.get(9)?,
                    notified: serde_json::from_str(&r.get::<_, String>(10)?).unwrap_or_default(),
                })
            })
            .map_err(sql("read alerts"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("read alert row"))
    }

    /// The newest transitions first, at most `limit`, optionally only one alert name,
    /// one host (its `host` label) or one state entered.
    pub fn alert_history(
        &self,
        limit: usize,
        filter: &HistoryFilter,
    ) -> Result<Vec<Transition>, StoreError> {
        // Only the filters given, so the planner walks the index of one of them.
        let limit_value = limit as i64;
        let mut wheres = Vec::new();
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![&limit_value];
        for (clause, value) in [
            ("rule = ?", &filter.rule),
            ("json_extract(labels, '$.host') = ?", &filter.host),
            ("state = ?", &filter.state),
        ] {
            if let Some(v) = value {
                values.push(v);
                wheres.push(format!("{clause}{}", values.len()));
            }
        }
        let text = format!(
            "SELECT ts, rule, labels, state, value FROM alert_history {} {} ORDER BY ts DESC, id DESC LIMIT ?1",
            if wheres.is_empty() { "" } else { "WHERE" },
            wheres.join(" AND ")
        );
        let mut stmt = self
            .conn
            .prepare_cached(&text)
            .map_err(sql("prepare alert history read"))?;
        let rows = stmt
            .query_map(values.as_slice(), |r| {
                let labels: String = r.get(2)?;
                Ok(Transition {
                    ts: r.get(0)?,
                    rule: r.get(1)?,
                    labels: serde_json::from_str(&labels).unwrap_or_default(),
                    state: r.get(3)?,
                    value: r.get(4)?,
                })
            })
            .map_err(sql("read alert history"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("read alert history row"))
    }
}
