//! Remote write: every stored sample goes on to each `[[remote_write]]` receiver
//! (Prometheus remote write 1.0), from the outbox the writer fills in the samples' own
//! transaction (`dcmon_store::outbox`). One task per receiver reads the outbox after its
//! place, sends batches in order, one at a time, and moves its place on when a batch
//! is accepted (or refused for good: a 4xx cannot succeed by repeating it). 5xx answers
//! and network errors keep the batch and retry it with doubling pauses; meanwhile new
//! samples wait in the outbox, on disk, up to the queue's capacity.

pub mod client;
pub mod encode;

use crate::health::Health;
use crate::ingest::Writer;
use client::{Client, Outcome};
use dcmon_inventory::cluster::RemoteWrite;
use dcmon_store::Store;
use encode::Encoder;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How often a caught-up sender looks for new samples.
const LOOK_EVERY: Duration = Duration::from_millis(200);
/// How often rows every receiver took, and rows past capacity, are deleted.
const TRIM_EVERY: Duration = Duration::from_secs(5);

/// What every receiver's task shares.
#[derive(Clone)]
pub struct Shared {
    pub db: PathBuf,
    pub writer: Writer,
    pub health: Arc<Health>,
    /// `replica="I"` when several pollers poll each host.
    pub replica: Option<(String, String)>,
}

/// Starts one task per receiver and the trimmer; they end when `shutdown` turns true
/// (what is not sent stays in the outbox for the next start).
pub fn spawn(
    remotes: Vec<RemoteWrite>,
    shared: Shared,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    if remotes.is_empty() {
        return Vec::new();
    }
    let mut tasks: Vec<_> = remotes
        .iter()
        .map(|r| tokio::spawn(run(r.clone(), shared.clone(), shutdown.clone())))
        .collect();
    tasks.push(tokio::spawn(trim(remotes, shared, shutdown)));
    tasks
}

/// Sleeps `pause`; false when the service is stopping.
async fn pause(pause: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(pause) => !*shutdown.borrow(),
        _ = shutdown.changed() => !*shutdown.borrow(),
    }
}

/// A read on the receiver's own connection, off the runtime.
async fn read<T: Send + 'static>(
    store: &Arc<Mutex<Store>>,
    f: impl FnOnce(&Store) -> Result<T, dcmon_store::StoreError> + Send + 'static,
) -> Result<T, String> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let store = store.lock().unwrap_or_else(|e| e.into_inner());
        f(&store).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

async fn run(config: RemoteWrite, shared: Shared, mut shutdown: watch::Receiver<bool>) {
    let name = config.name.clone();
    let client = match Client::new(&config) {
        Ok(c) => c,
        Err(why) => {
            crate::log!(
                "dcmon: remote write {name}: {why}; nothing is sent to it until it is fixed and dcmon restarted"
            );
            return;
        }
    };
    let db = shared.db.clone();
    let opened = tokio::task::spawn_blocking(move || Store::open(&db).map_err(|e| e.to_string()))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
    let store = match opened {
        Ok(s) => Arc::new(Mutex::new(s)),
        Err(e) => {
            crate::log!("dcmon: remote write {name}: {e}");
            return;
        }
    };
    let mut extra: Vec<(String, String)> = config
        .external_labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    extra.extend(shared.replica.clone());
    let mut encoder = Encoder::new(extra);
    let q = config.queue;
    let remote = name.clone();
    let mut cursor = match read(&store, move |s| s.outbox_cursor(&remote)).await {
        Ok(c) => c,
        Err(why) => {
            crate::log!("dcmon: remote write {name}: {why}");
            return;
        }
    };
    // The last problem logged: each is logged once, and its end once.
    let mut said: Option<String> = None;
    // The poller's own series must move forward in time from request to request.
    let mut own_ms = 0i64;
    // The last batch was full: more is queued and due at once, sent without counting
    // the backlog first (a count reads every queued row: a long outage's queue would
    // be read over and over, batch by batch). The figure is then refreshed once a second.
    let mut full = false;
    let mut counted = tokio::time::Instant::now();
    // The pending and firing alerts sent with each request (`ALERTS`), read again at
    // most once a second: they change only when rules are evaluated, and a backlog
    // drains many requests a second.
    let mut alerts: Vec<encode::OwnSeries> = Vec::new();
    let mut alerts_read: Option<tokio::time::Instant> = None;
    loop {
        if full && counted.elapsed() >= Duration::from_secs(1) {
            show_queue(&store, cursor, &shared, &name).await;
            counted = tokio::time::Instant::now();
        } else if !full {
            let backlog = match count_queue(&store, cursor, &shared, &name).await {
                Ok(b) => b,
                Err(why) => {
                    crate::log!("dcmon: remote write {name}: cannot read the queue: {why}");
                    if !pause(Duration::from_secs(1), &mut shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            counted = tokio::time::Instant::now();
            let now = crate::host_round::now_ms();
            let waited = backlog
                .oldest_ms
                .is_some_and(|o| now.saturating_sub(o) >= q.batch_send_deadline.as_millis() as i64);
            let due = backlog.samples > 0
                && (backlog.samples as usize >= q.max_samples_per_send || waited);
            if !due {
                if !pause(LOOK_EVERY, &mut shutdown).await {
                    return;
                }
                continue;
            }
        }
        let max = q.max_samples_per_send;
        let rows = match read(&store, move |s| s.outbox_after(cursor, max)).await {
            Ok(rows) if !rows.is_empty() => rows,
            // Sent to the end (the last batch was exactly full), or trimmed away
            // meanwhile: count the backlog again before reading more.
            Ok(_) => {
                full = false;
                continue;
            }
            Err(why) => {
                crate::log!("dcmon: remote write {name}: cannot read the queue: {why}");
                full = false;
                if !pause(Duration::from_secs(1), &mut shutdown).await {
                    return;
                }
                continue;
            }
        };
        let unknown = encoder.unknown(&rows);
        if !unknown.is_empty() {
            match read(&store, move |s| s.series_names(&unknown)).await {
                Ok(names) => names.iter().for_each(|(id, n)| encoder.learn(*id, n)),
                Err(why) => {
                    crate::log!("dcmon: remote write {name}: cannot read series names: {why}");
                    if !pause(Duration::from_secs(1), &mut shutdown).await {
                        return;
                    }
                    continue;
                }
            }
        }
        own_ms = crate::host_round::now_ms().max(own_ms.saturating_add(1));
        // The poller's own figures and its pending and firing alerts (`ALERTS`, as on
        // `/metrics`), as of now: the central view lists every poller's alerts.
        if alerts_read.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            if let Ok(active) = read(&store, |s| s.alerts()).await {
                alerts = dcmon_store::alerts::alert_series(&active)
                    .into_iter()
                    .map(|labels| encode::OwnSeries {
                        name: "ALERTS".to_string(),
                        labels,
                        value: 1.0,
                    })
                    .collect();
            }
            alerts_read = Some(tokio::time::Instant::now());
        }
        let mut own = shared.health.series();
        own.extend(alerts.iter().cloned());
        let (body, skipped) = encoder.request(&rows, &own, own_ms);
        if skipped > 0 {
            // The series was deleted (retention) between queuing and sending: its
            // samples cannot be named any more, so they are dropped, counted and said.
            shared.health.remote(&name, |r| r.dropped += skipped as u64);
            crate::log!(
                "dcmon: remote write {name}: {skipped} queued samples dropped: their series are no longer in the database"
            );
        }
        let last = rows.last().map_or(cursor, |r| r.id);
        full = rows.iter().map(|r| r.entries.len()).sum::<usize>() >= max;
        drop(rows);
        let mut backoff = q.min_backoff;
        loop {
            // A receiver that holds the request unanswered (stopping, stalled) must
            // not freeze the queue figure: it is read again every second meanwhile.
            let post = client.post(body.bytes.clone());
            tokio::pin!(post);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let outcome = loop {
                tokio::select! {
                    outcome = &mut post => break outcome,
                    _ = tick.tick() => show_queue(&store, cursor, &shared, &name).await,
                }
            };
            match outcome {
                Outcome::Sent => {
                    shared.health.remote(&name, |r| {
                        r.sent += body.samples as u64;
                        r.bytes += body.bytes.len() as u64;
                    });
                    if said.take().is_some() {
                        crate::log!("dcmon: remote write {name}: sending again");
                    }
                    break;
                }
                Outcome::Refused(why) => {
                    shared
                        .health
                        .remote(&name, |r| r.failed += body.samples as u64);
                    if first_time(&mut said, why.clone()) {
                        crate::log!(
                            "dcmon: remote write {name}: {} samples refused and dropped, not retried (further refusals for the same reason are only counted, in dcmon_remote_write_samples_failed_total): {why}",
                            body.samples
                        );
                    }
                    break;
                }
                Outcome::Retry(why) => {
                    shared
                        .health
                        .remote(&name, |r| r.retried += body.samples as u64);
                    if first_time(&mut said, why.clone()) {
                        crate::log!(
                            "dcmon: remote write {name}: cannot send, samples stay queued and are retried: {why}"
                        );
                    }
                    if !pause(backoff, &mut shutdown).await {
                        return;
                    }
                    backoff = backoff.saturating_mul(2).min(q.max_backoff);
                    // The queue keeps growing while the receiver is away: show it.
                    show_queue(&store, cursor, &shared, &name).await;
                }
            }
        }
        cursor = last;
        shared.writer.outbox_taken(&name, cursor);
    }
}

/// What is queued after `cursor`, shown as `name`'s queue figure.
async fn count_queue(
    store: &Arc<Mutex<Store>>,
    cursor: i64,
    shared: &Shared,
    name: &str,
) -> Result<dcmon_store::outbox::Backlog, String> {
    let backlog = read(store, move |s| s.outbox_backlog(cursor)).await?;
    shared
        .health
        .remote(name, |r| r.queue_samples = backlog.samples);
    Ok(backlog)
}

/// Refreshes the queue figure of `name` (a failed read keeps the last one).
async fn show_queue(store: &Arc<Mutex<Store>>, cursor: i64, shared: &Shared, name: &str) {
    let _ = count_queue(store, cursor, shared, name).await;
}

/// Whether `why` differs from the problem last said (and is now the one said): each
/// problem is logged once, not once a batch.
fn first_time(said: &mut Option<String>, why: String) -> bool {
    if said.as_deref() == Some(why.as_str()) {
        return false;
    }
    *said = Some(why);
    true
}

/// Deletes what every receiver took and what outlived its receiver's capacity (the
/// longest capacity of all: a row is shared), counting the latter as dropped.
async fn trim(remotes: Vec<RemoteWrite>, shared: Shared, mut shutdown: watch::Receiver<bool>) {
    let names: Vec<String> = remotes.iter().map(|r| r.name.clone()).collect();
    let capacity = remotes
        .iter()
        .map(|r| r.queue.capacity)
        .max()
        .unwrap_or_default();
    while pause(TRIM_EVERY, &mut shutdown).await {
        let oldest = crate::host_round::now_ms()
            .saturating_sub(i64::try_from(capacity.as_millis()).unwrap_or(i64::MAX));
        match shared.writer.outbox_trim(names.clone(), oldest).await {
            Ok(trimmed) => {
                for (remote, lost) in trimmed.dropped {
                    crate::log!(
                        "dcmon: remote write {remote}: {lost} samples were queued longer than the queue's capacity ({}) and are dropped unsent",
                        humantime::format_duration(capacity)
                    );
                    shared
                        .health
                        .remote(&remote, |r| r.dropped += u64::try_from(lost).unwrap_or(0));
                }
            }
            Err(why) => crate::log!("dcmon: remote write: cannot trim the queue: {why}"),
        }
    }
}
