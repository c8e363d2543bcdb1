//! `/metrics`: every series' latest value in Prometheus text exposition format, with the
//! `host` label added, units in names, counters as counters.

use dcmon_store::SeriesLatest;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Each metric family once: its TYPE line, then every host's samples of it (a family
/// repeated per host is a parse error for strict readers such as Go's `expfmt`).
pub fn exposition(series: &[SeriesLatest]) -> String {
    let mut families: BTreeMap<&str, Vec<&SeriesLatest>> = BTreeMap::new();
    for s in series {
        families.entry(s.name.as_str()).or_default().push(s);
    }
    let mut out = String::new();
    for (name, members) in families {
        // One family, one type: a series stored with another kind still reads as the first.
        let kind = if members[0].kind == "counter" {
            "counter"
        } else {
            "gauge"
        };
        // Linters and some readers want HELP: the unit, and where to read more.
        let unit = match members[0].unit.as_str() {
            "" => String::new(),
            u => format!(" in {}", u.replace('\\', "\\\\").replace('\n', " ")),
        };
        let _ = writeln!(
            out,
            "# HELP {name} dcmon {kind}{unit} (`dcmon probes list` describes it)"
        );
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for s in members {
            let mut labels = vec![format!("host=\"{}\"", escape(&s.host))];
            labels.extend(
                s.labels
                    .iter()
                    // A probe's own `host` label yields to ours, renamed as Prometheus does.
                    .map(|(k, v)| {
                        let k = if k == "host" {
                            "exported_host"
                        } else {
                            k.as_str()
                        };
                        format!("{k}=\"{}\"", escape(v))
                    }),
            );
            let _ = writeln!(
                out,
                "{name}{{{}}} {} {}",
                labels.join(","),
                number(s.value),
                s.ts
            );
        }
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
