//! The schema, as numbered migrations (SQLite's `user_version` counts them).
//! Never edit a released migration: add the next one.

use rusqlite_migration::{M, Migrations};

const STEPS: &[M<'static>] = &[
    M::up(
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
        status      TEXT NOT NULL CHECK (status IN ('ok', 'error', 'absent')),
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
    -- Log lines from every source (journal, dmesg, syslog, files, the SEL).
    CREATE TABLE logs (
        id       INTEGER PRIMARY KEY,
        host     TEXT NOT NULL,
        source   TEXT NOT NULL,
        ts       INTEGER NOT NULL, -- ms since the epoch (collection time when the line has none)
        priority INTEGER NOT NULL, -- syslog: 0 emerg .. 7 debug
        unit     TEXT,
        message  TEXT NOT NULL
    );
    CREATE INDEX logs_by_host ON logs (host, source, ts);
    -- Full-text search over messages, kept in step with `logs` by triggers.
    CREATE VIRTUAL TABLE logs_fts USING fts5 (message, content = 'logs', content_rowid = 'id');
    CREATE TRIGGER logs_fts_insert AFTER INSERT ON logs BEGIN
        INSERT INTO logs_fts (rowid, message) VALUES (new.id, new.message);
    END;
    CREATE TRIGGER logs_fts_delete AFTER DELETE ON logs BEGIN
        INSERT INTO logs_fts (logs_fts, rowid, message) VALUES ('delete', old.id, old.message);
    END;
    -- Where each host's log source was last read up to.
    CREATE TABLE log_cursors (
        host   TEXT NOT NULL,
        source TEXT NOT NULL,
        cursor TEXT NOT NULL,
        PRIMARY KEY (host, source)
    ) WITHOUT ROWID;
    ",
    ),
    M::up(HOSTS),
    M::up(DIRECTORY),
    M::up(crate::rollup::MIGRATION),
    M::up(crate::audit::MIGRATION),
    M::up(crate::latest_runs::MIGRATION),
    M::up(READ_INDEXES),
    M::up(LOGS_FTS_HOST),
    M::up(crate::alerts::MIGRATION),
    M::up(crate::alerts::NOTIFIED),
    M::up(crate::silences::MIGRATION),
    M::up(crate::alerts::HISTORY_INDEXES),
    M::up(crate::latest_runs::WARNING_COUNT),
    M::up(crate::event_counters::MIGRATION),
    M::up(crate::sealing::MIGRATION),
    M::up(crate::head::MIGRATION),
    M::up(crate::outbox::MIGRATION),
];

/// Migration 8: the log search index also holds each line's host, so one host's search
/// intersects two posting lists in the index instead of collecting every host's matches
/// (a common word over a day of 1,000 hosts: 1.4 M rows) and filtering them.
const LOGS_FTS_HOST: &str = "
    DROP TRIGGER logs_fts_insert;
    DROP TRIGGER logs_fts_delete;
    DROP TABLE logs_fts;
    CREATE VIRTUAL TABLE logs_fts USING fts5 (message, host, content = 'logs', content_rowid = 'id');
    CREATE TRIGGER logs_fts_insert AFTER INSERT ON logs BEGIN
        INSERT INTO logs_fts (rowid, message, host) VALUES (new.id, new.message, new.host);
    END;
    CREATE TRIGGER logs_fts_delete AFTER DELETE ON logs BEGIN
        INSERT INTO logs_fts (logs_fts, rowid, message, host) VALUES ('delete', old.id, old.message, old.host);
    END;
    INSERT INTO logs_fts (logs_fts) VALUES ('rebuild');
";

/// Migration 7: indexes that bound the dashboard's reads (see `plan_tests.rs`).
const READ_INDEXES: &str = "
    -- The logs page without a source filter: newest first, bounded by the page.
    CREATE INDEX logs_by_host_time ON logs (host, ts);
    -- A series name across the fleet (API queries without a host).
    CREATE INDEX series_by_name ON series (name, host);
";

/// Migration 2: the always-on poller's view of each host.
const HOSTS: &str = "
    CREATE TABLE hosts (
        host       TEXT PRIMARY KEY,
        online     INTEGER NOT NULL, -- 1 online, 0 offline
        since      INTEGER NOT NULL, -- ms since the epoch: entered this state
        last_seen  INTEGER,          -- ms: last round that reached the host
        last_error TEXT
    ) WITHOUT ROWID;
    CREATE INDEX logs_by_time ON logs (ts);
    CREATE INDEX probe_runs_by_time ON probe_runs (started);
";

/// Migration 3: the inventory's groups and labels of each host, so the dashboard can
/// filter by them (and list hosts not polled yet) while reading only the store.
const DIRECTORY: &str = "
    CREATE TABLE directory (
        host   TEXT PRIMARY KEY,
        groups TEXT NOT NULL, -- JSON array of group names
        labels TEXT NOT NULL  -- JSON object label -> value
    ) WITHOUT ROWID;
";

pub(crate) static MIGRATIONS: Migrations<'static> = Migrations::from_slice(STEPS);

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        assert!(super::MIGRATIONS.validate().is_ok());
    }
}
