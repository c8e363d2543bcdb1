//! What runs on a host and when: each probe's interval or cron schedule, its timeout,
//! and where in the interval it starts, so a thousand hosts do not fire at once.

use dcmon_inventory::{Host, Inventory, ProbeSchedule};
use dcmon_probes::{Probe, ProbeKind};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// Probes whose own default interval is at most this follow the host's `interval`;
/// slower ones (smart, apt, nvidia_details) keep their slower default unless
/// `[probes.NAME]` says otherwise.
const FAST_PROBE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// Every `interval`, first at `offset` after the start.
    Every {
        interval: Duration,
        offset: Duration,
    },
    /// A cron expression with seconds.
    Cron(String),
}

/// A probe due on a host, with the deadline of its run.
#[derive(Debug, Clone, Copy)]
pub struct Due {
    pub probe: &'static Probe,
    pub timeout: Duration,
}

impl PartialEq for Due {
    fn eq(&self, other: &Due) -> bool {
        self.probe.name == other.probe.name && self.timeout == other.timeout
    }
}

#[derive(Debug, Clone)]
pub struct Planned {
    pub due: Due,
    pub trigger: Trigger,
}

/// The probes a host runs: its listed script probes in their order, then the probes
/// that read its BMC when it has one.
pub fn probes_of(host: &Host) -> impl Iterator<Item = &'static Probe> + '_ {
    let scripts = host
        .probes
        .iter()
        .filter_map(|name| dcmon_probes::find(name))
        .filter(|p| p.kind == ProbeKind::Script);
    let out_of_band = dcmon_probes::PROBES
        .iter()
        .filter(|p| p.kind == ProbeKind::Bmc && host.bmc.is_some());
    scripts.chain(out_of_band)
}

/// A run's deadline, one rule for `poll`, `serve` and `probe run`: `[probes.NAME] timeout`,
/// else the host's `timeout` (host, group or defaults), else the probe's own default.
pub fn timeout_of(host: &Host, schedules: &Schedules, probe: &Probe) -> Duration {
    timeout_and_source(host, schedules, probe).0
}

/// The timeout and which setting gave it, for `dcmon inventory list --resolved`.
pub fn timeout_and_source(
    host: &Host,
    schedules: &Schedules,
    probe: &Probe,
) -> (Duration, &'static str) {
    match (
        schedules.get(probe.name).and_then(|s| s.timeout),
        host.timeout,
    ) {
        (Some(t), _) => (t, "[probes.NAME] timeout"),
        (None, Some(t)) => (t, "timeout (defaults, group or host)"),
        (None, None) => (probe.default_timeout, "the probe's default"),
    }
}

/// `[probes.NAME]` settings by probe name.
pub type Schedules = BTreeMap<String, ProbeSchedule>;

/// What is due on a host in a round that runs all of its probes (`dcmon poll`).
pub fn due_now(host: &Host, schedules: &Schedules) -> Vec<Due> {
    probes_of(host)
        .map(|probe| Due {
            probe,
            timeout: timeout_of(host, schedules, probe),
        })
        .collect()
}

/// The plan of one host's probes (and of its BMC, when it has one).
pub fn plan(host: &Host, inventory: &Inventory) -> Vec<Planned> {
    let schedules = &inventory.probe_schedules;
    probes_of(host)
        .map(|probe| {
            let settings = schedules.get(probe.name).cloned().unwrap_or_default();
            let trigger = match settings.schedule {
                Some(cron) => Trigger::Cron(cron),
                None => {
                    let interval =
                        settings
                            .interval
                            .unwrap_or(if probe.default_interval <= FAST_PROBE {
                                host.interval
                            } else {
                                host.interval.max(probe.default_interval)
                            });
                    Trigger::Every {
                        interval,
                        offset: spread(&host.name, probe.name, interval),
                    }
                }
            };
            Planned {
                due: Due {
                    probe,
                    timeout: timeout_of(host, schedules, probe),
                },
                trigger,
            }
        })
        .collect()
}

/// A start offset within the interval, the same for a host and probe on every start,
/// spread evenly over many hosts.
fn spread(host: &str, probe: &str, interval: Duration) -> Duration {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (host, probe).hash(&mut hasher);
    let millis = interval.as_millis().max(1) as u64;
    Duration::from_millis(hasher.finish() % millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory(text: &str) -> Inventory {
        dcmon_inventory::parse(
            text,
            std::path::Path::new("inv.toml"),
            &dcmon_probes::names(),
        )
        .unwrap()
    }

    #[test]
    fn fast_probes_follow_the_host_slow_ones_keep_their_pace() {
        let inv = inventory(
            "[defaults]\ninterval = \"10s\"\nprobes = [\"os\", \"apt\", \"nvidia\"]\n[[hosts]]\nname = \"a\"\n[probes.nvidia]\ninterval = \"5s\"\ntimeout = \"2s\"\n",
        );
        let planned = plan(&inv.hosts[0], &inv);
        let every = |i: usize| match &planned[i].trigger {
            Trigger::Every { interval, .. } => *interval,
            Trigger::Cron(_) => Duration::ZERO,
        };
        assert_eq!(every(0), Duration::from_secs(10), "os follows the host");
        assert_eq!(planned[1].due.probe.name, "fs", "os brings fs");
        assert_eq!(every(1), Duration::from_secs(120), "fs keeps its 2 minutes");
        assert_eq!(every(2), Duration::from_secs(3600), "apt keeps its hour");
        assert_eq!(every(3), Duration::from_secs(5), "[probes.nvidia] wins");
        assert_eq!(planned[3].due.timeout, Duration::from_secs(2));
        assert_eq!(
            planned[2].due.timeout,
            Duration::from_secs(60),
            "apt's own timeout when no host timeout is set"
        );
    }

    #[test]
    fn timeouts_follow_one_rule_probe_then_host_then_default() {
        let inv = inventory(
            "[defaults]\nprobes = [\"os\", \"apt\", \"nvidia\"]\n[[hosts]]\nname = \"a\"\n[[hosts]]\nname = \"b\"\ntimeout = \"1500ms\"\n[probes.nvidia]\ntimeout = \"2s\"\n",
        );
        let timeouts = |i: usize| -> Vec<Duration> {
            due_now(&inv.hosts[i], &inv.probe_schedules)
                .iter()
                .map(|d| d.timeout)
                .collect()
        };
        let s = Duration::from_secs;
        assert_eq!(
            timeouts(0),
            [s(10), s(10), s(60), s(2)],
            "each probe's default"
        );
        let host = Duration::from_millis(1500);
        assert_eq!(
            timeouts(1),
            [host, host, host, s(2)],
            "the host's timeout, shorter or longer than the default, then [probes.NAME]"
        );
        let planned: Vec<Duration> = plan(&inv.hosts[1], &inv)
            .iter()
            .map(|p| p.due.timeout)
            .collect();
        assert_eq!(planned, timeouts(1), "serve plans what poll runs");
    }

    #[test]
    fn the_bmc_is_planned_for_hosts_with_one_on_its_own_schedule() {
        use std::os::unix::fs::PermissionsExt as _;
        let password = tempfile::NamedTempFile::new().unwrap();
        std::fs::set_permissions(password.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        let inv = inventory(&format!(
            "[defaults]\ninterval = \"10s\"\nprobes = [\"os\"]\n[[hosts]]\nname = \"a\"\nbmc = {{ address = \"10.0.0.1\", user = \"u\", password_file = \"{}\" }}\n[[hosts]]\nname = \"b\"\n[probes.bmc]\ninterval = \"2m\"\n",
            password.path().display()
        ));
        let a = plan(&inv.hosts[0], &inv);
        assert_eq!(a.len(), 3, "os, fs and the bmc");
        assert_eq!(a[2].due.probe.kind, ProbeKind::Bmc);
        assert!(
            matches!(a[2].trigger, Trigger::Every { interval, .. } if interval == Duration::from_secs(120))
        );
        assert_eq!(plan(&inv.hosts[1], &inv).len(), 2, "no bmc, no bmc reads");
    }

    #[test]
    fn offsets_are_stable_and_spread() {
        let interval = Duration::from_secs(30);
        assert_eq!(
            spread("gpu01", "os", interval),
            spread("gpu01", "os", interval)
        );
        let offsets: std::collections::BTreeSet<u64> = (0..1000)
            .map(|i| spread(&format!("gpu{i:04}"), "os", interval).as_secs())
            .collect();
        assert!(
            offsets.len() >= 29,
            "1000 hosts land in {} distinct seconds of 30",
            offsets.len()
        );
        assert!(offsets.iter().all(|s| *s < 30));
    }
}
