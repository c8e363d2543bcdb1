//! Each probe's last run on each host, kept by the writer beside the history, so the
//! overview's last-seen time and the probe health page read one row per host and probe
//! however many runs `probe_runs` holds (a day of 1,000 hosts is millions of rows).

use crate::{Store, StoreError, sql};
use rusqlite::params;

/// Migration 6: the table, filled from the history already stored.
pub(crate) const MIGRATION: &str = "
    CREATE TABLE latest_runs (
        host        TEXT NOT NULL,
        probe       TEXT NOT NULL,
        started     INTEGER NOT NULL, -- ms since the epoch, of the last run stored
        duration_ms INTEGER NOT NULL,
        status      TEXT NOT NULL,
        error       TEXT,
        warnings    TEXT,
        samples     INTEGER NOT NULL,
        last_ok     INTEGER,          -- ms: start of the newest run that was ok
        PRIMARY KEY (host, probe)
    ) WITHOUT ROWID;
    INSERT INTO latest_runs
        SELECT p.host, p.probe, p.started, p.duration_ms, p.status, p.error, p.warnings, p.samples,
               (SELECT max(started) FROM probe_runs o
                 WHERE o.host = p.host AND o.probe = p.probe AND o.status = 'ok')
        FROM probe_runs p
        WHERE p.id IN (SELECT max(id) FROM probe_runs GROUP BY host, probe);
";

/// Migration 13: how many warnings the last run had, so the probe health page can say
/// "ok, 6 lines not understood" (the text keeps only the first few). Rows stored
/// before count from their next run.
pub(crate) const WARNING_COUNT: &str =
    "ALTER TABLE latest_runs ADD COLUMN warning_count INTEGER NOT NULL DEFAULT 0;";

/// The writer's upsert after each stored run: the run replaces the previous one, and
/// `last_ok` only ever moves forward; `?10` is the run's warning count. The status
/// shown is `?9`: `partial` for a good
/// run whose output was partly misread (the history keeps `ok` and the warnings).
pub(crate) const UPSERT: &str = "
    INSERT INTO latest_runs (host, probe, started, duration_ms, status, error, warnings, samples, last_ok, warning_count)
    VALUES (?1, ?2, ?3, ?4, ?9, ?6, ?7, ?8, CASE WHEN ?5 = 'ok' THEN ?3 END, ?10)
    ON CONFLICT (host, probe) DO UPDATE SET
        started = excluded.started, duration_ms = excluded.duration_ms, status = excluded.status,
        error = excluded.error, warnings = excluded.warnings, samples = excluded.samples,
        warning_count = excluded.warning_count,
        last_ok = coalesce(max(excluded.last_ok, latest_runs.last_ok), latest_runs.last_ok, excluded.last_ok)";

impl Store {
    /// host → start of its newest good run (any probe); one row per host and probe read.
    pub(crate) fn last_ok_runs(
        &self,
        host: Option<&str>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT host, max(last_ok) FROM latest_runs
                 WHERE last_ok IS NOT NULL AND {} GROUP BY host",
                crate::host_clause(host, "host")
            ))
            .map_err(sql("prepare last seen"))?;
        let rows = stmt
            .query_map(params![host], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql("read last seen"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("read last seen row"))
    }
}
