//! `systemctl show -p LoadState,ActiveState,SubState,NRestarts,Result
//! nvidia-fabricmanager`: on NVSwitch systems (HGX, DGX) the GPUs cannot use NVLink, and
//! CUDA fails with "system not yet initialized", while NVIDIA's fabric manager is down.
//! The script asks only where the unit file exists, so other hosts pay nothing.
//!
//! ```text
//! ActiveState=failed
//! SubState=failed
//! LoadState=loaded
//! NRestarts=0
//! Result=signal
//! ```
//!
//! systemctl prints the properties in its own order, not the order asked for: read as a
//! map. Properties this parser does not use are no warning (systemd adds them over
//! time); a line that is not `Key=value` is.

use crate::output::{Labels, ProbeOutput};
use std::collections::BTreeMap;

pub fn parse(text: &str, out: &mut ProbeOutput) {
    let mut props: BTreeMap<&str, &str> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match line.split_once('=') {
            Some((key, value))
                if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric()) =>
            {
                props.insert(key, value);
            }
            _ => out.not_understood("fabricmanager", n + 1, line),
        }
    }
    // A unit systemd does not know is no fabric manager to judge.
    if props.get("LoadState").is_some_and(|s| *s != "loaded") {
        return;
    }
    let Some(active) = props.get("ActiveState") else {
        return;
    };
    out.gauge(
        "nvidia_fabricmanager_active",
        Labels::default(),
        if *active == "active" { 1.0 } else { 0.0 },
        "",
    );
    if let Some(restarts) = props.get("NRestarts").and_then(|v| v.parse::<u32>().ok()) {
        out.gauge(
            "nvidia_fabricmanager_restarts",
            Labels::default(),
            f64::from(restarts),
            "",
        );
    }
    let mut state = (*active).to_string();
    let detail: Vec<String> = [
        props.get("SubState").map(|s| s.to_string()),
        props
            .get("Result")
            .filter(|r| **r != "success")
            .map(|r| format!("result {r}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !detail.is_empty() {
        state.push_str(&format!(" ({})", detail.join(", ")));
    }
    out.fact("fabricmanager_state", &state);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{fact, value};

    fn of(text: &str) -> ProbeOutput {
        let mut out = ProbeOutput::default();
        parse(text, &mut out);
        out
    }

    #[test]
    fn running_failed_and_absent_fabric_managers() {
        // A real `systemctl show` (tests/fixtures/systemctl): systemd's order, not the
        // order asked for, and a property this parser does not use.
        let running = of(include_str!(
            "../../tests/fixtures/systemctl/show-active-state-hermes-gateway.txt"
        ));
        assert_eq!(running.warnings, []);
        assert_eq!(
            value(&running, "nvidia_fabricmanager_active", &[]),
            Some(1.0)
        );
        assert_eq!(
            value(&running, "nvidia_fabricmanager_restarts", &[]),
            Some(0.0)
        );
        assert_eq!(
            fact(&running, "fabricmanager_state"),
            Some("active (running)")
        );
        // Killed by a signal, as a public `systemctl status` capture of an HGX shows.
        let failed = of(
            "LoadState=loaded\nActiveState=failed\nSubState=failed\nNRestarts=3\nResult=signal\nNewProperty=x\n",
        );
        assert_eq!(failed.warnings, []);
        assert_eq!(
            value(&failed, "nvidia_fabricmanager_active", &[]),
            Some(0.0)
        );
        assert_eq!(
            value(&failed, "nvidia_fabricmanager_restarts", &[]),
            Some(3.0)
        );
        assert_eq!(
            fact(&failed, "fabricmanager_state"),
            Some("failed (failed, result signal)")
        );
        // Not installed after all: nothing judged.
        let absent = of("LoadState=not-found\nActiveState=inactive\nSubState=dead\n");
        assert!(absent.samples.is_empty() && absent.facts.is_empty());
        // systemctl without systemd: its words are warnings with their lines.
        let no_systemd = of(
            "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down\n",
        );
        assert_eq!(no_systemd.warnings.len(), 2);
        assert!(no_systemd.samples.is_empty());
        assert!(no_systemd.warnings[1].to_string().contains("line 2"));
    }
}
