//! The one writer: SQLite wants a single writing connection, so host tasks send their
//! rounds to a thread that owns the store and hear back once the round is committed.

use dcmon_store::{HostRound, Store, Stored};
use tokio::sync::{mpsc, oneshot};

type Job = (HostRound, oneshot::Sender<Result<Stored, String>>);

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
                while let Some((round, reply)) = queue.blocking_recv() {
                    let _ = reply.send(store.write_round(&round).map_err(|e| e.to_string()));
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
