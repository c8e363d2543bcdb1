//! SVG line charts rendered on the server: axes with units and K/M/G/T numbers, time
//! labels, a legend, and a flat line drawn mid-height rather than lost on an edge.
//! Pure: points in, markup out. All text is escaped here (the markup is put in the page
//! as is).

use std::fmt::Write;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 28.0;
const COLOURS: [&str; 8] = [
    "#58a6ff", "#3fb950", "#d29922", "#f85149", "#bc8cff", "#39c5cf", "#ff7b72", "#8b949e",
];

pub struct Line {
    pub label: String,
    pub points: Vec<(i64, f64)>,
}

/// `unit` is shown on the axis; `bytes` scales by 1024 (KiB, MiB, ...), others by 1000.
pub fn render(title: &str, unit: &str, lines: &[Line], from_ms: i64, to_ms: i64) -> String {
    let values = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}"><title>{}</title>"#,
        escape(title),
        escape(title)
    );
    if !lo.is_finite() {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" class="empty">no data in this range</text></svg>"#,
            WIDTH / 2.0 - 60.0,
            HEIGHT / 2.0
        );
        return svg;
    }
    if lo >= 0.0 && lo < hi * 0.5 {
        lo = 0.0; // start at zero unless the data sits far above it
    }
    if hi - lo < f64::EPSILON * hi.abs().max(1.0) {
        // A flat line: give it room above and below so it is drawn mid-height.
        let pad = if hi == 0.0 { 1.0 } else { hi.abs() * 0.1 };
        lo -= pad;
        hi += pad;
    }
    let span = (to_ms - from_ms).max(1) as f64;
    let x = |t: i64| LEFT + (t - from_ms) as f64 / span * (WIDTH - LEFT - RIGHT);
    let y = |v: f64| TOP + (hi - v) / (hi - lo) * (HEIGHT - TOP - BOTTOM);
    for i in 0..=4 {
        let v = lo + (hi - lo) * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 4.0,
            y(v) + 4.0,
            escape(&number(v, unit)),
            y = y(v)
        );
    }
    for i in 0..=4 {
        let t = from_ms + ((to_ms - from_ms) as f64 * f64::from(i) / 4.0) as i64;
        let anchor = match i {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            r#"<text class="axis" x="{:.1}" y="{}" text-anchor="{anchor}">{}</text>"#,
            x(t),
            HEIGHT - 6.0,
            clock(t, to_ms - from_ms)
        );
    }
    for (i, line) in lines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = line
            .points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
            .collect();
        if path.len() == 1 {
            let (cx, cy) = path[0].split_once(',').unwrap_or(("0", "0"));
            let _ = write!(
                svg,
                r#"<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>"#
            );
        } else if !path.is_empty() {
            let _ = write!(
                svg,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"><title>{}</title></polyline>"#,
                path.join(" "),
                escape(&line.label)
            );
        }
    }
    svg.push_str("</svg>");
    if lines.len() > 1 || lines.first().is_some_and(|l| !l.label.is_empty()) {
        svg.push_str(r#"<div class="legend">"#);
        for (i, line) in lines.iter().enumerate() {
            let _ = write!(
                svg,
                r#"<span><i style="background:{}"></i>{}</span>"#,
                COLOURS[i % COLOURS.len()],
                escape(&line.label)
            );
        }
        svg.push_str("</div>");
    }
    svg
}

/// `1.5 GiB`, `320 W`, `45 °C`, `12.3 k`: an axis number with its unit.
pub fn number(v: f64, unit: &str) -> String {
    // Fan speeds, temperatures, shares and hours read best unscaled: 5400 rpm, not 5.40 krpm.
    if ["rpm", "°C", "%", "h"].contains(&unit) {
        let digits = if v.abs() >= 100.0 || v.fract() == 0.0 {
            0
        } else {
            1
        };
        return format!("{v:.digits$} {unit}");
    }
    let (base, prefixes): (f64, &[&str]) = if unit == "bytes" || unit == "bytes/s" {
        (1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB"])
    } else {
        (1000.0, &["", "k", "M", "G", "T", "P"])
    };
    let mut scaled = v;
    let mut i = 0;
    while scaled.abs() >= base && i + 1 < prefixes.len() {
        scaled /= base;
        i += 1;
    }
    let digits = if scaled.abs() >= 100.0 || scaled.fract() == 0.0 {
        0
    } else if scaled.abs() >= 10.0 {
        1
    } else {
        2
    };
    let suffix = match (unit, prefixes[i]) {
        ("bytes", p) => format!(" {p}"),
        ("bytes/s", p) => format!(" {p}/s"),
        ("", "") => String::new(),
        ("", p) => format!(" {p}"),
        (u, p) => format!(" {p}{u}"),
    };
    format!("{scaled:.digits$}{suffix}")
}

/// `14:05` within a day, `Nov 22 14:05` across days (UTC).
fn clock(ts_ms: i64, span_ms: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(ts_ms / 1000) else {
        return String::new();
    };
    if span_ms > 86_400_000 {
        format!(
            "{} {:02} {:02}:{:02}",
            &format!("{}", t.month())[..3],
            t.day(),
            t.hour(),
            t.minute()
        )
    } else {
        format!("{:02}:{:02}", t.hour(), t.minute())
    }
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_scale_with_units() {
        assert_eq!(number(1.5 * 1024.0 * 1024.0 * 1024.0, "bytes"), "1.50 GiB");
        assert_eq!(number(320.0, "W"), "320 W");
        assert_eq!(number(12_345.0, ""), "12.3 k");
        assert_eq!(number(0.25, "%"), "0.2 %");
        assert_eq!(number(5400.0, "rpm"), "5400 rpm");
        assert_eq!(number(12_345.0, "h"), "12345 h");
        assert_eq!(number(2.5e12, ""), "2.50 T");
        assert_eq!(number(3.0 * 1024.0 * 1024.0, "bytes/s"), "3 MiB/s");
    }

    #[test]
    fn flat_lines_are_drawn_mid_height_and_text_is_escaped() {
        let line = Line {
            label: "<gpu0>".into(),
            points: vec![(0, 42.0), (60_000, 42.0)],
        };
        let svg = render("GPU \"temp\"", "°C", &[line], 0, 60_000);
        assert!(svg.contains(r#"points="78.0,91.0 630.0,91.0""#), "{svg}");
        assert!(svg.contains("&lt;gpu0&gt;") && !svg.contains("<gpu0>"));
        assert!(svg.contains("aria-label=\"GPU &quot;temp&quot;\""));
        assert!(render("empty", "", &[], 0, 1).contains("no data in this range"));
    }
}
