//! Pure parser of `os.sh` output: `==dcmon== NAME` markers split it into sections, and
//! each section has its own reader. A bad section becomes a warning; the rest still count.

use crate::output::{Labels, ParseError, ProbeOutput};
use crate::sections::Sections;

/// Sections without which the output is not from a working Linux host.
const REQUIRED: &[&str] = &["loadavg", "stat", "meminfo"];

/// Parses the whole script output.
///
/// ```text
/// ==dcmon== loadavg
/// 0.52 0.58 0.59 2/312 12345
/// ==dcmon== stat
/// ```
pub fn parse(text: &str) -> ProbeOutput {
    let mut out = ProbeOutput::default();
    let sections = Sections::split(text);
    // Today's script prints the larger files as one `grep -H` section; older captures
    // have a section per file. Either way each reader gets the file's lines.
    let files = sections
        .get("files")
        .map(|body| files_by_section(body, &mut out))
        .unwrap_or_default();
    let get = |name: &str| {
        sections
            .get(name)
            .or_else(|| files.get(name).map(String::as_str))
    };
    let clk_tck = get("clk_tck")
        .and_then(|b| b.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0);
    let readers: &[(&str, Reader)] = &[
        ("loadavg", &loadavg),
        ("stat", &|b, o| stat(b, clk_tck, o)),
        ("meminfo", &meminfo),
        ("diskstats", &diskstats),
        ("netdev", &netdev),
        ("df", &read_df),
        ("uptime", &uptime),
        ("os_release", &os_release),
        ("uname", &uname),
        ("nproc", &nproc),
        ("cpu_online", &cpu_online),
        ("cpu_model", &cpu_model),
        ("hostname", &hostname),
    ];
    for (name, read) in readers {
        let required = REQUIRED.contains(name);
        crate::sections::read_section(name, get(name), required, &mut out, read);
    }
    sections.finish(&mut out);
    out
}

type Res = crate::sections::SectionResult;

/// A section reader: pushes what it reads, or says which line of the section is bad.
type Reader<'a> = &'a dyn Fn(&str, &mut ProbeOutput) -> Res;

/// Lines with their 1-based numbers within the section, blank ones skipped.
fn lines(body: &str) -> impl Iterator<Item = (usize, &str)> {
    body.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
}

fn number(line: usize, what: &str, field: Option<&str>) -> Result<f64, (usize, String)> {
    let field = field.ok_or_else(|| (line, format!("{what} is missing")))?;
    field
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| (line, format!("{what} `{field}` is not a number")))
}

/// `0.52 0.58 0.59 2/312 12345`
fn loadavg(body: &str, out: &mut ProbeOutput) -> Res {
    let (n, line) = lines(body).next().ok_or((1, "empty".to_string()))?;
    let mut fields = line.split_whitespace();
    for name in ["node_load1", "node_load5", "node_load15"] {
        let v = number(n, name, fields.next())?;
        out.gauge(name, Labels::default(), v, "");
    }
    Ok(())
}

/// `cpu0 4705 150 1120 16250 520 0 70 0 0 0`, `ctxt 1990473`, `intr 114930 ...`
fn stat(body: &str, clk_tck: f64, out: &mut ProbeOutput) -> Res {
    const MODES: [&str; 8] = [
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    ];
    let mut saw_cpu = false;
    for (n, line) in lines(body) {
        let mut fields = line.split_whitespace();
        let Some(key) = fields.next() else { continue };
        if let Some(cpu) = key.strip_prefix("cpu") {
            let name = if cpu.is_empty() {
                "node_cpu_all_seconds_total"
            } else if cpu.bytes().all(|b| b.is_ascii_digit()) {
                "node_cpu_seconds_total"
            } else {
                return Err((n, format!("unexpected cpu line `{key}`")));
            };
            // Old kernels print fewer columns (no steal before 2.6.11): read what is there.
            for (mode, field) in MODES.iter().zip(fields.by_ref()) {
                let ticks = number(n, mode, Some(field))?;
                let labels = if cpu.is_empty() {
                    Labels::new([("mode", *mode)])
                } else {
                    Labels::new([("cpu", cpu), ("mode", mode)])
                };
                out.counter(name, labels, ticks / clk_tck, "seconds");
            }
            saw_cpu = true;
            continue;
        }
        let (name, kind_counter, unit) = match key {
            "ctxt" => ("node_context_switches_total", true, ""),
            "intr" => ("node_intr_total", true, ""),
            "processes" => ("node_forks_total", true, ""),
            "btime" => ("node_boot_time_seconds", false, "seconds"),
            "procs_running" => ("node_procs_running", false, ""),
            "procs_blocked" => ("node_procs_blocked", false, ""),
            _ => continue,
        };
        let v = number(n, key, fields.next())?;
        if kind_counter {
            out.counter(name, Labels::default(), v, unit);
        } else {
            out.gauge(name, Labels::default(), v, unit);
        }
    }
    if !saw_cpu {
        return Err((1, "no cpu lines".to_string()));
    }
    Ok(())
}

/// `MemTotal:       24684084 kB`
fn meminfo(body: &str, out: &mut ProbeOutput) -> Res {
    let mut values = std::collections::HashMap::new();
    for (n, line) in lines(body) {
        let Some((key, rest)) = line.split_once(':') else {
            return Err((n, format!("`{line}` is not `Key: value`")));
        };
        let mut fields = rest.split_whitespace();
        let v = number(n, key, fields.next())?;
        let scale = match fields.next() {
            Some("kB") => 1024.0,
            None => 1.0,
            Some(unit) => return Err((n, format!("unknown unit `{unit}`"))),
        };
        values.insert(key, v * scale);
    }
    let total = *values
        .get("MemTotal")
        .ok_or((1, "MemTotal is missing".to_string()))?;
    let free = values.get("MemFree").copied().unwrap_or(0.0);
    let buffers = values.get("Buffers").copied().unwrap_or(0.0);
    let cached = values.get("Cached").copied().unwrap_or(0.0);
    // Kernels before 3.14 have no MemAvailable; free + buffers + cached is the old estimate.
    let available = values
        .get("MemAvailable")
        .copied()
        .unwrap_or(free + buffers + cached);
    let none = Labels::default;
    out.gauge("node_memory_total_bytes", none(), total, "bytes");
    out.gauge("node_memory_available_bytes", none(), available, "bytes");
    out.gauge(
        "node_memory_used_bytes",
        none(),
        (total - available).max(0.0),
        "bytes",
    );
    out.gauge("node_memory_free_bytes", none(), free, "bytes");
    out.gauge("node_memory_buffers_bytes", none(), buffers, "bytes");
    out.gauge("node_memory_cached_bytes", none(), cached, "bytes");
    if let (Some(&swap_total), Some(&swap_free)) = (values.get("SwapTotal"), values.get("SwapFree"))
    {
        out.gauge("node_swap_total_bytes", none(), swap_total, "bytes");
        out.gauge("node_swap_free_bytes", none(), swap_free, "bytes");
        out.gauge(
            "node_swap_used_bytes",
            none(),
            (swap_total - swap_free).max(0.0),
            "bytes",
        );
    }
    Ok(())
}

/// `259       0 nvme0n1 1048 0 98022 163 283 ...`: whole disks only, partitions and
/// loop/ram devices left out (their I/O is already counted in the disk, or is not disk I/O).
fn diskstats(body: &str, out: &mut ProbeOutput) -> Res {
    for (n, line) in lines(body) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 14 {
            return Err((n, format!("{} fields, expected at least 14", f.len())));
        }
        let device = f[2];
        if !is_whole_disk(device) {
            continue;
        }
        let labels = || Labels::new([("device", device)]);
        let field = |i: usize, what| number(n, what, f.get(i).copied());
        out.counter(
            "node_disk_reads_completed_total",
            labels(),
            field(3, "reads completed")?,
            "",
        );
        // /proc/diskstats counts 512-byte sectors whatever the device's sector size.
        out.counter(
            "node_disk_read_bytes_total",
            labels(),
            field(5, "sectors read")? * 512.0,
            "bytes",
        );
        out.counter(
            "node_disk_writes_completed_total",
            labels(),
            field(7, "writes completed")?,
            "",
        );
        out.counter(
            "node_disk_written_bytes_total",
            labels(),
            field(9, "sectors written")? * 512.0,
            "bytes",
        );
        out.counter(
            "node_disk_io_time_seconds_total",
            labels(),
            field(12, "io ms")? / 1000.0,
            "seconds",
        );
    }
    Ok(())
}

fn is_whole_disk(device: &str) -> bool {
    const VIRTUAL: [&str; 5] = ["loop", "ram", "zram", "fd", "sr"];
    if VIRTUAL
        .iter()
        .any(|p| device.starts_with(p) && device[p.len()..].bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    let digits_tail = device.len() - device.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let stem = &device[..device.len() - digits_tail];
    // nvme0n1p2, mmcblk0p1: a `p` plus digits after a name that itself ends in a digit.
    if digits_tail > 0
        && stem.ends_with('p')
        && stem[..stem.len() - 1].ends_with(|c: char| c.is_ascii_digit())
    {
        return false;
    }
    // sda1, vdb2, xvda1, hda3: letters of a classic disk, then the partition number.
    let classic = ["sd", "vd", "xvd", "hd"].iter().any(|p| {
        stem.starts_with(p)
            && stem[p.len()..].bytes().all(|b| b.is_ascii_lowercase())
            && stem.len() > p.len()
    });
    !(classic && digits_tail > 0)
}

/// `  eth0: 1234 56 0 0 0 0 0 0 7890 12 0 0 0 0 0 0` (after two header lines)
fn netdev(body: &str, out: &mut ProbeOutput) -> Res {
    const RX: [(&str, usize); 4] = [("bytes", 0), ("packets", 1), ("errs", 2), ("drop", 3)];
    for (n, line) in lines(body) {
        let Some((iface, counters)) = line.split_once(':') else {
            continue; // header lines
        };
        let iface = iface.trim();
        if iface == "lo" || iface.contains('|') {
            continue;
        }
        let f: Vec<&str> = counters.split_whitespace().collect();
        if f.len() < 16 {
            return Err((n, format!("{} counters for {iface}, expected 16", f.len())));
        }
        for (dir, base) in [("receive", 0), ("transmit", 8)] {
            for (what, i) in RX {
                let v = number(n, what, Some(f[base + i]))?;
                let unit = if what == "bytes" { "bytes" } else { "" };
                out.counter(
                    &format!("node_network_{dir}_{what}_total"),
                    Labels::new([("device", iface)]),
                    v,
                    unit,
                );
            }
        }
    }
    Ok(())
}

/// `/dev/vda   264212084 12339240  82946648  13% /` (after the header, sizes in KiB).
/// The fs probe's reader; the os probe uses it for older captures, which carried `df`.
pub(crate) fn read_df(body: &str, out: &mut ProbeOutput) -> Res {
    const PSEUDO: [&str; 12] = [
        "tmpfs", "devtmpfs", "udev", "none", "overlay", "shm", "proc", "sysfs", "cgroup",
        "cgroup2", "efivarfs", "ramfs",
    ];
    const PSEUDO_MOUNTS: [&str; 5] = ["/proc", "/sys", "/dev", "/run", "/snap"];
    let mut rows = lines(body);
    let (n, header) = rows.next().ok_or((1, "empty".to_string()))?;
    let block = match header.split_whitespace().nth(1) {
        Some("1024-blocks") | Some("1K-blocks") => 1024.0,
        Some("512-blocks") => 512.0,
        other => return Err((n, format!("unexpected df header column {other:?}"))),
    };
    for (n, line) in rows {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            return Err((n, format!("{} fields, expected 6", f.len())));
        }
        let (device, mount) = (f[0], f[5..].join(" "));
        let under = |m: &str, p: &str| m == p || m.starts_with(&format!("{p}/"));
        if PSEUDO.contains(&device) || PSEUDO_MOUNTS.iter().any(|p| under(&mount, p)) {
            continue;
        }
        let size = number(n, "size", Some(f[1]))?;
        if size == 0.0 {
            continue;
        }
        let labels = || Labels::new([("device", device), ("mountpoint", mount.as_str())]);
        out.gauge(
            "node_filesystem_size_bytes",
            labels(),
            size * block,
            "bytes",
        );
        out.gauge(
            "node_filesystem_used_bytes",
            labels(),
            number(n, "used", Some(f[2]))? * block,
            "bytes",
        );
        out.gauge(
            "node_filesystem_avail_bytes",
            labels(),
            number(n, "available", Some(f[3]))? * block,
            "bytes",
        );
    }
    Ok(())
}

/// `350735.47 234388.73`
fn uptime(body: &str, out: &mut ProbeOutput) -> Res {
    let (n, line) = lines(body).next().ok_or((1, "empty".to_string()))?;
    out.gauge(
        "node_uptime_seconds",
        Labels::default(),
        number(n, "uptime", line.split_whitespace().next())?,
        "seconds",
    );
    Ok(())
}

/// `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"`
fn os_release(body: &str, out: &mut ProbeOutput) -> Res {
    for (_, line) in lines(body) {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        match key {
            "PRETTY_NAME" => out.fact("os_name", value),
            "ID" => out.fact("os_id", value),
            "VERSION_ID" => out.fact("os_version", value),
            _ => {}
        }
    }
    Ok(())
}

/// `Linux 6.1.0-18-amd64 x86_64`
fn uname(body: &str, out: &mut ProbeOutput) -> Res {
    let (n, line) = lines(body).next().ok_or((1, "empty".to_string()))?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let [system, kernel, arch] = f[..] else {
        return Err((
            n,
            format!("expected `SYSTEM RELEASE MACHINE`, got `{line}`"),
        ));
    };
    out.fact("system", system);
    out.fact("kernel", kernel);
    out.fact("arch", arch);
    Ok(())
}

/// Which section each file of the `files` section stands for.
const FILE_SECTIONS: &[(&str, &str)] = &[
    ("/proc/stat", "stat"),
    ("/proc/meminfo", "meminfo"),
    ("/proc/diskstats", "diskstats"),
    ("/proc/net/dev", "netdev"),
    ("/etc/os-release", "os_release"),
];

/// `grep -H '' FILE...` output (`/proc/stat:cpu  5450 0 ...`) as one body per section.
/// Paths hold no colon, so the first one ends the path; a line of no file read here is
/// a warning with its line number.
fn files_by_section(
    body: &str,
    out: &mut ProbeOutput,
) -> std::collections::HashMap<&'static str, String> {
    let mut bodies = std::collections::HashMap::new();
    for (n, line) in body.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let section = line.split_once(':').and_then(|(path, rest)| {
            FILE_SECTIONS
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, section)| (*section, rest))
        });
        match section {
            Some((section, rest)) => {
                let text: &mut String = bodies.entry(section).or_default();
                text.push_str(rest);
                text.push('\n');
            }
            None => out.warnings.push(ParseError::Malformed {
                section: "files".to_string(),
                line: n + 1,
                reason: "expected `FILE:LINE` of a file the os probe reads".to_string(),
            }),
        }
    }
    bodies
}

/// `0-63` or `0-3,8-11`: /sys/devices/system/cpu/online, the CPUs the kernel runs.
fn cpu_online(body: &str, out: &mut ProbeOutput) -> Res {
    let (n, line) = lines(body).next().ok_or((1, "empty".to_string()))?;
    let bad = || (n, format!("expected CPU ranges like `0-63`, got `{line}`"));
    let mut count: u64 = 0;
    for part in line.split(',') {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let (first, last): (u64, u64) = (
            first.trim().parse().map_err(|_| bad())?,
            last.trim().parse().map_err(|_| bad())?,
        );
        let span = last.checked_sub(first).ok_or_else(bad)?;
        count = count.saturating_add(span.saturating_add(1));
    }
    if count > 1 << 20 {
        return Err(bad());
    }
    out.gauge("node_cpus", Labels::default(), count as f64, "");
    out.fact("cpu_count", &count.to_string());
    Ok(())
}

/// `64`
fn nproc(body: &str, out: &mut ProbeOutput) -> Res {
    let (n, line) = lines(body).next().ok_or((1, "empty".to_string()))?;
    let cpus = number(n, "cpu count", Some(line))?;
    out.gauge("node_cpus", Labels::default(), cpus, "");
    out.fact("cpu_count", line);
    Ok(())
}

/// `model name : AMD EPYC 7763 64-Core Processor` (a tab before the colon)
fn cpu_model(body: &str, out: &mut ProbeOutput) -> Res {
    if let Some((_, line)) = lines(body).next() {
        out.fact("cpu_model", line.split_once(':').map_or(line, |(_, v)| v));
    }
    Ok(())
}

fn hostname(body: &str, out: &mut ProbeOutput) -> Res {
    if let Some((_, line)) = lines(body).next() {
        out.fact("hostname", line);
    }
    Ok(())
}
