//! What runs on a host and when: each probe's interval or cron schedule, its timeout,
//! and where in the interval it starts, so a thousand hosts do not fire at once.

use dcmon_inventory::{Host, Inventory};
use dcmon_probes::Probe;
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

#[derive(Debug, Clone)]
pub struct Planned {
    pub probe: &'static Probe,
    pub trigger: Trigger,
    pub timeout: Duration,
}

/// The `bmc` probe: run by the poller itself over the network (`round::bmc_run`), so it
/// has no script and is not in the registry of scripts; planned for hosts with a `bmc`.
pub static BMC_PROBE: Probe = Probe {
    name: "bmc",
    description: "the host's BMC over IPMI-over-LAN (RMCP+): power, sensors, SEL, firmware",
    script: "",
    commands: &[
        "RMCP+ session (cipher suite 3) to the inventory's bmc address",
        "Get Device ID, Get Chassis Status, Get SDR (16-byte chunks), Get Sensor Reading, Get SEL Entry",
    ],
    parse: |_| dcmon_probes::ProbeOutput::default(),
    default_interval: Duration::from_secs(60),
    default_timeout: Duration::from_secs(10),
    privileges: "a BMC user (no access to the host)",
    new_logs: dcmon_probes::ipmi::sel::after_cursor,
    inputs: dcmon_probes::registry::no_inputs,
};

/// The plan of one host's probes (and of its BMC, when it has one).
pub fn plan(host: &Host, inventory: &Inventory) -> Vec<Planned> {
    host.probes
        .iter()
        .filter_map(|name| dcmon_probes::find(name))
        .chain(host.bmc.is_some().then_some(&BMC_PROBE))
        .map(|probe| {
            let settings = inventory
                .probe_schedules
                .get(probe.name)
                .cloned()
                .unwrap_or_default();
            let timeout = settings
                .timeout
                .unwrap_or_else(|| host.timeout.max(probe.default_timeout));
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
                probe,
                trigger,
                timeout,
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
        assert_eq!(every(1), Duration::from_secs(3600), "apt keeps its hour");
        assert_eq!(every(2), Duration::from_secs(5), "[probes.nvidia] wins");
        assert_eq!(planned[2].timeout, Duration::from_secs(2));
        assert_eq!(
            planned[1].timeout,
            Duration::from_secs(60),
            "apt's own longer timeout"
        );
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
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].probe.name, "bmc");
        assert!(
            matches!(a[1].trigger, Trigger::Every { interval, .. } if interval == Duration::from_secs(120))
        );
        assert_eq!(plan(&inv.hosts[1], &inv).len(), 1, "no bmc, no bmc reads");
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
