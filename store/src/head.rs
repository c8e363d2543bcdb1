//! The head: each series' newest samples, in memory, made durable by `head_log`.
//!
//! A sample newer than everything its series has in chunks and rows goes to the head:
//! the writer appends one `head_log` row per transaction (its samples packed in one
//! blob, a rowid insert with no index to update) instead of one `samples` row per
//! sample, the B-tree insert that held ingest near 300,000 samples a second. So a
//! series' points are, oldest first: its chunks, its rows, its head (`points.rs`), and
//! the sealer (`sealing.rs`) moves the head's old samples into chunks.
//!
//! Every `Store` of one file in one process shares one `Head` (`shared`). A process
//! reading a file another process writes brings its head up to date from `head_log`
//! when a read starts (`sync`): rows appended since are applied; when the epoch mark
//! moved (samples left the head for chunks, or were swept) the head is read again.
//!
//! Consistency with a read's snapshot: a writer of this process holds the head's write
//! lock while it commits, so a read that sees a commit sees the head after it. Samples
//! added after a read's snapshot are only fresher; samples taken out of the head
//! (sealing, retention) bump the epoch, and a read whose snapshot holds an older epoch
//! gets `StoreError::HeadMoved` and is run again (`Store::snapshot`).

use crate::rate::Point;
use crate::{FastMap, StoreError, sql};
use integer_encoding::VarInt;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};

/// Migration 16: the head's log.
pub(crate) const MIGRATION: &str = "
    -- The head's samples, one row per write transaction (head.rs): appended, never
    -- changed, deleted once every sample in it is sealed or carried to a newer row.
    CREATE TABLE head_log (
        id     INTEGER PRIMARY KEY,
        max_ts INTEGER NOT NULL, -- the newest sample's time, ms
        data   BLOB NOT NULL
    );
";

/// The mark counting the transactions that took samples out of the head.
pub(crate) const EPOCH_MARK: &str = "head_epoch";

/// The first two bytes of every log blob.
pub(crate) const MAGIC: [u8; 2] = [b'H', 1];

/// One sample of the log: series id, time, value.
pub(crate) type Entry = (i64, i64, f64);

/// Where a head stands against the database: the epoch mark and the last log row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Synced {
    pub epoch: i64,
    pub log_id: i64,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// `None` until loaded, and after anything left it unsure.
    synced: Option<Synced>,
    /// Series id → its head points, in time order, one per time.
    series: FastMap<i64, Vec<Point>>,
}

/// One process's head of one database file.
#[derive(Debug, Default)]
pub(crate) struct Head {
    state: RwLock<State>,
}

/// A writer's samples not yet committed: its own reads see them, nobody else's.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// In write order: the log row's content.
    pub log: Vec<Entry>,
    /// Series id → its points, made at the first read of the transaction that needs
    /// it and kept up to date from then on: most transactions read none, and a map
    /// entry a series was most of the writer's allocations.
    by_series: std::cell::RefCell<Option<FastMap<i64, Vec<Point>>>>,
}

impl Pending {
    pub(crate) fn put(&mut self, id: i64, ts: i64, value: f64) {
        self.log.push((id, ts, value));
        if let Some(index) = self.by_series.get_mut() {
            insert(index.entry(id).or_default(), ts, value);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.log.clear();
        *self.by_series.get_mut() = None;
    }

    /// Calls `f` with series `id`'s uncommitted points, if it has any.
    pub(crate) fn with_series<T>(&self, id: i64, f: impl FnOnce(&[Point]) -> T) -> Option<T> {
        if self.log.is_empty() {
            return None;
        }
        let mut index = self.by_series.borrow_mut();
        let index = index.get_or_insert_with(|| {
            let mut by_series: FastMap<i64, Vec<Point>> = FastMap::default();
            for &(id, ts, v) in &self.log {
                insert(by_series.entry(id).or_default(), ts, v);
            }
            by_series
        });
        index.get(&id).map(|points| f(points))
    }
}

/// Puts `(ts, value)` into time-ordered `points`, replacing a point at the same time
/// (the last write wins, as `INSERT OR REPLACE` did).
pub(crate) fn insert(points: &mut Vec<Point>, ts: i64, value: f64) {
    match points.last() {
        Some(&(last, _)) if last < ts => points.push((ts, value)),
        None => points.push((ts, value)),
        _ => match points.binary_search_by_key(&ts, |p| p.0) {
            Ok(i) => points[i].1 = value,
            Err(i) => points.insert(i, (ts, value)),
        },
    }
}

/// Packs entries into one log blob: per sample the series id and the time as
/// zigzag varint deltas from the sample before, then the value's 8 bytes.
pub(crate) fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + entries.len() * 12);
    out.extend_from_slice(&MAGIC);
    let (mut id0, mut ts0) = (0i64, 0i64);
    let mut buf = [0u8; 10];
    for &(id, ts, value) in entries {
        let n = id.wrapping_sub(id0).encode_var(&mut buf);
        out.extend_from_slice(&buf[..n]);
        let n = ts.wrapping_sub(ts0).encode_var(&mut buf);
        out.extend_from_slice(&buf[..n]);
        out.extend_from_slice(&value.to_bits().to_le_bytes());
        (id0, ts0) = (id, ts);
    }
    out
}

/// The entries of a log blob; a clear error for bytes that are not one.
pub(crate) fn decode(data: &[u8]) -> Result<Vec<Entry>, String> {
    let rest = data
        .strip_prefix(&MAGIC)
        .ok_or_else(|| "not a head log row (wrong first bytes)".to_string())?;
    let mut out = Vec::with_capacity(rest.len() / 11);
    let (mut id, mut ts) = (0i64, 0i64);
    let mut at = 0;
    while at < rest.len() {
        let (d_id, n) = i64::decode_var(&rest[at..])
            .ok_or_else(|| format!("sample {}: cut short in its series id", out.len()))?;
        at += n;
        let (d_ts, n) = i64::decode_var(&rest[at..])
            .ok_or_else(|| format!("sample {}: cut short in its time", out.len()))?;
        at += n;
        let bits: [u8; 8] = rest
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("sample {}: cut short in its value", out.len()))?;
        at += 8;
        (id, ts) = (id.wrapping_add(d_id), ts.wrapping_add(d_ts));
        out.push((id, ts, f64::from_bits(u64::from_le_bytes(bits))));
    }
    Ok(out)
}

/// Where the database stands, as `conn`'s snapshot sees it.
pub(crate) fn position(conn: &Connection) -> Result<Synced, StoreError> {
    conn.prepare_cached(
        "SELECT coalesce((SELECT value FROM marks WHERE key = ?1), 0),
                coalesce((SELECT max(id) FROM head_log), 0)",
    )
    .map_err(sql("prepare head position"))?
    .query_row([EPOCH_MARK], |r| {
        Ok(Synced {
            epoch: r.get(0)?,
            log_id: r.get(1)?,
        })
    })
    .map_err(sql("read head position"))
}

/// Inside a writing transaction: the epoch moves on (samples leave the head).
pub(crate) fn bump_epoch(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO marks (key, value) VALUES (?1, 1)
         ON CONFLICT (key) DO UPDATE SET value = value + 1 RETURNING value",
    )
    .map_err(sql("prepare head epoch"))?
    .query_row([EPOCH_MARK], |r| r.get(0))
    .map_err(sql("move head epoch"))
}

/// Inside a writing transaction: appends one log row; returns its id.
pub(crate) fn append(conn: &Connection, entries: &[Entry]) -> Result<Option<i64>, StoreError> {
    let Some(max_ts) = entries.iter().map(|e| e.1).max() else {
        return Ok(None);
    };
    conn.prepare_cached("INSERT INTO head_log (max_ts, data) VALUES (?1, ?2)")
        .map_err(sql("prepare head log append"))?
        .execute(params![max_ts, encode(entries)])
        .map_err(sql("append head log"))?;
    Ok(Some(conn.last_insert_rowid()))
}

/// Calls `each` with every log row's id and bytes in `(after, upto]`, in order.
fn each_blob(
    conn: &Connection,
    after: i64,
    upto: i64,
    mut each: impl FnMut(i64, &[u8]),
) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT id, data FROM head_log WHERE id > ?1 AND id <= ?2 ORDER BY id")
        .map_err(sql("prepare head log read"))?;
    let mut rows = stmt
        .query(params![after, upto])
        .map_err(sql("read head log"))?;
    while let Some(r) = rows.next().map_err(sql("read head log row"))? {
        let id: i64 = r.get(0).map_err(sql("read head log id"))?;
        let data = r
            .get_ref(1)
            .and_then(|v| v.as_blob().map_err(Into::into))
            .map_err(sql("read head log data"))?;
        each(id, data);
    }
    Ok(())
}

/// Calls `each` with every log row's id and entries in `(after, upto]`, in order. A row
/// that does not decode is left out: one damaged row must not stop every read of the
/// file (`dcmon db check` names it); its samples are lost to reads either way.
fn each_row(
    conn: &Connection,
    after: i64,
    upto: i64,
    mut each: impl FnMut(i64, Vec<Entry>),
) -> Result<(), StoreError> {
    each_blob(conn, after, upto, |id, data| {
        if let Ok(entries) = decode(data) {
            each(id, entries);
        }
    })
}

/// Every log row's problem, for `dcmon db check`.
pub(crate) fn check(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    each_blob(conn, i64::MIN, i64::MAX, |id, data| {
        if let Err(e) = decode(data) {
            problems.push(format!("head log row {id}: {e}"));
        }
    })?;
    Ok(problems)
}

/// The time up to which series `id` has chunks or rows: head points at or before it
/// were sealed (or moved back into rows) and are left out when the log is read again.
fn persisted_end(conn: &Connection, id: i64) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached(
        "SELECT max(coalesce(c, r), coalesce(r, c)) FROM
           (SELECT (SELECT max(end_ts) FROM chunks WHERE series_id = ?1) AS c,
                   (SELECT max(ts) FROM samples WHERE series_id = ?1) AS r)",
    )
    .map_err(sql("prepare persisted end"))?
    .query_row([id], |r| r.get(0))
    .map_err(sql("read persisted end"))
}

impl Head {
    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Brings the head up to the database as `conn`'s snapshot sees it; returns the
    /// epoch that snapshot holds. `HeadMoved` when the head is past that snapshot.
    pub(crate) fn sync(&self, conn: &Connection) -> Result<i64, StoreError> {
        let at = position(conn)?;
        match self.read_state().synced {
            Some(s) if s.epoch == at.epoch && s.log_id >= at.log_id => return Ok(at.epoch),
            Some(s) if s.epoch > at.epoch => return Err(StoreError::HeadMoved),
            _ => {}
        }
        let mut state = self.write_state();
        match state.synced {
            Some(s) if s.epoch > at.epoch => return Err(StoreError::HeadMoved),
            Some(s) if s.epoch == at.epoch && s.log_id >= at.log_id => {}
            Some(s) if s.epoch == at.epoch => {
                // Appended since: valid head samples when written, and no sealing since.
                let State { series, .. } = &mut *state;
                each_row(conn, s.log_id, at.log_id, |_, entries| {
                    for (id, ts, v) in entries {
                        insert(series.entry(id).or_default(), ts, v);
                    }
                })?;
                state.synced = Some(at);
            }
            _ => {
                state.synced = None;
                let mut series: FastMap<i64, Vec<Point>> = FastMap::default();
                each_row(conn, i64::MIN, at.log_id, |_, entries| {
                    for (id, ts, v) in entries {
                        insert(series.entry(id).or_default(), ts, v);
                    }
                })?;
                // Rows stay in the log until all their samples are sealed: leave out
                // what chunks or rows hold now.
                for (id, points) in series.iter_mut() {
                    if let Some(end) = persisted_end(conn, *id)? {
                        points.retain(|p| p.0 > end);
                    }
                }
                series.retain(|_, p| !p.is_empty());
                state.series = series;
                state.synced = Some(at);
            }
        }
        Ok(at.epoch)
    }

    /// Runs `f` on the head as a read with snapshot epoch `epoch` may see it (`None`:
    /// the writer, inside its own transaction).
    pub(crate) fn read<T>(
        &self,
        epoch: Option<i64>,
        f: impl FnOnce(&FastMap<i64, Vec<Point>>) -> T,
    ) -> Result<T, StoreError> {
        let state = self.read_state();
        if let Some(e) = epoch
            && state.synced.is_none_or(|s| s.epoch != e)
        {
            return Err(StoreError::HeadMoved);
        }
        Ok(f(&state.series))
    }
}

impl State {
    /// After a writer's commit that appended log row `log_id` (if any), synced at
    /// `begun` when its transaction began: its samples join the head.
    pub(crate) fn committed(&mut self, begun: Synced, log_id: Option<i64>, pending: &Pending) {
        // In write order, so a later write at the same time wins; one map lookup for
        // each run of one series' samples.
        for run in pending.log.chunk_by(|a, b| a.0 == b.0) {
            let points = self.series.entry(run[0].0).or_default();
            for &(_, ts, v) in run {
                insert(points, ts, v);
            }
        }
        self.synced = match (self.synced, log_id) {
            (Some(s), Some(id)) if s == begun => Some(Synced {
                epoch: s.epoch,
                log_id: id,
            }),
            (Some(s), None) if s == begun => Some(s),
            // Someone else moved it meanwhile: read it again when next used.
            _ => None,
        };
    }

    /// After a commit that took samples out (sealing, retention) and moved the epoch to
    /// `epoch`, synced at `begun`: drops each listed series' points before its time.
    pub(crate) fn removed(&mut self, begun: Synced, epoch: i64, before: &[(i64, i64)]) {
        for &(id, t) in before {
            if let Some(points) = self.series.get_mut(&id) {
                points.retain(|p| p.0 >= t);
                if points.is_empty() {
                    self.series.remove(&id);
                }
            }
        }
        self.synced = match self.synced {
            Some(s) if s == begun => Some(Synced {
                epoch,
                log_id: s.log_id,
            }),
            _ => None,
        };
    }

    /// After this process appended log row `log_id` in a transaction that expected the
    /// head at `expected` (a log clean-up's carried row: samples the head has).
    pub(crate) fn logged(&mut self, expected: Synced, log_id: i64) {
        self.synced = match self.synced {
            Some(s) if s == expected => Some(Synced {
                epoch: s.epoch,
                log_id,
            }),
            _ => None,
        };
    }

    /// Unsure of the head (a transaction that changed it rolled back): the next read
    /// loads it again from the log.
    pub(crate) fn forget(&mut self) {
        self.synced = None;
    }

    /// Every head point at or before `upto`, of every series (what a log clean-up
    /// carries into a new row).
    pub(crate) fn up_to(&self, upto: i64) -> Vec<Entry> {
        let mut out = Vec::new();
        for (id, points) in &self.series {
            for &(ts, v) in points.iter().take_while(|p| p.0 <= upto) {
                out.push((*id, ts, v));
            }
        }
        out.sort_by_key(|e| (e.0, e.1));
        out
    }
}

/// How many points a head holds, and its oldest and newest time.
pub(crate) fn extent(series: &FastMap<i64, Vec<Point>>) -> (i64, Option<i64>, Option<i64>) {
    {
        let mut count = 0i64;
        let (mut oldest, mut newest) = (None::<i64>, None::<i64>);
        for points in series.values() {
            count = count.saturating_add(points.len() as i64);
            if let (Some(first), Some(last)) = (points.first(), points.last()) {
                oldest = Some(oldest.map_or(first.0, |o| o.min(first.0)));
                newest = Some(newest.map_or(last.0, |n| n.max(last.0)));
            }
        }
        (count, oldest, newest)
    }
}

/// Commits `tx`, which took each listed series' points before its time out of the
/// head (`epoch`: the epoch it moved to, if it moved), under the head's lock so a read
/// sees both or neither. `before_commit` runs inside `tx` with the head already changed,
/// and is told where the head then stands. A failed commit leaves the head to be read
/// again from the log.
pub(crate) fn commit_taking_out(
    head: &Head,
    tx: rusqlite::Transaction<'_>,
    begun: Synced,
    epoch: Option<i64>,
    removed: &[(i64, i64)],
    before_commit: impl FnOnce(&Connection, &mut State, Synced) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut state = head.write_state();
    if let Some(epoch) = epoch {
        state.removed(begun, epoch, removed);
    }
    let now = Synced {
        epoch: epoch.unwrap_or(begun.epoch),
        log_id: begun.log_id,
    };
    let committed = before_commit(&tx, &mut state, now)
        .and_then(|()| tx.commit().map_err(sql("commit a change of the head")));
    if committed.is_err() {
        state.forget();
    }
    committed
}

/// The head every `Store` of `path` in this process shares (a private one for an
/// in-memory database or a path that cannot be resolved).
pub(crate) fn shared(path: &Path) -> Arc<Head> {
    static HEADS: Mutex<Option<HashMap<PathBuf, Weak<Head>>>> = Mutex::new(None);
    let Ok(key) = std::fs::canonicalize(path) else {
        return Arc::default();
    };
    let mut heads = HEADS.lock().unwrap_or_else(|e| e.into_inner());
    let heads = heads.get_or_insert_with(HashMap::new);
    heads.retain(|_, h| h.strong_count() > 0);
    if let Some(head) = heads.get(&key).and_then(Weak::upgrade) {
        return head;
    }
    let head = Arc::<Head>::default();
    heads.insert(key, Arc::downgrade(&head));
    head
}

/// Inside a writing transaction, after a complete sealing pass up to `upto`: deletes
/// the log rows whose samples are all at or before `upto`, writing first what the head
/// still holds of that time (each series' last two samples are never sealed) into a
/// new row. Returns that row's id, if it wrote one.
pub(crate) fn clean_log(
    conn: &Connection,
    state: &State,
    upto: i64,
) -> Result<Option<i64>, StoreError> {
    let old: Option<i64> = conn
        .prepare_cached("SELECT max(id) FROM head_log WHERE max_ts <= ?1")
        .map_err(sql("prepare head log clean-up"))?
        .query_row([upto], |r| r.get(0))
        .optional()
        .map_err(sql("read head log clean-up"))?
        .flatten();
    let Some(old) = old else {
        return Ok(None);
    };
    let carried = append(conn, &state.up_to(upto))?;
    conn.prepare_cached("DELETE FROM head_log WHERE max_ts <= ?1 AND id <= ?2")
        .map_err(sql("prepare head log delete"))?
        .execute(params![upto, old])
        .map_err(sql("delete head log rows"))?;
    Ok(carried)
}

#[cfg(test)]
impl crate::Store {
    /// Makes this database look like one of the release before the head: every head
    /// sample becomes a row of `samples`, the log is emptied (the upgrade tests).
    pub(crate) fn head_into_rows(&mut self) {
        let head = self.head.clone();
        let tx = self.conn.transaction().unwrap();
        head.sync(&tx).unwrap();
        let mut state = head.write_state();
        for (id, points) in &state.series {
            for (ts, v) in points {
                tx.execute(
                    "INSERT OR REPLACE INTO samples (series_id, ts, value) VALUES (?1, ?2, ?3)",
                    params![id, ts, v],
                )
                .unwrap();
            }
        }
        tx.execute("DELETE FROM head_log", []).unwrap();
        bump_epoch(&tx).unwrap();
        tx.commit().unwrap();
        state.series.clear();
        state.synced = None;
        drop(state);
        self.ends.clear();
    }

    /// This `Store` alone with its head, as a `Store` of another process has.
    pub(crate) fn with_own_head(mut self) -> Self {
        self.head = Arc::default();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_rows_come_back_to_the_bit() {
        let entries = vec![
            (7, 1_000, 23.75),
            (3, -5, f64::NAN),
            (i64::MAX, i64::MIN, f64::NEG_INFINITY),
            (i64::MIN, i64::MAX, -0.0),
            (7, 1_000, f64::from_bits(0x7ff8_0000_dead_beef)),
        ];
        let back = decode(&encode(&entries)).unwrap();
        assert_eq!(back.len(), entries.len());
        for (a, b) in entries.iter().zip(&back) {
            assert_eq!((a.0, a.1, a.2.to_bits()), (b.0, b.1, b.2.to_bits()));
        }
        assert_eq!(decode(&encode(&[])).unwrap(), vec![]);
    }

    #[test]
    fn a_damaged_log_row_is_an_error_naming_the_sample() {
        let data = encode(&[(1, 2, 3.0), (1, 3, 4.0)]);
        let cut = &data[..data.len() - 3];
        assert_eq!(decode(cut).unwrap_err(), "sample 1: cut short in its value");
        assert!(decode(b"xx").unwrap_err().contains("wrong first bytes"));
    }

    #[test]
    fn the_last_write_at_a_time_wins() {
        let mut points = Vec::new();
        for (ts, v) in [(5, 1.0), (3, 2.0), (9, 3.0), (5, 4.0), (1, 5.0)] {
            insert(&mut points, ts, v);
        }
        assert_eq!(points, [(1, 5.0), (3, 2.0), (5, 4.0), (9, 3.0)]);
    }
}
