//! What `dcmon db` does to a database: its figures (`stats`: series, samples, bytes per
//! sample, oldest and newest sample, the bytes of every table with its indexes), an
//! online copy (`backup`: `VACUUM INTO`, which reads one snapshot while the poller goes
//! on writing) and SQLite's own integrity check (`check`).

use crate::{Store, StoreError, sql};
use serde::Serialize;
use std::path::Path;

/// A database's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DbStats {
    pub series: i64,
    pub samples: i64,
    /// Sealed compressed chunks (their samples count in `samples`).
    pub chunks: i64,
    /// The whole database file (pages in use and free).
    pub bytes: i64,
    /// What a stored sample costs: the bytes of the tables that hold samples (`samples`,
    /// `chunks` and `head_log`, with their keys) over the samples.
    pub bytes_per_sample: Option<f64>,
    /// ms since the epoch of the oldest and newest sample.
    pub oldest: Option<i64>,
    pub newest: Option<i64>,
    pub probe_runs: i64,
    pub log_lines: i64,
    /// Bytes per table, its indexes included, largest first.
    pub tables: Vec<(String, i64)>,
}

impl Store {
    /// The database's figures. Counting reads every sample once: seconds on a database
    /// of gigabytes, nothing the dashboard calls.
    pub fn db_stats(&self) -> Result<DbStats, StoreError> {
        let one = |query: &str, what: &'static str| -> Result<i64, StoreError> {
            self.conn
                .query_row(query, [], |r| r.get(0))
                .map_err(sql(what))
        };
        let (rows, oldest, newest): (i64, Option<i64>, Option<i64>) = self
            .conn
            .query_row("SELECT count(*), min(ts), max(ts) FROM samples", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(sql("count samples"))?;
        let (chunks, sealed, sealed_oldest, sealed_newest): (i64, i64, Option<i64>, Option<i64>) =
            self.conn
                .query_row(
                    "SELECT count(*), coalesce(sum(count), 0), min(start_ts), max(end_ts) FROM chunks",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .map_err(sql("count chunks"))?;
        let src = self.source()?;
        let (in_head, head_oldest, head_newest) = src.head_extent()?;
        let samples = rows.saturating_add(sealed).saturating_add(in_head);
        let earliest = |a: Option<i64>, b: Option<i64>| a.into_iter().chain(b).min();
        let latest = |a: Option<i64>, b: Option<i64>| a.into_iter().chain(b).max();
        let (oldest, newest) = (
            earliest(earliest(oldest, sealed_oldest), head_oldest),
            latest(latest(newest, sealed_newest), head_newest),
        );
        let pages = one("PRAGMA page_count", "read page count")?;
        let page_size = one("PRAGMA page_size", "read page size")?;
        let bytes = pages.saturating_mul(page_size);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat d
                 LEFT JOIN sqlite_schema m ON m.name = d.name
                 GROUP BY 1 ORDER BY 2 DESC, 1",
            )
            .map_err(sql("prepare table sizes"))?;
        let tables = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql("read table sizes"))?
            .collect::<Result<Vec<(String, i64)>, _>>()
            .map_err(sql("read table size row"))?;
        let sample_bytes: i64 = tables
            .iter()
            .filter(|(t, _)| t == "samples" || t == "chunks" || t == "head_log")
            .map(|(_, b)| *b)
            .sum();
        Ok(DbStats {
            series: one("SELECT count(*) FROM series", "count series")?,
            samples,
            chunks,
            bytes,
            bytes_per_sample: (samples > 0).then(|| sample_bytes as f64 / samples as f64),
            oldest,
            newest,
            probe_runs: one("SELECT count(*) FROM probe_runs", "count probe runs")?,
            log_lines: one("SELECT count(*) FROM logs", "count log lines")?,
            tables,
        })
    }

    /// An online copy of the database into `out`, which must not exist yet: one
    /// consistent snapshot, compacted, while writers go on.
    pub fn backup_to(&self, out: &Path) -> Result<(), StoreError> {
        if out.exists() {
            return Err(StoreError::Refused(format!(
                "{} already exists: a backup never overwrites a file",
                out.display()
            )));
        }
        let target = out
            .to_str()
            .ok_or_else(|| StoreError::Refused(format!("{} is not a UTF-8 path", out.display())))?;
        self.conn
            .execute("VACUUM INTO ?1", [target])
            .map_err(sql("copy the database (VACUUM INTO)"))?;
        Ok(())
    }

    /// SQLite's integrity check: `["ok"]` or the problems it found.
    pub fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        integrity_of(&self.conn)
    }

    /// The integrity check of the database file at `path`, opened read-only and as it is
    /// (no migration, nothing written): a file too damaged to open as dcmon's database
    /// is a problem it reports, not an error it stops at.
    pub fn check_file(path: &Path) -> Result<Vec<String>, StoreError> {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Ok(integrity_of(&conn)
            .unwrap_or_else(|e| vec![format!("SQLite cannot read it as a database: {e}")]))
    }
}

/// SQLite's own check, then every chunk decoded and held against its row.
fn integrity_of(conn: &rusqlite::Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare("PRAGMA integrity_check")
        .map_err(sql("prepare integrity check"))?;
    let mut problems: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .map_err(sql("run integrity check"))?
        .collect::<Result<Vec<String>, _>>()
        .map_err(sql("read integrity check"))?;
    problems.retain(|p| p != "ok");
    problems.extend(chunk_problems(conn)?);
    let has_head_log: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'head_log')",
            [],
            |r| r.get(0),
        )
        .map_err(sql("look for the head log"))?;
    if has_head_log {
        problems.extend(crate::head::check(conn)?);
    }
    if problems.is_empty() {
        problems.push("ok".into());
    }
    Ok(problems)
}

/// Chunks that do not decode, or whose samples disagree with their row (count, first
/// and last time, times ascending). A database from before chunks has none.
fn chunk_problems(conn: &rusqlite::Connection) -> Result<Vec<String>, StoreError> {
    let has_chunks: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'chunks')",
            [],
            |r| r.get(0),
        )
        .map_err(sql("look for the chunks table"))?;
    if !has_chunks {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare("SELECT series_id, start_ts, end_ts, count, data FROM chunks")
        .map_err(sql("prepare chunk check"))?;
    let mut rows = stmt.query([]).map_err(sql("read chunks to check"))?;
    let mut problems = Vec::new();
    while let Some(r) = rows.next().map_err(sql("read chunk to check"))? {
        let (id, start, end, count): (i64, i64, i64, i64) = (
            r.get(0).map_err(sql("read chunk series"))?,
            r.get(1).map_err(sql("read chunk start"))?,
            r.get(2).map_err(sql("read chunk end"))?,
            r.get(3).map_err(sql("read chunk count"))?,
        );
        let data: Vec<u8> = r.get(4).unwrap_or_default();
        let why = match crate::chunk::decode(&data) {
            Err(e) => Some(e.to_string()),
            Ok(d) if d.times.len() as i64 != count => Some(format!(
                "holds {} samples, its row says {count}",
                d.times.len()
            )),
            Ok(d) if d.times.first() != Some(&start) || d.times.last() != Some(&end) => {
                Some(format!(
                    "its samples run from {:?} to {:?} ms, its row says {start} to {end}",
                    d.times.first(),
                    d.times.last()
                ))
            }
            Ok(d) if d.times.windows(2).any(|w| w[0] >= w[1]) => {
                Some("its times are not ascending".into())
            }
            Ok(_) => None,
        };
        if let Some(why) = why {
            problems.push(format!("series {id}, chunk from {start} ms: {why}"));
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use crate::Store;
    use dcmon_probes::{Labels, ProbeOutput};

    #[test]
    fn stats_backup_and_check_of_a_small_database() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("a.db")).unwrap();
        let empty = store.db_stats().unwrap();
        assert_eq!(
            (empty.samples, empty.oldest, empty.bytes_per_sample),
            (0, None, None)
        );
        for (i, ts) in [1_000i64, 31_000].into_iter().enumerate() {
            let mut out = ProbeOutput::default();
            out.gauge("node_load1", Labels::default(), i as f64, "");
            out.gauge("node_load5", Labels::default(), 2.0, "");
            let run = crate::ProbeRun::ok("os", ts, out);
            store
                .write_round(&crate::HostRound::new("h1", vec![run]))
                .unwrap();
        }
        let stats = store.db_stats().unwrap();
        assert_eq!(
            (stats.series, stats.samples, stats.oldest, stats.newest),
            (5, 10, Some(1_000), Some(31_000))
        );
        // The second good run says nothing the run series do not.
        assert_eq!(stats.probe_runs, 1);
        assert!(stats.bytes_per_sample.unwrap() > 0.0);
        assert!(stats.tables.iter().any(|(t, b)| t == "samples" && *b > 0));
        assert_eq!(store.integrity_check().unwrap(), ["ok"]);
        let copy = dir.path().join("copy.db");
        store.backup_to(&copy).unwrap();
        let again = Store::open(&copy).unwrap().db_stats().unwrap();
        assert_eq!((again.series, again.samples), (5, 10));
        // Never over a file that is there.
        let refused = store.backup_to(&copy).unwrap_err().to_string();
        assert!(refused.contains("already exists"), "{refused}");
        // A damaged copy: the check reports it instead of failing to open it.
        assert_eq!(Store::check_file(&copy).unwrap(), ["ok"]);
        let mut bytes = std::fs::read(&copy).unwrap();
        let page = 4096;
        let from = page.min(bytes.len());
        let to = (2 * page).min(bytes.len());
        bytes[from..to].fill(0xff);
        std::fs::write(&copy, &bytes).unwrap();
        let problems = Store::check_file(&copy).unwrap();
        assert_ne!(problems, ["ok"]);
        std::fs::write(&copy, b"not a database at all").unwrap();
        let problems = Store::check_file(&copy).unwrap();
        assert!(problems[0].contains("cannot read it"), "{problems:?}");
    }
}
