//! dcmon's store: SQLite (WAL) holding series, samples, probe runs and facts.
//!
//! Writes come in host rounds: everything one host yielded in one round lands in one
//! transaction, so a round is either stored whole or not at all. Reads serve the CLI
//! (and later the dashboard).

pub mod audit;
mod directory;
pub mod latest;
pub mod overview;
mod query;
pub mod range;
pub mod rate;
pub mod retention;
pub mod rollup;
mod schema;
mod write;

pub use directory::Listed;
pub use query::{LastRun, SeriesFilter, SeriesLatest, StoredLog};
pub use write::{HostRound, HostState, ProbeRun, RunStatus, Stored};

use rusqlite::Connection;
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
}

/// Wraps a rusqlite error with what was being done.
pub(crate) fn sql(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sql { what, source }
}

pub(crate) type SeriesIds = HashMap<String, HashMap<String, HashMap<dcmon_probes::Labels, i64>>>;

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
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
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
        Ok(Store {
            conn,
            series_ids: HashMap::new(),
            latest: None,
            open_buckets: Default::default(),
        })
    }
}

#[cfg(test)]
mod rollup_tests;
#[cfg(test)]
mod tests;
