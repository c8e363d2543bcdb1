//! A real Prometheus (Debian's package) scrapes `dcmon serve`'s `/metrics`, and its own
//! query API returns the scraped series with their `host` labels.

mod testbed;

use testbed::{Killed, http_get as get};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn prometheus_scrapes_the_metrics_endpoint() {
    assert!(
        std::path::Path::new("/usr/bin/prometheus").exists(),
        "/usr/bin/prometheus is missing: run tests/run.sh, which installs Debian's prometheus"
    );
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.toml");
    std::fs::write(
        &inventory,
        "[[hosts]]\nname = \"me\"\ntransport = \"local\"\ninterval = \"1s\"\n",
    )
    .unwrap();
    let dcmon_address = format!("127.0.0.1:{}", testbed::free_port());
    let _serve = Killed(
        Command::new(env!("CARGO_BIN_EXE_dcmon"))
            .args([
                "serve",
                "--listen",
                &dcmon_address,
                "--inventory",
                inventory.to_str().unwrap(),
                "--db",
                dir.path().join("dcmon.db").to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: dcmon\n    static_configs:\n      - targets: [\"{dcmon_address}\"]\n")).unwrap();
    let prometheus_address = format!("127.0.0.1:{}", testbed::free_port());
    let _prometheus = Killed(
        Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={prometheus_address}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let query = "/api/v1/query?query=node_load1%7Bhost%3D%22me%22%7D";
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        let body = get(&prometheus_address, query).unwrap_or_default();
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if parsed["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
            || Instant::now() > deadline
        {
            break parsed;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let result = &answer["data"]["result"][0];
    assert_eq!(result["metric"]["host"], "me", "{answer}");
    assert_eq!(result["metric"]["job"], "dcmon");
    let value: f64 = result["value"][1].as_str().unwrap().parse().unwrap();
    assert!(value >= 0.0);
    // Counters arrive typed as counters: rate() over them works in Prometheus.
    let rate = get(
        &prometheus_address,
        "/api/v1/query?query=count(node_cpu_all_seconds_total%7Bhost%3D%22me%22%7D)",
    )
    .unwrap();
    let rate: serde_json::Value = serde_json::from_str(&rate).unwrap();
    assert_eq!(rate["data"]["result"][0]["value"][1], "8", "{rate}");
}
