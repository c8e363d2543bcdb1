//! Debian's headless Chromium, as the browser tests drive it: a DOM dump after our
//! scripts ran, and screenshots under target/tmp/browser-screenshots/.

use std::path::{Path, PathBuf};
use std::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";
/// Headless Chromium with the flags this machine's closed network needs, and a fresh
/// profile; `virtual_ms` lets page timers (our 5 s live refresh) run before the dump.
pub fn chromium(profile: &Path, extra: &[&str], url: &str) -> String {
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("{CHROMIUM} does not run ({e}); tests/run.sh installs it"));
    assert!(
        out.status.success(),
        "chromium {extra:?} {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn screenshot(profile: &Path, file: &Path, size: &str, url: &str) {
    let _ = std::fs::remove_file(file);
    chromium(
        profile,
        &[
            &format!("--screenshot={}", file.display()),
            &format!("--window-size={size}"),
        ],
        url,
    );
    let png = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is a PNG",
        file.display()
    );
    // A blank page of this size compresses to a few KB; ours has tables and charts.
    assert!(
        png.len() > 20_000,
        "{} is {} bytes",
        file.display(),
        png.len()
    );
}

pub fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
