//! `/metrics`: every series' latest value in Prometheus text exposition format, with the
//! `host` label added, units in names, counters as counters.

use dcmon_store::SeriesLatest;
use std::fmt::Write;

pub fn exposition(series: &[SeriesLatest]) -> String {
    let mut out = String::new();
    let mut last_name = "";
    for s in series {
        if s.name != last_name {
            let kind = if s.kind == "counter" {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(out, "# TYPE {} {kind}", s.name);
            last_name = &s.name;
        }
        let mut labels = vec![format!("host=\"{}\"", escape(&s.host))];
        labels.extend(
            s.labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v))),
        );
        let _ = writeln!(
            out,
            "{}{{{}}} {} {}",
            s.name,
            labels.join(","),
            number(s.value),
            s.ts
        );
    }
    out
}

/// Label values escape `\\`, `"` and newlines (exposition format 0.0.4).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}
