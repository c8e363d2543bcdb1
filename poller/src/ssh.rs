//! The SSH transport over russh: one connection per host, one exec channel per run.
//!
//! Every await that touches the network has a deadline (Beszel's hub once hung for
//! weeks on an SSH read without one). `nodelay` is on: with Nagle, each exec round
//! trip cost ~44 ms instead of ~2.4 ms here (../shared/TESTBED.md).

use crate::connect_stage::{Progress, Stage, Watched};
use crate::error::TransportError;
use crate::exec::{ExecOutput, Exit};
use crate::identity::Offer;
use crate::known_hosts::{CertVerdict, KnownHosts, Verdict, describe_key, host_port};
use crate::shell::{Shell, StartError};
use dcmon_inventory::{Host, ShellMode, SshEndpoint};
use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout, timeout_at};

/// Opens SSH sessions; shared by all hosts of a poller so keys and known_hosts files
/// are read once and handshakes are limited.
pub struct Connector {
    /// russh configs by (ask for host certificates, keepalive interval): certificates
    /// for hosts a `@cert-authority` line names, the interval ssh_config's
    /// `ServerAliveInterval` or `KEEPALIVE`.
    configs: Mutex<HashMap<(bool, Duration), Arc<client::Config>>>,
    handshakes: Semaphore,
    known_hosts: Mutex<HashMap<PathBuf, Arc<KnownHosts>>>,
    keys: crate::identity::Keys,
    jumps: crate::jump::Jumps,
}

/// A stream an SSH session can run over: TCP, or a channel through a jump host.
pub(crate) trait Duplex:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send
{
}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Duplex for T {}

/// How long a jump host has to answer a keepalive after a host behind it did not open.
const JUMP_CHECK: Duration = Duration::from_secs(2);

/// How often an idle connection is checked when ssh_config does not say.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Host certificate types asked for, most preferred first (OpenSSH's order).
const HOST_CERTIFICATE_ALGORITHMS: &[russh::keys::Algorithm] = &[
    russh::keys::Algorithm::Ed25519,
    russh::keys::Algorithm::Ecdsa {
        curve: russh::keys::EcdsaCurve::NistP256,
    },
    russh::keys::Algorithm::Ecdsa {
        curve: russh::keys::EcdsaCurve::NistP384,
    },
    russh::keys::Algorithm::Ecdsa {
        curve: russh::keys::EcdsaCurve::NistP521,
    },
    russh::keys::Algorithm::Rsa {
        hash: Some(HashAlg::Sha512),
    },
    russh::keys::Algorithm::Rsa {
        hash: Some(HashAlg::Sha256),
    },
];

/// Handshakes are CPU-bound on both ends; ~100-200 at once is faster and cleaner than
/// a thousand (one sshd reset 17-33 of 1,000 simultaneous ones here).
pub const DEFAULT_HANDSHAKE_LIMIT: usize = 128;

impl Connector {
    pub fn new(handshake_limit: usize) -> Connector {
        Connector {
            configs: Mutex::new(HashMap::new()),
            handshakes: Semaphore::new(handshake_limit.max(1)),
            known_hosts: Mutex::new(HashMap::new()),
            keys: crate::identity::Keys::default(),
            jumps: crate::jump::Jumps::default(),
        }
    }

    fn config(&self, certificates: bool, keepalive: Option<Duration>) -> Arc<client::Config> {
        let keepalive = keepalive.unwrap_or(KEEPALIVE);
        let mut configs = self.configs.lock().unwrap_or_else(|e| e.into_inner());
        configs
            .entry((certificates, keepalive))
            .or_insert_with(|| {
                let mut config = client::Config {
                    nodelay: true,
                    inactivity_timeout: None,
                    keepalive_interval: Some(keepalive),
                    // OpenSSH's ServerAliveCountMax.
                    keepalive_max: 3,
                    ..Default::default()
                };
                if certificates {
                    config.preferred.host_key_certificates =
                        std::borrow::Cow::Borrowed(HOST_CERTIFICATE_ALGORITHMS);
                }
                Arc::new(config)
            })
            .clone()
    }

    fn known_hosts(&self, path: &Path) -> Result<Arc<KnownHosts>, TransportError> {
        let mut files = self.known_hosts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(kh) = files.get(path) {
            return Ok(kh.clone());
        }
        let kh =
            Arc::new(
                KnownHosts::load(path).map_err(|source| TransportError::KnownHostsRead {
                    path: path.display().to_string(),
                    source,
                })?,
            );
        files.insert(path.to_path_buf(), kh.clone());
        Ok(kh)
    }

    /// Connects to a host, through its jump hosts if it has any: checks the host key,
    /// authenticates; all within the host's connect timeout (a jump host connection
    /// being opened for it counts under that jump host's own timeout).
    pub async fn connect(
        &self,
        host: &Host,
        accept_new_host_keys: bool,
    ) -> Result<SshSession, TransportError> {
        let via = if host.jump.is_empty() {
            None
        } else {
            Some(
                self.jumps
                    .link(self, &host.jump, accept_new_host_keys)
                    .await?,
            )
        };
        let result = self
            .connect_endpoint(&host.ssh_endpoint(), via.clone(), accept_new_host_keys)
            .await;
        if let (Err(TransportError::ConnectTimeout { stage, .. }), Some(via)) = (&result, &via)
            && *stage == Stage::Tcp
        {
            // The jump host never opened the channel: if it no longer answers (stopped,
            // gone dark) it is given up, so the next connect does not wait on it again.
            via.answers(JUMP_CHECK).await;
        }
        result
    }

    /// Jump host connections opened so far (each shared by every host behind it).
    pub fn jump_connections_opened(&self) -> usize {
        self.jumps.opened()
    }

    /// One login: over TCP, or over a `direct-tcpip` channel of `via` (the last jump
    /// host's connection, which the session keeps alive while it lives).
    pub(crate) async fn connect_endpoint(
        &self,
        target: &SshEndpoint,
        via: Option<Arc<SshSession>>,
        accept_new_host_keys: bool,
    ) -> Result<SshSession, TransportError> {
        let addr = host_port(&target.address, target.port);
        let known_hosts = self.known_hosts(&target.known_hosts)?;
        let wants_certificate = known_hosts.has_authority(&target.address, target.port);
        let (offers, notes) = self.keys.offers(target)?;
        let _permit =
            self.handshakes
                .acquire()
                .await
                .map_err(|_| TransportError::ConnectTimeout {
                    addr: addr.clone(),
                    after: Duration::ZERO,
                    stage: Stage::Tcp,
                })?;
        let problem = Arc::new(Mutex::new(None));
        let progress = Progress::default();
        let handler = Client {
            progress: progress.clone(),
            host: target.address.clone(),
            port: target.port,
            known_hosts,
            accept_new: accept_new_host_keys || target.accept_new_host_keys,
            problem: problem.clone(),
        };
        let work = async {
            let stream = self.open_stream(target, &addr, via.as_deref()).await?;
            progress.reach(Stage::Banner);
            let stream = Watched {
                inner: stream,
                progress: progress.clone(),
            };
            let config = self.config(wants_certificate, target.server_alive_interval);
            let mut handle = client::connect_stream(config, stream, handler)
                .await
                .map_err(|source| {
                    // A refused host key surfaces from russh as a generic error; ours says why.
                    problem
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take()
                        .unwrap_or(TransportError::Handshake {
                            addr: addr.clone(),
                            stage: progress.stage(),
                            source,
                        })
                })?;
            progress.reach(Stage::Auth);
            self.authenticate(&mut handle, target, &addr, offers, notes)
                .await?;
            Ok(SshSession {
                handle,
                addr: addr.clone(),
                stalled: AtomicBool::new(false),
                shells: tokio::sync::Mutex::new(Shells::default()),
                via: via.clone(),
            })
        };
        timeout(target.connect_timeout, work)
            .await
            .map_err(|_| TransportError::ConnectTimeout {
                addr: addr.clone(),
                after: target.connect_timeout,
                stage: progress.stage(),
            })?
    }

    /// The byte stream an SSH session runs over: a TCP connection, or a channel the
    /// jump host opens to the target (the jump host resolves the target's name, as
    /// OpenSSH's ProxyJump has it do).
    async fn open_stream(
        &self,
        target: &SshEndpoint,
        addr: &str,
        via: Option<&SshSession>,
    ) -> Result<Box<dyn Duplex>, TransportError> {
        match via {
            None => {
                let tcp = tokio::net::TcpStream::connect((target.address.as_str(), target.port))
                    .await
                    .map_err(|source| TransportError::Connect {
                        addr: addr.to_string(),
                        source,
                    })?;
                let _ = tcp.set_nodelay(true);
                Ok(Box::new(tcp))
            }
            Some(jump) => {
                let channel = jump
                    .handle
                    .channel_open_direct_tcpip(
                        target.address.as_str(),
                        u32::from(target.port),
                        "127.0.0.1",
                        0,
                    )
                    .await
                    .map_err(|source| TransportError::Forward {
                        via: jump.addr.clone(),
                        addr: addr.to_string(),
                        source: Box::new(source),
                    })?;
                Ok(Box::new(channel.into_stream()))
            }
        }
    }

    /// Tries each offer in turn (agent keys, key files and their certificates) until
    /// the host accepts one. A certificate outside its validity is not sent; if nothing
    /// else works the refusal says so with its dates.
    async fn authenticate(
        &self,
        handle: &mut Handle<Client>,
        host: &SshEndpoint,
        addr: &str,
        offers: Vec<Offer>,
        mut notes: Vec<String>,
    ) -> Result<(), TransportError> {
        let handshake = |source| TransportError::Handshake {
            addr: addr.to_string(),
            stage: Stage::Auth,
            source,
        };
        let mut tried = Vec::new();
        for offer in offers {
            match offer {
                Offer::Key(file) => {
                    if let Some((path, cert)) = &file.certificate {
                        match crate::identity::outside_validity(cert) {
                            Some(why) => {
                                notes.push(format!("certificate {} {why}", path.display()))
                            }
                            None => {
                                let result = handle
                                    .authenticate_openssh_cert(
                                        &host.user,
                                        file.key.clone(),
                                        cert.clone(),
                                    )
                                    .await
                                    .map_err(handshake)?;
                                if result.success() {
                                    return Ok(());
                                }
                                tried.push(format!("certificate {}", path.display()));
                            }
                        }
                    }
                    let hash = rsa_hash(handle, file.key.algorithm().is_rsa()).await;
                    let result = handle
                        .authenticate_publickey(
                            &host.user,
                            PrivateKeyWithHashAlg::new(file.key.clone(), hash),
                        )
                        .await
                        .map_err(handshake)?;
                    if result.success() {
                        return Ok(());
                    }
                    tried.push(file.path.display().to_string());
                }
                Offer::Agent { socket, required } => {
                    match self.agent_login(handle, host, &socket).await {
                        Ok(true) => return Ok(()),
                        Ok(false) => {
                            tried.push(format!("the keys of ssh-agent {}", socket.display()))
                        }
                        Err(why) if required => {
                            return Err(TransportError::Agent {
                                socket: socket.display().to_string(),
                                why,
                            });
                        }
                        Err(why) => notes.push(format!("ssh-agent {}: {why}", socket.display())),
                    }
                }
            }
        }
        let mut identity = tried.join(", ");
        for note in notes {
            identity.push_str(&format!("; {note}"));
        }
        Err(TransportError::AuthRejected {
            addr: addr.to_string(),
            user: host.user.clone(),
            identity,
        })
    }

    /// Offers every key and certificate the agent holds; `Ok(false)` when the host took
    /// none, `Err` when the agent could not be used (not running, no keys).
    async fn agent_login(
        &self,
        handle: &mut Handle<Client>,
        host: &SshEndpoint,
        socket: &Path,
    ) -> Result<bool, String> {
        use russh::keys::agent::AgentIdentity;
        let mut agent = russh::keys::agent::client::AgentClient::connect_uds(socket)
            .await
            .map_err(|e| format!("cannot connect ({e}): is ssh-agent running?"))?;
        let identities = agent
            .request_identities()
            .await
            .map_err(|e| format!("cannot list its keys: {e}"))?;
        if identities.is_empty() {
            return Err("it holds no keys: add one with ssh-add".to_string());
        }
        for identity in identities {
            let result = match identity {
                AgentIdentity::PublicKey { key, .. } => {
                    let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
                    handle
                        .authenticate_publickey_with(&host.user, key, hash, &mut agent)
                        .await
                }
                AgentIdentity::Certificate { certificate, .. } => {
                    if crate::identity::outside_validity(&certificate).is_some() {
                        continue;
                    }
                    let hash = rsa_hash(handle, certificate.algorithm().is_rsa()).await;
                    handle
                        .authenticate_certificate_with(&host.user, certificate, hash, &mut agent)
                        .await
                }
            };
            match result {
                Ok(r) if r.success() => return Ok(true),
                Ok(_) => {}
                Err(e) => return Err(format!("it did not sign: {e}")),
            }
        }
        Ok(false)
    }
}

/// The hash an RSA signature uses: SHA-2 (rsa-sha2-512/256) whenever the server says it
/// takes it, as OpenSSH 8.8+ requires; SHA-256 when it does not say.
async fn rsa_hash(handle: &Handle<Client>, is_rsa: bool) -> Option<HashAlg> {
    if !is_rsa {
        return None;
    }
    handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .unwrap_or(Some(HashAlg::Sha256))
}

pub(crate) struct Client {
    progress: Progress,
    host: String,
    port: u16,
    known_hosts: Arc<KnownHosts>,
    accept_new: bool,
    problem: Arc<Mutex<Option<TransportError>>>,
}

impl Client {
    fn refuse(&self, error: TransportError) -> Result<bool, russh::Error> {
        *self.problem.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
        Ok(false)
    }
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        self.progress.reach(Stage::HostKey);
        let name = host_port(&self.host, self.port);
        let known_hosts = self.known_hosts.path().display().to_string();
        let key = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(cert) => {
                return match self
                    .known_hosts
                    .check_certificate(&self.host, self.port, cert)
                {
                    CertVerdict::Trusted => Ok(true),
                    CertVerdict::Revoked { line } => self.refuse(TransportError::HostKeyRevoked {
                        host: name,
                        key: format!("certificate {:?}", cert.key_id()),
                        known_hosts,
                        line,
                    }),
                    CertVerdict::Refused(why) => {
                        self.refuse(TransportError::HostCertificate { host: name, why })
                    }
                };
            }
        };
        match self.known_hosts.check(&self.host, self.port, key) {
            Verdict::Trusted => Ok(true),
            Verdict::Unknown if self.accept_new => {
                match self.known_hosts.learn(&self.host, self.port, key) {
                    Ok(()) => Ok(true),
                    Err(source) => self.refuse(TransportError::KnownHostsWrite {
                        host: name,
                        known_hosts,
                        source,
                    }),
                }
            }
            Verdict::Unknown => self.refuse(TransportError::HostKeyUnknown {
                host: name,
                key: describe_key(key),
                known_hosts,
            }),
            Verdict::Changed { line, known } => self.refuse(TransportError::HostKeyChanged {
                host: name,
                key: describe_key(key),
                known_hosts,
                line,
                known,
            }),
            Verdict::Revoked { line } => self.refuse(TransportError::HostKeyRevoked {
                host: name,
                key: describe_key(key),
                known_hosts,
                line,
            }),
        }
    }
}

/// An authenticated connection to one host.
pub struct SshSession {
    handle: Handle<Client>,
    addr: String,
    /// Set when the host stopped answering keepalives: the connection is given up.
    stalled: AtomicBool,
    /// The persistent shells of this connection (`shell = "persistent"`).
    shells: tokio::sync::Mutex<Shells>,
    /// The jump host's connection this one runs through: kept open while this lives.
    via: Option<Arc<SshSession>>,
}

/// A connection's persistent shells: one as the login user, one under `sudo -n`.
#[derive(Default)]
struct Shells {
    plain: Slot,
    root: Slot,
}

#[derive(Default)]
enum Slot {
    /// None yet, or the last one was closed after a failed run: the next run starts one.
    #[default]
    Idle,
    Open(Shell),
    /// The host would not keep a shell on this connection: runs go one exec channel
    /// each, for as long as the connection lasts. Says why.
    Refused(String),
}

/// How a probe run reached the host's shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A line on the connection's persistent shell.
    Persistent,
    /// Its own exec channel (`shell = "exec"`).
    Exec,
    /// Its own exec channel because the host refused a persistent shell; says why.
    Fallback(String),
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Via::Persistent => f.write_str("persistent shell"),
            Via::Exec => f.write_str("exec channel"),
            Via::Fallback(why) => write!(f, "exec channel (persistent shell refused: {why})"),
        }
    }
}

/// How long stopping a shell's group may hold up the run that asked for it: one channel
/// open and one command on a host that still answers.
const STOP_GROUP_LIMIT: Duration = Duration::from_secs(1);

impl SshSession {
    /// A run on an exec channel of its own, in what is left of the run's time, for a host
    /// that will not keep a shell (`why`).
    async fn fall_back(
        &self,
        script: &str,
        become_root: bool,
        deadline: Instant,
        output_cap: usize,
        why: String,
    ) -> (Result<ExecOutput, TransportError>, Via) {
        let left = deadline.saturating_duration_since(Instant::now());
        let result = self
            .run_exec_probe(script, become_root, left, output_cap)
            .await;
        (result, Via::Fallback(why))
    }

    /// Runs a probe's script (its inputs and body) the way `mode` says, within `limit`
    /// from start to end; says which way it went. In persistent mode a failed run closes
    /// its shell, which stops what it left on the host, and the next run starts another.
    /// `in_shell`: the script may run in the shell itself (`Probe::in_shell`).
    pub async fn run_probe(
        &self,
        script: &str,
        in_shell: bool,
        become_root: bool,
        mode: ShellMode,
        limit: Duration,
        output_cap: usize,
    ) -> (Result<ExecOutput, TransportError>, Via) {
        // Shells drop NUL bytes as they read (dash silently, bash counting them out of a
        // frame), so such a script would run as something else, or wedge a frame. Its
        // inputs can carry one (a log cursor a host printed, an inventory path).
        if let Some(at) = script.bytes().position(|b| b == 0) {
            let via = if mode == ShellMode::Exec {
                Via::Exec
            } else {
                Via::Persistent
            };
            return (Err(TransportError::ScriptHasNul(at)), via);
        }
        if mode == ShellMode::Exec {
            return (
                self.run_exec_probe(script, become_root, limit, output_cap)
                    .await,
                Via::Exec,
            );
        }
        let deadline = Instant::now() + limit;
        // Runs on a connection's shells take turns; waiting for one's turn counts against
        // the run's own deadline, so a run queued behind a slow one still ends on time.
        let Ok(mut shells) = timeout_at(deadline, self.shells.lock()).await else {
            return (Err(TransportError::Timeout(limit)), Via::Persistent);
        };
        let slot = if become_root {
            &mut shells.root
        } else {
            &mut shells.plain
        };
        if let Slot::Refused(why) = slot {
            let why = why.clone();
            drop(shells);
            return self
                .fall_back(script, become_root, deadline, output_cap, why)
                .await;
        }
        if matches!(slot, Slot::Idle) {
            match Shell::start(&self.handle, &self.addr, become_root, deadline, limit).await {
                Ok(shell) => *slot = Slot::Open(shell),
                Err(StartError::Transport(e)) => return (Err(e), Via::Persistent),
                Err(StartError::Refused(why)) => {
                    // sudo refusing is the host's answer to `become`, not a shell that
                    // cannot be kept: the exec run reports it, and the next run asks again.
                    if !why.contains("sudo") {
                        crate::log!(
                            "{}: the host did not keep a persistent shell ({why}); its probe scripts run one exec channel each on this connection",
                            self.addr
                        );
                        *slot = Slot::Refused(why.clone());
                    }
                    drop(shells);
                    return self
                        .fall_back(script, become_root, deadline, output_cap, why)
                        .await;
                }
            }
        }
        let Slot::Open(shell) = slot else {
            // Not reached: the slot was filled just above.
            let why = "no shell was started".to_string();
            return (Err(TransportError::ShellEnded(why)), Via::Persistent);
        };
        let result = shell
            .run(&self.addr, script, in_shell, deadline, limit, output_cap)
            .await;
        if result.is_err()
            && let Slot::Open(shell) = std::mem::take(slot)
        {
            let group = shell.group;
            shell.close().await;
            drop(shells);
            // A live shell stops its run's group when its channel closes. A dead one
            // cannot, nor can one that stopped answering (SIGSTOP, a wedged host) and
            // made the run late: for those the group is stopped from a channel of its own.
            let unanswered = matches!(
                result,
                Err(TransportError::ShellEnded(_) | TransportError::Timeout(_))
            );
            if let (true, Some(group)) = (unanswered, group) {
                self.stop_group(group, become_root).await;
            }
        }
        (result, Via::Persistent)
    }

    /// Stops what is left in a shell's process group: TERM now, KILL a second later from
    /// a background process detached from the channel, so this returns after one round
    /// trip and the run's reported duration stays its deadline.
    async fn stop_group(&self, group: u32, become_root: bool) {
        let kill = format!(
            "kill -TERM -{group} 2>/dev/null; (sleep 1; kill -KILL -{group}) </dev/null >/dev/null 2>&1 & exit 0"
        );
        let line = crate::command::as_root(
            format!("sh -c {}", dcmon_probes::registry::sh_quote(&kill)),
            become_root,
        );
        let mut quiet = |_: crate::command::Stream, _: &[u8]| {};
        let collector = crate::command::Collector::new(4096, &mut quiet);
        let _ = self.run(&line, &[], STOP_GROUP_LIMIT, collector).await;
    }

    /// A probe run on its own exec channel, under the probe watchdog.
    async fn run_exec_probe(
        &self,
        script: &str,
        become_root: bool,
        limit: Duration,
        output_cap: usize,
    ) -> Result<ExecOutput, TransportError> {
        let input = crate::command::probe_input(script);
        let command = crate::command::probe_line(input.len(), become_root);
        self.run_script(&command, &input, limit, output_cap).await
    }

    /// Runs a probe (`command::probe_line`, its `probe_input` on stdin) over a new
    /// channel; the whole run, from opening the channel to its close, must fit in
    /// `limit`. A late run's channel is closed, which makes the watchdog stop it.
    pub async fn run_script(
        &self,
        line: &str,
        input: &[u8],
        limit: Duration,
        output_cap: usize,
    ) -> Result<ExecOutput, TransportError> {
        let mut quiet = |_: crate::command::Stream, _: &[u8]| {};
        let collector = crate::command::Collector::new(output_cap, &mut quiet);
        self.run(line, input, limit, collector).await
    }

    /// Runs a command line (see `command::remote_line`) over a new channel, passing
    /// output on as it arrives. Its stdin stays open until the run ends: closing the
    /// channel at the deadline is what tells the host's watchdog to stop the command.
    pub async fn run_command(
        &self,
        line: &str,
        limit: Duration,
        collector: crate::command::Collector<'_>,
    ) -> Result<ExecOutput, TransportError> {
        self.run(line, &[], limit, collector).await
    }

    /// One channel: `command`, then `input` on its stdin, which stays open; output until
    /// the channel closes; all within `limit`. The channel is closed at the end whatever
    /// happened: the watchdog on the host sees its stdin end and stops what still runs.
    async fn run(
        &self,
        command: &str,
        input: &[u8],
        limit: Duration,
        mut collector: crate::command::Collector<'_>,
    ) -> Result<ExecOutput, TransportError> {
        let deadline = Instant::now() + limit;
        let channel_error = |source| TransportError::Channel {
            addr: self.addr.clone(),
            source,
        };
        let mut channel = timeout_at(deadline, self.handle.channel_open_session())
            .await
            .map_err(|_| TransportError::Timeout(limit))?
            .map_err(channel_error)?;
        let result = timeout_at(deadline, async {
            channel.exec(true, command).await.map_err(channel_error)?;
            if !input.is_empty() {
                channel.data(input).await.map_err(channel_error)?;
            }
            read_until_close(&mut channel, &mut collector).await
        })
        .await;
        let _ = timeout(Duration::from_secs(1), channel.close()).await;
        match result {
            Ok(Ok(exit)) => Ok(collector.finish(exit)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(TransportError::Timeout(limit)),
        }
    }

    /// Whether the host still answers on this connection: a keepalive that wants a reply,
    /// within `within`. One that does not is marked stalled, so `is_closed` is true and
    /// its owner reconnects.
    pub async fn answers(&self, within: Duration) -> bool {
        let answered = matches!(timeout(within, self.handle.send_ping()).await, Ok(Ok(())));
        if !answered {
            self.stalled.store(true, Ordering::Relaxed);
            // Through a jump host, the silence may be the jump host's: then it is given
            // up too, and the next connect makes a new connection to it.
            if let Some(via) = &self.via {
                Box::pin(via.answers(within)).await;
            }
        }
        answered
    }

    /// True once the connection is gone (the host hung up, keepalives went unanswered).
    pub fn is_closed(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
            || self.handle.is_closed()
            || self.via.as_ref().is_some_and(|via| via.is_closed())
    }

    /// `host:port` as known_hosts names it, for messages.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub async fn close(self) {
        let _ = timeout(
            Duration::from_secs(1),
            self.handle.disconnect(Disconnect::ByApplication, "", "en"),
        )
        .await;
    }
}

/// Reads until the channel closes, not until EOF: the exit status can follow EOF.
async fn read_until_close(
    channel: &mut russh::Channel<client::Msg>,
    collector: &mut crate::command::Collector<'_>,
) -> Result<Exit, TransportError> {
    use crate::command::Stream;
    let mut exit = Exit::Unknown;
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => collector.push(Stream::Stdout, &data)?,
            ChannelMsg::ExtendedData { data, ext: 1 } => collector.push(Stream::Stderr, &data)?,
            ChannelMsg::ExitStatus { exit_status } => exit = Exit::Code(exit_status),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                exit = Exit::Signal(format!("{signal_name:?}"))
            }
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    Ok(exit)
}
