//! The supported subset, checked once at parse time: each refusal names the construct
//! and, where there is one, the way to write it within the subset.

use super::QueryError;
use promql_parser::parser::{Expr, VectorMatchCardinality};

/// Functions of a range vector the evaluator implements.
pub(super) const RANGE_FUNCTIONS: &[&str] = &[
    "rate",
    "increase",
    "irate",
    "delta",
    "idelta",
    "deriv",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "changes",
    "resets",
    "absent_over_time",
    "present_over_time",
    "predict_linear",
];

/// Functions of instant vectors or scalars the evaluator implements.
pub(super) const INSTANT_FUNCTIONS: &[&str] = &[
    "abs",
    "ceil",
    "floor",
    "round",
    "sqrt",
    "exp",
    "ln",
    "log2",
    "log10",
    "clamp",
    "clamp_min",
    "clamp_max",
    "absent",
    "scalar",
    "vector",
    "time",
];

/// Aggregations the evaluator implements.
pub(super) const AGGREGATIONS: &[&str] = &["sum", "avg", "min", "max", "count", "group"];

pub(super) fn supported(expr: &Expr) -> Result<(), QueryError> {
    let refuse = |what: String| Err(QueryError::Unsupported(what));
    match expr {
        Expr::Aggregate(a) => {
            let op = a.op.to_string();
            if !AGGREGATIONS.contains(&op.as_str()) {
                return refuse(format!(
                    "aggregation `{op}` (supported: {})",
                    AGGREGATIONS.join(", ")
                ));
            }
            supported(&a.expr)
        }
        Expr::Unary(u) => supported(&u.expr),
        Expr::Binary(b) => {
            if let Some(m) = &b.modifier {
                match &m.card {
                    VectorMatchCardinality::ManyToOne(_) | VectorMatchCardinality::OneToMany(_) => {
                        return refuse(
                            "group_left / group_right (many-to-one matching); match one to one with on(...) or ignoring(...)"
                                .to_string(),
                        );
                    }
                    VectorMatchCardinality::OneToOne | VectorMatchCardinality::ManyToMany => {}
                }
            }
            supported(&b.lhs)?;
            supported(&b.rhs)
        }
        Expr::Paren(p) => supported(&p.expr),
        Expr::Subquery(_) => refuse(
            "subqueries (`expr[range:step]`); use a range function over a stored series"
                .to_string(),
        ),
        Expr::NumberLiteral(_) => Ok(()),
        Expr::StringLiteral(_) => refuse("string values".to_string()),
        Expr::VectorSelector(vs) => selector(vs),
        Expr::MatrixSelector(ms) => selector(&ms.vs),
        Expr::Call(call) => {
            let name = call.func.name;
            if !RANGE_FUNCTIONS.contains(&name) && !INSTANT_FUNCTIONS.contains(&name) {
                return refuse(format!(
                    "function `{name}` (supported: {}, {})",
                    RANGE_FUNCTIONS.join(", "),
                    INSTANT_FUNCTIONS.join(", ")
                ));
            }
            if name == "round" && call.args.args.len() > 1 {
                return refuse("round with a `to_nearest` argument".to_string());
            }
            for arg in &call.args.args {
                supported(arg)?;
            }
            Ok(())
        }
        Expr::Extension(_) => refuse("extension expressions".to_string()),
    }
}

fn selector(vs: &promql_parser::parser::VectorSelector) -> Result<(), QueryError> {
    if vs.at.is_some() {
        return Err(QueryError::Unsupported(
            "the @ modifier; use offset".to_string(),
        ));
    }
    if vs.name.is_none() {
        return Err(QueryError::Unsupported(
            "a selector without a metric name (`{...}` alone); name the series".to_string(),
        ));
    }
    if !vs.matchers.or_matchers.is_empty() {
        return Err(QueryError::Unsupported(
            "`or` inside a selector's braces".to_string(),
        ));
    }
    Ok(())
}
