//! Evaluation of a checked query at one instant, following Prometheus's engine: instant
//! selectors look back 5 minutes, range selectors take `(t - range, t]`, functions and
//! arithmetic drop the metric name, one-to-one matching keeps the matching labels.

use super::functions::{self, Point};
use super::source::{RawSeries, Source};
use super::{LOOKBACK_MS, Labels, Query, QueryError};
use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{
    AggregateExpr, BinaryExpr, Call, Expr, LabelModifier, Offset, VectorSelector,
};
use std::collections::{BTreeMap, HashMap};

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub value: f64,
}

/// What a query evaluates to.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    Vector(Vec<Sample>),
}

/// Evaluates `query` at `at_ms` (ms since the epoch) over `source`.
pub fn eval(query: &Query, at_ms: i64, source: &dyn Source) -> Result<Value, QueryError> {
    let evaluator = Evaluator { at_ms, source };
    match evaluator.expr(&query.expr)? {
        Inner::Scalar(v) => Ok(Value::Scalar(v)),
        Inner::Vector(v) => Ok(Value::Vector(v)),
        Inner::Matrix => Err(err(
            "a range vector is not a result: apply a function to it",
        )),
    }
}

enum Inner {
    Scalar(f64),
    Vector(Vec<Sample>),
    /// A range selector's series; only functions take them.
    Matrix,
}

struct Evaluator<'a> {
    at_ms: i64,
    source: &'a dyn Source,
}

fn err(what: &str) -> QueryError {
    QueryError::Eval(what.to_string())
}

const NAME: &str = "__name__";

fn without_name(mut labels: Labels) -> Labels {
    labels.remove(NAME);
    labels
}

impl Evaluator<'_> {
    fn expr(&self, e: &Expr) -> Result<Inner, QueryError> {
        match e {
            Expr::NumberLiteral(n) => Ok(Inner::Scalar(n.val)),
            Expr::Paren(p) => self.expr(&p.expr),
            Expr::Unary(u) => match self.expr(&u.expr)? {
                Inner::Scalar(v) => Ok(Inner::Scalar(-v)),
                Inner::Vector(v) => Ok(Inner::Vector(
                    v.into_iter()
                        .map(|s| Sample {
                            labels: without_name(s.labels),
                            value: -s.value,
                        })
                        .collect(),
                )),
                Inner::Matrix => Err(err("unary minus of a range vector")),
            },
            Expr::VectorSelector(vs) => self.instant(vs).map(Inner::Vector),
            Expr::MatrixSelector(ms) => {
                let range = ms.range.as_millis() as i64;
                self.range(&ms.vs, range).map(|_| Inner::Matrix)
            }
            Expr::Call(call) => self.call(call),
            Expr::Aggregate(a) => self.aggregate(a),
            Expr::Binary(b) => self.binary(b),
            Expr::Subquery(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {
                Err(err("unsupported expression (refused at parse time)"))
            }
        }
    }

    /// The evaluation time a selector's offset moves it to.
    fn shifted(&self, vs: &VectorSelector) -> i64 {
        match &vs.offset {
            Some(Offset::Pos(d)) => self.at_ms - d.as_millis() as i64,
            Some(Offset::Neg(d)) => self.at_ms + d.as_millis() as i64,
            None => self.at_ms,
        }
    }

    /// Every series the selector matches, with its points in `[from, to]`.
    /// The series `vs` selects with their points in `[from, to]`; `latest`: only the
    /// last point of each.
    fn select(
        &self,
        vs: &VectorSelector,
        from: i64,
        to: i64,
        latest: bool,
    ) -> Result<Vec<RawSeries>, QueryError> {
        let name = vs
            .name
            .clone()
            .or_else(|| {
                vs.matchers
                    .matchers
                    .iter()
                    .find(|m| m.name == NAME && matches!(m.op, MatchOp::Equal))
                    .map(|m| m.value.clone())
            })
            .ok_or_else(|| err("a selector needs a metric name"))?;
        let host = vs
            .matchers
            .matchers
            .iter()
            .find(|m| m.name == "host" && matches!(m.op, MatchOp::Equal))
            .map(|m| m.value.as_str());
        let found = if latest {
            self.source.latest(&name, host, from, to)
        } else {
            self.source.series(&name, host, from, to)
        }
        .map_err(QueryError::Eval)?;
        Ok(found
            .into_iter()
            .filter(|s| vs.matchers.matchers.iter().all(|m| matches(m, &s.labels)))
            .collect())
    }

    fn instant(&self, vs: &VectorSelector) -> Result<Vec<Sample>, QueryError> {
        let t = self.shifted(vs);
        Ok(self
            .select(vs, t - LOOKBACK_MS, t, true)?
            .into_iter()
            .filter_map(|s| {
                let last = s
                    .points
                    .iter()
                    .rev()
                    .find(|p| p.0 <= t && p.0 >= t - LOOKBACK_MS)?;
                Some(Sample {
                    labels: s.labels,
                    value: last.1,
                })
            })
            .collect())
    }

    fn range(&self, vs: &VectorSelector, range_ms: i64) -> Result<Vec<RawSeries>, QueryError> {
        let t = self.shifted(vs);
        let mut series = self.select(vs, t - range_ms, t, false)?;
        for s in &mut series {
            s.points.retain(|p| p.0 > t - range_ms && p.0 <= t);
        }
        Ok(series)
    }

    fn scalar_arg(&self, e: &Expr) -> Result<f64, QueryError> {
        match self.expr(e)? {
            Inner::Scalar(v) => Ok(v),
            _ => Err(err("expected a scalar argument")),
        }
    }

    fn vector_arg(&self, e: &Expr) -> Result<Vec<Sample>, QueryError> {
        match self.expr(e)? {
            Inner::Vector(v) => Ok(v),
            _ => Err(err("expected an instant vector argument")),
        }
    }

    fn call(&self, call: &Call) -> Result<Inner, QueryError> {
        let name = call.func.name;
        let args = &call.args.args;
        if super::check::RANGE_FUNCTIONS.contains(&name) {
            return self.range_call(name, args);
        }
        let map = |f: &dyn Fn(f64) -> f64| -> Result<Inner, QueryError> {
            let v = self.vector_arg(&args[0])?;
            Ok(Inner::Vector(
                v.into_iter()
                    .map(|s| Sample {
                        labels: without_name(s.labels),
                        value: f(s.value),
                    })
                    .collect(),
            ))
        };
        match name {
            "abs" => map(&f64::abs),
            "ceil" => map(&f64::ceil),
            "floor" => map(&f64::floor),
            "round" => map(&|v| (v + 0.5).floor()),
            "sqrt" => map(&f64::sqrt),
            "exp" => map(&f64::exp),
            "ln" => map(&f64::ln),
            "log2" => map(&f64::log2),
            "log10" => map(&f64::log10),
            "clamp" => {
                let (low, high) = (self.scalar_arg(&args[1])?, self.scalar_arg(&args[2])?);
                if low > high {
                    return Ok(Inner::Vector(Vec::new()));
                }
                map(&|v| v.max(low).min(high))
            }
            "clamp_min" => {
                let low = self.scalar_arg(&args[1])?;
                map(&|v| v.max(low))
            }
            "clamp_max" => {
                let high = self.scalar_arg(&args[1])?;
                map(&|v| v.min(high))
            }
            "time" => Ok(Inner::Scalar(self.at_ms as f64 / 1000.0)),
            "vector" => Ok(Inner::Vector(vec![Sample {
                labels: Labels::new(),
                value: self.scalar_arg(&args[0])?,
            }])),
            "scalar" => {
                let v = self.vector_arg(&args[0])?;
                Ok(Inner::Scalar(match v.as_slice() {
                    [one] => one.value,
                    _ => f64::NAN,
                }))
            }
            "absent" => {
                let v = self.vector_arg(&args[0])?;
                Ok(Inner::Vector(if v.is_empty() {
                    vec![Sample {
                        labels: absent_labels(&args[0]),
                        value: 1.0,
                    }]
                } else {
                    Vec::new()
                }))
            }
            other => Err(QueryError::Unsupported(format!("function `{other}`"))),
        }
    }

    fn range_call(&self, name: &str, args: &[Box<Expr>]) -> Result<Inner, QueryError> {
        let Expr::MatrixSelector(ms) = args[0].as_ref() else {
            return Err(err(
                "a range function needs a range selector such as `x[5m]`",
            ));
        };
        let range_ms = ms.range.as_millis() as i64;
        let t = self.shifted(&ms.vs);
        let (start, end) = (t - range_ms, t);
        let series = self.range(&ms.vs, range_ms)?;
        if name == "absent_over_time" {
            let any = series.iter().any(|s| !s.points.is_empty());
            return Ok(Inner::Vector(if any {
                Vec::new()
            } else {
                vec![Sample {
                    labels: absent_labels(&args[0]),
                    value: 1.0,
                }]
            }));
        }
        let ahead = if name == "predict_linear" {
            self.scalar_arg(&args[1])?
        } else {
            0.0
        };
        let apply = |points: &[Point]| -> Option<f64> {
            match name {
                "rate" => functions::extrapolated(points, start, end, true, true),
                "increase" => functions::extrapolated(points, start, end, true, false),
                "delta" => functions::extrapolated(points, start, end, false, false),
                "irate" => functions::instant_change(points, true),
                "idelta" => functions::instant_change(points, false),
                "deriv" => functions::deriv(points),
                "predict_linear" => functions::predict_linear(points, self.at_ms, ahead),
                "changes" => functions::changes(points),
                "resets" => functions::resets(points),
                other => functions::over_time(other, points),
            }
        };
        Ok(Inner::Vector(
            series
                .into_iter()
                .filter_map(|s| {
                    let value = apply(&s.points)?;
                    // last_over_time acts like an offset: it keeps the name.
                    let labels = if name == "last_over_time" {
                        s.labels
                    } else {
                        without_name(s.labels)
                    };
                    Some(Sample { labels, value })
                })
                .collect(),
        ))
    }

    fn aggregate(&self, a: &AggregateExpr) -> Result<Inner, QueryError> {
        let input = self.vector_arg(&a.expr)?;
        let op = a.op.to_string();
        let mut groups: BTreeMap<Labels, Vec<f64>> = BTreeMap::new();
        for s in input {
            let key = grouping(&s.labels, a.modifier.as_ref());
            groups.entry(key).or_default().push(s.value);
        }
        let out = groups
            .into_iter()
            .map(|(labels, values)| {
                let value = match op.as_str() {
                    "sum" => values.iter().sum(),
                    "avg" => functions::mean(values.iter().copied()),
                    "min" => values
                        .iter()
                        .copied()
                        .fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m }),
                    "max" => values
                        .iter()
                        .copied()
                        .fold(f64::NAN, |m, v| if m.is_nan() || v > m { v } else { m }),
                    "count" => values.len() as f64,
                    _ => 1.0, // group
                };
                Sample { labels, value }
            })
            .collect();
        Ok(Inner::Vector(out))
    }

    fn binary(&self, b: &BinaryExpr) -> Result<Inner, QueryError> {
        let op = b.op.to_string().to_lowercase();
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let matching = b.modifier.as_ref().and_then(|m| m.matching.as_ref());
        let (lhs, rhs) = (self.expr(&b.lhs)?, self.expr(&b.rhs)?);
        match (lhs, rhs) {
            (Inner::Scalar(l), Inner::Scalar(r)) => {
                let (value, keep) = apply(&op, l, r)?;
                Ok(Inner::Scalar(if is_comparison(&op) {
                    f64::from(u8::from(keep))
                } else {
                    value
                }))
            }
            (Inner::Vector(v), Inner::Scalar(s)) => {
                Ok(Inner::Vector(vector_scalar(&op, v, s, false, return_bool)?))
            }
            (Inner::Scalar(s), Inner::Vector(v)) => {
                Ok(Inner::Vector(vector_scalar(&op, v, s, true, return_bool)?))
            }
            (Inner::Vector(l), Inner::Vector(r)) => match op.as_str() {
                "and" | "or" | "unless" => Ok(Inner::Vector(set_op(&op, l, r, matching))),
                _ => Ok(Inner::Vector(vector_vector(
                    &op,
                    l,
                    r,
                    matching,
                    return_bool,
                )?)),
            },
            _ => Err(err("a range vector cannot be an operand")),
        }
    }
}

fn matches(m: &Matcher, labels: &Labels) -> bool {
    m.is_match(labels.get(&m.name).map_or("", String::as_str))
}

/// The labels `absent` gives: the selector's equality matchers.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::new(),
    };
    let mut labels = Labels::new();
    let mut twice = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == NAME || !matches!(m.op, MatchOp::Equal) {
            continue;
        }
        if labels.insert(m.name.clone(), m.value.clone()).is_some() {
            twice.push(m.name.clone());
        }
    }
    for name in twice {
        labels.remove(&name);
    }
    labels
}

/// The group of a sample under `by (...)` or `without (...)`; none: one group.
fn grouping(labels: &Labels, modifier: Option<&LabelModifier>) -> Labels {
    match modifier {
        Some(m) => kept(labels, m),
        None => Labels::new(),
    }
}

/// The labels `by`/`on` keep, or all but those `without`/`ignoring` drop (and the name).
fn kept(labels: &Labels, modifier: &LabelModifier) -> Labels {
    let listed = |k: &str| modifier.labels().labels.iter().any(|l| l == k);
    labels
        .iter()
        .filter(|(k, _)| match modifier {
            LabelModifier::Include(_) => listed(k),
            LabelModifier::Exclude(_) => k.as_str() != NAME && !listed(k),
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A comparison's result: with `bool`, 1 or 0 for every element; without, the kept ones.
fn push_result(out: &mut Vec<Sample>, labels: Labels, value: f64, keep: bool, return_bool: bool) {
    if return_bool {
        out.push(Sample {
            labels,
            value: f64::from(u8::from(keep)),
        });
    } else if keep {
        out.push(Sample { labels, value });
    }
}

fn is_comparison(op: &str) -> bool {
    matches!(op, "==" | "!=" | ">" | "<" | ">=" | "<=")
}

/// (value, keep): arithmetic gives the value; a comparison keeps the left value when true.
fn apply(op: &str, l: f64, r: f64) -> Result<(f64, bool), QueryError> {
    Ok(match op {
        "+" => (l + r, true),
        "-" => (l - r, true),
        "*" => (l * r, true),
        "/" => (l / r, true),
        "%" => (l % r, true),
        "^" => (l.powf(r), true),
        "atan2" => (l.atan2(r), true),
        "==" => (l, l == r),
        "!=" => (l, l != r),
        ">" => (l, l > r),
        "<" => (l, l < r),
        ">=" => (l, l >= r),
        "<=" => (l, l <= r),
        other => return Err(QueryError::Unsupported(format!("operator `{other}`"))),
    })
}

fn vector_scalar(
    op: &str,
    vector: Vec<Sample>,
    scalar: f64,
    scalar_first: bool,
    return_bool: bool,
) -> Result<Vec<Sample>, QueryError> {
    let comparison = is_comparison(op);
    let mut out = Vec::with_capacity(vector.len());
    for s in vector {
        let (l, r) = if scalar_first {
            (scalar, s.value)
        } else {
            (s.value, scalar)
        };
        let (mut value, keep) = apply(op, l, r)?;
        // A comparison keeps the vector's value, whichever side it is on.
        if comparison && scalar_first {
            value = s.value;
        }
        let labels = if !comparison || return_bool {
            without_name(s.labels)
        } else {
            s.labels
        };
        push_result(&mut out, labels, value, keep, return_bool);
    }
    Ok(out)
}

/// The labels two sides are matched on: `on (...)` keeps only those, `ignoring (...)`
/// drops those; the name never counts.
fn signature(labels: &Labels, matching: Option<&LabelModifier>) -> Labels {
    match matching {
        Some(m) => kept(labels, m),
        None => without_name(labels.clone()),
    }
}

fn vector_vector(
    op: &str,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    matching: Option<&LabelModifier>,
    return_bool: bool,
) -> Result<Vec<Sample>, QueryError> {
    let mut right: HashMap<Labels, Sample> = HashMap::new();
    for s in rhs {
        let sig = signature(&s.labels, matching);
        if right.insert(sig, s).is_some() {
            return Err(err(
                "many-to-many matching: several right-hand series share the matching labels",
            ));
        }
    }
    let comparison = is_comparison(op);
    let mut seen: HashMap<Labels, ()> = HashMap::new();
    let mut out = Vec::new();
    for l in lhs {
        let sig = signature(&l.labels, matching);
        let Some(r) = right.get(&sig) else { continue };
        if seen.insert(sig.clone(), ()).is_some() {
            return Err(err(
                "many-to-one matching: several left-hand series share the matching labels",
            ));
        }
        let (value, keep) = apply(op, l.value, r.value)?;
        // One-to-one: the result has the matching labels only (on), or all but the
        // ignored ones; the name goes for arithmetic and bool.
        let mut labels = match matching {
            Some(LabelModifier::Include(_)) => sig,
            Some(LabelModifier::Exclude(ignoring)) => l
                .labels
                .into_iter()
                .filter(|(k, _)| !ignoring.labels.iter().any(|i| i == k))
                .collect(),
            None => l.labels,
        };
        if !comparison || return_bool {
            labels.remove(NAME);
        }
        push_result(&mut out, labels, value, keep, return_bool);
    }
    Ok(out)
}

fn set_op(
    op: &str,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    matching: Option<&LabelModifier>,
) -> Vec<Sample> {
    let right: std::collections::HashSet<Labels> =
        rhs.iter().map(|s| signature(&s.labels, matching)).collect();
    match op {
        "and" => lhs
            .into_iter()
            .filter(|s| right.contains(&signature(&s.labels, matching)))
            .collect(),
        "unless" => lhs
            .into_iter()
            .filter(|s| !right.contains(&signature(&s.labels, matching)))
            .collect(),
        _ => {
            let left: std::collections::HashSet<Labels> =
                lhs.iter().map(|s| signature(&s.labels, matching)).collect();
            let mut out = lhs;
            out.extend(
                rhs.into_iter()
                    .filter(|s| !left.contains(&signature(&s.labels, matching))),
            );
            out
        }
    }
}
