//! Static files compiled into the binary: htmx (vendored from the npm package `htmx.org`,
//! with its licence beside it in `static/`), the console's stylesheet and its script.
//!
//! Their URLs change whenever their content does (htmx's carries its version, the
//! stylesheet's a hash of its bytes), so they are served with a one-year `immutable` cache
//! header: an upgrade of Muster is never stuck with an old copy in a browser.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// The vendored htmx release (see `static/htmx.LICENSE`, Zero-Clause BSD).
pub(crate) const HTMX_VERSION: &str = "2.0.11";
const HTMX: &[u8] = include_bytes!("../static/htmx.min.js");
const CSS: &[u8] = include_bytes!("../static/console.css");
const JS: &[u8] = include_bytes!("../static/console.js");

static HTMX_PATH: LazyLock<String> =
    LazyLock::new(|| format!("/static/htmx-{HTMX_VERSION}.min.js"));
static CSS_PATH: LazyLock<String> = LazyLock::new(|| {
    let hash = hex::encode(Sha256::digest(CSS));
    format!("/static/console-{}.css", &hash[..12])
});

static JS_PATH: LazyLock<String> = LazyLock::new(|| {
    let hash = hex::encode(Sha256::digest(JS));
    format!("/static/console-{}.js", &hash[..12])
});

/// The URL of the console's script (times in the viewer's zone).
pub(crate) fn js_path() -> &'static str {
    &JS_PATH
}

/// The URL of htmx.
pub(crate) fn htmx_path() -> &'static str {
    &HTMX_PATH
}

/// The URL of the stylesheet.
pub(crate) fn css_path() -> &'static str {
    &CSS_PATH
}

const LONG_CACHE: &str = "public, max-age=31536000, immutable";

/// `GET /static/{file}`.
pub(crate) async fn serve(Path(file): Path<String>) -> Response {
    let path = format!("/static/{file}");
    let (body, content_type) = if path == htmx_path() {
        (HTMX, "text/javascript; charset=utf-8")
    } else if path == css_path() {
        (CSS, "text/css; charset=utf-8")
    } else if path == js_path() {
        (JS, "text/javascript; charset=utf-8")
    } else {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(LONG_CACHE));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_htmx_is_the_named_release() {
        let text = std::str::from_utf8(HTMX).unwrap();
        assert!(text.starts_with("var htmx=function(){"));
        assert!(
            text.contains(&format!("version:\"{HTMX_VERSION}\"")),
            "htmx version"
        );
        assert!(css_path().starts_with("/static/console-"));
    }
}
