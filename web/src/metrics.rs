//! `/metrics`: every series' latest value in Prometheus text exposition format, with the
//! `host` label added, units in names, counters as counters. Each metric family appears
//! once (HELP, TYPE, then every host's samples): a family repeated per host is a parse
//! error for strict readers such as Go's `expfmt`.

use dcmon_store::latest::LatestRef;
use std::collections::BTreeMap;
use std::fmt::Write;

pub fn exposition(series: &mut dyn Iterator<Item = LatestRef<'_>>) -> String {
    let mut families: BTreeMap<&str, Vec<LatestRef<'_>>> = BTreeMap::new();
    let mut count = 0;
    for s in series {
        families.entry(s.name).or_default().push(s);
        count += 1;
    }
    let mut out = String::with_capacity(count * 96);
    for (name, mut members) in families {
        // By host: cheap, and a host's series stay together (150,000 label-set
        // comparisons would cost more than writing the text).
        members.sort_by(|a, b| a.host.cmp(b.host));
        // One family, one type: a series stored with another kind still reads as the first.
        let kind = if members[0].kind == "counter" {
            "counter"
        } else {
            "gauge"
        };
        // Linters and some readers want HELP: the unit, and where to read more.
        let unit = match members[0].unit {
            "" => String::new(),
            u => format!(" in {}", u.replace('\\', "\\\\").replace('\n', " ")),
        };
        let _ = writeln!(
            out,
            "# HELP {name} dcmon {kind}{unit} (`dcmon probes list` describes it)"
        );
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for s in members {
            out.push_str(name);
            out.push_str("{host=\"");
            escape_into(&mut out, s.host);
            out.push('"');
            for (k, v) in s.labels {
                // A probe's own `host` label yields to ours, renamed as Prometheus does.
                out.push(',');
                out.push_str(if k == "host" { "exported_host" } else { k });
                out.push_str("=\"");
                escape_into(&mut out, v);
                out.push('"');
            }
            out.push_str("} ");
            number_into(&mut out, s.value);
            let _ = writeln!(out, " {}", s.ts);
        }
    }
    out
}

/// Label values escape `\\`, `"` and newlines (exposition format 0.0.4).
fn escape_into(out: &mut String, v: &str) {
    if !v.contains(['\\', '"', '\n']) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn number_into(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}
