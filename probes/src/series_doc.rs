//! The series each probe emits, read from the table in its README: one description for
//! people and for `dcmon probes list`, held to what the parsers really emit by a test
//! over every fixture (tests/parse.rs).

/// One documented series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocSeries {
    pub name: String,
    /// The table's unit cell, as written (`celsius`, `bytes (units × 512,000)`, `0/1`).
    pub unit: String,
    /// The label keys a sample of it may carry.
    pub labels: Vec<String>,
}

fn readme(probe: &str) -> Option<&'static str> {
    Some(match probe {
        "os" => include_str!("../os/README.md"),
        "fs" => include_str!("../fs/README.md"),
        "ipmi" => include_str!("../ipmi/README.md"),
        "nvidia" | "nvidia_details" => include_str!("../nvidia/README.md"),
        "nvme" => include_str!("../nvme/README.md"),
        "smart" => include_str!("../smart/README.md"),
        "sensors" => include_str!("../sensors/README.md"),
        "apt" => include_str!("../apt/README.md"),
        "docker" => include_str!("../docker/README.md"),
        "logs" => include_str!("../logs/README.md"),
        "infiniband" => include_str!("../infiniband/README.md"),
        "pcie" => include_str!("../pcie/README.md"),
        "custom" => include_str!("../custom/README.md"),
        _ => return None,
    })
}

/// The series in `probe`'s README table (none for probes whose series are the host's:
/// `custom`, or that yield log lines only: `logs`).
pub fn series(probe: &str) -> Vec<DocSeries> {
    if probe == crate::ipmi::BMC_PROBE.name {
        // Over IPMI: the ipmi probe's sensor and power series, not DCMI (asked through
        // the OS) nor the chassis status fault bits. Over Redfish: the redfish table's,
        // whose labels add to those of a series both name.
        let mut out: Vec<DocSeries> = series(crate::ipmi::PROBE.name)
            .into_iter()
            .filter(|s| {
                !s.name.starts_with("ipmi_dcmi")
                    && !s.name.contains("chassis_fault")
                    && !s.name.contains("intrusion")
            })
            .collect();
        for row in table(include_str!("../redfish/README.md")) {
            match out.iter_mut().find(|s| s.name == row.name) {
                Some(known) => {
                    for label in row.labels {
                        if !known.labels.contains(&label) {
                            known.labels.push(label);
                        }
                    }
                }
                None => out.push(row),
            }
        }
        return out;
    }
    readme(probe).map(table).unwrap_or_default()
}

/// The series of a README's first table.
fn table(text: &str) -> Vec<DocSeries> {
    let mut rows = text.lines().filter(|l| l.starts_with('|'));
    let Some(header) = rows.next() else {
        return Vec::new();
    };
    let columns: Vec<String> = cells(header).iter().map(|c| c.to_lowercase()).collect();
    let at = |name: &str| columns.iter().position(|c| c == name);
    let (Some(series_at), unit_at, labels_at) = (at("series"), at("unit"), at("labels")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut previous_labels: Vec<String> = Vec::new();
    for row in rows {
        let cells = cells(row);
        if cells
            .iter()
            .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue; // the |---| line
        }
        let cell = |i: Option<usize>| i.and_then(|i| cells.get(i)).cloned().unwrap_or_default();
        let labels_cell = cell(labels_at);
        let mut labels = label_keys(&labels_cell);
        // `+ type, scope`: the row above's labels and these.
        if labels_cell.trim_start().starts_with('+') {
            let mut inherited = previous_labels.clone();
            inherited.extend(labels);
            labels = inherited;
        }
        previous_labels = labels.clone();
        for name in names(&cell(Some(series_at))) {
            out.push(DocSeries {
                name,
                unit: cell(unit_at),
                labels: labels.clone(),
            });
        }
    }
    out
}

fn cells(row: &str) -> Vec<String> {
    let row = row.trim().trim_start_matches('|').trim_end_matches('|');
    row.split('|').map(|c| c.trim().to_string()).collect()
}

/// Text without its parenthesised asides.
fn without_asides(text: &str) -> String {
    let mut depth = 0usize;
    let mut out = String::new();
    for ch in text.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(ch),
            _ => {}
        }
    }
    out
}

/// `node_memory_{total,used}_bytes, node_load1 (gauge)` → every name it stands for.
fn names(cell: &str) -> Vec<String> {
    let mut out = Vec::new();
    let text = without_asides(cell);
    let mut depth = 0usize;
    let mut current = String::new();
    for ch in text.chars().chain([',']) {
        match ch {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                let name = current.trim().trim_matches('`').to_string();
                if !name.is_empty() {
                    out.extend(expand(&name));
                }
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    out
}

/// Expands the first `{a,b}` group, then the rest.
fn expand(name: &str) -> Vec<String> {
    let (Some(open), Some(close)) = (name.find('{'), name.find('}')) else {
        return vec![name.to_string()];
    };
    if close < open {
        return vec![name.to_string()];
    }
    let (head, tail) = (&name[..open], &name[close + 1..]);
    name[open + 1..close]
        .split(',')
        .flat_map(|part| expand(&format!("{head}{}{tail}", part.trim())))
        .collect()
}

/// `cpu, mode (user nice ...)`, `device, model, serial (+ sensor)`,
/// `fault: power_overload, ...; path` → the keys.
fn label_keys(cell: &str) -> Vec<String> {
    let cell = cell.replace("(+ ", ", (").replace("(+", ", (");
    // `(+ sensor)` became `, (sensor)`: keep what such asides name.
    let mut text = String::new();
    let mut depth = 0usize;
    let mut kept = false;
    for (i, ch) in cell.char_indices() {
        match ch {
            '(' => {
                depth += 1;
                kept = cell[..i].trim_end().ends_with(',');
            }
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 || kept => text.push(ch),
            _ => {}
        }
    }
    let mut keys = Vec::new();
    for part in text.split(';') {
        // `fault: power_overload, ...`: the key is before the colon.
        let part = part.split_once(':').map_or(part, |(key, _)| key);
        for key in part.split([',', '+']) {
            let key = key.trim().trim_matches('`');
            if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                keys.push(key.to_string());
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_read_into_names_units_and_labels() {
        let os = series("os");
        let find = |name: &str| os.iter().find(|s| s.name == name).cloned();
        assert_eq!(
            find("node_memory_cached_bytes").map(|s| s.unit),
            Some("bytes".to_string())
        );
        assert_eq!(
            find("node_cpu_seconds_total").map(|s| s.labels),
            Some(vec!["cpu".to_string(), "mode".to_string()])
        );
        assert!(find("node_network_transmit_drop_total").is_some());
        let nvidia = series("nvidia");
        let ecc = nvidia
            .iter()
            .find(|s| s.name == "nvidia_gpu_ecc_errors_total")
            .unwrap();
        assert_eq!(ecc.labels, ["gpu", "uuid", "name", "type", "scope"]);
        let nvme = series("nvme");
        let temp = nvme
            .iter()
            .find(|s| s.name == "nvme_temperature_sensor_celsius")
            .unwrap();
        assert_eq!(temp.labels, ["device", "model", "serial", "sensor"]);
        let ipmi = series("ipmi");
        let fault = ipmi
            .iter()
            .find(|s| s.name == "ipmi_chassis_fault")
            .unwrap();
        assert_eq!(fault.labels, ["fault", "path"]);
        assert!(ipmi.iter().any(|s| s.name == "ipmi_dcmi_power_max_watts"));
        // The logs probe's one series is counted by the store from its events.
        let logs = series("logs");
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].name, "gpu_xid_events_total");
        assert_eq!(logs[0].labels, ["pci", "xid"]);
    }
}
