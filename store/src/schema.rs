//! The schema, as numbered migrations (SQLite's `user_version` counts them).
//! Never edit a released migration: add the next one.

use rusqlite_migration::{M, Migrations};

const STEPS: &[M<'static>] = &[M::up(
    "
    -- One row per distinct (host, name, labels); labels is a JSON object with sorted keys.
    CREATE TABLE series (
        id     INTEGER PRIMARY KEY,
        host   TEXT NOT NULL,
        name   TEXT NOT NULL,
        labels TEXT NOT NULL,
        kind   TEXT NOT NULL CHECK (kind IN ('gauge', 'counter')),
        unit   TEXT NOT NULL,
        UNIQUE (host, name, labels)
    );
    -- Keyed by (series, time) without a rowid: one B-tree, a re-sent sample replaces itself.
    CREATE TABLE samples (
        series_id INTEGER NOT NULL,
        ts        INTEGER NOT NULL, -- milliseconds since the Unix epoch
        value     REAL NOT NULL,
        PRIMARY KEY (series_id, ts)
    ) WITHOUT ROWID;
    -- The poller's own health: every run of every probe.
    CREATE TABLE probe_runs (
        id          INTEGER PRIMARY KEY,
        host        TEXT NOT NULL,
        probe       TEXT NOT NULL,
        started     INTEGER NOT NULL, -- ms since the epoch
        duration_ms INTEGER NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('ok', 'error')),
        error       TEXT,
        warnings    TEXT,
        samples     INTEGER NOT NULL
    );
    CREATE INDEX probe_runs_by_host ON probe_runs (host, probe, started);
    -- Hardware and OS inventory, latest value per key.
    CREATE TABLE facts (
        host  TEXT NOT NULL,
        key   TEXT NOT NULL,
        value TEXT NOT NULL,
        seen  INTEGER NOT NULL,
        PRIMARY KEY (host, key)
    ) WITHOUT ROWID;
    ",
)];

pub(crate) static MIGRATIONS: Migrations<'static> = Migrations::from_slice(STEPS);

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        assert!(super::MIGRATIONS.validate().is_ok());
    }
}
