//! The OpenAPI 3 description served at `/openapi.json` (hand-written; a test checks that it
//! lists every route and that every `$ref` resolves).

use axum::Json;
use serde_json::{json, Value};

/// Every `(method, path)` the router serves, as written in the OpenAPI document.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/cases"),
    ("get", "/cases/{number}"),
    ("patch", "/cases/{number}"),
    ("post", "/cases/{number}/notes"),
    ("get", "/cases/{number}/link"),
    ("post", "/cases/{number}/page/status"),
    ("post", "/cases/{number}/page/notes"),
    ("get", "/openapi.json"),
];

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn case_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Case" } } }
    })
}

fn number_param() -> Value {
    json!({
        "name": "number", "in": "path", "required": true,
        "description": "Case number, e.g. CASE-000123 (also accepted: 123).",
        "schema": { "type": "string", "example": "CASE-000123" }
    })
}

fn signed_params() -> Vec<Value> {
    vec![
        number_param(),
        json!({"name": "exp", "in": "query", "required": true, "schema": {"type": "integer"},
               "description": "Link expiry (Unix seconds), from a signed case-page link."}),
        json!({"name": "sig", "in": "query", "required": true, "schema": {"type": "string"},
               "description": "Link signature, from a signed case-page link."}),
    ]
}

fn html_response(description: &str) -> Value {
    json!({ "description": description, "content": { "text/html": { "schema": { "type": "string" } } } })
}

/// The document.
pub fn document() -> Value {
    let statuses = json!([
        "open",
        "in_progress",
        "waiting_on_customer",
        "resolved",
        "closed"
    ]);
    let kinds = json!(["bug", "feature", "support"]);
    let severities = json!(["low", "medium", "high", "critical"]);
    let priorities = json!(["low", "normal", "high", "urgent"]);
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "flexcord case-service",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Cases opened from Discord (bug reports, feature requests, live-agent requests). \
                Every change made here is also published on the bus as a case event. \
                Status transitions: open -> in_progress|waiting_on_customer|resolved|closed; \
                in_progress -> open|waiting_on_customer|resolved|closed; \
                waiting_on_customer -> open|in_progress|resolved|closed; \
                resolved -> open|in_progress|closed; closed is final."
        },
        "security": [ { "bearer": [] } ],
        "paths": {
            "/cases": {
                "get": {
                    "operationId": "listCases",
                    "summary": "List cases, newest first.",
                    "parameters": [
                        {"name": "status", "in": "query", "schema": {"type": "string"},
                         "description": "Comma-separated statuses, e.g. open,in_progress."},
                        {"name": "kind", "in": "query", "schema": {"type": "string", "enum": kinds}},
                        {"name": "user", "in": "query", "schema": {"type": "string"}, "description": "Discord user id."},
                        {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200},
                         "description": "Case-insensitive text in subject or description."},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
                        {"name": "cursor", "in": "query", "schema": {"type": "string"},
                         "description": "next_cursor of the previous page."}
                    ],
                    "responses": {
                        "200": {"description": "A page of cases.",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CaseList"}}}},
                        "401": error_response("Missing or wrong bearer token."),
                        "422": error_response("A filter is invalid; `field` names it.")
                    }
                }
            },
            "/cases/{number}": {
                "get": {
                    "operationId": "getCase",
                    "summary": "One case with its timeline (JSON with the bearer token; the HTML case page with a signed link).",
                    "security": [ { "bearer": [] }, {} ],
                    "parameters": signed_params().into_iter().map(|mut p| {
                        if p["in"] == "query" { p["required"] = json!(false); }
                        p
                    }).collect::<Vec<_>>(),
                    "responses": {
                        "200": {
                            "description": "The case.",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Case"}},
                                "text/html": {"schema": {"type": "string"}}
                            }
                        },
                        "401": error_response("Missing or wrong bearer token, or invalid link signature."),
                        "403": html_response("The signed link expired."),
                        "404": error_response("No such case.")
                    }
                },
                "patch": {
                    "operationId": "updateCase",
                    "summary": "Change status, priority, severity or assignee. Emits the same bus events as commands.",
                    "parameters": [number_param()],
                    "requestBody": {"required": true,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CasePatch"}}}},
                    "responses": {
                        "200": case_response("The updated case."),
                        "400": error_response("The body is not JSON."),
                        "401": error_response("Missing or wrong bearer token."),
                        "404": error_response("No such case."),
                        "409": error_response("The status transition is not allowed from the current status."),
                        "413": error_response("The body is larger than 64 KiB."),
                        "415": error_response("The body is not declared as JSON."),
                        "422": error_response("A field is invalid; `field` names it.")
                    }
                }
            },
            "/cases/{number}/notes": {
                "post": {
                    "operationId": "addNote",
                    "summary": "Add a note to the case timeline.",
                    "parameters": [number_param()],
                    "requestBody": {"required": true,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewNote"}}}},
                    "responses": {
                        "201": case_response("The case with the new note in its timeline."),
                        "400": error_response("The body is not JSON."),
                        "401": error_response("Missing or wrong bearer token."),
                        "404": error_response("No such case."),
                        "413": error_response("The body is larger than 64 KiB."),
                        "415": error_response("The body is not declared as JSON."),
                        "422": error_response("A field is invalid; `field` names it.")
                    }
                }
            },
            "/cases/{number}/link": {
                "get": {
                    "operationId": "getCasePageLink",
                    "summary": "A fresh signed link to the case page (for the Flex CRM panel).",
                    "parameters": [number_param()],
                    "responses": {
                        "200": {"description": "The link.",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PageLink"}}}},
                        "401": error_response("Missing or wrong bearer token."),
                        "404": error_response("No such case.")
                    }
                }
            },
            "/cases/{number}/page/status": {
                "post": {
                    "operationId": "pageChangeStatus",
                    "summary": "Status buttons of the case page (HTML form post, authenticated by the signed link).",
                    "security": [ {} ],
                    "parameters": signed_params(),
                    "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {
                        "type": "object", "required": ["status"],
                        "properties": {"status": {"type": "string", "enum": statuses}, "comment": {"type": "string"}}}}}},
                    "responses": {
                        "303": {"description": "Changed; redirects back to the case page."},
                        "401": html_response("Invalid link signature."),
                        "403": html_response("The signed link expired."),
                        "409": html_response("The transition is not allowed; the page explains why."),
                        "422": html_response("The form is invalid.")
                    }
                }
            },
            "/cases/{number}/page/notes": {
                "post": {
                    "operationId": "pageAddNote",
                    "summary": "Note form of the case page (HTML form post, authenticated by the signed link).",
                    "security": [ {} ],
                    "parameters": signed_params(),
                    "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {
                        "type": "object", "required": ["author", "text"],
                        "properties": {"author": {"type": "string"}, "text": {"type": "string"}}}}}},
                    "responses": {
                        "303": {"description": "Added; redirects back to the case page."},
                        "401": html_response("Invalid link signature."),
                        "403": html_response("The signed link expired."),
                        "422": html_response("The form is invalid.")
                    }
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "security": [ {} ],
                    "responses": {"200": {"description": "OpenAPI 3 document.",
                        "content": {"application/json": {"schema": {"type": "object"}}}}}
                }
            }
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "The token from CASE_API_TOKEN / CASE_API_TOKEN_FILE."}
            },
            "schemas": {
                "Error": {
                    "type": "object", "required": ["error"],
                    "properties": {
                        "error": {"type": "string", "description": "What went wrong."},
                        "field": {"type": "string", "description": "The offending field, when one is to blame."}
                    }
                },
                "DiscordUser": {
                    "type": "object", "required": ["id", "username", "display_name", "locale"],
                    "properties": {
                        "id": {"type": "string", "description": "Discord snowflake (string: exceeds 2^53)."},
                        "username": {"type": "string"},
                        "display_name": {"type": "string"},
                        "locale": {"type": "string", "example": "fr"}
                    }
                },
                "Agent": {"type": "object", "nullable": true, "required": ["identity", "name"],
                          "properties": {"identity": {"type": "string"}, "name": {"type": "string"}}},
                "Csat": {"type": "object", "nullable": true, "required": ["rating", "comment"],
                         "properties": {"rating": {"type": "integer", "minimum": 1, "maximum": 5},
                                        "comment": {"type": "string"}}},
                "TimelineEntry": {
                    "type": "object", "required": ["seq", "at", "actor", "type"],
                    "description": "Other properties depend on `type`: status_changed (from, to, comment), \
                        note (author, text), agent_assigned (identity, name), csat (rating, comment), \
                        conversation_linked (conversation_sid, interaction_sid), priority_changed and \
                        severity_changed (from, to), assignee_changed (from, to), created (kind).",
                    "properties": {
                        "seq": {"type": "integer"},
                        "at": {"type": "string", "format": "date-time"},
                        "actor": {"type": "string"},
                        "type": {"type": "string", "enum": ["created", "status_changed", "note", "agent_assigned",
                            "csat", "conversation_linked", "priority_changed", "severity_changed", "assignee_changed"]}
                    },
                    "additionalProperties": true
                },
                "Case": {
                    "type": "object",
                    "required": ["number", "kind", "status", "allowed_statuses", "subject", "description",
                                 "severity", "priority", "user", "origin", "flex", "created_at", "updated_at", "page_url"],
                    "properties": {
                        "number": {"type": "string", "example": "CASE-000123"},
                        "kind": {"type": "string", "enum": kinds},
                        "status": {"type": "string", "enum": statuses},
                        "allowed_statuses": {"type": "array", "items": {"type": "string", "enum": statuses}},
                        "subject": {"type": "string"},
                        "description": {"type": "string"},
                        "severity": {"type": "string", "enum": severities},
                        "priority": {"type": "string", "enum": priorities},
                        "assignee": {"type": "string", "nullable": true},
                        "user": {"$ref": "#/components/schemas/DiscordUser"},
                        "origin": {"type": "object", "properties": {
                            "channel_id": {"type": "string", "nullable": true},
                            "interaction_id": {"type": "string", "nullable": true},
                            "conversation_id": {"type": "string", "nullable": true}}},
                        "flex": {"type": "object", "properties": {
                            "conversation_sid": {"type": "string", "nullable": true},
                            "interaction_sid": {"type": "string", "nullable": true}}},
                        "agent": {"$ref": "#/components/schemas/Agent"},
                        "csat": {"$ref": "#/components/schemas/Csat"},
                        "created_at": {"type": "string", "format": "date-time"},
                        "updated_at": {"type": "string", "format": "date-time"},
                        "page_url": {"type": "string", "description": "Signed, expiring link to the case page."},
                        "timeline": {"type": "array", "items": {"$ref": "#/components/schemas/TimelineEntry"},
                                     "description": "Only on single-case responses."}
                    }
                },
                "CaseList": {
                    "type": "object", "required": ["items", "next_cursor"],
                    "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Case"}},
                        "next_cursor": {"type": "string", "nullable": true}
                    }
                },
                "CasePatch": {
                    "type": "object", "additionalProperties": false,
                    "description": "At least one of status, priority, severity, assignee.",
                    "properties": {
                        "status": {"type": "string", "enum": statuses},
                        "priority": {"type": "string", "enum": priorities},
                        "severity": {"type": "string", "enum": severities},
                        "assignee": {"type": "string", "nullable": true, "maxLength": 128,
                                     "description": "null or empty unassigns."},
                        "comment": {"type": "string", "maxLength": 4000, "description": "Reason for the status change."},
                        "actor": {"type": "string", "maxLength": 128, "description": "Who makes the change (default: api)."}
                    }
                },
                "NewNote": {
                    "type": "object", "additionalProperties": false, "required": ["author", "text"],
                    "properties": {
                        "author": {"type": "string", "minLength": 1, "maxLength": 128},
                        "text": {"type": "string", "minLength": 1, "maxLength": 4000}
                    }
                },
                "PageLink": {"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}}
            }
        }
    })
}

/// `GET /openapi.json`.
pub(super) async fn serve() -> Json<Value> {
    Json(document())
}
