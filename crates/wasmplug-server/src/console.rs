//! The operator's console: a few static files (HTML, CSS, plain ES
//! modules) embedded in the binary and served at `/` and `/ui/…`. The page
//! reads and changes plugins through the same public API as any client,
//! with a token it keeps only in memory.
//!
//! Every console response carries a Content-Security-Policy that keeps the
//! page's requests on the service's own origin (no CDN, no inline script or
//! style, no framing), so what the page can reach is the API and nothing
//! else.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The policy every console response carries: scripts, styles, fetches and
/// images from this origin only (images also as `data:` URLs, for the
/// blank favicon), no plugins, no framing, no `<base>` tricks, forms posting
/// nowhere else.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
     script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The console's files: name under `/ui/`, media type, contents.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../console/index.html"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../console/console.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/dom.js"),
    ),
    (
        "metrics.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/metrics.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/charts.js"),
    ),
    (
        "view-plugins.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/view-plugins.js"),
    ),
    (
        "view-plugin.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/view-plugin.js"),
    ),
    (
        "view-changes.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/view-changes.js"),
    ),
];

/// `GET /` and `GET /ui/`: the console's page.
pub async fn index() -> Response {
    asset_response("index.html")
        .unwrap_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such file").into_response())
}

/// `GET /ui/{file}`: one of the console's files, or `404 not_found`.
pub async fn asset(Path(file): Path<String>) -> Response {
    asset_response(&file).unwrap_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("the console has no file `{file}`"),
        )
        .into_response()
    })
}

fn asset_response(file: &str) -> Option<Response> {
    let (_, media_type, contents) = ASSETS.iter().find(|(name, _, _)| *name == file)?;
    let mut response = (*contents).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // The files change with the binary: revalidate rather than keep a copy
    // from an older service.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    /// Every module the page imports and every file it links is embedded,
    /// and every embedded file but the page is referred to.
    #[test]
    fn the_embedded_files_are_the_ones_the_page_refers_to() {
        let mut referred = vec!["index.html"];
        for (file, _, contents) in ASSETS {
            for (prefix, end) in [("from './", '\''), ("href=\"/ui/", '"'), ("src=\"/ui/", '"')] {
                for (index, _) in contents.match_indices(prefix) {
                    let rest = &contents[index + prefix.len()..];
                    let name = &rest[..rest.find(end).expect("a closing quote")];
                    assert!(
                        ASSETS.iter().any(|(embedded, _, _)| *embedded == name),
                        "{file} refers to {name}, which is not embedded"
                    );
                    referred.push(name);
                }
            }
        }
        for (file, _, _) in ASSETS {
            assert!(referred.contains(file), "{file} is embedded but nothing refers to it");
        }
    }
}
