//! `dcmon serve`: every host's probes on their schedules, all day. One task per host
//! (see `host_task`), one writer thread, cron schedules through tokio-cron-scheduler,
//! and the inventory reloaded on SIGHUP or when its file changes, without touching the
//! tasks (and SSH sessions) of hosts whose settings did not change.

mod alerting;
mod host_task;

pub mod sessions;

use crate::ingest::Writer;
use crate::plan::{self, Planned, Trigger};
use crate::ssh::Connector;
use dcmon_inventory::{Host, Inventory, InventoryError};
use dcmon_store::{HostRound, Store, StoreError, Stored};
use host_task::{Backoff, HostTask, Tracker};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tokio_cron_scheduler::{Job, JobScheduler};

#[derive(Debug, Error)]
pub enum ServeError {
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cron scheduler: {0}")]
    Scheduler(String),
    #[error("{0}")]
    Cluster(String),
}

/// Where the hosts come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// An inventory file, reloaded on SIGHUP and when it changes.
    File(PathBuf),
    /// No inventory: this machine, under this name.
    Local(String),
}

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub accept_new_host_keys: bool,
    pub output_cap: usize,
    pub handshake_limit: usize,
    /// Print one JSON line per stored (or failed) round on stdout.
    pub report_json: bool,
    /// How often the inventory file's modification time is checked.
    pub reload_check: Duration,
    /// Where host tasks share their live sessions (with dashboard actions).
    pub sessions: sessions::Sessions,
    /// The database, for the alert loop's own read connection (`None`: no alerting).
    pub db: Option<PathBuf>,
    /// The poller's own figures (`/metrics`, remote write).
    pub health: Arc<crate::health::Health>,
    /// `--shard I/N`: over `[cluster] shard`.
    pub shard: Option<dcmon_inventory::cluster::Shard>,
}

impl ServeOptions {
    fn report(&self, report: Report) {
        if let Ok(line) = serde_json::to_string(&report) {
            // A closed stdout (`dcmon serve --json | head`) must not stop the service.
            use std::io::Write as _;
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
    }
}

/// One round as `dcmon serve --json` reports it once it is on disk (or not).
#[derive(Debug, Serialize)]
pub struct Report {
    pub event: &'static str,
    pub host: String,
    pub probes: Vec<RunReport>,
    pub samples: usize,
    pub logs: usize,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RunReport {
    pub probe: String,
    pub started_ms: i64,
    pub duration_ms: i64,
    pub status: &'static str,
    pub samples: usize,
    pub error: Option<String>,
}

impl Report {
    fn of(round: &HostRound) -> Report {
        Report {
            event: "stored",
            host: round.host.clone(),
            probes: round
                .runs
                .iter()
                .map(|r| RunReport {
                    probe: r.probe.clone(),
                    started_ms: r.started_ms,
                    duration_ms: r.duration_ms,
                    status: r.status.as_str(),
                    samples: r.output.samples.len(),
                    error: r.error.clone(),
                })
                .collect(),
            samples: 0,
            logs: 0,
            error: None,
        }
    }

    fn stored(mut self, stored: &Stored) -> Report {
        self.samples = stored.samples;
        self.logs = stored.logs;
        self
    }

    fn failed(mut self, error: String) -> Report {
        self.event = "store_failed";
        self.error = Some(error);
        self
    }
}

struct Running {
    host: Host,
    plan: Vec<Planned>,
    stop: watch::Sender<bool>,
    join: tokio::task::JoinHandle<()>,
    cron_jobs: Vec<uuid::Uuid>,
}

struct Service {
    source: Source,
    options: Arc<ServeOptions>,
    connector: Arc<Connector>,
    writer: Writer,
    cursors: BTreeMap<String, BTreeMap<String, String>>,
    running: HashMap<String, Running>,
    cron: Option<JobScheduler>,
    retention: dcmon_inventory::model::Retention,
    /// The alert loop's rules and receivers, replaced on reload.
    alerting: Option<watch::Sender<dcmon_inventory::Alerting>>,
    /// The receivers remote write started with (a reload cannot change them).
    remote_writes: Vec<dcmon_inventory::cluster::RemoteWrite>,
}

/// How often retention sweeps run (the first a minute after start).
const SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// How often freed heap pages go back to the kernel (`heap::trim`).
const TRIM_EVERY: Duration = Duration::from_secs(60);
/// How often the head is sealed: each ten-minute window soon after it ends (see
/// `dcmon_store::sealing`), so the head holds about a quarter of an hour.
const SEAL_EVERY: Duration = Duration::from_secs(120);

/// Runs until `shutdown` turns true; then stops every host and flushes the writer.
pub async fn serve(
    source: Source,
    mut store: Store,
    options: ServeOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let inventory = load(&source, options.shard)?;
    let cursors = store.log_cursors()?;
    // Remote write reads the outbox on a connection of its own: it needs the file.
    let remote_writes = match &options.db {
        Some(_) => inventory.remote_writes.clone(),
        None => Vec::new(),
    };
    store.fill_outbox(!remote_writes.is_empty());
    let (writer, store_thread) = Writer::spawn(store);
    let senders = crate::remote_write::spawn(
        remote_writes.clone(),
        crate::remote_write::Shared {
            db: options.db.clone().unwrap_or_default(),
            writer: writer.clone(),
            health: options.health.clone(),
            replica: inventory.cluster.replica_label(),
        },
        shutdown.clone(),
    );
    let mut service = Service {
        source: source.clone(),
        connector: Arc::new(Connector::new(options.handshake_limit)),
        options: Arc::new(options),
        writer,
        cursors,
        running: HashMap::new(),
        cron: None,
        retention: inventory.retention,
        alerting: None,
        remote_writes,
    };
    let alert_loop = service.options.db.clone().map(|db| {
        let (config, configured) = watch::channel(inventory.alerting.clone());
        service.alerting = Some(config);
        tokio::spawn(alerting::run(
            db,
            configured,
            service.writer.clone(),
            shutdown.clone(),
        ))
    });
    service.apply(&inventory).await?;
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut modified = (modified_time(&source), service.rules_file_time());
    let mut check = tokio::time::interval(service.options.reload_check);
    let mut sweep = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(60),
        SWEEP_EVERY,
    );
    let mut seal = tokio::time::interval_at(tokio::time::Instant::now() + SEAL_EVERY, SEAL_EVERY);
    let mut trim = tokio::time::interval_at(tokio::time::Instant::now() + TRIM_EVERY, TRIM_EVERY);
    loop {
        let hup = async {
            match hangup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.changed() => if *shutdown.borrow() { break },
            _ = hup => service.reload("SIGHUP").await,
            _ = sweep.tick() => service.sweep(),
            _ = seal.tick() => service.writer.seal(crate::host_round::now_ms()),
            _ = trim.tick() => {
                let _ = tokio::task::spawn_blocking(crate::heap::trim).await;
            }
            _ = check.tick() => {
                let now = (modified_time(&source), service.rules_file_time());
                if now != modified {
                    modified = now;
                    service.reload("inventory file changed").await;
                    // The alerts file the reloaded inventory names, as it is now.
                    modified.1 = service.rules_file_time();
                }
            }
        }
    }
    service.stop_all().await;
    // Redfish sessions held between rounds end with the service (BMCs hold few).
    crate::redfish::logout_all(std::time::Duration::from_secs(3)).await;
    drop(service);
    // The alert loop and the remote-write senders hold writers too: the writer
    // thread ends after them.
    if let Some(alert_loop) = alert_loop {
        let _ = alert_loop.await;
    }
    for sender in senders {
        let _ = sender.await;
    }
    let _ = tokio::task::spawn_blocking(move || store_thread.join()).await;
    Ok(())
}

/// The inventory, with only the hosts this poller's shard takes.
fn load(
    source: &Source,
    shard: Option<dcmon_inventory::cluster::Shard>,
) -> Result<Inventory, ServeError> {
    let mut inventory = match source {
        Source::File(path) => dcmon_inventory::load(path, &dcmon_probes::names()),
        Source::Local(name) => Ok(Inventory::local(
            name,
            dcmon_probes::registry::local_defaults(),
        )),
    }?;
    if let Some(shard) = shard {
        inventory
            .cluster
            .set_shard(shard)
            .map_err(ServeError::Cluster)?;
    }
    if let Some(shard) = inventory.cluster.shard {
        let all = inventory.hosts.len();
        let cluster = inventory.cluster.clone();
        inventory.hosts.retain(|h| cluster.owns(&h.name));
        crate::log!(
            "dcmon serve: shard {shard} (replicas {}) polls {} of the inventory's {all} hosts",
            cluster.replicas,
            inventory.hosts.len()
        );
    }
    crate::redfish::warn_insecure(&inventory.hosts);
    Ok(inventory)
}

fn modified_time(source: &Source) -> Option<SystemTime> {
    match source {
        Source::File(path) => std::fs::metadata(path).and_then(|m| m.modified()).ok(),
        Source::Local(_) => None,
    }
}

impl Service {
    /// When the alerts file (`alerts = "FILE"`) last changed: it is watched like the
    /// inventory.
    fn rules_file_time(&self) -> Option<SystemTime> {
        let file = self.alerting.as_ref()?.borrow().rules_file.clone()?;
        std::fs::metadata(file).and_then(|m| m.modified()).ok()
    }

    fn sweep(&self) {
        let now = crate::host_round::now_ms();
        let before = |keep: Duration| now - keep.as_millis() as i64;
        self.writer.sweep(dcmon_store::retention::Cutoffs {
            samples_before_ms: before(self.retention.samples),
            logs_before_ms: before(self.retention.logs),
            seal_now_ms: now,
        });
    }

    async fn reload(&mut self, why: &str) {
        match load(&self.source, self.options.shard) {
            Ok(inventory) => {
                if inventory.remote_writes != self.remote_writes && self.options.db.is_some() {
                    crate::log!(
                        "dcmon serve: [[remote_write]] changed in the inventory; the receivers dcmon started with stay until it is restarted"
                    );
                }
                if let Err(e) = self.apply(&inventory).await {
                    crate::log!("dcmon serve: reload ({why}) failed: {e}");
                } else {
                    crate::log!(
                        "dcmon serve: inventory reloaded ({why}): {} hosts",
                        inventory.hosts.len()
                    );
                }
            }
            // A broken edit keeps the last good inventory running.
            Err(e) => crate::log!(
                "dcmon serve: inventory not reloaded ({why}), the previous one stays in force:\n{e}"
            ),
        }
    }

    /// Starts, restarts or stops host tasks so they match the inventory; hosts whose
    /// settings and plan are unchanged keep their task and SSH session.
    async fn apply(&mut self, inventory: &Inventory) -> Result<(), ServeError> {
        self.retention = inventory.retention;
        if let Some(alerting) = &self.alerting {
            alerting.send_replace(inventory.alerting.clone());
        }
        self.writer.directory(
            inventory
                .hosts
                .iter()
                .map(|h| dcmon_store::Listed {
                    host: h.name.clone(),
                    groups: h.groups.clone(),
                    labels: h.labels.clone(),
                })
                .collect(),
        );
        let wanted: HashMap<&str, &Host> = inventory
            .hosts
            .iter()
            .map(|h| (h.name.as_str(), h))
            .collect();
        self.options.health.keep_hosts(&|h| wanted.contains_key(h));
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|name| !wanted.contains_key(name.as_str()))
            .cloned()
            .collect();
        for name in gone {
            self.stop(&name).await;
        }
        for host in &inventory.hosts {
            let planned = plan::plan(host, inventory);
            let unchanged = self
                .running
                .get(&host.name)
                .is_some_and(|r| r.host == *host && same_plan(&r.plan, &planned));
            if unchanged {
                continue;
            }
            self.stop(&host.name).await;
            self.start(host.clone(), planned).await?;
        }
        Ok(())
    }

    async fn start(&mut self, host: Host, planned: Vec<Planned>) -> Result<(), ServeError> {
        let (stop, stop_rx) = watch::channel(false);
        // Room for one pending cron firing per probe: more would only bunch runs up.
        let (cron_tx, cron_rx) = mpsc::channel(planned.len().max(1));
        let mut cron_jobs = Vec::new();
        for (i, p) in planned.iter().enumerate() {
            if let Trigger::Cron(expr) = &p.trigger {
                let scheduler = self.scheduler().await?;
                let tx = cron_tx.clone();
                let job = Job::new_async(expr.as_str(), move |_, _| {
                    let tx = tx.clone();
                    Box::pin(async move {
                        let _ = tx.try_send(i);
                    })
                })
                .map_err(|e| ServeError::Scheduler(format!("{expr}: {e}")))?;
                cron_jobs.push(
                    scheduler
                        .add(job)
                        .await
                        .map_err(|e| ServeError::Scheduler(e.to_string()))?,
                );
            }
        }
        let task = HostTask {
            plan: planned.clone(),
            connector: self.connector.clone(),
            writer: self.writer.clone(),
            options: self.options.clone(),
            cursors: self.cursors.get(&host.name).cloned().unwrap_or_default(),
            session: None,
            tracker: Tracker::default(),
            backoff: Backoff::default(),
            failures_in_a_row: Default::default(),
            host: host.clone(),
        };
        let join = tokio::spawn(task.run(cron_rx, stop_rx));
        self.running.insert(
            host.name.clone(),
            Running {
                host,
                plan: planned,
                stop,
                join,
                cron_jobs,
            },
        );
        Ok(())
    }

    async fn scheduler(&mut self) -> Result<&JobScheduler, ServeError> {
        if self.cron.is_none() {
            let scheduler = JobScheduler::new()
                .await
                .map_err(|e| ServeError::Scheduler(e.to_string()))?;
            scheduler
                .start()
                .await
                .map_err(|e| ServeError::Scheduler(e.to_string()))?;
            self.cron = Some(scheduler);
        }
        self.cron
            .as_ref()
            .ok_or_else(|| ServeError::Scheduler("not started".into()))
    }

    async fn stop(&mut self, name: &str) {
        if let Some(running) = self.running.remove(name) {
            if let Some(scheduler) = &self.cron {
                for id in &running.cron_jobs {
                    let _ = scheduler.remove(id).await;
                }
            }
            let _ = running.stop.send(true);
            // A run in progress finishes (within its timeout) and is stored.
            let _ = running.join.await;
        }
    }

    async fn stop_all(&mut self) {
        let names: Vec<String> = self.running.keys().cloned().collect();
        for running in names.iter().filter_map(|n| self.running.get(n)) {
            let _ = running.stop.send(true);
        }
        for name in names {
            self.stop(&name).await;
        }
        if let Some(mut scheduler) = self.cron.take() {
            let _ = scheduler.shutdown().await;
        }
    }
}

fn same_plan(a: &[Planned], b: &[Planned]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.due == y.due && x.trigger == y.trigger)
}
