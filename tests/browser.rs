//! The dashboard in a real browser: `dcmon serve` polls test-bed hosts (one with
//! ipmitool, nvidia-smi and nvme shims printing real captures), then Debian's headless
//! Chromium loads the overview, a host page and a logs page. The test reads the DOM
//! Chromium built (after our live-refresh script ran) and saves screenshots under
//! target/tmp/browser-screenshots/. A label `<script>alert(1)</script>` and a log line
//! carrying HTML must come out as text.

mod testbed;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};
use testbed::Sshd;
use testbed::chromium::{chromium, screenshot, screenshot_dir};
use testbed::dashboard::Dashboard;
use testbed::shims::dell_gpu_server;

const HOSTILE_LABEL: &str = "<script>alert(1)</script>";
const HOSTILE_LINE: &str =
    r#"disk fault <img src=x onerror="document.body.dataset.pwned=1"> <b>bold</b> & done"#;

#[test]
fn overview_host_and_logs_pages_in_headless_chromium() {
    let shims = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shims.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dell = dell_gpu_server(shims.path());
    let (gpu, plain) = ("127.0.4.1", "127.0.4.2");
    let bed = Sshd::start_with(&[(gpu, &dell)]);
    let log = shims.path().join("app.log");
    std::fs::write(&log, "before dcmon\n").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
    let known_hosts = bed.write(
        "known_hosts",
        &bed.known_hosts_lines(&[gpu.to_string(), plain.to_string()]),
    );
    let inventory = format!(
        "{}interval = \"1s\"\n\n[[hosts]]\nname = \"gpu01\"\naddress = \"{gpu}\"\nprobes = [\"os\", \"ipmi\", \"nvidia\", \"nvme\", \"logs\"]\nlog_files = [\"{}\"]\nlabels = {{ rack = \"r12\", note = \"{HOSTILE_LABEL}\" }}\n\n[[hosts]]\nname = \"cpu01\"\naddress = \"{plain}\"\nlabels = {{ rack = \"r13\" }}\n\n# Slow probes keep longer intervals by default.\n[probes.nvme]\ninterval = \"2s\"\n[probes.ipmi]\ninterval = \"2s\"\n[probes.nvidia]\ninterval = \"2s\"\n",
        bed.defaults(&known_hosts, "10s"),
        log.display()
    );
    let inv = bed.write("inventory.toml", &inventory);
    let db = bed.dir.path().join("dcmon.db");
    let serve = Dashboard::serve(&inv, &db);

    // Both hosts polled, with GPU and BMC figures on the GPU server.
    serve.wait_for_json("/api/hosts", Duration::from_secs(60), |hosts| {
        hosts.as_array().is_some_and(|a| {
            a.iter().filter(|h| h["status"] == "online").count() == 2
                && a.iter()
                    .any(|h| h["gpu_temp_max"].is_number() && h["ipmi_temp_max"].is_number())
        })
    });
    serve.wait_for_json(
        "/api/series?host=gpu01&name=nvme_*",
        Duration::from_secs(30),
        |series| series.as_array().is_some_and(|a| !a.is_empty()),
    );
    // The logs probe starts at a file's end: append once it has looked, then wait for the line.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !serve.get("/probes").1.contains(">logs</td>") {
        assert!(
            Instant::now() < deadline,
            "no logs run: {}",
            serve.get("/probes").1
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{HOSTILE_LINE}\n").as_bytes()))
        .unwrap();
    serve.wait_for_json("/api/logs/gpu01", Duration::from_secs(30), |lines| {
        lines
            .as_array()
            .is_some_and(|a| a.iter().any(|l| l["message"] == HOSTILE_LINE))
    });

    let profile = tempfile::tempdir().unwrap();
    let shots = screenshot_dir();

    // Overview: after the live refresh ran (virtual time), hosts, labels as text.
    let dom = chromium(
        profile.path(),
        &["--dump-dom", "--virtual-time-budget=8000"],
        &format!("{}/", serve.url),
    );
    assert!(dom.contains(r#"<a href="/hosts/gpu01">gpu01</a>"#), "{dom}");
    assert!(dom.contains(r#"<a href="/hosts/cpu01">cpu01</a>"#), "{dom}");
    assert!(
        dom.contains("note=&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the label is text: {dom}"
    );
    assert!(!dom.contains("<script>alert(1)"), "{dom}");
    assert!(
        dom.contains(r#"<span class="dim" id="updated">updated "#),
        "live refresh ran: {dom}"
    );
    assert!(dom.contains("2 online"), "{dom}");
    screenshot(
        profile.path(),
        &shots.join("overview.png"),
        "1280,800",
        &format!("{}/", serve.url),
    );
    screenshot(
        profile.path(),
        &shots.join("overview-phone.png"),
        "420,900",
        &format!("{}/", serve.url),
    );
    // Filtering by label, server side.
    let dom = chromium(
        profile.path(),
        &["--dump-dom"],
        &format!("{}/?label=rack%3Dr13", serve.url),
    );
    assert!(
        dom.contains(">cpu01</a>") && !dom.contains(">gpu01</a>"),
        "{dom}"
    );

    // Host page: charts and the hardware tables from the captures.
    let host_url = format!("{}/hosts/gpu01?range=1h", serve.url);
    let dom = chromium(profile.path(), &["--dump-dom"], &host_url);
    assert!(dom.contains("aria-label=\"CPU busy\""), "{dom}");
    assert!(
        dom.contains("<figcaption>GPU temperature</figcaption>"),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<table id="gpus">"#) && dom.contains("NVIDIA H100 80GB HBM3"),
        "{dom}"
    );
    assert!(dom.contains("<td>Fan1</td>"), "{dom}");
    assert!(dom.contains("5040 rpm"), "{dom}");
    assert!(dom.contains("<td>/dev/nvme1n1</td>"), "{dom}");
    screenshot(
        profile.path(),
        &shots.join("host.png"),
        "1280,1600",
        &host_url,
    );

    // Logs page: the HTML in the log line is text, and nothing in it ran.
    let logs_url = format!("{}/hosts/gpu01/logs", serve.url);
    let dom = chromium(
        profile.path(),
        &["--dump-dom", "--virtual-time-budget=2000"],
        &logs_url,
    );
    assert!(
        dom.contains("disk fault &lt;img src=x onerror=\"document.body.dataset.pwned=1\"&gt; &lt;b&gt;bold&lt;/b&gt; &amp; done"),
        "{dom}"
    );
    assert!(!dom.contains("data-pwned"), "{dom}");
    assert!(!dom.contains("<b>bold</b>"), "{dom}");
    screenshot(
        profile.path(),
        &shots.join("logs.png"),
        "1280,800",
        &logs_url,
    );
    eprintln!("screenshots in {}", shots.display());
}
