//! What the metrics endpoint answers (pure): which [`Route`] a request's method
//! and path take, and the status, content type and body of the fixed answers.
//! hyper reads and writes the HTTP ([`super::server`]).

/// The body of `GET /`.
pub const INDEX_BODY: &str = "tweed daemon: metrics are at /metrics\n";

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics`: the exposition.
    Metrics,
    /// `GET /`: a pointer to `/metrics`.
    Index,
    /// `GET` of anything else: 404.
    NotFound,
    /// Any other method: 405.
    MethodNotAllowed,
}

/// Which answer a request with `method` for `path` (its query left out) gets.
pub fn route(method: &str, path: &str) -> Route {
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics,
        ("GET", "/") => Route::Index,
        ("GET", _) => Route::NotFound,
        _ => Route::MethodNotAllowed,
    }
}

/// A fixed answer: status, content type, body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed {
    /// The HTTP status code.
    pub status: u16,
    /// The body's content type.
    pub content_type: &'static str,
    /// The body.
    pub body: &'static str,
}

impl Route {
    /// The answer of every route but [`Route::Metrics`] (which the caller's
    /// source produces).
    pub fn fixed(self) -> Option<Fixed> {
        let (status, body) = match self {
            Route::Metrics => return None,
            Route::Index => (200, INDEX_BODY),
            Route::NotFound => (404, "not found\n"),
            Route::MethodNotAllowed => (405, "only GET\n"),
        };
        Some(Fixed {
            status,
            content_type: "text/plain; charset=utf-8",
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("GET", "/metrics"), Route::Metrics);
        assert_eq!(route("GET", "/"), Route::Index);
        assert_eq!(route("GET", "/other"), Route::NotFound);
        assert_eq!(route("GET", "/metrics/"), Route::NotFound);
        assert_eq!(route("POST", "/metrics"), Route::MethodNotAllowed);
        assert_eq!(route("HEAD", "/metrics"), Route::MethodNotAllowed);
    }

    #[test]
    fn fixed_answers() {
        assert_eq!(Route::Metrics.fixed(), None);
        assert_eq!(Route::Index.fixed().map(|f| f.status), Some(200));
        assert_eq!(Route::NotFound.fixed().map(|f| f.status), Some(404));
        assert_eq!(Route::MethodNotAllowed.fixed().map(|f| f.status), Some(405));
    }
}
