//! The one place HTTP errors become responses: `{"error": "...", "field": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tracing::error;

use crate::domain::FieldError;
use crate::store::StoreError;

/// An API error with its status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, for the caller.
    pub error: String,
    /// The offending field, when one is to blame.
    pub field: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// An error without a field.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            field: None,
        }
    }

    /// 422 for a field that failed validation.
    pub fn invalid(f: FieldError) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error: f.reason,
            field: Some(f.field.to_owned()),
        }
    }

    /// 400 for a body that is not what it claims to be.
    pub fn bad_request(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error)
    }

    /// 401 with the bearer challenge.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "missing or invalid bearer token")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(n) => {
                Self::new(StatusCode::NOT_FOUND, format!("case {n} does not exist"))
            }
            StoreError::InvalidTransition(f) => Self {
                status: StatusCode::CONFLICT,
                error: f.reason,
                field: Some(f.field.to_owned()),
            },
            other => {
                // Never leak database details; log them with the cause.
                error!(error = %other, "Case store failed while serving an HTTP request.");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the case store is unavailable; try again",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(Body {
            error: &self.error,
            field: self.field.as_deref(),
        });
        let mut res = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        res
    }
}
