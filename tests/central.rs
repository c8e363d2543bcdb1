//! The central view (`dcmon serve --web-only`) over a real VictoriaMetrics: two pollers,
//! shards 1/2 and 2/2 of 40 test-bed hosts (one a GPU server whose ipmitool,
//! nvidia-smi and nvme print real captures), remote-write to it; the central dashboard
//! shows every host, its charts and hardware tables in headless Chromium, links what
//! only a poller keeps to the poller that polls the host, and every link it shows answers.

mod testbed;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use testbed::Sshd;
use testbed::chromium::{chromium, screenshot, screenshot_dir};
use testbed::cluster::{Poller, inventory, remote};
use testbed::dashboard::{Dashboard, curl};
use testbed::free_port;
use testbed::shims::dell_gpu_server;
use testbed::tsdb::Tsdb;

const HOSTS: usize = 40;
/// The one host an alert rule fires for.
const ALERTED: &str = "127.0.24.5";

/// Text of an HTML page with the escapes our templates write read back.
fn unescaped(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Every `href="…"` of a page, as the browser reads it.
fn links(html: &str) -> BTreeSet<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(unescaped)
        .collect()
}

/// `GET url` (absolute): the status code.
fn status_of(url: &str) -> u16 {
    curl(&[url]).0
}

#[test]
fn the_central_view_shows_every_poller_s_hosts_and_links_to_their_pollers() {
    let shims = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shims.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dell = dell_gpu_server(shims.path());
    let gpu = "127.0.24.40";
    let bed = Sshd::start_with(&[(gpu, &dell)]);
    let vm = Tsdb::victoria(bed.dir.path(), &[]);
    let addresses: Vec<String> = (0..2)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    // One inventory for the whole cluster: pollers take their share with --shard, the
    // central view reads the same file.
    let rest = format!(
        "[cluster]\npollers = [\"http://{}\", \"http://{}\"]\n\n[web]\nbackend = {{ prometheus = \"http://{}\" }}\n\n[alerting]\nevaluation_interval = \"1s\"\nbuiltin = false\n\n[[alerts]]\nname = \"LoadSeen\"\nexpr = 'node_load1{{host=\"{ALERTED}\"}} >= 0'\n\n{}",
        addresses[0],
        addresses[1],
        vm.address,
        remote(&vm.write_url(), "external_labels = { site = \"dc1\" }")
    );
    let rest = format!(
        "{rest}\n[[hosts]]\nname = \"gpu01\"\naddress = \"{gpu}\"\nprobes = [\"os\", \"ipmi\", \"nvidia\", \"nvme\"]\n\n[probes.nvme]\ninterval = \"2s\"\n[probes.ipmi]\ninterval = \"2s\"\n[probes.nvidia]\ninterval = \"2s\"\n"
    );
    let (mut hosts, text) = inventory(&bed, 24, HOSTS - 1, "1s", &rest);
    let mut addresses_known = hosts.clone();
    addresses_known.push(gpu.to_string());
    bed.write("known_hosts_24", &bed.known_hosts_lines(&addresses_known));
    // The GPU server first: its page is the one loaded in Chromium.
    hosts.insert(0, "gpu01".to_string());
    let file = bed.write("inventory.toml", &text);
    let pollers: Vec<Poller> = addresses
        .iter()
        .enumerate()
        .map(|(i, address)| {
            Poller::start_at(
                bed.dir.path(),
                &format!("p{}", i + 1),
                &file,
                &["--shard", &format!("{}/2", i + 1)],
                address.clone(),
            )
        })
        .collect();
    vm.wait_for(
        "count by (host) (node_cpu_all_seconds_total)",
        Duration::from_secs(60),
        |r| r.len() == HOSTS,
    );

    // Readings of slow probes (apt hourly, smart and some nvidia every 10 minutes) are
    // older than the API's 5-minute lookback most of the time: written 20 minutes ago
    // here, they must still show.
    let old = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 20 * 60_000;
    let slow = format!(
        "apt_upgrades_pending{{host=\"{}\"}} 7 {old}\nnvme_percentage_used{{host=\"gpu01\",device=\"/dev/nvme9n1\"}} 42 {old}\n",
        hosts[3]
    );
    let (status, body) = curl(&[
        "-X",
        "POST",
        "--data-binary",
        &slow,
        &format!("http://{}/api/v1/import/prometheus", vm.address),
    ]);
    assert_eq!(status, 204, "{body}");
    vm.wait_for(
        "count(last_over_time(apt_upgrades_pending[1h]))",
        Duration::from_secs(20),
        |r| !r.is_empty(),
    );
    // The same inventory, in a copy of the central's own (edited below: the pollers
    // must not start polling a host added only to test the central's reload).
    let central_file = bed.write("central.toml", &text);
    let central = Dashboard::start(&[
        "--web-only",
        "--inventory",
        central_file.to_str().unwrap(),
        "--db",
        bed.dir.path().join("central.db").to_str().unwrap(),
    ]);
    // Every host online with its figures (CPU needs two samples of each counter).
    let rows = central.wait_for_json("/api/hosts", Duration::from_secs(30), |rows| {
        rows.as_array().is_some_and(|a| {
            a.len() == HOSTS
                && a.iter().all(|h| {
                    h["status"] == "online"
                        && h["cpu_percent"].is_number()
                        && h["memory_percent"].is_number()
                        && h["load1"].is_number()
                })
                && a.iter().any(|h| {
                    h["host"] == "gpu01"
                        && h["gpus"].as_u64() > Some(0)
                        && h["gpu_temp_max"].is_number()
                        && h["ipmi_temp_max"].is_number()
                })
        })
    });
    let names: BTreeSet<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(names, hosts.iter().map(String::as_str).collect());
    assert!(
        rows[0]["groups"]
            .as_array()
            .is_some_and(|g| g.contains(&"all".into()))
    );
    let slow_row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["host"] == hosts[3].as_str())
        .unwrap();
    assert_eq!(slow_row["upgrades"], 7.0, "{slow_row}");

    // The overview in Chromium: all 40 hosts, online, after the live refresh ran.
    let profile = tempfile::tempdir().unwrap();
    let dom = chromium(
        profile.path(),
        &["--dump-dom", "--virtual-time-budget=8000"],
        &format!("{}/", central.url),
    );
    for h in &hosts {
        assert!(
            dom.contains(&format!(r#"<a href="/hosts/{h}">{h}</a>"#)),
            "{h}: {dom}"
        );
    }
    assert!(dom.contains(&format!("{HOSTS} online")), "{dom}");
    assert!(
        dom.contains(r#"id="updated">updated "#),
        "live refresh ran: {dom}"
    );
    let shots = screenshot_dir();
    screenshot(
        profile.path(),
        &shots.join("central-overview.png"),
        "1280,1600",
        &format!("{}/", central.url),
    );

    // Every host's page draws its charts from the backend, and names its poller. An
    // hour's chart has a point every 12 s: wait for two of them on every host.
    vm.wait_for(
        "min(count_over_time(node_load1[1m])) >= 25",
        Duration::from_secs(60),
        |r| !r.is_empty(),
    );
    let owner_of = |h: &str| {
        pollers
            .iter()
            .position(|p| p.stored_hosts().iter().any(|s| s == h))
            .unwrap_or_else(|| panic!("no poller stored {h}"))
    };
    // Chromium for the first; the charts are SVG drawn by the server, so plain GETs
    // show the others' as the browser would.
    for (i, h) in hosts.iter().enumerate() {
        let dom = if i == 0 {
            chromium(
                profile.path(),
                &["--dump-dom"],
                &format!("{}/hosts/{h}?range=1h", central.url),
            )
        } else {
            let (status, body) = central.get(&format!("/hosts/{h}?range=1h"));
            assert_eq!(status, 200, "{h}: {body}");
            unescaped(&body)
        };
        for chart in [
            "CPU busy",
            "Memory used",
            "Load (1 min)",
            "Network received",
        ] {
            let at = dom
                .find(&format!("aria-label=\"{chart}\""))
                .unwrap_or_else(|| panic!("{h}: no {chart} chart: {dom}"));
            let svg = &dom[at..at + dom[at..].find("</svg>").unwrap()];
            assert!(svg.contains("<polyline"), "{h}: {chart} has no line: {svg}");
        }
        if h == "gpu01" {
            // The hardware tables of the poller's own page, from the backend's series.
            for shown in [
                r#"<table id="gpus">"#,
                "NVIDIA H100 80GB HBM3",
                "<figcaption>GPU temperature</figcaption>",
                "<td>Fan1</td>",
                "5040 rpm",
                "<td>/dev/nvme1n1</td>",
                "<td>/dev/nvme9n1</td>",
            ] {
                assert!(dom.contains(shown), "gpu01 shows {shown}: {dom}");
            }
        }
        let owner = owner_of(h);
        assert!(
            dom.contains(&format!(
                r#"<a href="http://{}/hosts/{h}">poller {}</a>"#,
                addresses[owner],
                owner + 1
            )),
            "{h} is polled by poller {}: {dom}",
            owner + 1
        );
        assert!(
            !dom.contains("dc1"),
            "external labels are not the probe's: {dom}"
        );
    }
    let first = &hosts[0];
    screenshot(
        profile.path(),
        &shots.join("central-host.png"),
        "1280,1600",
        &format!("{}/hosts/{first}?range=1h", central.url),
    );

    // Every poller's firing alerts, with the host's poller.
    vm.wait_for(
        "ALERTS{alertname=\"LoadSeen\"}",
        Duration::from_secs(30),
        |r| !r.is_empty(),
    );
    let (_, alerts) = central.get("/alerts");
    let owner = owner_of(ALERTED);
    assert!(alerts.contains(">LoadSeen</td>"), "{alerts}");
    assert!(alerts.contains(">firing</td>"), "{alerts}");
    let alert_links = links(&alerts);
    assert!(
        alert_links.contains(&format!("/hosts/{ALERTED}")),
        "{alerts}"
    );
    assert!(
        alert_links.contains(&format!("http://{}/alerts", addresses[owner])),
        "{alerts}"
    );

    // Click everything: every link of the overview, a host page and the pages they lead
    // to answers, here and on the pollers (the owner's host page, not the other's).
    let mut seen = BTreeSet::new();
    let mut pages = vec!["/".to_string(), format!("/hosts/{first}")];
    while let Some(page) = pages.pop() {
        if !seen.insert(page.clone()) || seen.len() > 200 {
            continue;
        }
        let (status, body) = central.get(&page);
        assert_eq!(status, 200, "{page}: {body}");
        for link in links(&body) {
            if link.starts_with("http://") {
                if let Some((poller, rest)) = link.split_once("/hosts/") {
                    let host = rest.split('/').next().unwrap();
                    let right = format!("http://{}", addresses[owner_of(host)]);
                    assert_eq!(poller, right, "{page} links {host} to the wrong poller");
                }
                // A poller's audit trail is for its admins, as on its own dashboard.
                let wanted = if link.ends_with("/audit") { 403 } else { 200 };
                assert_eq!(status_of(&link), wanted, "{page} links {link}");
            } else if let Some(path) = link.strip_prefix('/') {
                let path = format!("/{path}");
                if path.starts_with("/hosts/") && !path.starts_with(&format!("/hosts/{first}")) {
                    // Other hosts' pages were loaded above; one more is enough.
                    continue;
                }
                if path.starts_with("/?") || path.starts_with("/hosts/") || !path.contains('?') {
                    pages.push(path);
                }
            } else if link.starts_with('?') {
                pages.push(format!("{}{link}", page.split('?').next().unwrap()));
            }
        }
    }
    for page in [
        "/probes",
        "/alerts",
        "/audit",
        &format!("/hosts/{first}/logs"),
    ] {
        assert!(seen.contains(page), "{page} not linked: {seen:?}");
    }
    let (_, logs) = central.get(&format!("/hosts/{first}/logs"));
    let owner = owner_of(first);
    assert!(
        links(&logs).contains(&format!("http://{}/hosts/{first}/logs", addresses[owner])),
        "{logs}"
    );

    // Hostile requests: names that would break out of a PromQL string, unknown hosts.
    for bad in [
        "/hosts/nope",
        "/hosts/a%22%7D%20or%20vector(1)%20%23",
        "/hosts/a%5C",
    ] {
        let (status, body) = central.get(bad);
        assert_eq!(status, 404, "{bad}: {body}");
    }
    // What only a poller's store answers is not served here.
    assert_eq!(central.get("/api/series").0, 404);

    // SIGHUP reads the inventory again: a new host shows (before any sample of it); a
    // broken file is refused and the last good one kept.
    let hup = |pid: u32| {
        std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
    };
    std::fs::write(
        &central_file,
        format!("{text}\n[[hosts]]\nname = \"added01\"\naddress = \"127.0.99.1\"\n"),
    )
    .unwrap();
    hup(central.child.id());
    let listed = |rows: &serde_json::Value| {
        rows.as_array()
            .is_some_and(|a| a.iter().any(|h| h["host"] == "added01"))
    };
    central.wait_for_json("/api/hosts", Duration::from_secs(20), listed);
    std::fs::write(
        &central_file,
        format!("{text}\n[[hosts]]\nnmae = \"typo\"\n"),
    )
    .unwrap();
    hup(central.child.id());
    std::thread::sleep(Duration::from_millis(500));
    let rows = central.wait_for_json("/api/hosts", Duration::from_secs(20), |_| true);
    assert!(listed(&rows), "the last good inventory is kept: {rows}");
    // The host taken out again (no poller ever wrote a sample of it): gone.
    std::fs::write(&central_file, &text).unwrap();
    hup(central.child.id());
    central.wait_for_json("/api/hosts", Duration::from_secs(20), |rows| {
        !listed(rows) && rows.as_array().is_some_and(|a| a.len() == HOSTS)
    });

    // A backend that takes requests and never answers (SIGSTOP): a page saying so
    // within the backend budget (5 s), and the server keeps answering meanwhile.
    vm.freeze();
    let asked = std::time::Instant::now();
    let (status, body) = central.get("/");
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("did not answer"), "{body}");
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(central.get("/health").0, 200);
    vm.thaw();
    central.wait_for_json("/api/hosts", Duration::from_secs(20), |rows| {
        rows.as_array().is_some_and(|a| a.len() == HOSTS)
    });
    // The backend down: a clear error naming it, not an empty fleet.
    drop(vm);
    let (status, body) = central.get("/");
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("metrics backend"), "{body}");
}
