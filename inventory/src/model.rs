//! The resolved inventory: every host with its inherited settings applied.

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How the poller reaches a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Ssh,
    /// The poller's own machine, without SSH.
    Local,
}

/// One monitored host, fully resolved (defaults < groups < host).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Host {
    pub name: String,
    pub address: String,
    pub transport: Transport,
    pub port: u16,
    pub user: String,
    pub identity: Identity,
    /// The file holding the passphrase of an encrypted `identity` key.
    pub passphrase_file: Option<PathBuf>,
    /// An OpenSSH user certificate for the identity; unset, `IDENTITY-cert.pub` is used
    /// when it exists, as OpenSSH does.
    pub certificate: Option<PathBuf>,
    pub known_hosts: PathBuf,
    pub accept_new_host_keys: bool,
    /// The SSH hops on the way to the host (`jump`), the first one connected to first.
    pub jump: Vec<SshEndpoint>,
    /// How often an idle connection is checked (ssh_config's `ServerAliveInterval`);
    /// unset, the poller's own keepalive.
    #[serde(serialize_with = "as_human_or_none")]
    pub server_alive_interval: Option<Duration>,
    /// The OpenSSH client config the host's settings were read with, if any.
    pub ssh_config: Option<PathBuf>,
    /// Where each SSH setting came from: `FILE:LINE` of the inventory, the ssh_config
    /// line and block, or `default`.
    pub origins: BTreeMap<String, String>,
    /// Deadline of each probe run when set (defaults, group or host); `[probes.NAME]
    /// timeout` wins over it, and unset each probe keeps its own default.
    #[serde(serialize_with = "as_human_or_default")]
    pub timeout: Option<Duration>,
    #[serde(serialize_with = "as_human")]
    pub connect_timeout: Duration,
    #[serde(serialize_with = "as_human")]
    pub interval: Duration,
    pub offline_after: u32,
    #[serde(rename = "become")]
    pub become_: bool,
    pub probes: Vec<String>,
    pub groups: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Log files on the host the `logs` probe reads, besides syslog.
    pub log_files: Vec<String>,
    /// Scripts on the host the `custom` probe runs.
    pub custom_scripts: Vec<String>,
    /// GPUs the host should have (`expected_gpus`), for `nvidia_gpu_missing`.
    pub expected_gpus: Option<u32>,
    pub fan_profile: FanProfile,
    /// How probe scripts reach the host over SSH.
    pub shell: ShellMode,
    /// The BMC, when one is configured.
    pub bmc: Option<Bmc>,
}

/// How an SSH login proves who it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Identity {
    /// Not set: as OpenSSH, the agent's keys first when `SSH_AUTH_SOCK` is set, then
    /// whichever of `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa` exist.
    #[default]
    Default,
    /// `identity = "agent"`: only the keys the agent at `SSH_AUTH_SOCK` holds.
    Agent,
    /// A private key file.
    File(PathBuf),
    /// ssh_config's `IdentityFile`s: as OpenSSH, the agent's keys first (unless
    /// `IdentitiesOnly yes`), then these files.
    SshConfig {
        files: Vec<PathBuf>,
        identities_only: bool,
    },
}

impl Serialize for Identity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Identity::Default => s.serialize_str("default"),
            Identity::Agent => s.serialize_str("agent"),
            Identity::File(path) => s.serialize_str(&path.display().to_string()),
            Identity::SshConfig {
                files,
                identities_only,
            } => {
                let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                let agent = if *identities_only { "" } else { "agent, " };
                s.serialize_str(&format!("{agent}{}", files.join(", ")))
            }
        }
    }
}

/// Where and how to log in over SSH: a host, or one hop on the way to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshEndpoint {
    /// The inventory host's name, or the hop as written (`user@host:port`).
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    pub identity: Identity,
    pub passphrase_file: Option<PathBuf>,
    pub certificate: Option<PathBuf>,
    pub known_hosts: PathBuf,
    pub accept_new_host_keys: bool,
    #[serde(serialize_with = "as_human")]
    pub connect_timeout: Duration,
    #[serde(serialize_with = "as_human_or_none")]
    pub server_alive_interval: Option<Duration>,
}

impl Host {
    /// The host's own SSH login, without the hops before it.
    pub fn ssh_endpoint(&self) -> SshEndpoint {
        SshEndpoint {
            name: self.name.clone(),
            address: self.address.clone(),
            port: self.port,
            user: self.user.clone(),
            identity: self.identity.clone(),
            passphrase_file: self.passphrase_file.clone(),
            certificate: self.certificate.clone(),
            known_hosts: self.known_hosts.clone(),
            accept_new_host_keys: self.accept_new_host_keys,
            connect_timeout: self.connect_timeout,
            server_alive_interval: self.server_alive_interval,
        }
    }
}

/// A BMC reached over the network: IPMI over LAN (RMCP+) or Redfish (HTTPS). The
/// password stays in its file until used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bmc {
    pub address: String,
    /// IPMI over LAN's UDP port.
    pub port: u16,
    pub user: String,
    pub password_file: PathBuf,
    pub protocol: BmcProtocol,
    /// Redfish's HTTPS port.
    pub redfish_port: u16,
    pub tls: BmcTls,
    /// How often Redfish's `FirmwareInventory` is read (BMCs answer it slowly).
    #[serde(serialize_with = "as_human")]
    pub firmware_interval: std::time::Duration,
}

/// Which way a BMC is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BmcProtocol {
    /// IPMI over LAN only (what every BMC setting meant before Redfish).
    #[default]
    Ipmi,
    /// Redfish over HTTPS only.
    Redfish,
    /// Redfish first; IPMI over LAN when Redfish does not answer.
    Auto,
}

impl BmcProtocol {
    pub const NAMES: [&'static str; 3] = ["ipmi", "redfish", "auto"];

    pub fn from_name(name: &str) -> Option<BmcProtocol> {
        [BmcProtocol::Ipmi, BmcProtocol::Redfish, BmcProtocol::Auto]
            .into_iter()
            .find(|p| p.as_str() == name)
    }

    /// As the inventory writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            BmcProtocol::Ipmi => "ipmi",
            BmcProtocol::Redfish => "redfish",
            BmcProtocol::Auto => "auto",
        }
    }
}

/// How the BMC's HTTPS certificate is checked: pinned, against `ca_file`, against the
/// web's public roots, or (per host, warned about) not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BmcTls {
    pub ca_file: Option<PathBuf>,
    /// SHA-256 of the certificate (DER), 32 bytes as lowercase hex.
    pub fingerprint: Option<String>,
    pub insecure: bool,
}

/// How a host's probe scripts are run over its SSH connection (`shell`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShellMode {
    /// One `sh` kept open per host (and one `sudo -n sh` for `become`); each run is a
    /// framed block on its stdin. Falls back to `Exec` where the host refuses it.
    #[default]
    Persistent,
    /// A new exec channel (so a new sshd session and shell) for every run.
    Exec,
}

impl ShellMode {
    pub const NAMES: [&'static str; 2] = ["persistent", "exec"];

    pub fn from_name(name: &str) -> Option<ShellMode> {
        match name {
            "persistent" => Some(ShellMode::Persistent),
            "exec" => Some(ShellMode::Exec),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ShellMode::Persistent => "persistent",
            ShellMode::Exec => "exec",
        }
    }
}

/// The BMC's way of setting fan modes, chosen per host (`fan_profile`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FanProfile {
    /// Reads fans; sets nothing.
    #[default]
    Generic,
    /// Supermicro X9-X13 boards: `raw 0x30 0x45`.
    Supermicro,
    /// Dell iDRAC 7-9: `raw 0x30 0x30`.
    Dell,
}

impl FanProfile {
    pub const NAMES: [&'static str; 3] = ["generic", "supermicro", "dell"];

    pub fn from_name(name: &str) -> Option<FanProfile> {
        match name {
            "generic" => Some(FanProfile::Generic),
            "supermicro" => Some(FanProfile::Supermicro),
            "dell" => Some(FanProfile::Dell),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FanProfile::Generic => "generic",
            FanProfile::Supermicro => "supermicro",
            FanProfile::Dell => "dell",
        }
    }
}

fn as_human<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

fn as_human_or_default<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => as_human(d, s),
        None => s.serialize_str("each probe's default"),
    }
}

fn as_human_or_none<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => as_human(d, s),
        None => s.serialize_none(),
    }
}

/// A probe's schedule from `[probes.NAME]`; unset parts fall back to the host's and
/// the probe's own defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeSchedule {
    pub interval: Option<Duration>,
    /// Cron expression with seconds, validated.
    pub schedule: Option<String>,
    pub timeout: Option<Duration>,
}

/// How long stored data is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub samples: Duration,
    pub logs: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            samples: Duration::from_secs(30 * 86400),
            logs: Duration::from_secs(7 * 86400),
        }
    }
}

/// All hosts of an inventory, sorted by name, plus the group names it defines.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub hosts: Vec<Host>,
    pub groups: Vec<String>,
    /// `[probes.NAME]` settings by probe name.
    pub probe_schedules: std::collections::BTreeMap<String, ProbeSchedule>,
    pub retention: Retention,
    pub web: Web,
    pub alerting: Alerting,
    /// `[cluster]`: which hosts this poller takes.
    pub cluster: crate::cluster::Cluster,
    /// `[[remote_write]]`: where samples go besides the local database.
    pub remote_writes: Vec<crate::cluster::RemoteWrite>,
}

/// `[alerting]`, `[[alerts]]` and `[[notify]]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Alerting {
    pub evaluation_interval: Duration,
    pub rules: Vec<AlertRule>,
    pub receivers: Vec<Receiver>,
    /// `alerts = "FILE"`: where the rules came from (serve watches it for changes).
    pub rules_file: Option<PathBuf>,
}

impl Default for Alerting {
    fn default() -> Self {
        Alerting {
            evaluation_interval: Duration::from_secs(30),
            rules: Vec::new(),
            receivers: Vec::new(),
            rules_file: None,
        }
    }
}

/// One `[[alerts]]` rule. `expr` parsed as PromQL within dcmon's subset.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub name: String,
    pub expr: String,
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub severity: String,
    pub labels: BTreeMap<String, String>,
    /// Templates in Prometheus's syntax (`{{ $labels.host }}`, `{{ $value }}`).
    pub annotations: BTreeMap<String, String>,
    /// One of dcmon's built-in rules (not overridden by the inventory).
    pub builtin: bool,
}

/// One `[[notify]]` receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct Receiver {
    pub name: String,
    pub target: Target,
    /// Label values an alert must have to go here.
    pub matchers: BTreeMap<String, String>,
    /// Receivers dcmon sends to itself (all but Alertmanager, which groups on its own):
    /// alerts alike in these labels share a message; `["..."]` sends each alone.
    pub group_by: Vec<String>,
    pub group_wait: Duration,
    pub group_interval: Duration,
    /// A group still firing is sent again after this long.
    pub repeat_interval: Duration,
    pub send_resolved: bool,
}

impl Receiver {
    /// Alertmanager groups and repeats for itself; dcmon does it for the others.
    pub fn is_direct(&self) -> bool {
        !matches!(self.target, Target::Alertmanager(_))
    }
}

/// Where a receiver's alerts go.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Alertmanager's base URL (`http://host:9093`): it groups, repeats and routes.
    Alertmanager(String),
    /// E-mail sent by dcmon: one message per group of alerts.
    Smtp(Smtp),
    /// A URL posted Alertmanager's webhook JSON (version 4), one request per group.
    Webhook(String),
    /// A Slack-compatible incoming webhook URL, one text message per group.
    Slack(String),
}

/// An SMTP server and the addresses of the messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub to: Vec<String>,
    /// (user, password file).
    pub login: Option<(String, PathBuf)>,
    pub tls: SmtpTls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    StartTls,
    Implicit,
    None,
}

/// Who may look at the dashboard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ViewAccess {
    /// Anyone who reaches the port.
    #[default]
    Open,
    /// Only with the viewer or the admin token.
    Login,
}

/// `[web]`: the dashboard's settings, paths resolved against the inventory's folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Web {
    pub listen: Option<String>,
    pub view: ViewAccess,
    pub admin_token_file: Option<PathBuf>,
    pub viewer_token_file: Option<PathBuf>,
    /// (certificate chain, private key), both PEM.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Addresses of reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub thresholds: Thresholds,
    /// `backend = { prometheus = URL }`: the Prometheus HTTP API the central view
    /// (`dcmon serve --web-only`) reads, without a trailing `/`.
    pub backend: Option<String>,
}

/// (warning, critical) levels of the overview's columns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub cpu: (f64, f64),
    pub memory: (f64, f64),
    pub gpu_temp: (f64, f64),
    pub bmc_temp: (f64, f64),
    pub nvme_wear: (f64, f64),
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            cpu: (60.0, 80.0),
            memory: (70.0, 90.0),
            gpu_temp: (80.0, 90.0),
            bmc_temp: (75.0, 85.0),
            nvme_wear: (80.0, 95.0),
        }
    }
}

impl Default for Web {
    fn default() -> Self {
        Web {
            listen: None,
            view: ViewAccess::Open,
            admin_token_file: None,
            viewer_token_file: None,
            tls: None,
            trusted_proxies: Vec::new(),
            thresholds: Thresholds::default(),
            backend: None,
        }
    }
}

impl Inventory {
    /// The inventory used when none is given: the poller's own machine, running `probes`.
    pub fn local(hostname: &str, probes: Vec<String>) -> Self {
        let settings = crate::load::Defaults::builtin();
        Inventory {
            hosts: vec![Host {
                name: hostname.to_string(),
                address: "localhost".to_string(),
                transport: Transport::Local,
                port: settings.port,
                user: settings.user,
                identity: Identity::Default,
                passphrase_file: None,
                certificate: None,
                known_hosts: settings.known_hosts,
                accept_new_host_keys: false,
                jump: Vec::new(),
                server_alive_interval: None,
                ssh_config: None,
                origins: BTreeMap::new(),
                timeout: None,
                connect_timeout: settings.connect_timeout,
                interval: settings.interval,
                offline_after: settings.offline_after,
                become_: false,
                probes,
                groups: Vec::new(),
                labels: BTreeMap::new(),
                log_files: Vec::new(),
                custom_scripts: Vec::new(),
                expected_gpus: None,
                fan_profile: FanProfile::Generic,
                shell: ShellMode::Persistent,
                bmc: None,
            }],
            groups: Vec::new(),
            probe_schedules: Default::default(),
            retention: Retention::default(),
            web: Web::default(),
            alerting: Alerting::default(),
            cluster: Default::default(),
            remote_writes: Vec::new(),
        }
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }
}
