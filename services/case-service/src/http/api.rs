//! JSON handlers.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{Map, Value};

use super::view::{CaseList, CaseView};
use super::{page, ApiError, Authorized, HttpState};
use crate::changes::Change;
use crate::domain::{
    clean_ident, CaseKind, CaseNumber, CaseStatus, FieldError, Priority, Severity,
};
use crate::store::{CaseFilter, ChangeMeta};

/// Parses the `{number}` path segment; a malformed one is a 404 like an unknown case.
pub(super) fn parse_number(raw: &str) -> Result<CaseNumber, ApiError> {
    raw.parse::<CaseNumber>()
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e.reason))
}

pub(super) async fn case_view(state: &HttpState, number: CaseNumber) -> Result<CaseView, ApiError> {
    let case = state.store.get_case(number).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("case {number} does not exist"),
        )
    })?;
    let timeline = state.store.timeline(number).await?;
    Ok(CaseView::new(
        &case,
        state.links.url(number),
        Some(&timeline),
    ))
}

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn parse_filter(raw: Option<&str>) -> Result<CaseFilter, ApiError> {
    let mut f = CaseFilter {
        limit: 20,
        ..Default::default()
    };
    for (k, v) in query_pairs(raw) {
        match k.as_str() {
            "status" => {
                for s in v.split(',').filter(|s| !s.is_empty()) {
                    f.statuses
                        .push(s.trim().parse().map_err(ApiError::invalid)?);
                }
            }
            "kind" => f.kind = Some(v.parse::<CaseKind>().map_err(ApiError::invalid)?),
            "user" => {
                if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ApiError::invalid(FieldError::new(
                        "user",
                        "must be a Discord user id (digits)",
                    )));
                }
                f.user_id = Some(v);
            }
            "q" => {
                if v.chars().count() > 200 {
                    return Err(ApiError::invalid(FieldError::new(
                        "q",
                        "is longer than 200 characters",
                    )));
                }
                f.text = Some(v);
            }
            "limit" => {
                let n: u32 = v.parse().map_err(|_| {
                    ApiError::invalid(FieldError::new("limit", "must be a number from 1 to 100"))
                })?;
                if !(1..=100).contains(&n) {
                    return Err(ApiError::invalid(FieldError::new(
                        "limit",
                        "must be a number from 1 to 100",
                    )));
                }
                f.limit = n;
            }
            "cursor" => {
                f.before = Some(v.parse::<CaseNumber>().map_err(|_| {
                    ApiError::invalid(FieldError::new(
                        "cursor",
                        "must be a next_cursor value from a previous page",
                    ))
                })?)
            }
            _ => {
                return Err(ApiError::invalid(FieldError::new(
                    "query",
                    format!("unknown parameter `{k}`; known: status, kind, user, q, limit, cursor"),
                )))
            }
        }
    }
    Ok(f)
}

/// `GET /cases`.
pub(super) async fn list_cases(
    _: Authorized,
    State(state): State<HttpState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<CaseList>, ApiError> {
    let filter = parse_filter(raw.as_deref())?;
    let page = state.store.list_cases(&filter).await?;
    Ok(Json(CaseList {
        items: page
            .cases
            .iter()
            .map(|c| CaseView::new(c, state.links.url(c.number), None))
            .collect(),
        next_cursor: page.next.map(|n| n.to_string()),
    }))
}

/// `GET /cases/{number}`: JSON with the bearer token, the HTML page with a signed link.
pub(super) async fn get_case(
    State(state): State<HttpState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if state.is_authorized(&headers) {
        let result = async {
            let number = parse_number(&raw)?;
            case_view(&state, number).await
        }
        .await;
        return match result {
            Ok(v) => Json(v).into_response(),
            Err(e) => e.into_response(),
        };
    }
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let has_sig = query_pairs(query.as_deref())
        .iter()
        .any(|(k, _)| k == "sig");
    if has_sig || wants_html {
        return page::show(&state, &raw, query.as_deref()).await;
    }
    ApiError::unauthorized().into_response()
}

/// Reads a JSON object body: 415 without a JSON content type, 413 when too large, 400 when
/// it is not JSON, 422 when it is JSON but not an object.
fn json_object(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Map<String, Value>, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if !(essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json")) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON (Content-Type: application/json)",
        ));
    }
    let body = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    match value {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::invalid(FieldError::new(
            "body",
            "must be a JSON object",
        ))),
    }
}

fn string_field(m: &Map<String, Value>, field: &'static str) -> Result<Option<String>, ApiError> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(FieldError::new(
            field,
            "must be a string",
        ))),
    }
}

fn check_known(m: &Map<String, Value>, known: &[&str]) -> Result<(), ApiError> {
    if let Some(k) = m.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::invalid(FieldError {
            field: "body",
            reason: format!("unknown field `{k}`; known: {}", known.join(", ")),
        }));
    }
    Ok(())
}

fn actor_of(m: &Map<String, Value>) -> Result<String, ApiError> {
    let actor = string_field(m, "actor")?.unwrap_or_default();
    let actor = clean_ident("actor", &actor, false).map_err(ApiError::invalid)?;
    Ok(if actor.is_empty() {
        "api".to_owned()
    } else {
        actor
    })
}

/// `PATCH /cases/{number}`.
pub(super) async fn patch_case(
    _: Authorized,
    State(state): State<HttpState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<CaseView>, ApiError> {
    let number = parse_number(&raw)?;
    let m = json_object(&headers, body)?;
    check_known(
        &m,
        &[
            "status", "priority", "severity", "assignee", "comment", "actor",
        ],
    )?;
    let status = string_field(&m, "status")?
        .map(|s| s.parse::<CaseStatus>())
        .transpose()
        .map_err(ApiError::invalid)?;
    let priority = string_field(&m, "priority")?
        .map(|s| s.parse::<Priority>())
        .transpose()
        .map_err(ApiError::invalid)?;
    let severity = string_field(&m, "severity")?
        .map(|s| s.parse::<Severity>())
        .transpose()
        .map_err(ApiError::invalid)?;
    let assignee = match m.get("assignee") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => {
            let a = clean_ident("assignee", s, false).map_err(ApiError::invalid)?;
            Some((!a.is_empty()).then_some(a))
        }
        Some(_) => {
            return Err(ApiError::invalid(FieldError::new(
                "assignee",
                "must be a string or null",
            )))
        }
    };
    let comment = string_field(&m, "comment")?.unwrap_or_default();
    let comment =
        crate::domain::clean_text("comment", &comment, crate::domain::limits::NOTE, false)
            .map_err(ApiError::invalid)?;
    if status.is_none() && priority.is_none() && severity.is_none() && assignee.is_none() {
        return Err(ApiError::invalid(FieldError::new(
            "body",
            "set at least one of status, priority, severity, assignee",
        )));
    }
    let actor = actor_of(&m)?;
    let change = Change::Patch {
        status,
        priority,
        severity,
        assignee,
        comment,
    };
    state
        .store
        .change_case(number, &change, &ChangeMeta::http(actor))
        .await?;
    Ok(Json(case_view(&state, number).await?))
}

/// `POST /cases/{number}/notes`.
pub(super) async fn add_note(
    _: Authorized,
    State(state): State<HttpState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CaseView>), ApiError> {
    let number = parse_number(&raw)?;
    let m = json_object(&headers, body)?;
    check_known(&m, &["author", "text"])?;
    let author = string_field(&m, "author")?.unwrap_or_default();
    let text = string_field(&m, "text")?.unwrap_or_default();
    let change = Change::note(&author, &text).map_err(ApiError::invalid)?;
    let actor = match &change {
        Change::Note { author, .. } => author.clone(),
        _ => "api".to_owned(),
    };
    state
        .store
        .change_case(number, &change, &ChangeMeta::http(actor))
        .await?;
    Ok((StatusCode::CREATED, Json(case_view(&state, number).await?)))
}

/// `GET /cases/{number}/link`.
pub(super) async fn page_link(
    _: Authorized,
    State(state): State<HttpState>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let number = parse_number(&raw)?;
    if state.store.get_case(number).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("case {number} does not exist"),
        ));
    }
    Ok(Json(serde_json::json!({ "url": state.links.url(number) })))
}

/// Unknown routes.
pub(super) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route; see /openapi.json")
}
