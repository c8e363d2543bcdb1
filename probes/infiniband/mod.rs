//! The `infiniband` probe: every InfiniBand and RoCE port in sysfs, without root: its
//! state (a port that goes down reads 0, it does not vanish), link rate, and the
//! port counters (data, packets, symbol errors, link downed, receive errors, discards).

use crate::output::{Labels, ProbeOutput};
use crate::registry::{Probe, all_logs_new};
use crate::sections::Sections;
use std::collections::BTreeMap;
use std::time::Duration;

pub const SCRIPT: &str = include_str!("infiniband.sh");

pub const PROBE: Probe = Probe {
    name: "infiniband",
    description: "InfiniBand/RoCE ports: state, rate, data, packets, symbol errors, link downed, receive errors, discards, the driver's hw_counters (RoCE retransmits, sequence errors, out of buffer)",
    script: SCRIPT,
    commands: &[
        "grep -H '' /sys/class/infiniband/*/ports/*/{state,phys_state,rate,link_layer,counters/*,hw_counters/*}",
    ],
    parse,
    default_interval: Duration::from_secs(30),
    default_timeout: Duration::from_secs(15),
    privileges: "none",
    new_logs: all_logs_new,
    inputs: crate::registry::no_inputs,
    kind: crate::registry::ProbeKind::Script,
    in_shell: false,
    brings: &[],
};

/// Error counters (the IBA PortCounters attribute): each an `ib_port_errors_total`
/// series labelled by its sysfs name.
const ERROR_COUNTERS: &[&str] = &[
    "symbol_error",
    "link_downed",
    "link_error_recovery",
    "port_rcv_errors",
    "port_rcv_remote_physical_errors",
    "port_rcv_switch_relay_errors",
    "port_xmit_discards",
    "port_xmit_constraint_errors",
    "port_rcv_constraint_errors",
    "local_link_integrity_errors",
    "excessive_buffer_overrun_errors",
    "VL15_dropped",
    "port_rcv_discards",
];

pub fn parse(text: &str) -> ProbeOutput {
    let mut out = ProbeOutput::default();
    let sections = Sections::split(text);
    if sections.finish(&mut out) {
        return out;
    }
    if let Some(body) = sections.get("ports") {
        ports(body, &mut out);
    }
    out
}

/// `grep -H ''` lines: `/sys/class/infiniband/mlx5_0/ports/1/state:4: ACTIVE`.
pub fn ports(body: &str, out: &mut ProbeOutput) {
    let mut link_layers: BTreeMap<(String, String), String> = BTreeMap::new();
    for (n, line) in body.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((device, port, file, value)) = split(line) else {
            out.not_understood("ports", n + 1, line);
            continue;
        };
        let labels = || Labels::new([("device", device), ("port", port)]);
        match file {
            "state" => match leading_number(value) {
                // `4: ACTIVE`; 1 DOWN, 2 INIT, 3 ARMED, 5 ACTIVE_DEFER.
                Some(state) => {
                    out.gauge("ib_port_state", labels(), state, "");
                    out.gauge(
                        "ib_port_up",
                        labels(),
                        if state == 4.0 { 1.0 } else { 0.0 },
                        "",
                    );
                }
                None => out.not_understood("ports", n + 1, line),
            },
            // `5: LinkUp`; 2 Polling, 3 Disabled, 7 LinkErrorRecovery.
            "phys_state" => match leading_number(value) {
                Some(state) => out.gauge("ib_port_phys_state", labels(), state, ""),
                None => out.not_understood("ports", n + 1, line),
            },
            // `100 Gb/sec (4X EDR)`, `10 Gb/sec (4X)`.
            "rate" => match value
                .split_once(" Gb/sec")
                .and_then(|(gbps, _)| gbps.trim().parse::<f64>().ok())
            {
                Some(gbps) => {
                    out.gauge(
                        "ib_port_rate_bytes_per_second",
                        labels(),
                        gbps * 1e9 / 8.0,
                        "bytes",
                    );
                }
                _ => out.not_understood("ports", n + 1, line),
            },
            "link_layer" => {
                link_layers.insert(
                    (device.to_string(), port.to_string()),
                    value.trim().to_string(),
                );
            }
            // `lifespan` is how long (ms) the driver caches hw_counters: a setting.
            "hw_counters/lifespan" => {}
            counter => {
                let (hw, counter) = match counter.split_once('/') {
                    Some(("counters", name)) => (false, name),
                    Some(("hw_counters", name)) => (true, name),
                    _ => {
                        out.not_understood("ports", n + 1, line);
                        continue;
                    }
                };
                // `N/A (no PMA)`: the device keeps no such counter (iWARP, some RoCE).
                let Ok(v) = value.trim().parse::<f64>() else {
                    if !value.trim().starts_with("N/A") {
                        out.not_understood("ports", n + 1, line);
                    }
                    continue;
                };
                if hw {
                    // Driver-specific (mlx5: RoCE retransmits and timeouts, sequence
                    // errors, receive WQEs missing): kept by the driver's names.
                    out.counter(
                        "ib_port_hw_counter_total",
                        labels().with("counter", counter),
                        v,
                        "",
                    );
                } else {
                    push_counter(counter, v, labels(), out);
                }
            }
        }
    }
    for ((device, port), layer) in link_layers {
        out.fact(&format!("ib_{device}_{port}_link_layer"), &layer);
    }
}

fn push_counter(counter: &str, v: f64, labels: Labels, out: &mut ProbeOutput) {
    match counter {
        // Data counters count 4-byte words (IBA PortXmitData/PortRcvData).
        "port_rcv_data" => out.counter("ib_port_received_bytes_total", labels, v * 4.0, "bytes"),
        "port_xmit_data" => {
            out.counter("ib_port_transmitted_bytes_total", labels, v * 4.0, "bytes")
        }
        "port_rcv_packets" => out.counter("ib_port_received_packets_total", labels, v, ""),
        "port_xmit_packets" => out.counter("ib_port_transmitted_packets_total", labels, v, ""),
        "port_xmit_wait" => out.counter("ib_port_transmit_wait_total", labels, v, ""),
        c if ERROR_COUNTERS.contains(&c) => {
            out.counter("ib_port_errors_total", labels.with("counter", c), v, "")
        }
        // Multicast/unicast packet counts and whatever a newer kernel adds: kept whole.
        c => out.counter("ib_port_counter_total", labels.with("counter", c), v, ""),
    }
}

/// `.../class/infiniband/DEVICE/ports/PORT/FILE:VALUE` → its parts; FILE may be
/// `counters/NAME`. None for any other line.
fn split(line: &str) -> Option<(&str, &str, &str, &str)> {
    let at = line.find("/class/infiniband/")?;
    let rest = &line[at + "/class/infiniband/".len()..];
    let (path, value) = rest.split_once(':')?;
    let (device, rest) = path.split_once("/ports/")?;
    let (port, file) = rest.split_once('/')?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    };
    (plain(device)
        && port.chars().all(|c| c.is_ascii_digit())
        && !port.is_empty()
        && !file.is_empty())
    .then_some((device, port, file, value))
}

/// `4: ACTIVE` → 4.
fn leading_number(value: &str) -> Option<f64> {
    value.split(':').next()?.trim().parse::<f64>().ok()
}

#[cfg(test)]
mod tests;
