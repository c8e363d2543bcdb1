//! The OpenAPI document agrees with the API: it parses as OpenAPI 3.0, names every
//! API route, and every documented GET answers with JSON of the documented shape.

use crate::tests::{app_with_data, json};
use axum::http::StatusCode;
use serde_json::Value;

const DOCUMENT: &str = include_str!("../api/openapi.json");

/// Checks `value` against `schema`: types, required keys, nullability, items and
/// properties, following `$ref`s into `components`. Returns the first mismatch.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return check(doc, &doc["components"]["schemas"][name], value, at);
    }
    if let Some(all) = schema["allOf"].as_array() {
        if value.is_null() && schema["nullable"] == true {
            return Ok(());
        }
        return all.iter().try_for_each(|s| check(doc, s, value, at));
    }
    if value.is_null() {
        return if schema["nullable"] == true {
            Ok(())
        } else {
            Err(format!("{at}: null where the document says it cannot be"))
        };
    }
    let fits = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !fits {
        return Err(format!("{at}: {value} is not {}", schema["type"]));
    }
    if let Some(required) = schema["required"].as_array() {
        for key in required.iter().filter_map(Value::as_str) {
            if value.get(key).is_none() {
                return Err(format!("{at}: no `{key}` in {value}"));
            }
        }
    }
    if let (Some(props), Some(object)) = (schema["properties"].as_object(), value.as_object()) {
        for (key, v) in object {
            let Some(s) = props.get(key) else {
                return Err(format!("{at}: `{key}` is not in the document"));
            };
            check(doc, s, v, &format!("{at}.{key}"))?;
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            check(doc, items, v, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

#[test]
fn the_document_is_openapi_and_names_every_api_route() {
    let parsed: openapiv3::OpenAPI = serde_json::from_str(DOCUMENT).expect("valid OpenAPI 3.0");
    let documented: Vec<&str> = parsed.paths.paths.keys().map(String::as_str).collect();
    let router = include_str!("lib.rs");
    let routes: Vec<&str> = router
        .split(".route(")
        .skip(1)
        // rustfmt puts a long route's path on its own line.
        .filter_map(|r| r.trim_start().strip_prefix('"')?.split('"').next())
        .filter(|r| r.starts_with("/api/") || *r == "/metrics" || *r == "/health")
        .collect();
    assert!(routes.len() >= 9, "{routes:?}");
    for route in &routes {
        assert!(documented.contains(route), "{route} is not documented");
    }
    for path in &documented {
        assert!(routes.contains(path), "{path} is documented but not routed");
    }
}

#[tokio::test]
async fn every_documented_get_answers_in_the_documented_shape() {
    let doc: Value = serde_json::from_str(DOCUMENT).unwrap();
    let (_dir, app) = app_with_data();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if path == "/metrics" {
            continue; // text, checked by the Prometheus test
        }
        let uri = path
            .replace("{host}", "gpu01")
            .replace("{metric}/rate", "node_cpu_all_seconds_total/rate")
            .replace("{metric}", "node_load1");
        let uri = if uri.ends_with("/query_range") {
            format!("{uri}?query=node_load1&step=60")
        } else if uri.ends_with("/query") {
            format!("{uri}?query=max%20by%20(host)%20(node_load1)")
        } else {
            uri
        };
        let (status, body) = json(&app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        let schema = &item["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        check(&doc, schema, &body, &uri).unwrap();
        assert!(
            body.as_array().is_none_or(|a| !a.is_empty()),
            "{uri} answered an empty list: the check saw nothing"
        );
    }
    // Errors have the documented shape too.
    let (status, body) = json(&app, "/api/hosts/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    check(&doc, &doc["components"]["schemas"]["Error"], &body, "404").unwrap();
}

#[test]
fn the_checker_notices_a_wrong_shape() {
    let doc: Value = serde_json::from_str(DOCUMENT).unwrap();
    let schema = serde_json::json!({ "$ref": "#/components/schemas/LogLine" });
    let line = serde_json::json!({ "host": "a", "source": "journal", "ts": 1, "priority": 3, "unit": null, "message": "m" });
    assert!(check(&doc, &schema, &line, "x").is_ok());
    let mut missing = line.clone();
    missing.as_object_mut().unwrap().remove("message");
    assert!(
        check(&doc, &schema, &missing, "x")
            .unwrap_err()
            .contains("no `message`")
    );
    let mut extra = line.clone();
    extra["colour"] = "red".into();
    assert!(
        check(&doc, &schema, &extra, "x")
            .unwrap_err()
            .contains("`colour` is not in the document")
    );
    let mut wrong = line;
    wrong["ts"] = "soon".into();
    assert!(check(&doc, &schema, &wrong, "x").is_err());
}
