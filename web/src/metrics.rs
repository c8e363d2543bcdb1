//! `/metrics`: every series' latest value in Prometheus text exposition format, with the
//! `host` label added, units in names, counters as counters. Each metric family appears
//! once (HELP, TYPE, then every host's samples): a family repeated per host is a parse
//! error for strict readers such as Go's `expfmt`.

use dcmon_store::latest::LatestRef;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Each series' `name{labels}` as written last time, indexed by series id (ids are
/// dense, and a series never changes name or labels): a fleet's scrape writes
/// 100,000s of them, and they change only when a series is new.
pub type Written = Vec<Option<Box<str>>>;

/// Ids past this are written afresh each time rather than kept (a sparse id space
/// must not make the table huge).
const MAX_KEPT_ID: usize = 16 << 20;

pub fn exposition(
    series: &mut dyn Iterator<Item = LatestRef<'_>>,
    written: &mut Written,
) -> String {
    let mut families: BTreeMap<&str, Vec<LatestRef<'_>>> = BTreeMap::new();
    let mut count = 0;
    for s in series {
        families.entry(s.name).or_default().push(s);
        count += 1;
    }
    let mut out = String::with_capacity(count * 96);
    let mut scratch = String::new();
    // Members keep the order they were read in: a host's series together.
    for (name, members) in families {
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
            let slot =
                s.id.and_then(|id| usize::try_from(id).ok())
                    .filter(|id| *id < MAX_KEPT_ID);
            match slot {
                Some(id) => {
                    if written.len() <= id {
                        written.resize(id + 1, None);
                    }
                    let text = written[id].get_or_insert_with(|| {
                        scratch.clear();
                        series_text(&mut scratch, &s);
                        scratch.as_str().into()
                    });
                    out.push_str(text);
                }
                None => series_text(&mut out, &s),
            }
            out.push(' ');
            number_into(&mut out, s.value);
            let _ = writeln!(out, " {}", s.ts);
        }
    }
    out
}

/// `name{host="…",label="…"}`.
/// `ALERTS{alertname, alertstate, ...}` 1 for every pending or firing alert, as
/// Prometheus exposes its own (its `host` label is the alert's, not re-added).
pub fn alerts(out: &mut String, alerts: &[dcmon_store::alerts::AlertRow]) {
    let active: Vec<_> = alerts.iter().filter(|a| a.state != "resolved").collect();
    if active.is_empty() {
        return;
    }
    out.push_str(
        "# HELP ALERTS dcmon alert instances that are pending or firing\n# TYPE ALERTS gauge\n",
    );
    for labels in dcmon_store::alerts::alert_series(alerts) {
        out.push_str("ALERTS{");
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_into(out, v);
            out.push('"');
        }
        out.push_str("} 1\n");
    }
}

/// Each receiver's deliveries (`dcmon_alert_notifications_total`, `_failed_total`,
/// `_dropped_total`), so a receiver that stopped working can itself be alerted on.
pub fn receivers(out: &mut String, receivers: &[dcmon_store::silences::ReceiverStatus]) {
    if receivers.is_empty() {
        return;
    }
    type Field = fn(&dcmon_store::silences::ReceiverStatus) -> i64;
    let series: [(&str, &str, Field); 3] = [
        (
            "dcmon_alert_notifications_total",
            "notifications delivered",
            |r| r.sent,
        ),
        (
            "dcmon_alert_notifications_failed_total",
            "delivery attempts that failed",
            |r| r.failed,
        ),
        (
            "dcmon_alert_notifications_dropped_total",
            "alerts given up on after a day undelivered",
            |r| r.dropped,
        ),
    ];
    for (name, help, value) in series {
        out.push_str(&format!(
            "# HELP {name} dcmon {help}, per receiver\n# TYPE {name} counter\n"
        ));
        for r in receivers {
            out.push_str(name);
            out.push_str("{receiver=\"");
            escape_into(out, &r.name);
            out.push_str(&format!("\"}} {}\n", value(r)));
        }
    }
}

fn series_text(out: &mut String, s: &LatestRef<'_>) {
    out.push_str(s.name);
    // The same labels remote write sends.
    for (i, (k, v)) in dcmon_store::outbox::metric_labels(s.host, s.labels).enumerate() {
        out.push(if i == 0 { '{' } else { ',' });
        out.push_str(k);
        out.push_str("=\"");
        escape_into(out, v);
        out.push('"');
    }
    out.push('}');
}

use dcmon_store::outbox::escape_label_value as escape_into;

fn number_into(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}
