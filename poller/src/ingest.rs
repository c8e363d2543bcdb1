//! The one writer: SQLite wants a single writing connection, so host tasks send their
//! rounds to a thread that owns the store and hear back once the round is committed.

use dcmon_store::{HostRound, Store, Stored};
use tokio::sync::{mpsc, oneshot};

type Job = (HostRound, oneshot::Sender<Result<Stored, String>>);

/// Most rounds committed in one transaction.
const MAX_BATCH: usize = 256;

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
                while let Some(first) = queue.blocking_recv() {
                    // Rounds that queued up while the last commit ran go in one
                    // transaction: one fsync for many hosts.
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match queue.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
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
            })
            .expect("spawning the store thread"); // only fails when the OS is out of threads
        (Writer { jobs }, thread)
    }

    /// Stores a round; answers once the transaction has committed.
    pub async fn write(&self, round: HostRound) -> Result<Stored, String> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send((round, reply))
            .map_err(|_| "the store thread has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the store thread has stopped".to_string())?
    }
}
