//! Jaeger's HTTP query API v3, answered as Jaeger v2 answers it, so that `cargo xtask verify`
//! (and any other Jaeger client) works the same against this store and against a real Jaeger.

use std::{collections::HashMap, time::Duration};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;

use crate::{
    json::traces_answer,
    store::{self, Store, TraceId},
};

/// How many traces a search returns when `query.num_traces` does not say.
const DEFAULT_NUM_TRACES: usize = 20;

pub fn router(store: Store) -> Router {
    Router::new()
        .route("/api/v3/services", get(services))
        .route("/api/v3/operations", get(operations))
        .route("/api/v3/traces", get(find_traces))
        .route("/api/v3/traces/{trace_id}", get(get_trace))
        // Not Jaeger's: the store's own counts, for `cargo xtask bench`.
        .route("/api/stats", get(stats))
        .with_state(store)
}

/// An error as Jaeger's gateway writes it: `{"error":{"httpCode":…,"message":…}}`, sent the
/// way Go's `http.Error` sends it (plain text content type, trailing newline).
fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({ "error": { "httpCode": status.as_u16(), "message": message } });
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")],
        format!("{body}\n"),
    )
        .into_response()
}

fn malformed(parameter: &str, why: impl std::fmt::Display) -> Response {
    error(StatusCode::BAD_REQUEST, &format!("malformed parameter {parameter}: {why}"))
}

fn no_traces() -> Response {
    error(StatusCode::NOT_FOUND, "No traces found")
}

async fn stats(State(store): State<Store>) -> Json<serde_json::Value> {
    Json(json!({ "traces": store.len(), "spans": store.span_counts() }))
}

async fn services(State(store): State<Store>) -> Json<serde_json::Value> {
    Json(json!({ "services": store.services() }))
}

async fn operations(
    State(store): State<Store>,
    Query(params): Query<HashMap<String, String>>,
) -> Json<serde_json::Value> {
    let service = params.get("service").map(String::as_str).unwrap_or_default();
    let kind = params.get("span_kind").or(params.get("spanKind")).map(String::as_str).filter(|kind| !kind.is_empty());
    let operations: Vec<_> = store
        .operations(service, kind)
        .into_iter()
        .map(|(name, kind)| json!({ "name": name, "spanKind": kind }))
        .collect();
    Json(json!({ "operations": operations }))
}

async fn get_trace(State(store): State<Store>, Path(trace_id): Path<String>) -> Response {
    let id = match parse_trace_id(&trace_id) {
        Ok(id) => id,
        Err(why) => return malformed("trace_id", why),
    };
    match store.get(&id) {
        Some(trace) => Json(traces_answer(trace)).into_response(),
        None => no_traces(),
    }
}

async fn find_traces(State(store): State<Store>, Query(params): Query<HashMap<String, String>>) -> Response {
    match parse_query(&params) {
        Ok(query) => {
            let traces = store.find(&query);
            if traces.is_empty() { no_traces() } else { Json(traces_answer(traces.concat())).into_response() }
        }
        Err(response) => response,
    }
}

/// A `query.*` parameter in either spelling: `query.service_name` or `query.serviceName`.
fn param<'a>(params: &'a HashMap<String, String>, snake: &str) -> Option<(&'a str, String)> {
    let camel = snake_to_camel(snake);
    [snake.to_owned(), camel]
        .into_iter()
        .find_map(|name| params.get(&name).filter(|value| !value.is_empty()).map(|value| (value.as_str(), name)))
}

fn snake_to_camel(name: &str) -> String {
    let mut camel = String::new();
    let mut upper = false;
    for character in name.chars() {
        match character {
            '_' => upper = true,
            _ if upper => {
                camel.extend(character.to_uppercase());
                upper = false;
            }
            _ => camel.push(character),
        }
    }
    camel
}

#[allow(clippy::result_large_err)] // the error is the finished HTTP answer
fn parse_query(params: &HashMap<String, String>) -> Result<store::Query, Response> {
    let (Some((time_min, min_name)), Some((time_max, max_name))) =
        (param(params, "query.start_time_min"), param(params, "query.start_time_max"))
    else {
        return Err(error(StatusCode::BAD_REQUEST, "query.start_time_min and query.start_time_max are required"));
    };
    let start_time_min_nanos = parse_time(time_min).map_err(|why| malformed(&min_name, why))?;
    let start_time_max_nanos = parse_time(time_max).map_err(|why| malformed(&max_name, why))?;
    if start_time_min_nanos > start_time_max_nanos {
        return Err(error(
            StatusCode::BAD_REQUEST,
            &format!("{min_name} ({time_min}) must not be after {max_name} ({time_max})"),
        ));
    }
    let Some((service_name, _)) = param(params, "query.service_name") else {
        return Err(error(StatusCode::BAD_REQUEST, "query.service_name is required"));
    };
    let mut query = store::Query {
        service_name: service_name.to_owned(),
        operation_name: param(params, "query.operation_name").map(|(name, _)| name.to_owned()),
        start_time_min_nanos,
        start_time_max_nanos,
        num_traces: DEFAULT_NUM_TRACES,
        ..Default::default()
    };
    // Both spellings of the limit are read, so a bad one is never silently ignored; the
    // first one given wins.
    for (depth, name) in
        [param(params, "query.search_depth"), param(params, "query.num_traces")].into_iter().flatten().rev()
    {
        query.num_traces = depth.parse::<usize>().map_err(|why| malformed(&name, why))?;
    }
    // A JSON object of strings, as Jaeger reads it since v2.19.0 (`apiv3/query_parser.go`):
    // `query.attributes={"error":"true","http.route":"/v1/todo"}`.
    if let Some((attributes, name)) = param(params, "query.attributes") {
        let attributes: std::collections::BTreeMap<String, String> =
            serde_json::from_str(attributes).map_err(|why| malformed(&name, why))?;
        query.attributes = crate::filter::Attributes(attributes);
    }
    if let Some((duration, name)) = param(params, "query.duration_min") {
        query.duration_min = Some(parse_go_duration(duration).map_err(|why| malformed(&name, why))?);
    }
    if let Some((duration, name)) = param(params, "query.duration_max") {
        query.duration_max = Some(parse_go_duration(duration).map_err(|why| malformed(&name, why))?);
    }
    Ok(query)
}

/// An RFC 3339 time (`2026-11-26T11:00:00Z`, `…+01:00`, fractions allowed) as Unix nanoseconds.
fn parse_time(text: &str) -> Result<u64, String> {
    let timestamp: jiff::Timestamp = text.parse().map_err(|error: jiff::Error| error.to_string())?;
    u64::try_from(timestamp.as_nanosecond()).map_err(|_| {
        if timestamp.as_second() < 0 {
            format!("{text} is before 1970, where Unix time starts")
        } else {
            format!("{text} is after 2554-07-21, the last time a 64-bit count of Unix nanoseconds holds")
        }
    })
}

/// A Go duration, as Jaeger reads them: `250ms`, `1.5s`, `1m30s`, `100us`, `2h`.
pub(crate) fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration {text:?}");
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("time: missing unit in duration {text:?}"))?;
        let number: f64 = rest[..number_end].parse().map_err(|_| invalid())?;
        rest = &rest[number_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            unit => return Err(format!("time: unknown unit {unit:?} in duration {text:?}")),
        };
        total += number * nanos_per_unit;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_nanos(total as u64))
}

/// A trace id as Jaeger reads it: up to 32 hex digits, shorter ones padded with zeros.
pub fn parse_trace_id(text: &str) -> Result<TraceId, String> {
    if text.len() > 32 {
        return Err(format!("TraceID cannot be longer than 32 hex characters: {text}"));
    }
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("strconv.ParseUint: parsing {text:?}: invalid syntax"));
    }
    let padded = format!("{text:0>32}");
    let mut id = [0u8; 16];
    for (index, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&padded[index * 2..index * 2 + 2], 16).expect("checked hex digits");
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("100us"), Ok(Duration::from_micros(100)));
        assert!(parse_go_duration("10").is_err());
        assert!(parse_go_duration("ten seconds").is_err());
    }

    #[test]
    fn times_outside_unix_nanoseconds_say_which_side() {
        assert!(parse_time("1969-12-31T23:59:59Z").unwrap_err().contains("before 1970"));
        assert!(parse_time("2600-01-01T00:00:00Z").unwrap_err().contains("after 2554"));
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Ok(1_000_000_000));
    }

    #[test]
    fn a_bad_limit_is_reported_whichever_spelling_is_bad() {
        let base = [
            ("query.service_name", "apiserver"),
            ("query.start_time_min", "2026-01-01T00:00:00Z"),
            ("query.start_time_max", "2026-01-02T00:00:00Z"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let params: HashMap<String, String> =
                base.iter().chain(extra).map(|(key, value)| (key.to_string(), value.to_string())).collect();
            parse_query(&params).map_err(|response| response.status())
        };
        assert_eq!(with(&[("query.num_traces", "5")]).unwrap().num_traces, 5);
        assert!(with(&[("query.search_depth", "5"), ("query.num_traces", "five")]).is_err());
        assert!(with(&[("query.search_depth", "x"), ("query.num_traces", "5")]).is_err());
        assert_eq!(with(&[("query.search_depth", "3"), ("query.num_traces", "5")]).unwrap().num_traces, 3);
    }

    #[test]
    fn a_window_that_ends_before_it_starts_is_refused() {
        let params: HashMap<String, String> = [
            ("query.service_name", "apiserver"),
            ("query.start_time_min", "2026-01-02T00:00:00Z"),
            ("query.start_time_max", "2026-01-01T00:00:00Z"),
        ]
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
        assert_eq!(parse_query(&params).unwrap_err().status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn trace_ids_are_padded_and_checked() {
        assert_eq!(parse_trace_id("1").unwrap()[15], 1);
        assert_eq!(parse_trace_id("ABCDEF0123456789abcdef0123456789").unwrap()[0], 0xab);
        assert!(parse_trace_id("xyz").is_err());
        assert!(parse_trace_id(&"1".repeat(33)).is_err());
    }
}
