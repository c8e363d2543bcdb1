//! `dcmon serve`'s control socket (`DB.sock`, mode 0600): `dcmon exec` on the same machine
//! sends its command there and it runs over the sessions serve holds, with serve's
//! inventory, audited as `cli:USER via serve` (the user from the socket's peer
//! credentials). Requests and events are JSON lines; the client closing the socket
//! cancels the run.

use crate::audited::run_audited;
use anyhow::{Context, Result};
use dcmon_poller::command::quoted;
use dcmon_poller::fanout::{ExecEvent, ExecOptions, Job};
use dcmon_poller::serve::sessions::Sessions;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};

/// Where serve listens for the database `db`.
pub fn socket_path(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}.sock", db.display()))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ExecRequest {
    pub selector: String,
    pub argv: Vec<String>,
    #[serde(rename = "become")]
    pub become_root: bool,
    pub timeout_ms: u64,
    pub concurrency: usize,
}

/// What serve needs to run requests.
#[derive(Clone)]
pub struct Control {
    pub inventory: Option<PathBuf>,
    pub db: PathBuf,
    pub sessions: Sessions,
    pub accept_new_host_keys: bool,
}

/// Binds the socket where only its owner can reach it from the first instant: bound
/// inside a fresh 0700 directory, made 0600, then renamed into place (a rename keeps the
/// inode and its mode), so no umask leaves a window in which others may connect.
fn bind_private(path: &std::path::Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let private = parent.join(format!(".dcmon-sock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let staged = private.join("sock");
    let bound = UnixListener::bind(&staged).and_then(|listener| {
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&staged, path)?;
        Ok(listener)
    });
    let _ = std::fs::remove_dir_all(&private);
    bound
}

/// Listens until `stopped`; the socket file is removed at the end.
pub async fn listen(control: Control, mut stopped: watch::Receiver<bool>) -> Result<PathBuf> {
    let path = socket_path(&control.db);
    // A socket left by a serve that was killed: nobody answers on it.
    if path.exists() && std::os::unix::net::UnixStream::connect(&path).is_err() {
        let _ = std::fs::remove_file(&path);
    }
    let listener = bind_private(&path)
        .with_context(|| format!("cannot open the control socket {}", path.display()))?;
    let shown = path.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => if let Ok((stream, _)) = accepted {
                    let control = control.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle(stream, control).await {
                            dcmon_poller::log!("dcmon serve: control socket: {e:#}");
                        }
                    });
                },
                _ = stopped.wait_for(|s| *s) => break,
            }
        }
        let _ = std::fs::remove_file(&path);
    });
    Ok(shown)
}

fn user_of(stream: &UnixStream) -> String {
    let uid = stream.peer_cred().map(|c| c.uid()).ok();
    match uid {
        Some(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map_or_else(|| format!("uid {uid}"), |u| u.name),
        None => "unknown".to_string(),
    }
}

async fn handle(stream: UnixStream, control: Control) -> Result<()> {
    let who = format!("cli:{} via serve", user_of(&stream));
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let request = lines.next_line().await?.unwrap_or_default();
    let refuse = |message: String| {
        serde_json::json!({ "event": "error", "message": message }).to_string() + "\n"
    };
    let request: ExecRequest = match serde_json::from_str(&request) {
        Ok(r) => r,
        Err(e) => {
            write
                .write_all(refuse(format!("bad request: {e}")).as_bytes())
                .await?;
            return Ok(());
        }
    };
    let hosts = match crate::exec_cmd::hosts_of(control.inventory.as_deref(), &request.selector) {
        Ok(h) => h,
        Err(e) => {
            write.write_all(refuse(format!("{e:#}")).as_bytes()).await?;
            return Ok(());
        }
    };
    let shown = if request.become_root {
        format!("sudo {}", quoted(&request.argv))
    } else {
        quoted(&request.argv)
    };
    let jobs = hosts
        .into_iter()
        .map(|host| {
            let job = Job {
                host,
                line: quoted(&request.argv),
                become_root: request.become_root,
                bmc: None,
            };
            (job, shown.clone())
        })
        .collect();
    let options = ExecOptions {
        timeout: Duration::from_millis(request.timeout_ms.max(1)),
        concurrency: request.concurrency.max(1),
        accept_new_host_keys: control.accept_new_host_keys,
        output_cap: 16 << 20,
        sessions: Some(control.sessions.clone()),
    };
    let store = dcmon_store::Store::open(&control.db)?;
    let (cancel_tx, cancel) = watch::channel(false);
    // The client hanging up (Ctrl-C) cancels the run.
    let hangup = cancel_tx.clone();
    tokio::spawn(async move {
        while let Ok(Some(_)) = lines.next_line().await {}
        let _ = hangup.send(true);
    });
    let (events_tx, mut events) = mpsc::unbounded_channel::<ExecEvent>();
    let run = tokio::spawn(run_audited(
        store, who, "exec", jobs, options, events_tx, cancel,
    ));
    while let Some(event) = events.recv().await {
        let line = serde_json::to_string(&event)? + "\n";
        if write.write_all(line.as_bytes()).await.is_err() {
            let _ = cancel_tx.send(true);
        }
    }
    run.await??;
    Ok(())
}

/// Client side: sends the request and passes serve's events on; dropping the returned
/// task's connection (on `cancel`) cancels the run there.
pub async fn exec_via(
    stream: UnixStream,
    request: ExecRequest,
    events: mpsc::UnboundedSender<ExecEvent>,
    mut cancel: watch::Receiver<bool>,
) -> Result<()> {
    let (read, mut write) = stream.into_split();
    write
        .write_all((serde_json::to_string(&request)? + "\n").as_bytes())
        .await?;
    let mut lines = BufReader::new(read).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                let value: serde_json::Value = serde_json::from_str(&line)
                    .with_context(|| format!("dcmon serve answered `{line}`"))?;
                if value["event"] == "error" {
                    anyhow::bail!("{}", value["message"].as_str().unwrap_or("dcmon serve refused"));
                }
                let event: ExecEvent = serde_json::from_value(value)?;
                let _ = events.send(event);
            }
            _ = cancel.wait_for(|c| *c) => {
                // Hanging up stops the commands on the hosts; then we wait for their ends.
                let _ = write.shutdown().await;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(event) = serde_json::from_str::<ExecEvent>(&line) {
                        let _ = events.send(event);
                    }
                }
                break;
            }
        }
    }
    Ok(())
}
