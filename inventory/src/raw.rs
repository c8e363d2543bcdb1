//! The inventory file as serde reads it, before inheritance is applied.
//!
//! One `Entry` shape serves `[defaults]`, `[groups.NAME]` and `[[hosts]]`, so the
//! inheritable settings are declared once; keys that only make sense at one level
//! (`name` on a host, `hosts` on a group) are checked in `load`. Unknown keys are not
//! refused by serde (`deny_unknown_fields` stops at the first): `serde_ignored`
//! collects all of them so `dcmon inventory check` reports every one.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
pub struct RawInventory {
    /// Settings every host starts from.
    #[serde(default)]
    pub defaults: Entry,
    /// Named groups: settings plus host patterns that belong to the group.
    #[serde(default)]
    pub groups: BTreeMap<String, Entry>,
    /// Hosts listed one by one.
    #[serde(default)]
    pub hosts: Vec<Entry>,
    /// Per-probe schedules: `[probes.nvidia_details] interval = "10m"`.
    #[serde(default)]
    pub probes: BTreeMap<String, ProbeSchedule>,
    /// How long stored data is kept.
    #[serde(default)]
    pub retention: RawRetention,
    /// The dashboard: who may look, who may act, TLS, colouring thresholds.
    #[serde(default)]
    pub web: RawWeb,
    /// How often alert rules are evaluated.
    #[serde(default)]
    pub alerting: RawAlerting,
    /// Thresholds of the built-in rules (default: `[web.thresholds]`' critical levels).
    #[serde(default)]
    pub alerts_defaults: RawAlertDefaults,
    /// Alert rules in PromQL.
    #[serde(default)]
    pub alerts: Vec<RawAlert>,
    /// Where alerts are sent.
    #[serde(default)]
    pub notify: Vec<RawNotify>,
    /// Which share of the hosts this poller takes.
    #[serde(default)]
    pub cluster: RawCluster,
    /// Receivers of every sample (Prometheus remote write 1.0).
    #[serde(default)]
    pub remote_write: Vec<RawRemoteWrite>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawCluster {
    /// `"I/N"`: this poller is number I of N.
    pub shard: Option<String>,
    /// Pollers per host (default 1).
    pub replicas: Option<u32>,
    /// Each poller's dashboard, in shard order (`pollers[0]` is shard 1): the central
    /// view links a host's logs, audit and actions to the poller that owns it.
    pub pollers: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawRemoteWrite {
    pub name: Option<String>,
    /// `http(s)://HOST:PORT/api/v1/write`.
    pub url: Option<String>,
    pub bearer_token_file: Option<String>,
    pub basic_auth: Option<RawBasicAuth>,
    pub tls: Option<RawRemoteTls>,
    pub external_labels: Option<BTreeMap<String, String>>,
    pub queue: Option<RawRemoteQueue>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawBasicAuth {
    pub username: Option<String>,
    pub password_file: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawRemoteTls {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawRemoteQueue {
    pub capacity: Option<String>,
    pub max_samples_per_send: Option<u32>,
    pub batch_send_deadline: Option<String>,
    pub min_backoff: Option<String>,
    pub max_backoff: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawAlerting {
    /// Every this long (default 30s).
    pub evaluation_interval: Option<String>,
    /// `false`: none of the built-in rules (default true).
    pub builtin: Option<bool>,
    /// Built-in rules to leave out, by name.
    pub disable: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawAlertDefaults {
    /// CPU busy, percent (CpuBusy).
    pub cpu: Option<f64>,
    /// Memory used, percent (MemoryHigh).
    pub memory: Option<f64>,
    /// Filesystem used, percent (FilesystemFull; default 90).
    pub filesystem: Option<f64>,
    /// GPU temperature, °C (GpuHot).
    pub gpu_temp: Option<f64>,
    /// NVMe wear, percent used (NvmeWearHigh).
    pub nvme_wear: Option<f64>,
    /// Failed runs in a row before ProbeFailing (default 3).
    pub probe_failures: Option<u32>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawAlert {
    /// The alert's name (`alertname`): letters, digits, `_`.
    pub name: Option<String>,
    /// PromQL: every series it returns is an alert instance.
    pub expr: Option<String>,
    /// How long the expression must hold before the alert fires (default 0: at once).
    #[serde(rename = "for")]
    pub for_: Option<String>,
    /// How long a firing alert stays firing after the expression stops returning it.
    pub keep_firing_for: Option<String>,
    /// `critical`, `warning`, `info` (default `warning`), the `severity` label.
    pub severity: Option<String>,
    /// Extra labels of every instance.
    pub labels: Option<BTreeMap<String, String>>,
    /// `summary`, `description`: templates with `{{ $labels.host }}` and `{{ $value }}`.
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawSmtp {
    /// `host:port` of the mail server.
    pub server: Option<String>,
    pub from: Option<String>,
    pub to: Option<Vec<String>>,
    /// Login, with the password in `password_file` (not readable by every user).
    pub user: Option<String>,
    pub password_file: Option<String>,
    /// `starttls` (default), `tls` (implicit, port 465) or `none` (a relay on loopback).
    pub tls: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawNotify {
    /// The receiver's name, in messages and the dashboard.
    pub name: Option<String>,
    /// A Prometheus Alertmanager: `http://127.0.0.1:9093` (API v2).
    pub alertmanager: Option<String>,
    /// Or e-mail, sent by dcmon itself.
    pub smtp: Option<RawSmtp>,
    /// Or a webhook receiving Alertmanager's webhook JSON (version 4).
    pub webhook: Option<String>,
    /// Or a Slack-compatible incoming webhook (`{"text": ...}`).
    pub slack: Option<String>,
    /// Receivers dcmon sends to itself: alerts with equal values of these labels go in
    /// one message (default `["alertname"]`; `["..."]`: each alert alone).
    pub group_by: Option<Vec<String>>,
    /// A new group waits this long for more alerts before its first message (30s).
    pub group_wait: Option<String>,
    /// A group that changed is sent again after this long at the earliest (5m).
    pub group_interval: Option<String>,
    /// A group still firing is sent again after this long (default 4h).
    pub repeat_interval: Option<String>,
    /// Also say when alerts resolve (default true).
    pub send_resolved: Option<bool>,
    /// Only alerts whose labels have these values (`{ severity = "critical" }`).
    #[serde(rename = "match")]
    pub matchers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawWeb {
    /// Address and port the dashboard listens on (`dcmon serve --listen` wins).
    pub listen: Option<String>,
    /// `open` (default): anyone who reaches the port may look; `login`: a token is asked for.
    pub view: Option<String>,
    /// File holding the admin token: admins may change state and run commands.
    pub admin_token_file: Option<String>,
    /// File holding a token that may only look (with `view = "login"`).
    pub viewer_token_file: Option<String>,
    /// PEM certificate chain and key: the dashboard is served over HTTPS.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// Reverse proxies in front of the dashboard: their `X-Forwarded-For` names the client.
    pub trusted_proxies: Option<Vec<String>>,
    /// `[warning, critical]` per overview column.
    #[serde(default)]
    pub thresholds: RawThresholds,
    /// `{ prometheus = "http://vm:8428" }`: `dcmon serve --web-only` reads every
    /// poller's series from this Prometheus HTTP API.
    pub backend: Option<RawBackend>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawBackend {
    pub prometheus: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawThresholds {
    pub cpu: Option<[f64; 2]>,
    pub memory: Option<[f64; 2]>,
    pub gpu_temp: Option<[f64; 2]>,
    pub bmc_temp: Option<[f64; 2]>,
    pub nvme_wear: Option<[f64; 2]>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct ProbeSchedule {
    /// Run every this long (`30s`), start times spread across the interval.
    pub interval: Option<String>,
    /// Or at these times: a cron expression with seconds (`0 */5 * * * *`).
    pub schedule: Option<String>,
    /// Deadline of one run of this probe.
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawRetention {
    /// Samples older than this are deleted (default 30d).
    pub samples: Option<String>,
    /// Log lines older than this are deleted (default 7d).
    pub logs: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct Entry {
    /// Host only: the host's name, shown everywhere and used in selectors.
    pub name: Option<String>,
    /// Host only: where to connect (defaults to the name).
    pub address: Option<String>,
    /// Host only: groups the host joins.
    pub groups: Option<Vec<String>>,
    /// Group only: host patterns (`gpu[01-16].dc1`) that belong to the group.
    pub hosts: Option<Vec<String>>,
    /// `ssh` (default) or `local` (run probes on the poller's own machine).
    pub transport: Option<String>,
    /// SSH login name.
    pub user: Option<String>,
    /// SSH port.
    pub port: Option<u16>,
    /// Private key file for public-key authentication.
    pub identity: Option<String>,
    /// The file holding the passphrase of an encrypted identity key (mode 0600 or 0400).
    pub passphrase_file: Option<String>,
    /// An OpenSSH user certificate for the identity (default `IDENTITY-cert.pub`).
    pub certificate: Option<String>,
    /// SSH hops on the way to the host: inventory host names or `user@host:port`,
    /// comma-separated, the first one connected to first.
    pub jump: Option<String>,
    /// The OpenSSH client config read for host aliases (`~/.ssh/config` when it
    /// exists; `none` to read none).
    pub ssh_config: Option<String>,
    /// known_hosts file that host keys are checked against.
    pub known_hosts: Option<String>,
    /// Record unknown host keys instead of refusing them (trust on first use).
    pub accept_new_host_keys: Option<bool>,
    /// Deadline of one probe run, such as `10s`.
    pub timeout: Option<String>,
    /// How often the host's probes run (`30s`); slow probes keep their own longer default.
    pub interval: Option<String>,
    /// Rounds in a row without reaching the host before it is shown offline.
    pub offline_after: Option<u32>,
    /// Deadline of connecting: TCP, SSH handshake and authentication.
    pub connect_timeout: Option<String>,
    /// Run probes through `sudo -n`.
    #[serde(rename = "become")]
    pub become_: Option<bool>,
    /// Probes to run on the host.
    pub probes: Option<Vec<String>>,
    /// Free-form labels attached to every series of the host.
    pub labels: Option<BTreeMap<String, String>>,
    /// Log files on the host read by the `logs` probe (absolute paths).
    pub log_files: Option<Vec<String>>,
    /// Scripts on the host whose output (Prometheus text format) the `custom` probe reads.
    pub custom_scripts: Option<Vec<String>>,
    /// How many GPUs the host should have: fewer on its PCIe bus or seen by the driver is
    /// `nvidia_gpu_missing`.
    pub expected_gpus: Option<u32>,
    /// How fan modes are read and set: `generic` (read only), `supermicro`, `dell`.
    pub fan_profile: Option<String>,
    /// How probe scripts reach the host: `persistent` (one shell kept per host) or `exec`.
    pub shell: Option<String>,
    /// The host's BMC, reached over the network (IPMI over LAN); fields merge across levels.
    pub bmc: Option<RawBmc>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawBmc {
    /// Host name or IP; `{host}` stands for the host's name, and a range (`10.1.0.[1-16]`)
    /// set on a group pairs with the group's `hosts` one by one.
    pub address: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    /// File holding the password; must not be readable by every user.
    pub password_file: Option<String>,
    /// The RMCP+ cipher suite (ipmitool's `-C`): only 3 is spoken, so anything else is
    /// refused with the reason rather than left to fail at the BMC.
    pub cipher_suite: Option<i64>,
    /// `ipmi` (the default), `redfish`, or `auto` (Redfish first, IPMI when Redfish
    /// does not answer).
    pub protocol: Option<String>,
    /// Redfish's HTTPS port when `protocol = "auto"` (with `redfish`, `port` says it).
    pub redfish_port: Option<u16>,
    /// PEM file of the CA(s) that sign the BMC's HTTPS certificate.
    pub ca_file: Option<String>,
    /// The BMC certificate's SHA-256 fingerprint, pinned (`openssl x509 -fingerprint
    /// -sha256` prints it).
    pub tls_fingerprint: Option<String>,
    /// Accept any certificate: only on a host's own `bmc`, and warned about at start.
    pub insecure_tls: Option<bool>,
    /// How often Redfish's firmware inventory is read (slow on many BMCs): `1h`.
    pub firmware_interval: Option<String>,
}
