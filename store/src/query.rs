//! Reads for the CLI: series with their latest value.

use crate::{Store, StoreError, sql};
use rusqlite::params;
use serde::Serialize;
use std::collections::BTreeMap;

/// Which series to list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct SeriesFilter {
    pub host: Option<String>,
    /// Glob on the series name (`node_cpu*`), as SQLite's GLOB: case-sensitive.
    pub name: Option<String>,
}

/// A series and its most recent sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesLatest {
    pub host: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub kind: String,
    pub unit: String,
    pub value: f64,
    /// ms since the epoch
    pub ts: i64,
}

impl Store {
    pub fn series_latest(&self, filter: &SeriesFilter) -> Result<Vec<SeriesLatest>, StoreError> {
        // With a host, a statement of its own: `?1 IS NULL OR` would hide the
        // (host, name) index and read every host's series for one host's page.
        let text = if filter.host.is_some() {
            "SELECT s.id, s.host, s.name, s.labels, s.kind, s.unit FROM series s
             WHERE s.host = ?1 AND (?2 IS NULL OR s.name GLOB ?2)
             ORDER BY s.host, s.name, s.labels"
        } else {
            "SELECT s.id, s.host, s.name, s.labels, s.kind, s.unit FROM series s
             WHERE ?1 IS NULL AND (?2 IS NULL OR s.name GLOB ?2)
             ORDER BY s.host, s.name, s.labels"
        };
        let mut stmt = self
            .conn
            .prepare_cached(text)
            .map_err(sql("prepare series listing"))?;
        let rows = stmt
            .query_map(params![filter.host, filter.name], |r| {
                let labels: String = r.get(3)?;
                Ok((
                    r.get::<_, i64>(0)?,
                    SeriesLatest {
                        host: r.get(1)?,
                        name: r.get(2)?,
                        // Labels were written by write_round as a JSON object of strings.
                        labels: serde_json::from_str(&labels).unwrap_or_default(),
                        kind: r.get(4)?,
                        unit: r.get(5)?,
                        ts: 0,
                        value: 0.0,
                    },
                ))
            })
            .map_err(sql("list series"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql("read series row"))?;
        let src = self.source()?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, mut series) in rows {
            // The latest sample is never sealed: in the head or the rows.
            // A series whose samples were all swept has none, and is left out.
            if let [Some((ts, value)), _] = src.last_two(id)? {
                series.ts = ts;
                series.value = value;
                out.push(series);
            }
        }
        Ok(out)
    }
}

/// A stored log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredLog {
    pub host: String,
    pub source: String,
    pub ts: i64,
    pub priority: u8,
    pub unit: Option<String>,
    pub message: String,
}

impl Store {
    /// Log lines of a host, oldest first; `search` is an FTS5 query over the messages.
    pub fn logs(
        &self,
        host: &str,
        source: Option<&str>,
        search: Option<&str>,
    ) -> Result<Vec<StoredLog>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT host, source, ts, priority, unit, message FROM logs
                 WHERE host = ?1 AND (?2 IS NULL OR source = ?2)
                   AND (?3 IS NULL OR id IN (SELECT rowid FROM logs_fts WHERE logs_fts MATCH ?3))
                 ORDER BY ts, id",
            )
            .map_err(sql("prepare log listing"))?;
        let rows = stmt
            .query_map(params![host, source, search], stored_log)
            .map_err(sql("list logs"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("read log row"))
    }
}

impl Store {
    /// Saved log cursors: host → source → cursor, for the probes' next reads.
    pub fn log_cursors(&self) -> Result<BTreeMap<String, BTreeMap<String, String>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT host, source, cursor FROM log_cursors")
            .map_err(sql("prepare cursor listing"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(sql("list cursors"))?;
        let mut cursors: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for row in rows {
            let (host, source, cursor) = row.map_err(sql("read cursor row"))?;
            cursors.entry(host).or_default().insert(source, cursor);
        }
        Ok(cursors)
    }
}

impl Store {
    /// A host's facts (OS, kernel, GPUs, drives, ...), by key.
    pub fn facts(&self, host: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key, value FROM facts WHERE host = ?1 ORDER BY key")
            .map_err(sql("prepare facts"))?;
        let rows = stmt
            .query_map([host], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql("read facts"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("read fact row"))
    }

    /// Whether anything at all is stored for this host.
    pub fn knows_host(&self, host: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM series WHERE host = ?1) OR EXISTS (SELECT 1 FROM probe_runs WHERE host = ?1)",
                [host],
                |r| r.get(0),
            )
            .map_err(sql("look up host"))
    }
}

impl Store {
    /// A host's log lines, newest first, a page at a time. `words` are searched as one
    /// phrase (quoted for FTS5, so nothing a user types is query syntax).
    pub fn recent_logs(
        &self,
        host: &str,
        source: Option<&str>,
        words: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<StoredLog>, StoreError> {
        // Control characters (a NUL ends FTS5's string) are word breaks, nothing more.
        // The phrase is searched in the message column and the host in its own.
        let quoted = |text: &str| {
            format!(
                "\"{}\"",
                text.replace(|c: char| c.is_control(), " ")
                    .replace('"', "\"\"")
            )
        };
        let phrase = words
            .filter(|w| w.chars().any(|c| !c.is_control() && !c.is_whitespace()))
            .map(|w| format!("message : {} AND host : {}", quoted(w), quoted(host)));
        // Two statements, so each walks an index newest first and stops after the page:
        // `(?2 IS NULL OR source = ?2)` would make SQLite sort the host's whole history.
        let sql_text = if source.is_some() {
            "SELECT host, source, ts, priority, unit, message FROM logs INDEXED BY logs_by_host
             WHERE host = ?1 AND source = ?2
               AND (?3 IS NULL OR id IN (SELECT rowid FROM logs_fts WHERE logs_fts MATCH ?3))
             ORDER BY ts DESC, id DESC LIMIT ?4 OFFSET ?5"
        } else {
            "SELECT host, source, ts, priority, unit, message FROM logs INDEXED BY logs_by_host_time
             WHERE host = ?1 AND ?2 IS NULL
               AND (?3 IS NULL OR id IN (SELECT rowid FROM logs_fts WHERE logs_fts MATCH ?3))
             ORDER BY ts DESC, id DESC LIMIT ?4 OFFSET ?5"
        };
        // A search walks the host's newest lines first and checks each in the index:
        // a common word fills the page at once. Only when the newest lines hold too
        // few matches (a rare word: few matches in all) does it take the host's
        // matches from the index and sort them.
        if phrase.is_some() {
            let recent = if source.is_some() {
                "SELECT host, source, ts, priority, unit, message FROM (
                     SELECT * FROM logs INDEXED BY logs_by_host WHERE host = ?1 AND source = ?2
                     ORDER BY ts DESC, id DESC LIMIT ?6) l
                 WHERE EXISTS (SELECT 1 FROM logs_fts WHERE logs_fts MATCH ?3 AND rowid = l.id)
                 ORDER BY ts DESC, id DESC LIMIT ?4 OFFSET ?5"
            } else {
                "SELECT host, source, ts, priority, unit, message FROM (
                     SELECT * FROM logs INDEXED BY logs_by_host_time WHERE host = ?1 AND ?2 IS NULL
                     ORDER BY ts DESC, id DESC LIMIT ?6) l
                 WHERE EXISTS (SELECT 1 FROM logs_fts WHERE logs_fts MATCH ?3 AND rowid = l.id)
                 ORDER BY ts DESC, id DESC LIMIT ?4 OFFSET ?5"
            };
            let found = self
                .conn
                .prepare_cached(recent)
                .map_err(sql("prepare recent log search"))?
                .query_map(
                    params![host, source, phrase, limit, offset, SEARCH_WALK],
                    stored_log,
                )
                .map_err(sql("search recent logs"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql("read log row"))?;
            if found.len() as u32 >= limit {
                return Ok(found);
            }
        }
        let mut stmt = self
            .conn
            .prepare_cached(sql_text)
            .map_err(sql("prepare recent logs"))?;
        let rows = stmt
            .query_map(params![host, source, phrase, limit, offset], stored_log)
            .map_err(sql("list recent logs"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("read log row"))
    }
}

/// How many of a host's newest lines a search checks one by one before it asks the
/// index for all of the host's matches instead.
const SEARCH_WALK: u32 = 5_000;

/// The last run of one probe on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastRun {
    pub host: String,
    pub probe: String,
    pub started: i64,
    pub duration_ms: i64,
    pub status: String,
    pub error: Option<String>,
    pub warnings: Option<String>,
    /// How many warnings the run had (`warnings` quotes the first few).
    pub warning_count: i64,
    pub samples: i64,
}

impl Store {
    /// The last run of every probe on every host: the poller's own health.
    pub fn last_runs(&self) -> Result<Vec<LastRun>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT host, probe, started, duration_ms, status, error, warnings, samples,
                        warning_count
                 FROM latest_runs ORDER BY host, probe",
            )
            .map_err(sql("prepare last runs"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(LastRun {
                    host: r.get(0)?,
                    probe: r.get(1)?,
                    started: r.get(2)?,
                    duration_ms: r.get(3)?,
                    status: r.get(4)?,
                    error: r.get(5)?,
                    warnings: r.get(6)?,
                    samples: r.get(7)?,
                    warning_count: r.get(8)?,
                })
            })
            .map_err(sql("list last runs"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("read last run"))
    }
}

/// A `logs` row selected as (host, source, ts, priority, unit, message).
fn stored_log(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredLog> {
    Ok(StoredLog {
        host: r.get(0)?,
        source: r.get(1)?,
        ts: r.get(2)?,
        priority: r.get(3)?,
        unit: r.get(4)?,
        message: r.get(5)?,
    })
}

impl Store {
    /// The log sources a host has lines from (`journal`, `dmesg`, `sel`, a path, ...).
    pub fn log_sources(&self, host: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            // One index seek per source, not a walk over every line the host ever logged.
            .prepare_cached(
                "WITH RECURSIVE s (source) AS (
                     SELECT min(source) FROM logs WHERE host = ?1
                     UNION ALL
                     SELECT (SELECT min(source) FROM logs WHERE host = ?1 AND source > s.source)
                     FROM s WHERE s.source IS NOT NULL)
                 SELECT source FROM s WHERE source IS NOT NULL",
            )
            .map_err(sql("prepare log sources"))?;
        let rows = stmt
            .query_map([host], |r| r.get(0))
            .map_err(sql("list log sources"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("read log source"))
    }
}
