//! Discord's JSON error bodies: `{"code":<int>,"message":<str>}` plus `errors` for 50035.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// An error answered the way Discord answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Discord JSON error code.
    pub code: u32,
    /// Discord message.
    pub message: String,
    /// Field errors (50035 only).
    pub errors: Option<Value>,
}

impl ApiError {
    /// Any status/code/message.
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            errors: None,
        }
    }

    /// 401 `{"code":0,"message":"401: Unauthorized"}`.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized")
    }
    /// 404 general.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, 0, "404: Not Found")
    }
    /// 405 general.
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, 0, "405: Method Not Allowed")
    }
    /// 10002.
    pub fn unknown_application() -> Self {
        Self::new(StatusCode::NOT_FOUND, 10002, "Unknown Application")
    }
    /// 10003.
    pub fn unknown_channel() -> Self {
        Self::new(StatusCode::NOT_FOUND, 10003, "Unknown Channel")
    }
    /// 10004.
    pub fn unknown_guild() -> Self {
        Self::new(StatusCode::NOT_FOUND, 10004, "Unknown Guild")
    }
    /// 10008.
    pub fn unknown_message() -> Self {
        Self::new(StatusCode::NOT_FOUND, 10008, "Unknown Message")
    }
    /// 10013.
    pub fn unknown_user() -> Self {
        Self::new(StatusCode::NOT_FOUND, 10013, "Unknown User")
    }
    /// 10015.
    pub fn unknown_webhook() -> Self {
        Self::new(StatusCode::NOT_FOUND, 10015, "Unknown Webhook")
    }
    /// 10062.
    pub fn unknown_interaction() -> Self {
        Self::new(StatusCode::NOT_FOUND, 10062, "Unknown interaction")
    }
    /// 40005 (413).
    pub fn entity_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            40005,
            "Request entity too large",
        )
    }
    /// 40060.
    pub fn already_acknowledged() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            40060,
            "Interaction has already been acknowledged.",
        )
    }
    /// 50001.
    pub fn missing_access() -> Self {
        Self::new(StatusCode::FORBIDDEN, 50001, "Missing Access")
    }
    /// 50005.
    pub fn not_author() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            50005,
            "Cannot edit a message authored by another user",
        )
    }
    /// 50006.
    pub fn empty_message() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            50006,
            "Cannot send an empty message",
        )
    }
    /// 50007.
    pub fn cannot_dm() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            50007,
            "Cannot send messages to this user",
        )
    }
    /// 50008.
    pub fn non_text_channel() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            50008,
            "Cannot send messages in a non-text channel",
        )
    }
    /// 50013.
    pub fn missing_permissions() -> Self {
        Self::new(StatusCode::FORBIDDEN, 50013, "Missing Permissions")
    }
    /// 50024.
    pub fn wrong_channel_type() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            50024,
            "Cannot execute action on this channel type",
        )
    }
    /// 50109.
    pub fn invalid_json() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            50109,
            "The request body contains invalid JSON.",
        )
    }
    /// 50035 with field errors.
    pub fn invalid_form(errors: FormErrors) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: 50035,
            message: "Invalid Form Body".to_string(),
            errors: Some(errors.into_value()),
        }
    }
    /// 50035 with one field error.
    pub fn invalid_field(path: &[&str], code: &str, message: impl Into<String>) -> Self {
        let mut e = FormErrors::default();
        e.add(path, code, message);
        Self::invalid_form(e)
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut v = json!({"code": self.code, "message": self.message});
        if let (Some(errors), Some(map)) = (&self.errors, v.as_object_mut()) {
            map.insert("errors".to_string(), errors.clone());
        }
        v
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.status.as_u16(), self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

/// Builder for Discord's nested `errors` object:
/// `{"embeds":{"0":{"title":{"_errors":[{"code":..,"message":..}]}}}}`.
#[derive(Debug, Default, Clone)]
pub struct FormErrors {
    root: Map<String, Value>,
}

impl FormErrors {
    /// Adds an error at a path of keys (array indexes as decimal strings).
    pub fn add(&mut self, path: &[&str], code: &str, message: impl Into<String>) {
        let mut node = &mut self.root;
        for key in path {
            let entry = node
                .entry((*key).to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            node = match entry.as_object_mut() {
                Some(m) => m,
                None => return,
            };
        }
        let list = node
            .entry("_errors".to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(arr) = list.as_array_mut() {
            arr.push(json!({"code": code, "message": message.into()}));
        }
    }

    /// True when no error was added.
    pub fn is_empty(&self) -> bool {
        self.root.is_empty()
    }

    /// The `errors` value.
    pub fn into_value(self) -> Value {
        Value::Object(self.root)
    }

    /// `Err(invalid_form)` when errors were added.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid_form(self))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_errors_shape() {
        let mut e = FormErrors::default();
        e.add(
            &["embeds", "0", "title"],
            "BASE_TYPE_MAX_LENGTH",
            "Must be 256 or fewer in length.",
        );
        e.add(
            &["content"],
            "BASE_TYPE_MAX_LENGTH",
            "Must be 2000 or fewer in length.",
        );
        let body = ApiError::invalid_form(e).body();
        assert_eq!(body["code"], 50035);
        assert_eq!(body["message"], "Invalid Form Body");
        assert_eq!(
            body["errors"]["embeds"]["0"]["title"]["_errors"][0]["code"],
            "BASE_TYPE_MAX_LENGTH"
        );
        assert_eq!(
            body["errors"]["content"]["_errors"][0]["message"],
            "Must be 2000 or fewer in length."
        );
    }
}
