//! Command-line arguments (clap). Validation beyond shape happens in the commands.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "dcmon",
    version,
    about = "Agentless datacenter monitor: SSH in, read the hardware, keep the history"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Alerts: what fires now (`dcmon alerts --db dcmon.db`), the rules, a dry run.
    Alerts(AlertsArgs),
    /// Check or list an inventory file.
    Inventory {
        #[command(subcommand)]
        command: InventoryCommand,
    },
    /// Run one round of every probe on the selected hosts now, and store the results.
    Poll(PollArgs),
    /// List stored series with their latest value.
    Series(SeriesArgs),
    /// Poll every host on its schedule until stopped (SIGINT/SIGTERM); SIGHUP reloads.
    Serve(ServeArgs),
    /// Run a command on the selected hosts: `dcmon exec -i inv.toml 'group:gpu' -- nvidia-smi -L`.
    Exec(ExecArgs),
    /// Show the audit trail of commands run on hosts.
    Audit(AuditArgs),
    /// Read or set fan modes through each host's `fan_profile`: `dcmon fan -i inv.toml gpu01 set full`.
    Fan(FanArgs),
    /// Read one captured tool output with the parser its probe uses: `dcmon parse ipmitool-sdr sdr.txt`.
    Parse(ParseArgs),
    /// What each probe runs and emits: `dcmon probes list`.
    Probes {
        #[command(subcommand)]
        command: ProbesCommand,
    },
    /// Run one probe on one host now and show what it read: `dcmon probe run -i inv.toml gpu01 ipmi`.
    Probe {
        #[command(subcommand)]
        command: ProbeCommand,
    },
    /// The database itself: `dcmon db stats`, `dcmon db backup OUT`, `dcmon db check`.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Series, samples, bytes per sample, oldest and newest sample, bytes per table.
    Stats {
        /// SQLite database written by `dcmon poll` or `dcmon serve`.
        #[arg(long, default_value = "dcmon.db")]
        db: PathBuf,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Copy the database while the poller runs (one consistent snapshot, compacted).
    Backup {
        #[arg(long, default_value = "dcmon.db")]
        db: PathBuf,
        /// The copy: a new file (an existing one is never overwritten).
        out: PathBuf,
    },
    /// SQLite's integrity check: exit 0 when it says ok, 1 with the problems.
    Check {
        #[arg(long, default_value = "dcmon.db")]
        db: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProbesCommand {
    /// Every probe: its commands, default interval and timeout, privileges and series.
    List {
        /// One JSON object per probe.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProbeCommand {
    /// Runs the probe once, prints the command, the raw output, how it ended and the
    /// parsed result. Stores nothing.
    Run(ProbeRunArgs),
}

#[derive(Debug, Args)]
pub struct ProbeRunArgs {
    /// Inventory file; without one, the local machine.
    #[arg(long, short)]
    pub inventory: Option<PathBuf>,
    /// The host, by its inventory name.
    pub host: String,
    /// The probe (`dcmon probes list` names them).
    pub probe: String,
    /// Print only the probe's raw standard output, byte for byte (to save and attach to
    /// a report, or to read with `dcmon parse PROBE FILE`).
    #[arg(long)]
    pub raw: bool,
    /// One JSON object: the command, output, exit, timing and parsed result.
    #[arg(long, conflicts_with = "raw")]
    pub json: bool,
    /// Deadline of the run (default: the probe's timeout for this host).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Record the host key if not yet in known_hosts (trust on first use).
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

#[derive(Debug, Args)]
pub struct ParseArgs {
    /// The output's format (`--list` names them), or a probe's name for its whole output.
    #[arg(required_unless_present = "list")]
    pub format: Option<String>,
    /// The captured output; `-` reads standard input.
    #[arg(required_unless_present = "list")]
    pub file: Option<String>,
    /// One JSON object per sample (`name`, `labels`, `value`, `unit`), fact and log line.
    #[arg(long)]
    pub json: bool,
    /// Name the formats.
    #[arg(long)]
    pub list: bool,
    /// When the output was captured (`2026-12-01T10:00:00Z`; default: now): `dmesg -H`
    /// dates print no year, and take this one.
    #[arg(long, value_parser = humantime::parse_rfc3339_weak)]
    pub at: Option<std::time::SystemTime>,
}

#[derive(Debug, Args)]
pub struct FanArgs {
    /// Inventory file (each host's `fan_profile` and `become`).
    #[arg(long, short)]
    pub inventory: Option<PathBuf>,
    /// SQLite database the audit trail is written to.
    #[arg(long, default_value = "dcmon.db")]
    pub db: PathBuf,
    /// Which hosts: a name, a glob, `group:NAME` or `label:key=value`; commas join.
    pub selector: String,
    #[command(subcommand)]
    pub action: FanAction,
    /// Deadline on each host.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub timeout: std::time::Duration,
    /// One JSON object per host.
    #[arg(long, global = true)]
    pub json: bool,
    /// Record host keys not yet in known_hosts (trust on first use).
    #[arg(long, global = true)]
    pub accept_new_host_keys: bool,
    /// `ssh`: ipmitool on the host; `bmc`: the host's BMC over the network (IPMI over
    /// LAN), which answers when the OS does not.
    #[arg(long, value_enum, default_value = "ssh", global = true)]
    pub via: FanPath,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FanPath {
    Ssh,
    Bmc,
}

#[derive(Debug, Subcommand)]
pub enum FanAction {
    /// The current mode (where the BMC tells) and every fan's speed.
    Status,
    /// Set a mode: supermicro standard|full|optimal|pue|heavy-io; dell auto or a duty like 40%.
    Set {
        mode: String,
        /// Print, per host, the exact commands instead of running them.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Inventory file; without one, the local machine is the only host.
    #[arg(long, short)]
    pub inventory: Option<PathBuf>,
    /// SQLite database the audit trail is written to.
    #[arg(long, default_value = "dcmon.db")]
    pub db: PathBuf,
    /// Which hosts: a name, a glob, `group:NAME` or `label:key=value`; commas join.
    pub selector: String,
    /// Deadline of the command on each host; it is stopped there when passed.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// Hosts at work at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Run through `sudo -n` on the hosts.
    #[arg(long = "become")]
    pub become_root: bool,
    /// One JSON object per host: host, status, exit_code, stdout, stderr, duration_ms.
    #[arg(long)]
    pub json: bool,
    /// Each host's output in one block when it finishes, instead of `host: line` as it comes.
    #[arg(long)]
    pub group_output: bool,
    /// Record host keys not yet in known_hosts (trust on first use).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Use dcmon's own connections even when `dcmon serve` runs on this database (its
    /// control socket DB.sock is otherwise used: serve's sessions and inventory).
    #[arg(long)]
    pub standalone: bool,
    /// The command and its arguments, after `--`; passed to the host quoted, never
    /// interpreted by a shell on the way.
    #[arg(last = true, required = true, num_args = 1..)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[arg(long, default_value = "dcmon.db")]
    pub db: PathBuf,
    /// Only this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only since: `1h` (ago), or Unix seconds.
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many entries, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// One JSON object per entry.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Report every problem in FILE as FILE:LINE:COL: message; exit 1 if any.
    Check { file: PathBuf },
    /// Print the resolved hosts (defaults, groups and ranges applied).
    List {
        file: PathBuf,
        /// A host name, a glob (`gpu*`), `group:NAME` or `label:key=value`; commas join.
        selector: Option<String>,
        /// One JSON object per host.
        #[arg(long)]
        json: bool,
        /// Each host's probes with the interval (or schedule) and timeout they run
        /// with, and which setting gave the timeout; then each SSH setting with where it
        /// came from (an inventory line, an ssh_config line, or dcmon's default).
        #[arg(long)]
        resolved: bool,
        /// Only the hosts poller I of N polls (`[cluster] replicas` from FILE), with
        /// every poller of each host in a POLLERS column; `--shard N` alone lists
        /// every host with its pollers among N.
        #[arg(long)]
        shard: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct PollArgs {
    /// Inventory file; without one, the local machine is polled.
    #[arg(long, short)]
    pub inventory: Option<PathBuf>,
    /// SQLite database (created if missing).
    #[arg(long, default_value = "dcmon.db")]
    pub db: PathBuf,
    /// Which hosts: a name, a glob, `group:NAME` or `label:key=value`; commas join.
    pub selector: Option<String>,
    /// One JSON object per host, one per line.
    #[arg(long)]
    pub json: bool,
    /// Record host keys not yet in known_hosts (trust on first use); a changed key is still refused.
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

#[derive(Debug, Args)]
pub struct SeriesArgs {
    /// SQLite database written by `dcmon poll` or `dcmon serve`.
    #[arg(long, default_value = "dcmon.db")]
    pub db: PathBuf,
    /// Only this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only names matching this glob, such as `node_cpu*`.
    #[arg(long)]
    pub name: Option<String>,
    /// One JSON object per series, one per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Inventory file; without one, the local machine is monitored.
    #[arg(long, short)]
    pub inventory: Option<PathBuf>,
    /// SQLite database (created if missing).
    #[arg(long, default_value = "dcmon.db")]
    pub db: PathBuf,
    /// Print one JSON line per round once it is stored.
    #[arg(long)]
    pub json: bool,
    /// Record host keys not yet in known_hosts (trust on first use).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Address of the dashboard and API (port 0: any free port); `off` for none.
    /// Default: `[web] listen` of the inventory, else 127.0.0.1:8000.
    #[arg(long)]
    pub listen: Option<String>,
    /// Poll only this poller's share of the hosts: `I/N` (over `[cluster] shard`).
    #[arg(long, value_parser = parse_shard, conflicts_with = "web_only")]
    pub shard: Option<dcmon_inventory::cluster::Shard>,
    /// Poll nothing: serve the central view of every poller's hosts, read from the
    /// Prometheus API of `[web] backend` (VictoriaMetrics, Prometheus).
    #[arg(long, requires = "inventory")]
    pub web_only: bool,
}

fn parse_shard(text: &str) -> Result<dcmon_inventory::cluster::Shard, String> {
    dcmon_inventory::cluster::Shard::parse(text)
}

#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(subcommand)]
    pub command: Option<AlertsCommand>,
    /// SQLite database written by `dcmon serve`.
    #[arg(long, default_value = "dcmon.db")]
    pub db: PathBuf,
    /// One JSON object per alert.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Every rule in force (built-in and the inventory's) with its PromQL.
    Rules {
        /// Inventory file; without one, the built-in rules.
        #[arg(long, short)]
        inventory: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Checks the rules of an inventory file (the whole file, as `inventory check`).
    Check { file: PathBuf },
    /// Mutes the alerts these matchers select (`host=gpu01,alertname=~"Gpu.*"`): no
    /// notification while it lasts; audited, copied to every Alertmanager by serve.
    Silence {
        /// Comma-separated `NAME=VALUE`, `NAME!=VALUE`, `NAME=~REGEX`, `NAME!~REGEX`.
        matchers: String,
        /// How long (`2h`, `30m`, at most a year).
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        /// Why (shown on the Alerts page and in Alertmanager).
        #[arg(long)]
        comment: String,
        #[arg(long, default_value = "dcmon.db")]
        db: PathBuf,
    },
    /// Lifts a silence now (audited).
    Unsilence {
        id: i64,
        #[arg(long, default_value = "dcmon.db")]
        db: PathBuf,
    },
    /// Silences in force and those that ended in the last day.
    Silences {
        #[arg(long, default_value = "dcmon.db")]
        db: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Evaluates every rule against a database now and prints what matches, with
    /// values (`for` is not waited for). Stores nothing.
    Test {
        file: PathBuf,
        #[arg(long, default_value = "dcmon.db")]
        db: PathBuf,
        #[arg(long)]
        json: bool,
    },
}
