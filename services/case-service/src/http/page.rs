//! The case page: server-rendered HTML for Flex's CRM panel (an iframe).
//!
//! Authentication is the signed link (`exp` and `sig` query parameters, see
//! [`crate::links`]). Forms post back to the same origin with the same `exp`/`sig`, so the
//! page works inside an iframe without cookies, and the signature doubles as the CSRF token.
//! All user text is HTML-escaped.

use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::HttpState;
use crate::changes::Change;
use crate::domain::{Case, CaseNumber, CaseStatus, TimelineEntry, TimelineEvent};
use crate::links::LinkError;
use crate::store::{ChangeMeta, StoreError};

/// The actor recorded for changes made on the page.
pub const PAGE_ACTOR: &str = "case-page";

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html(state: &HttpState, status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors {}",
        state.frame_ancestors
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0;padding:12px;color:#1f2328;background:#fff}\
h1{font-size:18px;margin:0 0 4px}.muted{color:#59636e}.badge{display:inline-block;padding:2px 8px;border-radius:10px;\
background:#ddf4ff;font-weight:600}.badge.resolved,.badge.closed{background:#dafbe1}dl{display:grid;\
grid-template-columns:max-content 1fr;gap:2px 12px;margin:8px 0}dt{color:#59636e}dd{margin:0}\
.desc{white-space:pre-wrap;border-left:3px solid #d1d9e0;padding-left:8px}form{display:inline}\
button{margin:2px;padding:4px 10px;border:1px solid #d1d9e0;border-radius:6px;background:#f6f8fa;cursor:pointer}\
ol{padding-left:18px}li{margin:4px 0}.err{background:#ffebe9;padding:6px;border-radius:6px}\
textarea{width:100%;box-sizing:border-box}";

fn page_shell(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><style>{STYLE}</style>\
         </head><body>{body}</body></html>",
        escape(title)
    )
}

fn status_label(s: CaseStatus) -> &'static str {
    match s {
        CaseStatus::Open => "Reopen",
        CaseStatus::InProgress => "Start work",
        CaseStatus::WaitingOnCustomer => "Wait on customer",
        CaseStatus::Resolved => "Resolve",
        CaseStatus::Closed => "Close",
    }
}

fn describe(e: &TimelineEvent) -> String {
    match e {
        TimelineEvent::Created { kind } => format!("Case opened ({kind})"),
        TimelineEvent::StatusChanged { from, to, comment } => {
            let mut s = format!("Status {from} → {to}");
            if !comment.is_empty() {
                let _ = write!(s, ": {comment}");
            }
            s
        }
        TimelineEvent::Note { author, text } => format!("Note by {author}: {text}"),
        TimelineEvent::AgentAssigned { name, identity } => {
            format!("Agent {name} ({identity}) assigned")
        }
        TimelineEvent::Csat { rating, comment } => {
            let mut s = format!("Customer rated {rating}/5");
            if !comment.is_empty() {
                let _ = write!(s, ": {comment}");
            }
            s
        }
        TimelineEvent::ConversationLinked {
            conversation_sid, ..
        } => {
            format!("Flex conversation {conversation_sid} linked")
        }
        TimelineEvent::PriorityChanged { from, to } => format!("Priority {from} → {to}"),
        TimelineEvent::SeverityChanged { from, to } => format!("Severity {from} → {to}"),
        TimelineEvent::AssigneeChanged { to, .. } => match to {
            Some(a) => format!("Assigned to {a}"),
            None => "Unassigned".to_owned(),
        },
    }
}

fn render_case(
    case: &Case,
    timeline: &[TimelineEntry],
    signed_query: &str,
    error: Option<&str>,
) -> String {
    let n = case.number;
    let q = escape(signed_query);
    let mut b = String::new();
    let _ = write!(
        b,
        "<header><h1 id=\"subject\">{} · {}</h1><span class=\"badge {}\" id=\"status\">{}</span> \
         <span class=\"muted\">{} · severity {} · priority {}</span></header>",
        n,
        escape(&case.subject),
        case.status.as_str(),
        case.status.as_str(),
        case.kind,
        case.severity,
        case.priority
    );
    if let Some(e) = error {
        let _ = write!(
            b,
            "<p class=\"err\" id=\"error\" role=\"alert\">{}</p>",
            escape(e)
        );
    }
    let who = if case.user.display_name.is_empty() {
        escape(&case.user.username)
    } else {
        format!(
            "{} (@{})",
            escape(&case.user.display_name),
            escape(&case.user.username)
        )
    };
    let _ = write!(
        b,
        "<dl><dt>Discord user</dt><dd id=\"user\">{who} · id {} · locale {}</dd>",
        escape(&case.user.id),
        escape(if case.user.locale.is_empty() {
            "unknown"
        } else {
            &case.user.locale
        })
    );
    if let Some(a) = &case.agent {
        let _ = write!(
            b,
            "<dt>Agent</dt><dd>{} ({})</dd>",
            escape(&a.name),
            escape(&a.identity)
        );
    }
    if let Some(a) = &case.assignee {
        let _ = write!(b, "<dt>Assignee</dt><dd>{}</dd>", escape(a));
    }
    if !case.conversation_sid.is_empty() {
        let _ = write!(
            b,
            "<dt>Flex conversation</dt><dd>{}</dd>",
            escape(&case.conversation_sid)
        );
    }
    if let Some(c) = &case.csat {
        let _ = write!(
            b,
            "<dt>CSAT</dt><dd>{}/5 {}</dd>",
            c.rating,
            escape(&c.comment)
        );
    }
    let _ = write!(
        b,
        "<dt>Opened</dt><dd>{}</dd><dt>Updated</dt><dd>{}</dd></dl>",
        case.created_at.to_rfc3339(),
        case.updated_at.to_rfc3339()
    );
    if !case.description.is_empty() {
        let _ = write!(
            b,
            "<div class=\"desc\" id=\"description\">{}</div>",
            escape(&case.description)
        );
    }
    let next = case.status.allowed_next();
    if !next.is_empty() {
        b.push_str("<section id=\"actions\"><h2>Change status</h2>");
        for s in next {
            let _ = write!(
                b,
                "<form method=\"post\" action=\"/cases/{n}/page/status?{q}\">\
                 <input type=\"hidden\" name=\"status\" value=\"{s}\">\
                 <button type=\"submit\" data-status=\"{s}\">{}</button></form>",
                status_label(*s)
            );
        }
        b.push_str("</section>");
    }
    b.push_str("<section><h2>Timeline</h2><ol id=\"timeline\">");
    for e in timeline {
        let _ = write!(
            b,
            "<li data-type=\"{}\"><span class=\"muted\">{} · {}</span> {}</li>",
            e.event.type_name(),
            e.at.to_rfc3339(),
            escape(&e.actor),
            escape(&describe(&e.event))
        );
    }
    b.push_str("</ol></section>");
    let _ = write!(
        b,
        "<section><h2>Add a note</h2><form method=\"post\" action=\"/cases/{n}/page/notes?{q}\" id=\"note-form\">\
         <input name=\"author\" placeholder=\"Your name\" required maxlength=\"128\"> \
         <textarea name=\"text\" rows=\"3\" required maxlength=\"4000\"></textarea>\
         <button type=\"submit\">Add note</button></form></section>"
    );
    page_shell(&format!("{n} · {}", case.subject), &b)
}

fn error_page(state: &HttpState, status: StatusCode, message: &str) -> Response {
    html(
        state,
        status,
        page_shell(
            "Case",
            &format!("<p class=\"err\" id=\"error\">{}</p>", escape(message)),
        ),
    )
}

struct Signed {
    number: CaseNumber,
    query: String,
}

/// Why a page request was refused before touching the case.
enum Refusal {
    NoSuchCase,
    Link(LinkError),
}

fn refusal_page(state: &HttpState, r: Refusal) -> Response {
    match r {
        Refusal::NoSuchCase => error_page(state, StatusCode::NOT_FOUND, "No such case."),
        Refusal::Link(e @ LinkError::Expired) => {
            error_page(state, StatusCode::FORBIDDEN, &e.to_string())
        }
        Refusal::Link(e) => error_page(state, StatusCode::UNAUTHORIZED, &e.to_string()),
    }
}

fn check_link(state: &HttpState, raw_number: &str, query: Option<&str>) -> Result<Signed, Refusal> {
    let Ok(number) = raw_number.parse::<CaseNumber>() else {
        return Err(Refusal::NoSuchCase);
    };
    let mut exp = None;
    let mut sig = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            "exp" => exp = Some(v.into_owned()),
            "sig" => sig = Some(v.into_owned()),
            _ => {}
        }
    }
    state
        .links
        .verify(number, exp.as_deref(), sig.as_deref())
        .map_err(Refusal::Link)?;
    Ok(Signed {
        number,
        // Only the two parameters that were checked go back into forms and redirects.
        query: format!(
            "exp={}&sig={}",
            exp.unwrap_or_default(),
            sig.unwrap_or_default()
        ),
    })
}

async fn render(
    state: &HttpState,
    signed: &Signed,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let loaded = async {
        let case = state.store.get_case(signed.number).await?;
        let timeline = state.store.timeline(signed.number).await?;
        Ok::<_, StoreError>((case, timeline))
    }
    .await;
    match loaded {
        Ok((Some(case), timeline)) => html(
            state,
            status,
            render_case(&case, &timeline, &signed.query, error),
        ),
        Ok((None, _)) => error_page(state, StatusCode::NOT_FOUND, "No such case."),
        Err(e) => {
            tracing::error!(error = %e, "Case store failed while rendering the case page.");
            error_page(
                state,
                StatusCode::SERVICE_UNAVAILABLE,
                "The case store is unavailable; reload in a moment.",
            )
        }
    }
}

/// `GET /cases/{number}` with a signed link.
pub(super) async fn show(state: &HttpState, raw_number: &str, query: Option<&str>) -> Response {
    match check_link(state, raw_number, query) {
        Ok(signed) => render(state, &signed, StatusCode::OK, None).await,
        Err(r) => refusal_page(state, r),
    }
}

fn form_fields(body: &Bytes) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn apply_and_redirect(
    state: &HttpState,
    signed: &Signed,
    change: Result<Change, String>,
) -> Response {
    let change = match change {
        Ok(c) => c,
        Err(msg) => {
            return render(state, signed, StatusCode::UNPROCESSABLE_ENTITY, Some(&msg)).await
        }
    };
    match state
        .store
        .change_case(signed.number, &change, &ChangeMeta::http(PAGE_ACTOR))
        .await
    {
        Ok(_) => {
            // Post/Redirect/Get, so a reload does not post again.
            let location = format!("/cases/{}?{}", signed.number, signed.query);
            let mut res = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            res
        }
        Err(StoreError::InvalidTransition(f)) => {
            render(state, signed, StatusCode::CONFLICT, Some(&f.reason)).await
        }
        Err(StoreError::NotFound(_)) => error_page(state, StatusCode::NOT_FOUND, "No such case."),
        Err(e) => {
            tracing::error!(error = %e, "Case store failed while applying a case page action.");
            error_page(
                state,
                StatusCode::SERVICE_UNAVAILABLE,
                "The case store is unavailable; try again.",
            )
        }
    }
}

/// `POST /cases/{number}/page/status` (form: `status`).
pub(super) async fn change_status(
    State(state): State<HttpState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let signed = match check_link(&state, &raw, query.as_deref()) {
        Ok(s) => s,
        Err(r) => return refusal_page(&state, r),
    };
    let Ok(body) = body else {
        return error_page(
            &state,
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form is too large.",
        );
    };
    let fields = form_fields(&body);
    let change = field(&fields, "status")
        .ok_or_else(|| "Choose a status.".to_owned())
        .and_then(|s| s.parse::<CaseStatus>().map_err(|e| e.reason))
        .and_then(|s| {
            Change::status(s, field(&fields, "comment").unwrap_or("")).map_err(|e| e.to_string())
        });
    apply_and_redirect(&state, &signed, change).await
}

/// `POST /cases/{number}/page/notes` (form: `author`, `text`).
pub(super) async fn add_note(
    State(state): State<HttpState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let signed = match check_link(&state, &raw, query.as_deref()) {
        Ok(s) => s,
        Err(r) => return refusal_page(&state, r),
    };
    let Ok(body) = body else {
        return error_page(
            &state,
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form is too large.",
        );
    };
    let fields = form_fields(&body);
    let change = Change::note(
        field(&fields, "author").unwrap_or(""),
        field(&fields, "text").unwrap_or(""),
    )
    .map_err(|e| e.to_string());
    apply_and_redirect(&state, &signed, change).await
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
