//! The audit trail: every command dcmon runs on a host for someone (`dcmon exec`, fan
//! modes, dashboard actions), written when it starts and completed when it ends, so a
//! run cut short by a crash still shows up as `running`.

use crate::{Store, StoreError, sql};
use rusqlite::params;
use serde::Serialize;

/// Migration 5.
pub(crate) const MIGRATION: &str = "
    CREATE TABLE audit (
        id          INTEGER PRIMARY KEY,
        ts          INTEGER NOT NULL, -- ms since the epoch, when it started
        who         TEXT NOT NULL,    -- `cli:USER`, `web:admin@ADDRESS`
        host        TEXT NOT NULL,
        action      TEXT NOT NULL,    -- exec, fan-status, fan-set, ipmi-raw, sysinfo
        command     TEXT NOT NULL,    -- exactly what was sent to the host
        status      TEXT NOT NULL,    -- running, ok, failed, timeout, unreachable, cancelled
        exit_code   INTEGER,
        duration_ms INTEGER,
        output      TEXT NOT NULL DEFAULT '' -- the first KBs of stdout and stderr
    );
    CREATE INDEX audit_by_time ON audit (ts);
    CREATE INDEX audit_by_host ON audit (host, ts);
";

/// Output kept per audit row.
pub const AUDIT_OUTPUT_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub ts: i64,
    pub who: String,
    pub host: String,
    pub action: String,
    pub command: String,
    pub status: String,
    pub exit_code: Option<i64>,
    pub duration_ms: Option<i64>,
    pub output: String,
}

/// The first `AUDIT_OUTPUT_BYTES` of stdout then stderr, cut on a character boundary.
pub fn output_excerpt(stdout: &str, stderr: &str) -> String {
    let mut text = String::from(stdout);
    if !stderr.is_empty() {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(stderr);
    }
    if text.len() > AUDIT_OUTPUT_BYTES {
        let mut cut = AUDIT_OUTPUT_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

impl Store {
    /// Records a command about to run; returns the row to complete.
    pub fn audit_start(
        &self,
        ts: i64,
        who: &str,
        host: &str,
        action: &str,
        command: &str,
    ) -> Result<i64, StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO audit (ts, who, host, action, command, status) VALUES (?1, ?2, ?3, ?4, ?5, 'running')",
            )
            .map_err(sql("prepare audit start"))?
            .execute(params![ts, who, host, action, command])
            .map_err(sql("write audit start"))?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn audit_finish(
        &self,
        id: i64,
        status: &str,
        exit_code: Option<i64>,
        duration_ms: i64,
        output: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE audit SET status = ?2, exit_code = ?3, duration_ms = ?4, output = ?5 WHERE id = ?1",
            )
            .map_err(sql("prepare audit finish"))?
            .execute(params![id, status, exit_code, duration_ms, output])
            .map_err(sql("write audit finish"))?;
        Ok(())
    }

    /// Newest first: of one host or all, since a time, at most `limit`.
    pub fn audit(
        &self,
        host: Option<&str>,
        since_ms: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        // One statement per case, so each walks its index newest first and stops at
        // `limit` (an `?1 IS NULL OR` would hide the host index from the planner).
        let text = if host.is_some() {
            "SELECT id, ts, who, host, action, command, status, exit_code, duration_ms, output
             FROM audit INDEXED BY audit_by_host
             WHERE host = ?1 AND ts >= coalesce(?2, 0) ORDER BY ts DESC, id DESC LIMIT ?3"
        } else {
            "SELECT id, ts, who, host, action, command, status, exit_code, duration_ms, output
             FROM audit INDEXED BY audit_by_time
             WHERE ?1 IS NULL AND ts >= coalesce(?2, 0) ORDER BY ts DESC, id DESC LIMIT ?3"
        };
        let mut stmt = self
            .conn
            .prepare_cached(text)
            .map_err(sql("prepare audit read"))?;
        let rows = stmt
            .query_map(params![host, since_ms, limit], |r| {
                Ok(AuditEntry {
                    id: r.get(0)?,
                    ts: r.get(1)?,
                    who: r.get(2)?,
                    host: r.get(3)?,
                    action: r.get(4)?,
                    command: r.get(5)?,
                    status: r.get(6)?,
                    exit_code: r.get(7)?,
                    duration_ms: r.get(8)?,
                    output: r.get(9)?,
                })
            })
            .map_err(sql("read audit"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("read audit row"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_recorded_at_start_and_completed_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a.db")).unwrap();
        let a = store
            .audit_start(1_000, "cli:ops", "gpu01", "exec", "'uptime'")
            .unwrap();
        let b = store
            .audit_start(2_000, "cli:ops", "gpu02", "exec", "'uptime'")
            .unwrap();
        store
            .audit_finish(a, "ok", Some(0), 12, "up 3 days")
            .unwrap();
        let all = store.audit(None, None, 10).unwrap();
        assert_eq!(
            all.iter().map(|e| e.id).collect::<Vec<_>>(),
            [b, a],
            "newest first"
        );
        assert_eq!(all[0].status, "running", "not finished: still shows");
        assert_eq!(
            (all[1].exit_code, all[1].output.as_str()),
            (Some(0), "up 3 days")
        );
        assert_eq!(store.audit(Some("gpu01"), None, 10).unwrap().len(), 1);
        assert_eq!(store.audit(None, Some(1_500), 10).unwrap().len(), 1);
    }

    #[test]
    fn output_is_cut_to_a_few_kilobytes_on_a_character_boundary() {
        let long = "é".repeat(AUDIT_OUTPUT_BYTES);
        let cut = output_excerpt(&long, "");
        assert!(cut.len() <= AUDIT_OUTPUT_BYTES + 3 && cut.ends_with('…'));
        assert_eq!(output_excerpt("out", "err\n"), "out\nerr\n");
    }
}
