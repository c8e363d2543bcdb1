//! Ingest: one host round, one transaction.

use crate::{SeriesIds, Store, StoreError, sql};
use dcmon_probes::{Labels, LogEntry, ProbeOutput, registry::NewLogs};
use rusqlite::{OptionalExtension, params};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Ok,
    Error,
    /// The probe's tool is not installed on the host: not an error.
    Absent,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Error => "error",
            RunStatus::Absent => "absent",
        }
    }
}

/// One run of one probe on one host.
#[derive(Debug, Clone)]
pub struct ProbeRun {
    pub probe: String,
    /// When the run started, ms since the epoch; its samples carry this time.
    pub started_ms: i64,
    pub duration_ms: i64,
    pub status: RunStatus,
    pub error: Option<String>,
    pub output: ProbeOutput,
    /// The probe's rule for which log entries are new since the saved cursor.
    pub new_logs: NewLogs,
}

impl ProbeRun {
    /// A good run of `probe` that started at `started_ms` and read `output` (every log
    /// entry new): what tests, benchmarks and imports store.
    pub fn ok(probe: &str, started_ms: i64, output: ProbeOutput) -> ProbeRun {
        ProbeRun {
            probe: probe.to_string(),
            started_ms,
            duration_ms: 1,
            status: RunStatus::Ok,
            error: None,
            output,
            new_logs: dcmon_probes::registry::all_logs_new,
        }
    }
}

/// What a stored round came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    pub samples: usize,
    pub logs: usize,
    /// Log cursors saved by this round: where each source's next read starts.
    pub cursors: BTreeMap<String, String>,
}

/// Everything one host yielded in one round, plus the host's labels from the inventory.
#[derive(Debug, Clone)]
pub struct HostRound {
    pub host: String,
    pub runs: Vec<ProbeRun>,
    /// The host's state after this round, when the poller tracks it (`dcmon serve`).
    pub state: Option<HostState>,
    /// The poller's own events about the host, stored as `dcmon` log lines.
    pub events: Vec<LogEntry>,
}

impl HostRound {
    /// A round of probe runs, without host state or events (what `dcmon poll` stores).
    pub fn new(host: impl Into<String>, runs: Vec<ProbeRun>) -> HostRound {
        HostRound {
            host: host.into(),
            runs,
            state: None,
            events: Vec::new(),
        }
    }
}

/// Whether the poller reaches the host, since when, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostState {
    pub online: bool,
    /// When the host entered this state, ms since the epoch.
    pub since_ms: i64,
    /// The last round that reached it.
    pub last_seen_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// Canonical JSON for a label set: an object with keys in sorted order.
pub(crate) fn labels_json(labels: &Labels) -> String {
    let map: serde_json::Map<String, serde_json::Value> = labels
        .pairs()
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

impl Store {
    /// Stores a host round in one transaction: samples, facts, new log lines (and their
    /// cursors), and the probe runs.
    pub fn write_round(&mut self, round: &HostRound) -> Result<Stored, StoreError> {
        let mut stored = self.write_rounds(std::slice::from_ref(round))?;
        Ok(stored.pop().unwrap_or_default())
    }

    /// Stores several host rounds in one transaction: the writer batches the rounds
    /// that queued up while it was busy. All of them land, or none.
    pub fn write_rounds(&mut self, rounds: &[HostRound]) -> Result<Vec<Stored>, StoreError> {
        let Store {
            conn,
            series_ids,
            latest,
            open_buckets,
            ends,
            head,
            pending,
            caches_epoch,
            head_writes,
            outbox,
            ..
        } = self;
        // Immediate: the write lock first, so the head position read here stays true
        // until the commit (no other writer can append in between).
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql("begin rounds"))?;
        head.sync(&tx)?;
        let begun = crate::head::position(&tx)?;
        if *caches_epoch != Some(begun.epoch) {
            // Chunks were written since the caches were filled (by another process, or
            // before this one started): sealed ends and row ends are read afresh.
            ends.clear();
            *caches_epoch = Some(begun.epoch);
        }
        pending.clear();
        let mut stored = Vec::with_capacity(rounds.len());
        let mut written = Ok(());
        // Series ids in sample order, for the shared latest values after the commit.
        let mut ids = Vec::new();
        // Samples the store derived (event counters): (host, ts, series id, sample).
        let mut derived = Vec::new();
        for round in rounds {
            let caches = Caches {
                series_ids: &mut *series_ids,
                open_buckets: &mut *open_buckets,
                ends: &mut *ends,
                head,
                pending: &mut *pending,
                head_writes: *head_writes,
            };
            match write_one(&tx, caches, round, &mut ids, &mut derived) {
                Ok(s) => stored.push(s),
                Err(e) => {
                    written = Err(e);
                    break;
                }
            }
        }
        let queued = written.and_then(|()| match outbox.as_mut() {
            Some(queue) => {
                queue.clear();
                queue_samples(queue, rounds, &ids, &derived);
                crate::outbox::append(&tx, queue, crate::now_ms())
            }
            None => Ok(()),
        });
        let logged = queued.and_then(|()| crate::head::append(&tx, &pending.log));
        let committed = logged.and_then(|log_id| {
            // The head takes the samples under its lock, with the commit: a read sees
            // both or neither.
            let mut state = head.write_state();
            tx.commit().map_err(sql("commit rounds"))?;
            state.committed(begun, log_id, pending);
            Ok(())
        });
        pending.clear();
        if let Err(e) = committed {
            // Ids cached in a rolled-back transaction may not exist: forget them.
            series_ids.clear();
            open_buckets.clear();
            ends.clear();
            *caches_epoch = None;
            if let Some(latest) = latest {
                latest.invalidate();
            }
            return Err(e);
        }
        if let Some(latest) = latest {
            let mut ids = ids.into_iter();
            for round in rounds {
                for run in &round.runs {
                    // Samples first: zip must not take an id past the run's last sample.
                    let written = run.output.samples.iter().zip(ids.by_ref());
                    latest.record(&round.host, run.started_ms, written.map(|(s, id)| (id, s)));
                }
            }
            for (host, ts, id, sample) in &derived {
                latest.record(host, *ts, std::iter::once((*id, sample)));
            }
        }
        if self.seal_after_write {
            self.seal(i64::MAX)?;
        }
        Ok(stored)
    }
}

/// Every sample of `rounds` as (series id, time, value): each probe sample with the id
/// `write_one` gave it, then what the store derived.
fn queue_samples(
    queue: &mut Vec<crate::head::Entry>,
    rounds: &[HostRound],
    ids: &[i64],
    derived: &[(String, i64, i64, dcmon_probes::Sample)],
) {
    let mut ids = ids.iter();
    for round in rounds {
        for run in &round.runs {
            for (sample, id) in run.output.samples.iter().zip(ids.by_ref()) {
                queue.push((*id, run.started_ms, sample.value));
            }
        }
    }
    queue.extend(derived.iter().map(|(_, ts, id, s)| (*id, *ts, s.value)));
}

/// The writer's caches a round updates.
struct Caches<'a> {
    series_ids: &'a mut SeriesIds,
    open_buckets: &'a mut crate::rollup::OpenBuckets,
    ends: &'a mut crate::sealing::Ends,
    head: &'a crate::head::Head,
    pending: &'a mut crate::head::Pending,
    head_writes: bool,
}

/// One host round inside the caller's transaction.
fn write_one(
    tx: &rusqlite::Transaction<'_>,
    caches: Caches<'_>,
    round: &HostRound,
    ids: &mut Vec<i64>,
    derived: &mut Vec<(String, i64, i64, dcmon_probes::Sample)>,
) -> Result<Stored, StoreError> {
    let mut stored = Stored::default();
    {
        let mut samples = SampleWriter::new(tx, caches)?;
        let mut upsert_fact = tx
            .prepare_cached(
                "INSERT INTO facts (host, key, value, seen) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (host, key) DO UPDATE SET value = excluded.value, seen = excluded.seen",
            )
            .map_err(sql("prepare fact upsert"))?;
        let mut insert_run = tx
            .prepare_cached(
                "INSERT INTO probe_runs (host, probe, started, duration_ms, status, error, warnings, samples)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(sql("prepare probe run insert"))?;
        let mut upsert_latest_run = tx
            .prepare_cached(crate::latest_runs::UPSERT)
            .map_err(sql("prepare latest run upsert"))?;
        let mut previous_status = tx
            .prepare_cached("SELECT status FROM latest_runs WHERE host = ?1 AND probe = ?2")
            .map_err(sql("prepare previous run status"))?;
        for run in &round.runs {
            for sample in &run.output.samples {
                let id = samples.put(&round.host, sample, run.started_ms)?;
                ids.push(id);
                stored.samples += 1;
            }
            for fact in &run.output.facts {
                upsert_fact
                    .execute(params![round.host, fact.key, fact.value, run.started_ms])
                    .map_err(sql("upsert fact"))?;
            }
            let (logs, events) = store_logs(tx, &round.host, run, &mut stored.cursors)?;
            stored.logs += logs;
            // The same sample path for what the store derives from the new lines.
            for (sample, ts) in crate::event_counters::samples(tx, &round.host, run, &events)? {
                let id = samples.put(&round.host, &sample, ts)?;
                derived.push((round.host.clone(), ts, id, sample));
                stored.samples += 1;
            }
            // The run itself as series (not counted as the probe's samples).
            for sample in crate::run_series::samples(run) {
                let id = samples.put(&round.host, &sample, run.started_ms)?;
                derived.push((round.host.clone(), run.started_ms, id, sample));
            }
            let warnings = warnings_text(&run.output.warnings);
            let row = params![
                round.host,
                run.probe,
                run.started_ms,
                run.duration_ms,
                run.status.as_str(),
                run.error,
                warnings,
                run.output.samples.len() as i64
            ];
            let shown = match run.status {
                RunStatus::Ok if run.output.partly_misread() => "partial",
                status => status.as_str(),
            };
            // A full history row only for what the run series cannot say: a failure,
            // warnings, or a status other than the last run's (the first run included).
            let previous: Option<String> = previous_status
                .query_row(params![round.host, run.probe], |r| r.get(0))
                .optional()
                .map_err(sql("read previous run status"))?;
            if run.status != RunStatus::Ok
                || warnings.is_some()
                || previous.as_deref() != Some(shown)
            {
                insert_run.execute(row).map_err(sql("insert probe run"))?;
            }
            let warning_count = run.output.warnings.len() as i64;
            let mut latest = row.to_vec();
            latest.push(&shown);
            latest.push(&warning_count);
            upsert_latest_run
                .execute(latest.as_slice())
                .map_err(sql("upsert latest run"))?;
        }
    }
    store_events(tx, round)?;
    if let Some(state) = &round.state {
        tx.prepare_cached(
            "INSERT INTO hosts (host, online, since, last_seen, last_error) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (host) DO UPDATE SET online = excluded.online, since = excluded.since,
               last_seen = coalesce(excluded.last_seen, hosts.last_seen), last_error = excluded.last_error",
        )
        .map_err(sql("prepare host state"))?
        .execute(params![round.host, state.online, state.since_ms, state.last_seen_ms, state.last_error])
        .map_err(sql("write host state"))?;
    }
    Ok(stored)
}

/// The poller's own events about the host (offline, back online), as `dcmon` log lines.
fn store_events(tx: &rusqlite::Transaction<'_>, round: &HostRound) -> Result<(), StoreError> {
    let mut insert = tx
        .prepare_cached("INSERT INTO logs (host, source, ts, priority, unit, message) VALUES (?1, 'dcmon', ?2, ?3, ?4, ?5)")
        .map_err(sql("prepare event insert"))?;
    for e in &round.events {
        insert
            .execute(params![
                round.host,
                e.ts_ms.unwrap_or(0),
                e.priority,
                e.unit,
                e.message
            ])
            .map_err(sql("insert event"))?;
    }
    Ok(())
}

/// Stores the run's log entries that are new since each source's cursor; returns how many.
fn store_logs(
    tx: &rusqlite::Transaction<'_>,
    host: &str,
    run: &ProbeRun,
    written: &mut BTreeMap<String, String>,
) -> Result<(usize, Vec<Labels>), StoreError> {
    let mut by_source: BTreeMap<&str, Vec<LogEntry>> = BTreeMap::new();
    // A source with a known position but no new line still moves its cursor.
    for source in run.output.cursors.keys() {
        by_source.entry(source.as_str()).or_default();
    }
    for entry in &run.output.logs {
        by_source
            .entry(entry.source.as_str())
            .or_default()
            .push(entry.clone());
    }
    let mut get_cursor = tx
        .prepare_cached("SELECT cursor FROM log_cursors WHERE host = ?1 AND source = ?2")
        .map_err(sql("prepare cursor read"))?;
    let mut set_cursor = tx
        .prepare_cached("INSERT INTO log_cursors (host, source, cursor) VALUES (?1, ?2, ?3) ON CONFLICT (host, source) DO UPDATE SET cursor = excluded.cursor")
        .map_err(sql("prepare cursor write"))?;
    let mut insert = tx
        .prepare_cached("INSERT INTO logs (host, source, ts, priority, unit, message, labels) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
        .map_err(sql("prepare log insert"))?;
    let mut stored = 0;
    // The labels of the new labelled lines of the one source the run names as its
    // kernel log (so copies in another source are not counted twice); the event
    // counters decide which of them they count.
    let mut events = Vec::new();
    for (source, entries) in by_source {
        let saved: Option<String> = get_cursor
            .query_row(params![host, source], |r| r.get(0))
            .optional()
            .map_err(sql("read cursor"))?;
        let (new, next) = (run.new_logs)(entries, saved.as_deref());
        let counted = run.output.kernel_log.as_deref() == Some(source);
        for e in &new {
            let ts = e.ts_ms.unwrap_or(run.started_ms);
            let labels = (!e.labels.is_empty()).then(|| labels_json(&e.labels));
            insert
                .execute(params![
                    host, source, ts, e.priority, e.unit, e.message, labels
                ])
                .map_err(sql("insert log"))?;
            if counted && !e.labels.is_empty() {
                events.push(e.labels.clone());
            }
        }
        stored += new.len();
        if let Some(next) = run.output.cursors.get(source).cloned().or(next) {
            set_cursor
                .execute(params![host, source, next])
                .map_err(sql("write cursor"))?;
            written.insert(source.to_string(), next);
        }
    }
    Ok((stored, events))
}

/// Puts samples into their series inside one transaction, with the statements
/// prepared once per host round rather than looked up per sample.
struct SampleWriter<'t, 'c> {
    tx: &'t rusqlite::Transaction<'t>,
    caches: Caches<'c>,
    upsert_series: rusqlite::CachedStatement<'t>,
    insert_sample: rusqlite::CachedStatement<'t>,
}

impl<'t, 'c> SampleWriter<'t, 'c> {
    fn new(tx: &'t rusqlite::Transaction<'t>, caches: Caches<'c>) -> Result<Self, StoreError> {
        Ok(SampleWriter {
            tx,
            caches,
            upsert_series: tx
                .prepare_cached(
                    "INSERT INTO series (host, name, labels, kind, unit) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (host, name, labels) DO UPDATE SET kind = excluded.kind, unit = excluded.unit
                     RETURNING id",
                )
                .map_err(sql("prepare series upsert"))?,
            insert_sample: tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO samples (series_id, ts, value) VALUES (?1, ?2, ?3)",
                )
                .map_err(sql("prepare sample insert"))?,
        })
    }

    /// One sample into its series (created on first sight, its id cached) at `ts`,
    /// with its 10-minute rollup.
    fn put(
        &mut self,
        host: &str,
        sample: &dcmon_probes::Sample,
        ts: i64,
    ) -> Result<i64, StoreError> {
        let series_ids = &mut *self.caches.series_ids;
        let cached = series_ids
            .get(host)
            .and_then(|by_name| by_name.get(sample.name.as_str()))
            .and_then(|by_labels| by_labels.get(&sample.labels));
        let id = match cached {
            Some(id) => *id,
            None => {
                let labels = labels_json(&sample.labels);
                let id: i64 = self
                    .upsert_series
                    .query_row(
                        params![host, sample.name, labels, sample.kind.as_str(), sample.unit],
                        |r| r.get(0),
                    )
                    .map_err(sql("upsert series"))?;
                series_ids
                    .entry(host.to_string())
                    .or_default()
                    .entry(sample.name.clone())
                    .or_default()
                    .insert(sample.labels.clone(), id);
                id
            }
        };
        let Caches {
            open_buckets,
            ends,
            head,
            pending,
            head_writes,
            ..
        } = &mut self.caches;
        let after = |end: Option<i64>| end.is_none_or(|end| ts > end);
        let known = crate::sealing::series_ends(self.tx, ends, id)?;
        if *head_writes && after(known.chunks) && after(known.rows) {
            // Newer than all its chunks and rows: into the head (see head.rs).
            pending.put(id, ts, sample.value);
        } else {
            // A late sample: into `samples`, its chunks moved back there first when it
            // falls into sealed time.
            let src = crate::points::Source::writer(self.tx, head, pending);
            crate::sealing::unseal_for_write(&src, ends, id, ts)?;
            self.insert_sample
                .execute(params![id, ts, sample.value])
                .map_err(sql("insert sample"))?;
            if let Some(e) = ends.get_mut(&id) {
                e.rows = Some(e.rows.map_or(ts, |end| end.max(ts)));
            }
        }
        let src = crate::points::Source::writer(self.tx, head, pending);
        crate::rollup::after_sample(&src, open_buckets, id, ts, sample.value)?;
        Ok(id)
    }
}

/// Warnings kept with a run: the first few and how many more, so a run that
/// misread a 100,000-line output stores one short line.
fn warnings_text(warnings: &[dcmon_probes::ParseError]) -> Option<String> {
    const KEPT: usize = 5;
    if warnings.is_empty() {
        return None;
    }
    let mut text = warnings
        .iter()
        .take(KEPT)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if warnings.len() > KEPT {
        text.push_str(&format!("; … and {} more", warnings.len() - KEPT));
    }
    Some(text)
}
