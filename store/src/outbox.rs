//! The remote-write queue: every committed round's samples, appended in the round's own
//! transaction, so a sample is queued for the receivers exactly when it is stored and a
//! crash loses neither or both. Each receiver keeps its place (`outbox_cursors`);
//! rows every receiver has passed, and rows older than the queue's capacity, go.
//!
//! A row holds one write transaction's samples packed as the head log packs them
//! (`head::encode`: series id, time, value), so queuing costs one rowid insert a
//! transaction; labels are looked up by series id when a batch is sent.

use crate::head::{Entry, decode, encode};
use crate::{Store, StoreError, sql};
use rusqlite::{OptionalExtension, params};
use std::collections::BTreeMap;

/// Migration 17: the remote-write queue.
pub(crate) const MIGRATION: &str = "
    CREATE TABLE outbox (
        -- AUTOINCREMENT: ids never go back, even when every row was trimmed away;
        -- a reused id would sit behind the receivers' places and never be sent.
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        queued  INTEGER NOT NULL, -- when the row was committed, ms since the epoch
        samples INTEGER NOT NULL,
        data    BLOB NOT NULL
    );
    -- Each receiver's place: the last row it has taken (sent, or refused for good).
    CREATE TABLE outbox_cursors (
        remote TEXT PRIMARY KEY,
        sent   INTEGER NOT NULL
    );
";

/// Moves a receiver's place forward, never back.
const MOVE_CURSOR: &str = "INSERT INTO outbox_cursors (remote, sent) VALUES (?1, ?2)
     ON CONFLICT (remote) DO UPDATE SET sent = max(sent, excluded.sent)";

/// One queued row.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub queued_ms: i64,
    /// (series id, time ms, value), in write order (each series' in time order).
    pub entries: Vec<Entry>,
}

/// A series as `/metrics` and remote write name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesName {
    pub name: String,
    pub host: String,
    pub labels: BTreeMap<String, String>,
}

/// A series' labels as `/metrics` and remote write give them: `host`, then the probe's
/// own in name order, a probe's own `host` renamed `exported_host` (as Prometheus
/// renames a label its target sets).
pub fn metric_labels<'a>(
    host: &'a str,
    labels: &'a BTreeMap<String, String>,
) -> impl Iterator<Item = (&'a str, &'a str)> {
    std::iter::once(("host", host)).chain(labels.iter().map(|(k, v)| {
        let k = if k == "host" {
            "exported_host"
        } else {
            k.as_str()
        };
        (k, v.as_str())
    }))
}

/// Appends a label value as `/metrics` writes it: `\\`, `"` and newlines escaped
/// (exposition format 0.0.4). The poller's own health series use it too.
pub fn escape_label_value(out: &mut String, v: &str) {
    if !v.contains(['\\', '"', '\n']) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// What a receiver has not taken yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub rows: i64,
    pub samples: i64,
    /// When the oldest of them was queued.
    pub oldest_ms: Option<i64>,
    /// The newest row's id (0 when the queue is empty).
    pub last_id: i64,
}

/// What a trim removed that some receiver had not taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Receiver → samples dropped unsent because they outlived the capacity.
    pub dropped: BTreeMap<String, i64>,
}

/// Appends one transaction's samples (nothing when there are none).
pub(crate) fn append(
    tx: &rusqlite::Transaction<'_>,
    entries: &[Entry],
    now_ms: i64,
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    tx.prepare_cached("INSERT INTO outbox (queued, samples, data) VALUES (?1, ?2, ?3)")
        .map_err(sql("prepare outbox insert"))?
        .execute(params![now_ms, entries.len() as i64, encode(entries)])
        .map_err(sql("queue samples for remote write"))?;
    Ok(())
}

impl Store {
    /// Queue every committed sample for remote write from now on (`dcmon serve` with
    /// `[[remote_write]]`).
    pub fn fill_outbox(&mut self, on: bool) {
        self.outbox = on.then(Vec::new);
    }

    /// Where `remote` stands: the last row it took (0: none yet).
    pub fn outbox_cursor(&self, remote: &str) -> Result<i64, StoreError> {
        self.conn
            .prepare_cached("SELECT sent FROM outbox_cursors WHERE remote = ?1")
            .map_err(sql("prepare outbox cursor"))?
            .query_row([remote], |r| r.get(0))
            .optional()
            .map_err(sql("read outbox cursor"))
            .map(Option::unwrap_or_default)
    }

    /// Rows after `after`, oldest first, until they hold `max_samples` (at least one row
    /// when there is one: a row is never split).
    pub fn outbox_after(
        &self,
        after: i64,
        max_samples: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, queued, data FROM outbox WHERE id > ?1 ORDER BY id")
            .map_err(sql("prepare outbox read"))?;
        let mut rows = stmt.query([after]).map_err(sql("read outbox"))?;
        let mut out = Vec::new();
        let mut samples = 0;
        while samples < max_samples.max(1)
            && let Some(row) = rows.next().map_err(sql("read outbox row"))?
        {
            let id: i64 = row.get(0).map_err(sql("read outbox id"))?;
            let data: Vec<u8> = row.get(2).map_err(sql("read outbox data"))?;
            let entries = decode(&data).map_err(|why| StoreError::Corrupt {
                what: format!("outbox row {id}"),
                why,
            })?;
            samples += entries.len();
            out.push(OutboxRow {
                id,
                queued_ms: row.get(1).map_err(sql("read outbox time"))?,
                entries,
            });
        }
        Ok(out)
    }

    /// What is queued after `after`.
    pub fn outbox_backlog(&self, after: i64) -> Result<Backlog, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT count(*), coalesce(sum(samples), 0), min(queued),
                        coalesce((SELECT max(id) FROM outbox), 0)
                 FROM outbox WHERE id > ?1",
            )
            .map_err(sql("prepare outbox backlog"))?
            .query_row([after], |r| {
                Ok(Backlog {
                    rows: r.get(0)?,
                    samples: r.get(1)?,
                    oldest_ms: r.get(2)?,
                    last_id: r.get(3)?,
                })
            })
            .map_err(sql("read outbox backlog"))
    }

    /// The names of series `ids` (unknown ids are left out).
    pub fn series_names(&self, ids: &[i64]) -> Result<Vec<(i64, SeriesName)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT host, name, labels FROM series WHERE id = ?1")
            .map_err(sql("prepare series name"))?;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let found = stmt
                .query_row([id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .optional()
                .map_err(sql("read series name"))?;
            if let Some((host, name, labels)) = found {
                let labels = serde_json::from_str(&labels).map_err(|e| StoreError::Corrupt {
                    what: format!("labels of series {id}"),
                    why: e.to_string(),
                })?;
                out.push((id, SeriesName { name, host, labels }));
            }
        }
        Ok(out)
    }

    /// Moves `remote`'s place to `sent` (never back).
    pub fn outbox_taken(&mut self, remote: &str, sent: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(MOVE_CURSOR)
            .map_err(sql("prepare outbox cursor update"))?
            .execute(params![remote, sent])
            .map_err(sql("move outbox cursor"))?;
        Ok(())
    }

    /// Deletes rows every receiver in `remotes` has taken, and rows queued before
    /// `oldest_ms` (counted per receiver that had not taken them); forgets the places
    /// of receivers no longer configured. With no receivers, the queue is emptied.
    pub fn outbox_trim(
        &mut self,
        remotes: &[String],
        oldest_ms: i64,
    ) -> Result<Trimmed, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql("begin outbox trim"))?;
        let mut cursors = BTreeMap::new();
        {
            let mut read = tx
                .prepare_cached("SELECT remote, sent FROM outbox_cursors")
                .map_err(sql("prepare outbox cursors"))?;
            let rows = read
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(sql("read outbox cursors"))?;
            for row in rows {
                let (remote, sent) = row.map_err(sql("read outbox cursor"))?;
                if remotes.contains(&remote) {
                    cursors.insert(remote, sent);
                } else {
                    tx.execute("DELETE FROM outbox_cursors WHERE remote = ?1", [&remote])
                        .map_err(sql("forget outbox cursor"))?;
                }
            }
        }
        let mut trimmed = Trimmed::default();
        // The newest row too old to keep.
        let expired: i64 = tx
            .query_row(
                "SELECT coalesce(max(id), 0) FROM outbox WHERE queued < ?1",
                [oldest_ms],
                |r| r.get(0),
            )
            .map_err(sql("find expired outbox rows"))?;
        for remote in remotes {
            let sent = cursors.get(remote).copied().unwrap_or(0);
            if expired > sent {
                let lost: i64 = tx
                    .query_row(
                        "SELECT coalesce(sum(samples), 0) FROM outbox WHERE id > ?1 AND id <= ?2",
                        [sent, expired],
                        |r| r.get(0),
                    )
                    .map_err(sql("count expired outbox samples"))?;
                trimmed.dropped.insert(remote.clone(), lost);
                tx.execute(MOVE_CURSOR, params![remote, expired])
                    .map_err(sql("move outbox cursor past expired rows"))?;
                cursors.insert(remote.clone(), expired);
            }
        }
        let taken_by_all = if remotes.is_empty() {
            i64::MAX
        } else {
            remotes
                .iter()
                .map(|r| cursors.get(r).copied().unwrap_or(0))
                .min()
                .unwrap_or(0)
        };
        tx.execute(
            "DELETE FROM outbox WHERE id <= ?1",
            [taken_by_all.max(expired)],
        )
        .map_err(sql("trim outbox"))?;
        tx.commit().map_err(sql("commit outbox trim"))?;
        Ok(trimmed)
    }
}

#[cfg(test)]
mod tests {
    use crate::{HostRound, ProbeRun, Store};
    use dcmon_probes::{Labels, ProbeOutput};

    fn round(host: &str, ts: i64, value: f64) -> HostRound {
        let mut out = ProbeOutput::default();
        out.gauge("t", Labels::new([("cpu", "0")]), value, "");
        HostRound::new(host, vec![ProbeRun::ok("os", ts, out)])
    }

    /// Samples are queued with their commit, named as `/metrics` names them, and each
    /// receiver drains the queue at its own pace; a row goes once both have it.
    #[test]
    fn committed_samples_are_queued_until_every_receiver_took_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        let mut store = Store::open(&path).unwrap();
        store.write_round(&round("a", 1_000, 1.0)).unwrap();
        assert_eq!(store.outbox_backlog(0).unwrap().rows, 0, "off by default");
        store.fill_outbox(true);
        store.write_round(&round("a", 2_000, 2.0)).unwrap();
        store.write_round(&round("b", 2_000, 3.0)).unwrap();
        let backlog = store.outbox_backlog(0).unwrap();
        // t and the run's three series, per round.
        assert_eq!((backlog.rows, backlog.samples), (2, 8));
        let rows = store.outbox_after(0, 1).unwrap();
        assert_eq!(rows.len(), 1, "a row is never split, and one is enough");
        let t = rows[0]
            .entries
            .iter()
            .find(|e| e.2 == 2.0 && e.1 == 2_000)
            .unwrap();
        let names = store.series_names(&[t.0, 999_999]).unwrap();
        assert_eq!(names.len(), 1);
        assert_eq!(names[0].1.name, "t");
        assert_eq!(names[0].1.host, "a");
        assert_eq!(names[0].1.labels["cpu"], "0");

        let remotes = vec!["vm".to_string(), "prom".to_string()];
        store.outbox_taken("vm", backlog.last_id).unwrap();
        store.outbox_taken("vm", 1).unwrap(); // never back
        assert_eq!(store.outbox_cursor("vm").unwrap(), backlog.last_id);
        store.outbox_trim(&remotes, 0).unwrap();
        assert_eq!(
            store.outbox_backlog(0).unwrap().rows,
            2,
            "prom has taken none"
        );
        store.outbox_taken("prom", rows[0].id).unwrap();
        store.outbox_trim(&remotes, 0).unwrap();
        assert_eq!(store.outbox_backlog(0).unwrap().rows, 1);
        // Past capacity: prom's unsent samples are dropped and counted.
        let trimmed = store.outbox_trim(&remotes, i64::MAX).unwrap();
        assert_eq!(trimmed.dropped.get("prom"), Some(&4));
        assert_eq!(trimmed.dropped.get("vm"), None);
        assert_eq!(store.outbox_backlog(0).unwrap().rows, 0);
        // A receiver taken out of the inventory loses its place.
        store.outbox_trim(&["vm".to_string()], 0).unwrap();
        assert_eq!(store.outbox_cursor("prom").unwrap(), 0);
        // Once every row is gone, new rows still come after every receiver's place.
        store.write_round(&round("a", 3_000, 4.0)).unwrap();
        let after = store
            .outbox_backlog(store.outbox_cursor("vm").unwrap())
            .unwrap();
        assert_eq!((after.rows, after.samples), (1, 4), "ids went back");
    }
}
