//! Retention: old samples, log lines, probe runs and alert history are deleted in small chunks, so a
//! sweep never holds the write lock for long and ingest goes on between chunks. Then the
//! sweep seals what is old enough into compressed chunks (`sealing`), in steps too.

use crate::{Store, StoreError, sql};
use rusqlite::params;

/// Series handled per chunk (each a short index range delete).
pub const SERIES_PER_CHUNK: i64 = 200;
/// Log lines and probe runs deleted per chunk.
pub const ROWS_PER_CHUNK: i64 = 5000;

/// What to delete: everything older than these times (ms since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    pub samples_before_ms: i64,
    pub logs_before_ms: i64,
    /// After deleting, the sealer runs as at this time (`Store::seal_step`): usually
    /// now; `i64::MIN` seals nothing.
    pub seal_now_ms: i64,
}

/// Where a sweep stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// The last series id handled; the next chunk starts after it.
    pub after_series: i64,
    pub samples_deleted: u64,
    pub logs_deleted: u64,
    /// Deleting is over; sealing goes on.
    pub deleted: bool,
    pub sealing: crate::sealing::SealProgress,
    pub done: bool,
}

impl Store {
    /// One chunk of a sweep, in its own transaction.
    pub fn sweep_chunk(
        &mut self,
        cutoffs: Cutoffs,
        mut progress: Progress,
    ) -> Result<Progress, StoreError> {
        if progress.deleted {
            progress.sealing = self.seal_step(cutoffs.seal_now_ms, progress.sealing)?;
            progress.done = progress.sealing.done;
            return Ok(progress);
        }
        let head = self.head.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql("begin sweep"))?;
        head.sync(&tx)?;
        let begun = crate::head::position(&tx)?;
        // Readers trim the chunk straddling the cut by this mark.
        tx.prepare_cached("INSERT OR REPLACE INTO marks (key, value) VALUES (?1, ?2)")
            .map_err(sql("prepare retention mark"))?
            .execute(params![
                crate::sealing::RETENTION_MARK,
                cutoffs.samples_before_ms
            ])
            .map_err(sql("write retention mark"))?;
        let ids: Vec<i64> = {
            let mut stmt = tx
                .prepare_cached("SELECT id FROM series WHERE id > ?1 ORDER BY id LIMIT ?2")
                .map_err(sql("prepare sweep series"))?;
            let rows = stmt
                .query_map(params![progress.after_series, SERIES_PER_CHUNK], |r| {
                    r.get(0)
                })
                .map_err(sql("list series"))?;
            rows.collect::<Result<_, _>>()
                .map_err(sql("read series id"))?
        };
        {
            let mut delete = tx
                .prepare_cached("DELETE FROM samples WHERE series_id = ?1 AND ts < ?2")
                .map_err(sql("prepare sample sweep"))?;
            let mut delete_rollups = tx
                .prepare_cached("DELETE FROM rollups WHERE series_id = ?1 AND ts < ?2")
                .map_err(sql("prepare rollup sweep"))?;
            // Whole chunks ended before the cut; their samples count as deleted.
            let mut delete_chunks = tx
                .prepare_cached(
                    "DELETE FROM chunks WHERE series_id = ?1 AND end_ts < ?2 RETURNING count",
                )
                .map_err(sql("prepare chunk sweep"))?;
            for id in &ids {
                progress.samples_deleted += delete
                    .execute(params![id, cutoffs.samples_before_ms])
                    .map_err(sql("sweep samples"))?
                    as u64;
                let counts = delete_chunks
                    .query_map(params![id, cutoffs.samples_before_ms], |r| {
                        r.get::<_, i64>(0)
                    })
                    .map_err(sql("sweep chunks"))?;
                for count in counts {
                    progress.samples_deleted +=
                        count.map_err(sql("read swept chunk"))?.max(0) as u64;
                }
                delete_rollups
                    .execute(params![id, cutoffs.samples_before_ms])
                    .map_err(sql("sweep rollups"))?;
            }
        }
        // Logs (the FTS index follows by trigger) and probe runs, a bounded batch each.
        progress.logs_deleted += tx
            .execute(
                "DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE ts < ?1 LIMIT ?2)",
                params![cutoffs.logs_before_ms, ROWS_PER_CHUNK],
            )
            .map_err(sql("sweep logs"))? as u64;
        tx.execute(
            "DELETE FROM probe_runs WHERE id IN (SELECT id FROM probe_runs WHERE started < ?1 LIMIT ?2)",
            params![cutoffs.samples_before_ms, ROWS_PER_CHUNK],
        )
        .map_err(sql("sweep probe runs"))?;
        // Alert history and ended silences are kept as long as logs.
        tx.execute(
            "DELETE FROM alert_history WHERE id IN (SELECT id FROM alert_history WHERE ts < ?1 LIMIT ?2)",
            params![cutoffs.logs_before_ms, ROWS_PER_CHUNK],
        )
        .map_err(sql("sweep alert history"))?;
        tx.execute(
            "DELETE FROM silences WHERE ends_at < ?1",
            params![cutoffs.logs_before_ms],
        )
        .map_err(sql("sweep silences"))?;
        // A host or probe that stopped running leaves the probe health page with its history.
        tx.execute(
            "DELETE FROM latest_runs WHERE started < ?1",
            [cutoffs.samples_before_ms],
        )
        .map_err(sql("sweep latest runs"))?;
        // The head's samples before the cut (a series that stopped long ago keeps its
        // last two there).
        let src = crate::points::Source::writer(&tx, &head, &self.pending);
        let mut head_removed = Vec::new();
        for id in &ids {
            let old = src
                .head_points(*id, i64::MIN, cutoffs.samples_before_ms.saturating_sub(1))?
                .len();
            if old > 0 {
                progress.samples_deleted += old as u64;
                head_removed.push((*id, cutoffs.samples_before_ms));
            }
        }
        let epoch = match head_removed.is_empty() {
            true => None,
            false => Some(crate::head::bump_epoch(&tx)?),
        };
        let old_logs_left: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM logs WHERE ts < ?1)",
                [cutoffs.logs_before_ms],
                |r| r.get(0),
            )
            .map_err(sql("count old logs"))?;
        crate::head::commit_taking_out(&head, tx, begun, epoch, &head_removed, |_, _, _| Ok(()))?;
        if let Some(epoch) = epoch {
            self.note_epoch(begun.epoch, epoch);
        }
        progress.after_series = ids.last().copied().unwrap_or(progress.after_series);
        progress.deleted = (ids.len() as i64) < SERIES_PER_CHUNK && !old_logs_left;
        progress.done = progress.deleted && cutoffs.seal_now_ms == i64::MIN;
        if let Some(latest) = &self.latest {
            latest.forget_before(cutoffs.samples_before_ms);
        }
        // Chunks were deleted: the writer reads each series' sealed end afresh.
        for id in &ids {
            self.ends.remove(id);
        }
        Ok(progress)
    }

    /// A whole sweep, chunk after chunk (tests and one-shot use; the writer interleaves).
    pub fn sweep(&mut self, cutoffs: Cutoffs) -> Result<Progress, StoreError> {
        let mut progress = Progress::default();
        while !progress.done {
            progress = self.sweep_chunk(cutoffs, progress)?;
        }
        Ok(progress)
    }
}
