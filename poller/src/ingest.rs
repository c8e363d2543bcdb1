//! The one writer: SQLite wants a single writing connection, so host tasks send their
//! rounds to a thread that owns the store and hear back once the round is committed.
//! Rounds that queue up while a commit runs go in one transaction; retention sweeps run
//! in small chunks only while no round is waiting.

use dcmon_store::retention::{Cutoffs, Progress};
use dcmon_store::{HostRound, Listed, Store, Stored};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

/// Most rounds committed in one transaction.
const MAX_BATCH: usize = 256;

enum Job {
    Round(HostRound, oneshot::Sender<Result<Stored, String>>),
    Sweep(Cutoffs),
    /// A sealing pass only, as at this time (ms): skipped while a sweep, which seals
    /// at its end, is under way.
    Seal(i64),
    Directory(Vec<Listed>),
    /// What an alert evaluation changed.
    Alerts(dcmon_store::alerts::AlertChanges),
    /// A remote-write receiver took the outbox up to this row.
    OutboxTaken(String, i64),
    /// Trims the outbox for these receivers and this oldest queue time.
    OutboxTrim(
        Vec<String>,
        i64,
        oneshot::Sender<Result<dcmon_store::outbox::Trimmed, String>>,
    ),
}

/// A handle to the writer thread; clone it into every host task.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writer thread. It ends when every `Writer` clone is dropped; join
    /// the handle to know the last round is on disk.
    pub fn spawn(mut store: Store) -> (Writer, std::thread::JoinHandle<()>) {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("dcmon-store".into())
            .spawn(move || {
                let mut sweep: Option<(Cutoffs, Progress)> = None;
                loop {
                    // With a sweep under way, only peek at the queue; otherwise wait.
                    let first = match (&sweep, queue.try_recv()) {
                        (_, Ok(job)) => job,
                        (Some(_), Err(TryRecvError::Empty)) => {
                            sweep = sweep_step(&mut store, sweep);
                            continue;
                        }
                        (_, Err(TryRecvError::Disconnected)) => break,
                        (None, Err(TryRecvError::Empty)) => match queue.blocking_recv() {
                            Some(job) => job,
                            None => break,
                        },
                    };
                    let mut rounds = Vec::new();
                    let mut next = Some(first);
                    while let Some(job) = next.take() {
                        match job {
                            Job::Round(round, reply) => rounds.push((round, reply)),
                            Job::Sweep(cutoffs) => sweep = Some((cutoffs, Progress::default())),
                            Job::Seal(now_ms) => {
                                if sweep.is_none() {
                                    sweep = Some(sealing_only(now_ms));
                                }
                            }
                            Job::Alerts(changes) => {
                                if let Err(e) = store.apply_alerts(&changes) {
                                    crate::log!("dcmon: cannot store alert states: {e}");
                                }
                            }
                            Job::OutboxTaken(remote, id) => {
                                if let Err(e) = store.outbox_taken(&remote, id) {
                                    crate::log!(
                                        "dcmon: cannot save remote write {remote}'s place in the queue: {e}"
                                    );
                                }
                            }
                            Job::OutboxTrim(remotes, oldest_ms, reply) => {
                                let trimmed = store.outbox_trim(&remotes, oldest_ms);
                                let _ = reply.send(trimmed.map_err(|e| e.to_string()));
                            }
                            Job::Directory(hosts) => {
                                if let Err(e) = store.set_directory(&hosts) {
                                    crate::log!(
                                        "dcmon: cannot store the inventory's host list: {e}"
                                    );
                                }
                            }
                        }
                        if rounds.len() < MAX_BATCH {
                            next = queue.try_recv().ok();
                        }
                    }
                    if !rounds.is_empty() {
                        commit(&mut store, rounds);
                    }
                }
            })
            .expect("spawning the store thread"); // only fails when the OS is out of threads
        (Writer { jobs }, thread)
    }

    /// Stores an alert evaluation's changes (in their own transaction, in queue order).
    pub fn alerts(&self, changes: dcmon_store::alerts::AlertChanges) {
        let _ = self.jobs.send(Job::Alerts(changes));
    }

    /// Stores a round; answers once the transaction has committed.
    pub async fn write(&self, round: HostRound) -> Result<Stored, String> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Round(round, reply))
            .map_err(|_| "the store thread has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the store thread has stopped".to_string())?
    }

    /// Saves a remote-write receiver's place in the outbox.
    pub fn outbox_taken(&self, remote: &str, id: i64) {
        let _ = self.jobs.send(Job::OutboxTaken(remote.to_string(), id));
    }

    /// Deletes outbox rows every receiver took and rows older than `oldest_ms`.
    pub async fn outbox_trim(
        &self,
        remotes: Vec<String>,
        oldest_ms: i64,
    ) -> Result<dcmon_store::outbox::Trimmed, String> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::OutboxTrim(remotes, oldest_ms, reply))
            .map_err(|_| "the store thread has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the store thread has stopped".to_string())?
    }

    /// Replaces the stored host list (groups, labels) with the inventory's.
    pub fn directory(&self, hosts: Vec<Listed>) {
        let _ = self.jobs.send(Job::Directory(hosts));
    }

    /// Starts a retention sweep (it replaces one still under way).
    pub fn sweep(&self, cutoffs: Cutoffs) {
        let _ = self.jobs.send(Job::Sweep(cutoffs));
    }

    /// Starts a sealing pass as at `now_ms`: the head's samples of the windows that
    /// ended move into chunks (the head holds about a quarter of an hour).
    pub fn seal(&self, now_ms: i64) {
        let _ = self.jobs.send(Job::Seal(now_ms));
    }
}

/// A sweep that deletes nothing and seals as at `now_ms`.
fn sealing_only(now_ms: i64) -> (Cutoffs, Progress) {
    (
        Cutoffs {
            samples_before_ms: i64::MIN,
            logs_before_ms: i64::MIN,
            seal_now_ms: now_ms,
        },
        Progress {
            deleted: true,
            ..Progress::default()
        },
    )
}

type Pending = (HostRound, oneshot::Sender<Result<Stored, String>>);

fn commit(store: &mut Store, batch: Vec<Pending>) {
    let (rounds, replies): (Vec<HostRound>, Vec<_>) = batch.into_iter().unzip();
    match store.write_rounds(&rounds) {
        Ok(stored) => {
            for (reply, s) in replies.into_iter().zip(stored) {
                let _ = reply.send(Ok(s));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.to_string()));
            }
        }
    }
}

fn sweep_step(
    store: &mut Store,
    sweep: Option<(Cutoffs, Progress)>,
) -> Option<(Cutoffs, Progress)> {
    let (cutoffs, progress) = sweep?;
    match store.sweep_chunk(cutoffs, progress) {
        // A sealing pass, every few minutes, goes unlogged.
        Ok(next) if next.done && cutoffs.samples_before_ms == i64::MIN => None,
        Ok(next) if next.done => {
            crate::log!(
                "dcmon: retention sweep deleted {} samples and {} log lines, sealed {} samples into {} chunks",
                next.samples_deleted,
                next.logs_deleted,
                next.sealing.samples_sealed,
                next.sealing.chunks_written
            );
            None
        }
        Ok(next) => Some((cutoffs, next)),
        Err(e) => {
            crate::log!("dcmon: retention sweep stopped: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dcmon_probes::{Labels, ProbeOutput};
    use dcmon_store::ProbeRun;

    /// The sealing job `dcmon serve` sends every 2 minutes seals the head's ended
    /// windows, and says nothing in the log.
    #[test]
    fn a_seal_job_moves_the_heads_ended_windows_into_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let (writer, thread) = Writer::spawn(Store::open(&path).unwrap());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let start = 1_800_000_000_000i64;
        for i in 0..60 {
            let mut out = ProbeOutput::default();
            out.gauge("t", Labels::default(), i as f64, "");
            let round = HostRound::new("h", vec![ProbeRun::ok("os", start + i * 30_000, out)]);
            runtime.block_on(writer.write(round)).unwrap();
        }
        let reader = Store::open(&path).unwrap();
        assert_eq!(reader.db_stats().unwrap().chunks, 0);
        writer.seal(start + 3_600_000);
        // The writer runs the pass between rounds, step by step.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while reader.db_stats().unwrap().chunks == 0 {
            assert!(std::time::Instant::now() < deadline, "no chunk sealed");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let mut out = ProbeOutput::default();
        out.gauge("t", Labels::default(), 60.0, "");
        let last = HostRound::new("h", vec![ProbeRun::ok("os", start + 60 * 30_000, out)]);
        runtime.block_on(writer.write(last)).unwrap();
        drop(writer);
        thread.join().unwrap();
        let store = Store::open(&path).unwrap();
        let stats = store.db_stats().unwrap();
        assert_eq!(stats.samples, 61 * 4, "t and the run's three series");
        assert!(stats.chunks >= 4, "{stats:?}");
        let points = store
            .range_by_name("t", None, i64::MIN, i64::MAX)
            .unwrap()
            .remove(0)
            .points;
        assert_eq!(points.len(), 61);
        assert!(points.iter().enumerate().all(|(i, p)| p.1 == i as f64));
    }
}
