//! The `apt` probe: upgrades pending, security upgrades pending, reboot required (and
//! the packages asking for it), and when the package lists were last refreshed.

use crate::output::{Labels, ParseError, ProbeOutput};
use crate::registry::{Probe, all_logs_new};
use crate::sections::Sections;
use std::time::Duration;

pub const SCRIPT: &str = include_str!("apt.sh");

pub const PROBE: Probe = Probe {
    name: "apt",
    description: "Debian/Ubuntu: upgrades and security upgrades pending, reboot required",
    script: SCRIPT,
    commands: &[
        "LC_ALL=C apt-get -s -o Debug::NoLocking=true dist-upgrade",
        "cat /var/run/reboot-required.pkgs (when /var/run/reboot-required exists)",
        "stat -c %Y /var/lib/apt/lists",
    ],
    parse,
    default_interval: Duration::from_secs(3600),
    default_timeout: Duration::from_secs(60),
    privileges: "none",
    new_logs: all_logs_new,
    inputs: crate::registry::no_inputs,
    kind: crate::registry::ProbeKind::Script,
    in_shell: false,
    brings: &[],
};

pub fn parse(text: &str) -> ProbeOutput {
    let mut out = ProbeOutput::default();
    let sections = Sections::split(text);
    if sections.finish(&mut out) {
        return out;
    }
    if let Some(body) = sections.get("upgrade") {
        upgrades(body, &mut out);
    }
    if let Some(body) = sections.get("reboot") {
        let mut lines = body.lines().map(str::trim).filter(|l| !l.is_empty());
        let required = lines.next() == Some("required");
        out.gauge(
            "apt_reboot_required",
            Labels::default(),
            if required { 1.0 } else { 0.0 },
            "",
        );
        let packages: Vec<&str> = lines.collect();
        if required {
            out.fact("reboot_required_packages", &packages.join(" "));
        }
    }
    if let Some(ts) = sections
        .get("lists")
        .and_then(|b| b.trim().parse::<f64>().ok())
    {
        out.gauge(
            "apt_lists_updated_timestamp_seconds",
            Labels::default(),
            ts,
            "seconds",
        );
    }
    out
}

/// `apt-get -s dist-upgrade`: one `Inst` line per package to upgrade or install; the
/// release in parentheses names `-security` for security updates.
///
/// ```text
/// Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])
/// Inst libgcrypt20 [1.10.1-3] (1.10.1-3+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64])
/// ```
fn upgrades(body: &str, out: &mut ProbeOutput) {
    let (mut all, mut security) = (0, 0);
    let mut answered = false;
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("Inst ") {
            all += 1;
            let origin = rest.split_once('(').map_or("", |(_, o)| o);
            if origin.contains("-security") || origin.contains("Security") {
                security += 1;
            }
        } else if line.contains(" upgraded, ") || line.starts_with("Reading package lists") {
            answered = true;
        } else if line.starts_with("E: ") {
            out.warnings.push(ParseError::ToolFailed {
                tool: "apt-get".into(),
                message: line.trim().to_string(),
            });
        }
    }
    if answered || all > 0 {
        out.gauge("apt_upgrades_pending", Labels::default(), all as f64, "");
        out.gauge(
            "apt_security_upgrades_pending",
            Labels::default(),
            security as f64,
            "",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN12: &str =
        include_str!("../../tests/fixtures/apt/debian12-apt-get-s-dist-upgrade.txt");

    fn get(out: &ProbeOutput, series: &str) -> Option<f64> {
        out.samples
            .iter()
            .find(|s| s.name == series)
            .map(|s| s.value)
    }

    #[test]
    fn debian_12_capture() {
        let text = format!(
            "\n==dcmon== upgrade\n{DEBIAN12}\n==dcmon== reboot\nnot-required\n\n==dcmon== lists\n1795312999\n\n==dcmon== end\n"
        );
        let out = parse(&text);
        assert_eq!(out.warnings, []);
        assert_eq!(get(&out, "apt_upgrades_pending"), Some(131.0));
        assert_eq!(get(&out, "apt_security_upgrades_pending"), Some(81.0));
        assert_eq!(get(&out, "apt_reboot_required"), Some(0.0));
        assert_eq!(
            get(&out, "apt_lists_updated_timestamp_seconds"),
            Some(1795312999.0)
        );
    }

    #[test]
    fn reboot_required_with_packages_and_nothing_to_upgrade() {
        let text = "\n==dcmon== upgrade\nReading package lists...\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n\n==dcmon== reboot\nrequired\nlinux-image-6.1.0-18-amd64\nlibc6\n\n==dcmon== end\n";
        let out = parse(text);
        assert_eq!(get(&out, "apt_upgrades_pending"), Some(0.0));
        assert_eq!(get(&out, "apt_reboot_required"), Some(1.0));
        assert_eq!(out.facts[0].value, "linux-image-6.1.0-18-amd64 libc6");
    }

    #[test]
    fn apt_errors_are_reported_not_zero() {
        let text = "\n==dcmon== upgrade\nE: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)\n\n==dcmon== end\n";
        let out = parse(text);
        assert_eq!(get(&out, "apt_upgrades_pending"), None);
        assert!(matches!(&out.warnings[..], [ParseError::ToolFailed { .. }]));
    }

    /// The script, run on this Debian machine, answers.
    #[test]
    fn script_runs_on_this_machine() {
        let run = std::process::Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .output()
            .unwrap();
        let out = parse(&String::from_utf8_lossy(&run.stdout));
        assert_eq!(out.warnings, []);
        assert!(out.absent.is_some() || get(&out, "apt_upgrades_pending").is_some());
    }
}
