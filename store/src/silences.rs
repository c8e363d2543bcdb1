//! Silences (who muted which alerts, until when, why) and each receiver's delivery
//! record. A silence is written with its audit row in one transaction, from the CLI or
//! the dashboard; `dcmon serve` reads the active ones at each evaluation and copies them
//! to each Alertmanager it sends to (`mirrored`: receiver → Alertmanager's silence id).

use crate::{Store, StoreError, sql};
use rusqlite::{OptionalExtension as _, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Migration 11.
pub(crate) const MIGRATION: &str = "
    CREATE TABLE silences (
        id         INTEGER PRIMARY KEY,
        matchers   TEXT NOT NULL,    -- JSON array of {name, op, value}
        starts_at  INTEGER NOT NULL, -- ms
        ends_at    INTEGER NOT NULL, -- ms: expiry, or when it was lifted
        comment    TEXT NOT NULL,
        created_by TEXT NOT NULL,    -- `cli:USER`, `web:admin@ADDRESS`
        mirrored   TEXT NOT NULL DEFAULT '{}' -- receiver -> Alertmanager silence id
    );
    CREATE INDEX silences_by_end ON silences (ends_at);
    CREATE TABLE receivers (
        name          TEXT PRIMARY KEY,
        sent          INTEGER NOT NULL DEFAULT 0, -- notifications delivered
        failed        INTEGER NOT NULL DEFAULT 0, -- attempts that failed
        dropped       INTEGER NOT NULL DEFAULT 0, -- alerts given up on (queue bound)
        last_ok       INTEGER,                    -- ms
        last_error    TEXT,
        last_error_at INTEGER                     -- ms
    ) WITHOUT ROWID;
";

/// One label matcher, as Alertmanager writes them: `=`, `!=`, `=~`, `!~`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    pub name: String,
    pub op: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Silence {
    pub id: i64,
    pub matchers: Vec<Matcher>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub comment: String,
    pub created_by: String,
    pub mirrored: BTreeMap<String, String>,
}

/// One receiver's deliveries since the database was made.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReceiverStatus {
    pub name: String,
    pub sent: i64,
    pub failed: i64,
    pub dropped: i64,
    pub last_ok: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
}

/// What one delivery attempt changed for a receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub receiver: String,
    pub at: i64,
    /// Notifications delivered (0 when it failed).
    pub sent: i64,
    pub dropped: i64,
    pub error: Option<String>,
}

/// `matcher,matcher` as typed: `host="gpu01",alertname=~"Gpu.*"`.
pub fn matchers_text(matchers: &[Matcher]) -> String {
    matchers
        .iter()
        .map(|m| format!("{}{}{:?}", m.name, m.op, m.value))
        .collect::<Vec<_>>()
        .join(",")
}

fn silence_of(r: &rusqlite::Row) -> rusqlite::Result<Silence> {
    let matchers: String = r.get(1)?;
    let mirrored: String = r.get(6)?;
    Ok(Silence {
        id: r.get(0)?,
        matchers: serde_json::from_str(&matchers).unwrap_or_default(),
        starts_at: r.get(2)?,
        ends_at: r.get(3)?,
        comment: r.get(4)?,
        created_by: r.get(5)?,
        mirrored: serde_json::from_str(&mirrored).unwrap_or_default(),
    })
}

const SILENCE_COLUMNS: &str = "id, matchers, starts_at, ends_at, comment, created_by, mirrored";

/// The audit row's host: the one host a silence names exactly, else `*`.
fn audit_host(matchers: &[Matcher]) -> &str {
    matchers
        .iter()
        .find(|m| m.name == "host" && m.op == "=")
        .map_or("*", |m| m.value.as_str())
}

impl Store {
    /// Stores a silence and its audit row together; returns its id.
    pub fn add_silence(
        &mut self,
        matchers: &[Matcher],
        starts_at: i64,
        ends_at: i64,
        comment: &str,
        who: &str,
    ) -> Result<i64, StoreError> {
        let tx = self.conn.transaction().map_err(sql("begin silence"))?;
        let text = serde_json::to_string(matchers).unwrap_or_else(|_| "[]".into());
        tx.execute(
            "INSERT INTO silences (matchers, starts_at, ends_at, comment, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![text, starts_at, ends_at, comment, who],
        )
        .map_err(sql("write silence"))?;
        let id = tx.last_insert_rowid();
        let until = ends_at.saturating_sub(starts_at) / 1000;
        tx.execute(
            "INSERT INTO audit (ts, who, host, action, command, status, exit_code, duration_ms, output)
             VALUES (?1, ?2, ?3, 'silence', ?4, 'ok', NULL, 0, '')",
            params![
                starts_at,
                who,
                audit_host(matchers),
                format!("silence {id}: {} for {until}s: {comment}", matchers_text(matchers))
            ],
        )
        .map_err(sql("audit silence"))?;
        tx.commit().map_err(sql("commit silence"))?;
        Ok(id)
    }

    /// Ends a silence now (audited). `Ok(None)`: no such silence; `Ok(Some(false))`: it
    /// had already ended.
    pub fn expire_silence(
        &mut self,
        id: i64,
        now: i64,
        who: &str,
    ) -> Result<Option<bool>, StoreError> {
        let tx = self.conn.transaction().map_err(sql("begin unsilence"))?;
        let found: Option<Silence> = tx
            .query_row(
                &format!("SELECT {SILENCE_COLUMNS} FROM silences WHERE id = ?1"),
                [id],
                silence_of,
            )
            .optional()
            .map_err(sql("read silence"))?;
        let Some(silence) = found else {
            return Ok(None);
        };
        if silence.ends_at <= now {
            return Ok(Some(false));
        }
        tx.execute(
            "UPDATE silences SET ends_at = ?2 WHERE id = ?1",
            params![id, now],
        )
        .map_err(sql("end silence"))?;
        tx.execute(
            "INSERT INTO audit (ts, who, host, action, command, status, exit_code, duration_ms, output)
             VALUES (?1, ?2, ?3, 'unsilence', ?4, 'ok', NULL, 0, '')",
            params![
                now,
                who,
                audit_host(&silence.matchers),
                format!("unsilence {id}: {}", matchers_text(&silence.matchers))
            ],
        )
        .map_err(sql("audit unsilence"))?;
        tx.commit().map_err(sql("commit unsilence"))?;
        Ok(Some(true))
    }

    /// Silences that end after `since` (active ones and those ended since then), newest
    /// first.
    pub fn silences(&self, since: i64) -> Result<Vec<Silence>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {SILENCE_COLUMNS} FROM silences WHERE ends_at > ?1 ORDER BY id DESC"
            ))
            .map_err(sql("prepare silences read"))?;
        let rows = stmt
            .query_map([since], silence_of)
            .map_err(sql("read silences"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("read silence row"))
    }

    pub fn receivers(&self) -> Result<Vec<ReceiverStatus>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT name, sent, failed, dropped, last_ok, last_error, last_error_at FROM receivers ORDER BY name",
            )
            .map_err(sql("prepare receivers read"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ReceiverStatus {
                    name: r.get(0)?,
                    sent: r.get(1)?,
                    failed: r.get(2)?,
                    dropped: r.get(3)?,
                    last_ok: r.get(4)?,
                    last_error: r.get(5)?,
                    last_error_at: r.get(6)?,
                })
            })
            .map_err(sql("read receivers"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("read receiver row"))
    }
}

/// Records (Some) or forgets (None) the Alertmanager silence that mirrors `id` at
/// `receiver` (inside the writer's transaction).
pub(crate) fn set_silence_mirror(
    conn: &rusqlite::Connection,
    id: i64,
    receiver: &str,
    am_id: Option<&str>,
) -> Result<(), StoreError> {
    let path = format!("$.{}", serde_json::to_string(receiver).unwrap_or_default());
    let done = match am_id {
        Some(am) => conn.execute(
            "UPDATE silences SET mirrored = json_set(mirrored, ?2, ?3) WHERE id = ?1",
            params![id, path, am],
        ),
        None => conn.execute(
            "UPDATE silences SET mirrored = json_remove(mirrored, ?2) WHERE id = ?1",
            params![id, path],
        ),
    };
    done.map_err(sql("record silence mirror"))?;
    Ok(())
}

/// Adds one delivery attempt to a receiver's record.
pub(crate) fn record_delivery(conn: &rusqlite::Connection, d: &Delivery) -> Result<(), StoreError> {
    let failed = i64::from(d.error.is_some());
    conn.prepare_cached(
        "INSERT INTO receivers (name, sent, failed, dropped, last_ok, last_error, last_error_at)
         VALUES (?1, ?2, ?3, ?4, CASE WHEN ?3 = 0 AND ?2 > 0 THEN ?5 END, ?6, CASE WHEN ?3 = 1 THEN ?5 END)
         ON CONFLICT (name) DO UPDATE SET
             sent = sent + excluded.sent,
             failed = failed + excluded.failed,
             dropped = dropped + excluded.dropped,
             last_ok = coalesce(excluded.last_ok, last_ok),
             last_error = coalesce(excluded.last_error, last_error),
             last_error_at = coalesce(excluded.last_error_at, last_error_at)",
    )
    .map_err(sql("prepare delivery record"))?
    .execute(params![d.receiver, d.sent, failed, d.dropped, d.at, d.error])
    .map_err(sql("record delivery"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(name: &str, op: &str, value: &str) -> Matcher {
        Matcher {
            name: name.into(),
            op: op.into(),
            value: value.into(),
        }
    }

    #[test]
    fn a_silence_is_stored_audited_mirrored_and_lifted() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("db")).unwrap();
        let m = vec![
            matcher("host", "=", "gpu01"),
            matcher("alertname", "=~", "Gpu.*"),
        ];
        let id = store
            .add_silence(&m, 1_000, 7_201_000, "swap GPU 3", "cli:root")
            .unwrap();
        let found = store.silences(1_000).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].matchers, m);
        assert_eq!(found[0].comment, "swap GPU 3");
        let mirror = |store: &mut Store, receiver: &str, am: Option<&str>| {
            let changes = crate::alerts::AlertChanges {
                mirrors: vec![(id, receiver.to_string(), am.map(String::from))],
                ..Default::default()
            };
            store.apply_alerts(&changes).unwrap();
        };
        mirror(&mut store, "am", Some("abc-1"));
        mirror(&mut store, "a.b\"c", Some("x"));
        let mirrored = &store.silences(1_000).unwrap()[0].mirrored;
        assert_eq!(mirrored["am"], "abc-1");
        assert_eq!(mirrored["a.b\"c"], "x");
        mirror(&mut store, "am", None);
        assert!(
            !store.silences(1_000).unwrap()[0]
                .mirrored
                .contains_key("am")
        );
        assert_eq!(
            store.expire_silence(id, 2_000, "web:admin@::1").unwrap(),
            Some(true)
        );
        assert_eq!(
            store.expire_silence(id, 3_000, "cli:root").unwrap(),
            Some(false)
        );
        assert_eq!(store.expire_silence(99, 3_000, "cli:root").unwrap(), None);
        assert!(store.silences(2_000).unwrap().is_empty());
        let audit = store.audit(Some("gpu01"), None, 10).unwrap();
        let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(actions, ["unsilence", "silence"]);
        assert!(
            audit[1].command.contains(r#"alertname=~"Gpu.*""#),
            "{}",
            audit[1].command
        );
        assert_eq!(audit[0].who, "web:admin@::1");
    }

    #[test]
    fn deliveries_add_up_per_receiver() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("db")).unwrap();
        let d = |at, sent, error: Option<&str>| Delivery {
            receiver: "mail".into(),
            at,
            sent,
            dropped: 0,
            error: error.map(String::from),
        };
        let changes = crate::alerts::AlertChanges {
            deliveries: vec![d(1, 2, None), d(2, 0, Some("refused")), d(3, 1, None)],
            ..Default::default()
        };
        store.apply_alerts(&changes).unwrap();
        let r = &store.receivers().unwrap()[0];
        assert_eq!((r.sent, r.failed, r.last_ok), (3, 1, Some(3)));
        assert_eq!(
            (r.last_error.as_deref(), r.last_error_at),
            (Some("refused"), Some(2))
        );
    }
}
