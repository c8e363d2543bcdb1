//! The `docker` probe: every container's state, and for running ones CPU %, memory
//! used and limit, network and block I/O, from `docker ps` and `docker stats`.

use crate::output::{Labels, ParseError, ProbeOutput};
use crate::registry::{Probe, all_logs_new};
use crate::sections::Sections;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

pub const SCRIPT: &str = include_str!("docker.sh");

pub const PROBE: Probe = Probe {
    name: "docker",
    description: "containers: state, CPU %, memory used/limit, network and block I/O, PIDs",
    script: SCRIPT,
    commands: &[
        "docker ps -a --no-trunc --format '{{json .}}'",
        "docker stats --no-stream --no-trunc --format '{{json .}}'",
    ],
    parse,
    default_interval: Duration::from_secs(30),
    default_timeout: Duration::from_secs(30),
    privileges: "docker group or root (become = true)",
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
    let images = sections
        .get("ps")
        .map(|b| ps(b, &mut out))
        .unwrap_or_default();
    if let Some(body) = sections.get("stats") {
        stats(body, &images, &mut out);
    }
    out
}

/// Lines that are not JSON are docker's own complaints; each is reported once. A
/// client without a running daemon is a host without Docker: absent, not failing.
fn complaint(line: &str, out: &mut ProbeOutput) {
    let message = line.trim().to_string();
    if message.starts_with("Cannot connect to the Docker daemon") {
        out.absent = Some(format!("docker daemon not running ({message})"));
        return;
    }
    if !out
        .warnings
        .iter()
        .any(|w| matches!(w, ParseError::ToolFailed { message: m, .. } if *m == message))
    {
        out.warnings.push(ParseError::ToolFailed {
            tool: "docker".into(),
            message,
        });
    }
}

/// `docker ps -a --format '{{json .}}'`; returns name → image for the stats labels.
///
/// ```text
/// {"Command":"\"nginx -g 'daemon off;'\"","ID":"3f2a...","Image":"nginx:1.25","Names":"web","State":"running","Status":"Up 2 hours",...}
/// ```
fn ps(body: &str, out: &mut ProbeOutput) -> BTreeMap<String, String> {
    let mut images = BTreeMap::new();
    let mut states: BTreeMap<String, u32> = BTreeMap::new();
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Ok(c) = serde_json::from_str::<Value>(line) else {
            complaint(line, out);
            continue;
        };
        let name = c["Names"].as_str().unwrap_or("").to_string();
        let image = c["Image"].as_str().unwrap_or("").to_string();
        let state = c["State"].as_str().unwrap_or("unknown").to_string();
        let running = if state == "running" { 1.0 } else { 0.0 };
        // The short id (12 hex digits, as `docker ps` prints it) tells which container a
        // GPU process runs in (the nvidia probe reads it from /proc/PID/cgroup).
        let id: String = c["ID"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(12)
            .filter(char::is_ascii_hexdigit)
            .collect();
        let mut labels = Labels::new([("name", name.as_str()), ("image", image.as_str())]);
        if id.len() == 12 {
            labels = labels.with("id", &id);
        }
        out.gauge("docker_container_running", labels, running, "");
        *states.entry(state).or_default() += 1;
        images.insert(name, image);
    }
    for (state, count) in states {
        out.gauge(
            "docker_containers",
            Labels::new([("state", state)]),
            count as f64,
            "",
        );
    }
    images
}

/// `docker stats --no-stream --format '{{json .}}'`
///
/// ```text
/// {"BlockIO":"4.1MB / 0B","CPUPerc":"0.07%","MemUsage":"7.59MiB / 15.5GiB","Name":"web","NetIO":"5.65kB / 1.2kB","PIDs":"5",...}
/// ```
fn stats(body: &str, images: &BTreeMap<String, String>, out: &mut ProbeOutput) {
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Ok(s) = serde_json::from_str::<Value>(line) else {
            complaint(line, out);
            continue;
        };
        let name = s["Name"].as_str().unwrap_or("");
        let image = images.get(name).map_or("", String::as_str);
        let labels = || Labels::new([("name", name), ("image", image)]);
        let text = |k: &str| s[k].as_str().unwrap_or("");
        if let Some(cpu) = percent(text("CPUPerc")) {
            out.gauge("docker_container_cpu_percent", labels(), cpu, "percent");
        }
        if let Some((used, limit)) = pair(text("MemUsage")) {
            out.gauge(
                "docker_container_memory_used_bytes",
                labels(),
                used,
                "bytes",
            );
            out.gauge(
                "docker_container_memory_limit_bytes",
                labels(),
                limit,
                "bytes",
            );
        }
        if let Some((rx, tx)) = pair(text("NetIO")) {
            out.counter(
                "docker_container_network_receive_bytes_total",
                labels(),
                rx,
                "bytes",
            );
            out.counter(
                "docker_container_network_transmit_bytes_total",
                labels(),
                tx,
                "bytes",
            );
        }
        if let Some((read, written)) = pair(text("BlockIO")) {
            out.counter(
                "docker_container_block_read_bytes_total",
                labels(),
                read,
                "bytes",
            );
            out.counter(
                "docker_container_block_written_bytes_total",
                labels(),
                written,
                "bytes",
            );
        }
        if let Ok(pids) = text("PIDs").parse::<f64>() {
            out.gauge("docker_container_pids", labels(), pids, "");
        }
    }
}

fn percent(text: &str) -> Option<f64> {
    text.trim()
        .trim_end_matches('%')
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
}

/// `7.59MiB / 15.5GiB` → bytes, bytes. `--` (a stopped container) is no value.
fn pair(text: &str) -> Option<(f64, f64)> {
    let (a, b) = text.split_once(" / ")?;
    Some((bytes(a)?, bytes(b)?))
}

/// docker prints memory in binary units (go-units BytesSize: KiB, MiB) and I/O in
/// decimal ones (HumanSize: kB, MB).
fn bytes(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "B" => 1.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "PB" => 1e15,
        "KiB" => 1024.0,
        "MiB" => 1048576.0,
        "GiB" => 1073741824.0,
        "TiB" => 1099511627776.0,
        _ => return None,
    };
    // docker rounds to 3 significant digits; bytes are whole all the same.
    number
        .parse::<f64>()
        .ok()
        .map(|n| (n * scale).round())
        .filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docker 24 output, as `{{json .}}` prints it (keys sorted by Go's encoder).
    const PS: &str = r#"{"Command":"\"/docker-entrypoint.sh nginx -g 'daemon off;'\"","CreatedAt":"2024-03-01 10:00:00 +0000 UTC","ID":"3f2a9c1b7e6d","Image":"nginx:1.25","Labels":"","LocalVolumes":"0","Mounts":"","Names":"web","Networks":"bridge","Ports":"0.0.0.0:8080->80/tcp","RunningFor":"2 hours ago","Size":"0B","State":"running","Status":"Up 2 hours"}
{"Command":"\"docker-entrypoint.sh postgres\"","CreatedAt":"2024-03-01 09:00:00 +0000 UTC","ID":"9d8e7f6a5b4c","Image":"postgres:16","Labels":"","LocalVolumes":"1","Mounts":"pgdata","Names":"db","Networks":"bridge","Ports":"","RunningFor":"3 hours ago","Size":"0B","State":"exited","Status":"Exited (0) 5 minutes ago"}"#;
    const STATS: &str = r#"{"BlockIO":"4.1MB / 0B","CPUPerc":"0.07%","Container":"3f2a9c1b7e6d","ID":"3f2a9c1b7e6d","MemPerc":"0.05%","MemUsage":"7.59MiB / 15.5GiB","Name":"web","NetIO":"5.65kB / 1.2kB","PIDs":"5"}"#;

    fn get(out: &ProbeOutput, series: &str, name: &str) -> Option<f64> {
        out.samples
            .iter()
            .find(|s| s.name == series && s.labels.get("name") == Some(name))
            .map(|s| s.value)
    }

    #[test]
    fn containers_states_and_resources() {
        let out = parse(&format!(
            "\n==dcmon== ps\n{PS}\n\n==dcmon== stats\n{STATS}\n\n==dcmon== end\n"
        ));
        assert_eq!(out.warnings, []);
        assert_eq!(get(&out, "docker_container_running", "web"), Some(1.0));
        let web = out
            .samples
            .iter()
            .find(|s| s.name == "docker_container_running" && s.labels.get("name") == Some("web"))
            .unwrap();
        assert_eq!(web.labels.get("id"), Some("3f2a9c1b7e6d"));
        assert_eq!(get(&out, "docker_container_running", "db"), Some(0.0));
        assert_eq!(get(&out, "docker_container_cpu_percent", "web"), Some(0.07));
        assert_eq!(
            get(&out, "docker_container_memory_used_bytes", "web"),
            Some((7.59f64 * 1048576.0).round())
        );
        assert_eq!(
            get(&out, "docker_container_memory_limit_bytes", "web"),
            Some(15.5 * 1073741824.0)
        );
        assert_eq!(
            get(&out, "docker_container_network_receive_bytes_total", "web"),
            Some(5650.0)
        );
        assert_eq!(
            get(&out, "docker_container_block_read_bytes_total", "web"),
            Some(4.1e6)
        );
        assert_eq!(get(&out, "docker_container_pids", "web"), Some(5.0));
        let cpu = out
            .samples
            .iter()
            .find(|s| s.name == "docker_container_cpu_percent")
            .unwrap();
        assert_eq!(cpu.labels.get("image"), Some("nginx:1.25"));
        let exited = out
            .samples
            .iter()
            .find(|s| s.name == "docker_containers" && s.labels.get("state") == Some("exited"))
            .unwrap();
        assert_eq!(exited.value, 1.0);
    }

    /// Captured on this build machine: the docker client without a daemon is a host
    /// without Docker. A refused socket is a real failure, reported once.
    #[test]
    fn daemon_down_is_absent_permission_denied_is_an_error() {
        let down = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?";
        let out = parse(&format!(
            "\n==dcmon== ps\n{down}\n\n==dcmon== stats\n{down}\n\n==dcmon== end\n"
        ));
        assert_eq!(out.warnings, []);
        assert!(
            out.absent
                .as_deref()
                .unwrap()
                .starts_with("docker daemon not running")
        );
        let denied = "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock";
        let out = parse(&format!(
            "\n==dcmon== ps\n{denied}\n\n==dcmon== stats\n{denied}\n\n==dcmon== end\n"
        ));
        assert_eq!(
            out.warnings,
            [ParseError::ToolFailed {
                tool: "docker".into(),
                message: denied.into()
            }]
        );
    }

    #[test]
    fn absent_docker_and_no_containers() {
        assert!(
            parse("\n==dcmon== absent\ndocker is not installed\n\n==dcmon== end\n")
                .absent
                .is_some()
        );
        let none = parse("\n==dcmon== ps\n\n==dcmon== stats\n\n==dcmon== end\n");
        assert_eq!(none.warnings, []);
        assert!(none.samples.is_empty());
    }

    #[test]
    fn sizes_and_garbage() {
        assert_eq!(bytes("0B"), Some(0.0));
        assert_eq!(bytes("1.5GiB"), Some(1.5 * 1073741824.0));
        assert_eq!(bytes("--"), None);
        assert_eq!(pair("-- / --"), None);
        for text in [
            "{",
            "{\"MemUsage\": 5}",
            "\u{0}",
            "{\"NetIO\":\"1e999kB / 1B\"}",
        ] {
            let out = parse(&format!("==dcmon== stats\n{text}\n==dcmon== end\n"));
            assert!(out.samples.iter().all(|s| s.value.is_finite()));
        }
    }
}
