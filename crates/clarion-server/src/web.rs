//! The demo pages, embedded in the binary (`web/` in the repository).

use std::sync::Arc;

use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};

use crate::server::App;

/// `(path, content type, body)` of every page.
pub const PAGES: &[(&str, &str, &str)] = &[
    ("/", HTML, include_str!("../../../web/index.html")),
    ("/demo", HTML, include_str!("../../../web/demo.html")),
    // The client SDK (clients/js), built into one ES module and committed,
    // so that building the server never needs Node.
    (
        "/clarion-client.js",
        JS,
        include_str!("../../../web/clarion-client.js"),
    ),
    ("/demo.js", JS, include_str!("../../../web/demo.js")),
    ("/style.css", CSS, include_str!("../../../web/style.css")),
];

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

pub(crate) fn routes() -> Router<Arc<App>> {
    let mut router = Router::new();
    for &(path, content_type, body) in PAGES {
        let page = move || async move {
            (
                [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")],
                body,
            )
                .into_response()
        };
        router = router.route(path, get(page));
    }
    // Browsers ask for it on every page; an empty answer keeps logs quiet.
    router.route(
        "/favicon.ico",
        get(|| async { http::StatusCode::NO_CONTENT }),
    )
}
