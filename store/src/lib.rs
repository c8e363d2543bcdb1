//! dcmon's store: SQLite (WAL) holding series, samples, probe runs and facts.
//!
//! Writes come in host rounds: everything one host yielded in one round lands in one
//! transaction, so a round is either stored whole or not at all. Reads serve the CLI
//! (and later the dashboard).

pub mod alerts;
pub mod audit;
pub mod chunk;
mod chunk_summaries;
mod directory;
mod event_counters;
mod head;
pub mod latest;
mod latest_runs;
mod maintenance;
pub mod outbox;
pub mod overview;
mod points;
mod query;
pub mod range;
pub mod rate;
pub mod retention;
pub mod rollup;
pub mod run_series;
mod schema;
pub mod sealing;
pub mod silences;
mod write;

pub use directory::Listed;
pub use event_counters::{XID_SERIES, XidCount};
pub use maintenance::DbStats;
pub use query::{LastRun, SeriesFilter, SeriesLatest, StoredLog};
pub use write::{HostRound, HostState, ProbeRun, RunStatus, Stored};

use rusqlite::Connection;

/// Milliseconds since the epoch: the one clock of runs, events, host states, the
/// remote-write queue and the dashboard (the poller and the web re-export it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
use std::collections::HashMap;
use std::path::Path;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("cannot migrate database {path} to the current schema: {source}")]
    Migrate {
        path: String,
        source: rusqlite_migration::Error,
    },
    #[error("database {what}: {source}")]
    Sql {
        what: &'static str,
        source: rusqlite::Error,
    },
    /// A query refused before any work: its grid is backwards or too fine.
    #[error("{0}")]
    Refused(String),
    /// The head moved past this read's snapshot (samples were sealed meanwhile):
    /// `Store::snapshot` reads again; a caller seeing it read outside one.
    #[error("the samples in memory moved on during this read; read again")]
    HeadMoved,
    /// Stored bytes that do not decode (a damaged file).
    #[error("database {what} is damaged: {why}")]
    Corrupt { what: String, why: String },
}

impl StoreError {
    /// The query was stopped at its deadline (see `Store::within`).
    pub fn is_interrupted(&self) -> bool {
        matches!(self, StoreError::Sql { source, .. }
            if source.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted))
    }
}

/// `column = ?1` for one host, `?1 IS NULL` for all: two statements, so the one-host
/// form seeks its index (`?1 IS NULL OR column = ?1` makes SQLite read every row).
pub(crate) fn host_clause(host: Option<&str>, column: &str) -> String {
    match host {
        Some(_) => format!("{column} = ?1"),
        None => "?1 IS NULL".to_string(),
    }
}

/// Wraps a rusqlite error with what was being done.
pub(crate) fn sql(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sql { what, source }
}

/// The writer's maps: keys are the store's own (series ids, names it stored), so a fast
/// unkeyed hash is enough.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

pub(crate) type SeriesIds = FastMap<String, FastMap<String, FastMap<dcmon_probes::Labels, i64>>>;

/// An open database. Not `Sync`: one writer owns it (the poller runs it on its own thread).
pub struct Store {
    conn: Connection,
    /// host → name → labels → series id, so a round looks up no series in SQLite and
    /// allocates nothing for the series it already knows.
    series_ids: SeriesIds,
    /// Latest values shared with other connections of this process (`dcmon serve`).
    latest: Option<std::sync::Arc<latest::Latest>>,
    /// The rollup bucket each series is filling (writer only).
    open_buckets: rollup::OpenBuckets,
    /// Where each series' chunks and rows end (writer only), see `sealing`.
    ends: sealing::Ends,
    /// The window chunks are merged by: `sealing::SPAN_MS`, an hour in the
    /// seal-everything tests (so their reads meet several merged chunks).
    merge_span_ms: i64,
    /// Tests only: seal everything sealable after every write, so every read path is
    /// tested on chunks (`DCMON_TEST_SEAL_EVERYTHING=1`, a second run of the store tests).
    seal_after_write: bool,
    /// Most samples one sealing step moves (`sealing::SAMPLES_PER_STEP`; tests set less).
    pub(crate) seal_budget: usize,
    /// The newest samples, shared by every `Store` of this file in this process.
    head: std::sync::Arc<head::Head>,
    /// This writer's head samples not committed yet.
    pending: head::Pending,
    /// False in the benchmark's side-by-side run of the engine before the head: every
    /// sample a row of `samples`.
    head_writes: bool,
    /// The head epoch `ends` was filled at: another process
    /// sealing the same file moves the epoch, and the caches are read again.
    caches_epoch: Option<i64>,
    /// The head epoch of the open read snapshot, once a read of it looked at the head.
    read_epoch: std::cell::Cell<Option<i64>>,
    /// With remote write: the samples of the transaction being written, queued with
    /// it (`outbox`).
    outbox: Option<Vec<head::Entry>>,
}

/// Creates the database file 0600 (whatever the umask) when it does not exist yet:
/// it holds the audit trail and logs, and SQLite gives its `-wal` and `-shm` files the
/// database file's mode.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if path.as_os_str().is_empty() || path == Path::new(":memory:") {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
        create_private(path).map_err(|e| StoreError::Open {
            path: shown.clone(),
            source: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(e.to_string()),
            ),
        })?;
        let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: shown.clone(),
            source,
        })?;
        // WAL lets the dashboard read while the poller writes; NORMAL sync is safe in WAL
        // (a power cut may lose the last commits, never corrupt the file).
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|source| StoreError::Open {
                path: shown.clone(),
                source,
            })?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|source| StoreError::Open {
                path: shown.clone(),
                source,
            })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|source| StoreError::Open {
                path: shown.clone(),
                source,
            })?;
        schema::MIGRATIONS
            .to_latest(&mut conn)
            .map_err(|source| StoreError::Migrate {
                path: shown,
                source,
            })?;
        let seal_after_write = seal_everything();
        let head = head::shared(path);
        Ok(Store {
            head,
            pending: Default::default(),
            seal_budget: sealing::SAMPLES_PER_STEP,
            read_epoch: Default::default(),
            caches_epoch: None,
            head_writes: true,
            conn,
            series_ids: Default::default(),
            latest: None,
            open_buckets: Default::default(),
            ends: Default::default(),
            merge_span_ms: if seal_after_write {
                6 * rollup::ROLLUP_MS
            } else {
                sealing::SPAN_MS
            },
            seal_after_write,
            outbox: None,
        })
    }
}

impl Store {
    /// Runs `f` in one read transaction (when none is open), so all its statements see
    /// one state of the database: a read of chunks then rows must not see half of a
    /// sealing step the writer committed between the two.
    ///
    /// A read the head moved past (`StoreError::HeadMoved`: the sealer took samples out
    /// of memory after the snapshot began) is run again on a new snapshot.
    pub fn snapshot<T>(
        &self,
        mut f: impl FnMut(&Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if !self.conn.is_autocommit() {
            return f(self);
        }
        // Sealing steps are a second or more apart: a read meets one at most, and
        // every attempt sees a newer state than the last.
        const ATTEMPTS: usize = 8;
        let mut attempt = 1;
        loop {
            self.conn
                .execute_batch("BEGIN")
                .map_err(sql("begin a read"))?;
            self.read_epoch.set(None);
            let result = f(self);
            self.read_epoch.set(None);
            // Nothing was written: ending the read cannot lose anything.
            let ended = self.conn.execute_batch("COMMIT").map_err(sql("end a read"));
            match result {
                Err(StoreError::HeadMoved) if attempt < ATTEMPTS => attempt += 1,
                result => {
                    let value = result?;
                    ended?;
                    return Ok(value);
                }
            }
        }
    }
}

impl Store {
    /// The benchmark's engine before the head: every sample written as a row of
    /// `samples` (read and sealed as the late samples are). Not for use elsewhere.
    #[doc(hidden)]
    pub fn write_rows_only(&mut self) {
        self.head_writes = false;
    }

    /// After this writer moved the epoch from `from` to `to` itself: its caches stay
    /// good if they were good at `from`.
    pub(crate) fn note_epoch(&mut self, from: i64, to: i64) {
        if self.caches_epoch == Some(from) {
            self.caches_epoch = Some(to);
        }
    }
}

/// The seal-everything test mode (see `Store::seal_after_write`); never in a release.
pub(crate) fn seal_everything() -> bool {
    cfg!(test) && std::env::var_os("DCMON_TEST_SEAL_EVERYTHING").is_some_and(|v| v == "1")
}

impl Store {
    /// Runs `f` with a deadline: SQLite stops any statement still running `budget`
    /// after the start (the error's `is_interrupted` is true). Readers use it so no one
    /// request can hold a connection for long.
    pub fn within<T>(
        &self,
        budget: std::time::Duration,
        f: impl FnMut(&Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let deadline = std::time::Instant::now() + budget;
        // Checked every 10,000 virtual machine steps: well under a millisecond apart.
        self.conn
            .progress_handler(10_000, Some(move || std::time::Instant::now() > deadline))
            .map_err(sql("set query deadline"))?;
        let result = self.snapshot(f);
        self.conn
            .progress_handler(0, None::<fn() -> bool>)
            .map_err(sql("clear query deadline"))?;
        result
    }
}

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod rollup_tests;
#[cfg(test)]
mod sealing_tests;
#[cfg(test)]
mod tests;
