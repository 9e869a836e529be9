//! The HTTP side: JSON API for agents and integrations, the case page, `/openapi.json`.
//!
//! | route | auth | what |
//! | --- | --- | --- |
//! | `GET /cases` | bearer | list with filters and paging |
//! | `GET /cases/{number}` | bearer, or a signed link | JSON (bearer) or the HTML case page (signed link) |
//! | `PATCH /cases/{number}` | bearer | status, priority, severity, assignee |
//! | `POST /cases/{number}/notes` | bearer | add a note |
//! | `GET /cases/{number}/link` | bearer | a fresh signed case-page link |
//! | `POST /cases/{number}/page/status` | signed link | status buttons of the case page |
//! | `POST /cases/{number}/page/notes` | signed link | note form of the case page |
//! | `GET /openapi.json` | none | this API in OpenAPI 3 |

mod api;
mod error;
pub mod openapi;
mod page;
mod view;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::routing::{get, post};
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::ApiError;
pub use view::{CaseView, TimelineView};

use crate::links::PageLinks;
use crate::store::Store;

/// Largest request body accepted (bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything the handlers need.
#[derive(Clone)]
pub struct HttpState {
    store: Store,
    links: PageLinks,
    token_digest: Arc<[u8; 32]>,
    frame_ancestors: Arc<str>,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState")
            .field("store", &self.store)
            .field("links", &self.links)
            .field("frame_ancestors", &self.frame_ancestors)
            .finish_non_exhaustive()
    }
}

impl HttpState {
    /// `api_token` guards the JSON API; `frame_ancestors` is the CSP `frame-ancestors` value
    /// of the case page (who may embed it in an iframe).
    pub fn new(
        store: Store,
        links: PageLinks,
        api_token: &SecretString,
        frame_ancestors: &str,
    ) -> Self {
        Self {
            store,
            links,
            token_digest: Arc::new(Sha256::digest(api_token.expose_secret().as_bytes()).into()),
            frame_ancestors: Arc::from(frame_ancestors),
        }
    }

    fn token_matches(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        d.ct_eq(&*self.token_digest).into()
    }

    /// Whether the request carries the right bearer token.
    fn is_authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then_some(token.trim())
            })
            .is_some_and(|t| self.token_matches(t))
    }
}

/// Extractor that refuses requests without the API bearer token (401).
#[derive(Debug)]
pub struct Authorized;

impl FromRequestParts<HttpState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &HttpState,
    ) -> Result<Self, Self::Rejection> {
        if state.is_authorized(&parts.headers) {
            Ok(Authorized)
        } else {
            Err(ApiError::unauthorized())
        }
    }
}

/// The whole HTTP surface.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi::serve))
        .route("/cases", get(api::list_cases))
        .route("/cases/{number}", get(api::get_case).patch(api::patch_case))
        .route("/cases/{number}/notes", post(api::add_note))
        .route("/cases/{number}/link", get(api::page_link))
        .route("/cases/{number}/page/status", post(page::change_status))
        .route("/cases/{number}/page/notes", post(page::add_note))
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown`, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
