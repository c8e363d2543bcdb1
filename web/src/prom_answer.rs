//! Answers of the Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`,
//! `/api/v1/series`) as VictoriaMetrics and Prometheus give them, read into plain
//! values: the central view's one way in. Pure (text in, values out) so it can be fuzzed.
//! Quirks held by `tests/fixtures/prometheus-api/`: VictoriaMetrics gives whole seconds
//! and answers `scalar()` as a vector with no labels; Prometheus gives milliseconds as a
//! fraction; values are strings, `NaN`, `+Inf` and `-Inf` included.

use serde::Deserialize;
use std::collections::BTreeMap;

pub type Labels = BTreeMap<String, String>;

/// What a successful answer holds; times in ms since the epoch.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Vector(Vec<(Labels, i64, f64)>),
    Matrix(Vec<(Labels, Vec<(i64, f64)>)>),
    Scalar(i64, f64),
    /// `/api/v1/series`: each series' labels, `__name__` included.
    Series(Vec<Labels>),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnswerError {
    /// The server answered with Prometheus's error shape.
    #[error("{kind}: {message}")]
    Refused { kind: String, message: String },
    #[error("not a Prometheus API answer: {0}")]
    Malformed(String),
}

/// The answer's frame; `data` is read once its shape is known (no `Value` tree: an
/// overview's answers are megabytes).
#[derive(Deserialize)]
struct Envelope<'a> {
    status: String,
    #[serde(default, borrow)]
    data: Option<&'a serde_json::value::RawValue>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<InstantRaw>),
    Matrix(Vec<RangeRaw>),
    Scalar(PointRaw),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct InstantRaw {
    #[serde(default)]
    metric: Labels,
    value: PointRaw,
}

#[derive(Deserialize)]
struct RangeRaw {
    #[serde(default)]
    metric: Labels,
    values: Vec<PointRaw>,
}

/// `[1700000000.5, "42"]`
#[derive(Deserialize)]
struct PointRaw(f64, String);

/// Latest time accepted: the end of year 9999, as our own API.
const MAX_SECONDS: f64 = 253_402_300_799.0;

fn point(raw: &PointRaw, at: &dyn Fn() -> String) -> Result<(i64, f64), AnswerError> {
    let PointRaw(seconds, text) = raw;
    if !(seconds.is_finite() && (0.0..=MAX_SECONDS).contains(seconds)) {
        return Err(AnswerError::Malformed(format!(
            "{}: time {seconds} is not Unix seconds from 1970 to 9999",
            at()
        )));
    }
    let value = match text.as_str() {
        "NaN" => f64::NAN,
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().map_err(|_| {
            AnswerError::Malformed(format!(
                "{}: value `{}` is not a number",
                at(),
                shown(other)
            ))
        })?,
    };
    Ok(((seconds * 1000.0).round() as i64, value))
}

/// At most 40 characters of a value, control characters escaped.
fn shown(text: &str) -> String {
    text.chars()
        .take(40)
        .flat_map(char::escape_default)
        .collect()
}

/// Reads one answer's body.
pub fn parse(text: &str) -> Result<Answer, AnswerError> {
    let envelope: Envelope =
        serde_json::from_str(text).map_err(|e| AnswerError::Malformed(e.to_string()))?;
    if envelope.status != "success" {
        return Err(AnswerError::Refused {
            kind: envelope
                .error_type
                .unwrap_or_else(|| envelope.status.clone()),
            message: envelope.error.unwrap_or_default(),
        });
    }
    let data = envelope
        .data
        .ok_or_else(|| AnswerError::Malformed("`data` is missing".to_string()))?
        .get();
    if data.trim_start().starts_with('[') {
        let series: Vec<Labels> = serde_json::from_str(data)
            .map_err(|e| AnswerError::Malformed(format!("series list: {e}")))?;
        return Ok(Answer::Series(series));
    }
    let data: Data =
        serde_json::from_str(data).map_err(|e| AnswerError::Malformed(format!("data: {e}")))?;
    Ok(match data {
        Data::Vector(items) => Answer::Vector(
            items
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let (t, v) = point(&s.value, &|| format!("result #{}", i + 1))?;
                    Ok((s.metric, t, v))
                })
                .collect::<Result<_, AnswerError>>()?,
        ),
        Data::Matrix(items) => Answer::Matrix(
            items
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let points = s
                        .values
                        .iter()
                        .enumerate()
                        .map(|(j, p)| point(p, &|| format!("result #{} point #{}", i + 1, j + 1)))
                        .collect::<Result<_, _>>()?;
                    Ok((s.metric, points))
                })
                .collect::<Result<_, AnswerError>>()?,
        ),
        Data::Scalar(p) => {
            let (t, v) = point(&p, &|| "scalar".to_string())?;
            Answer::Scalar(t, v)
        }
        Data::String(_) => {
            return Err(AnswerError::Malformed(
                "a string result: dcmon asks only for numbers".to_string(),
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/../tests/fixtures/prometheus-api/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn victoriametrics_answers() {
        let Answer::Vector(v) = parse(&fixture("vm-query-vector.json")).unwrap() else {
            panic!("not a vector")
        };
        assert_eq!(
            v[1],
            (
                labels(&[("__name__", "node_load1"), ("host", "gpu-02")]),
                1_796_392_703_000,
                1.25
            )
        );
        let Answer::Matrix(m) = parse(&fixture("vm-query-range-matrix.json")).unwrap() else {
            panic!("not a matrix")
        };
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[0].1,
            vec![
                (1_796_392_403_000, 0.5),
                (1_796_392_463_000, 0.52),
                (1_796_392_523_000, 0.54),
                (1_796_392_583_000, 0.55)
            ]
        );
        let Answer::Series(s) = parse(&fixture("vm-series.json")).unwrap() else {
            panic!("not series")
        };
        assert_eq!(s[1]["uuid"], "GPU-abc");
        // scalar() comes back as a vector with no labels.
        assert_eq!(
            parse(&fixture("vm-query-scalar-as-vector.json")).unwrap(),
            Answer::Vector(vec![(Labels::new(), 1_796_392_708_000, 0.55)])
        );
        let Answer::Vector(inf) = parse(&fixture("vm-query-inf.json")).unwrap() else {
            panic!("not a vector")
        };
        assert_eq!(inf[0].2, f64::INFINITY);
        let err = parse(&fixture("vm-query-error-422.json")).unwrap_err();
        assert!(
            matches!(&err, AnswerError::Refused { kind, message } if kind == "422" && message.contains("labelFilterExpr")),
            "{err:?}"
        );
    }

    #[test]
    fn prometheus_answers() {
        let Answer::Vector(v) = parse(&fixture("prometheus-query-vector.json")).unwrap() else {
            panic!("not a vector")
        };
        // Milliseconds as a fraction of a second, not rounded to the second.
        assert_eq!(v[0].1, 1_796_392_720_921);
        assert_eq!(v[0].0["job"], "self");
        let Answer::Matrix(m) = parse(&fixture("prometheus-query-range-matrix.json")).unwrap()
        else {
            panic!("not a matrix")
        };
        assert_eq!(m[0].1, vec![(1_796_392_720_921, 1.0)]);
        assert_eq!(
            parse(&fixture("prometheus-query-scalar.json")).unwrap(),
            Answer::Scalar(1_796_392_720_921, 1.0)
        );
        let Answer::Vector(odd) = parse(&fixture("prometheus-query-nan-inf.json")).unwrap() else {
            panic!("not a vector")
        };
        assert!(odd[0].2.is_nan());
        assert_eq!((odd[1].0["x"].as_str(), odd[1].2), ("y", f64::INFINITY));
        assert_eq!(
            parse(&fixture("prometheus-series.json")).unwrap(),
            Answer::Series(vec![labels(&[
                ("__name__", "up"),
                ("instance", "127.0.0.1:19090"),
                ("job", "self")
            ])])
        );
        assert_eq!(
            parse(&fixture("prometheus-query-error-bad-data.json")).unwrap_err(),
            AnswerError::Refused {
                kind: "bad_data".to_string(),
                message: "invalid parameter \"query\": 1:4: parse error: unexpected end of input inside braces".to_string()
            }
        );
    }

    #[test]
    fn hostile_answers_are_named_errors() {
        for (text, expected) in [
            ("", "not a Prometheus API answer"),
            (
                "<html>502 Bad Gateway</html>",
                "not a Prometheus API answer",
            ),
            (r#"{"status":"success"}"#, "`data` is missing"),
            (
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[-1,"1"]}]}}"#,
                "result #1: time -1 is not Unix seconds",
            ),
            (
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1e300,"1"]}]}}"#,
                "is not Unix seconds",
            ),
            (
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"x\u0007y"]]}]}}"#,
                "result #1 point #2: value `x\\u{7}y` is not a number",
            ),
            (
                r#"{"status":"success","data":{"resultType":"string","result":[1,"a"]}}"#,
                "a string result",
            ),
            (
                r#"{"status":"success","data":{"resultType":"histogram","result":[]}}"#,
                "data:",
            ),
            (r#"{"status":"error"}"#, "error: "),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
