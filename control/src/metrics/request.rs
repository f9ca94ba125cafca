//! The little HTTP/1.1 the metrics endpoint speaks (pure): where a request head ends,
//! what its request line says, which answer it gets, and the answer's bytes.
//!
//! Only what Prometheus and a curious `curl` send is understood: an origin-form
//! request line (`GET /metrics HTTP/1.1`); headers are read (to find their end) but
//! ignored, bodies are never read, and every answer closes the connection, so there is
//! no keep-alive or chunking to get wrong.

use std::fmt::Write as _;

/// The longest request head (request line and headers) accepted, in bytes.
pub const MAX_HEAD: usize = 8 * 1024;

/// The content type of the Prometheus text format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How far a request head has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// Complete; its first `usize` bytes are the head, blank line included.
    Complete(usize),
    /// More bytes are needed.
    Incomplete,
    /// Over [`MAX_HEAD`] without an end: the connection is to be dropped.
    TooLarge,
}

/// Where the head in `buf` ends (the empty line, `\r\n\r\n` or a bare `\n\n`).
pub fn head_status(buf: &[u8]) -> Head {
    let window = &buf[..buf.len().min(MAX_HEAD)];
    let end = window
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let bare = window.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match end.into_iter().chain(bare).min() {
        Some(end) => Head::Complete(end),
        None if buf.len() >= MAX_HEAD => Head::TooLarge,
        None => Head::Incomplete,
    }
}

/// A parsed request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLine<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The path, without its query string.
    pub path: &'a str,
}

/// Why a request line was refused (answered 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestLineError {
    /// Not `METHOD SP TARGET SP VERSION`.
    #[error("the request line is not `METHOD TARGET HTTP/1.x`")]
    Shape,
    /// The method has characters a token cannot have.
    #[error("the request method is not an HTTP token")]
    Method,
    /// The target is not a path starting with `/`.
    #[error("the request target is not a path")]
    Target,
    /// The version is not HTTP/1.0 or HTTP/1.1.
    #[error("the HTTP version is not 1.0 or 1.1")]
    Version,
}

/// Parses the first line of a request head (without its line ending).
pub fn parse_request_line(line: &str) -> Result<RequestLine<'_>, RequestLineError> {
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestLineError::Shape);
    };
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if method.is_empty() || !method.chars().all(tchar) {
        return Err(RequestLineError::Method);
    }
    if !target.starts_with('/') || target.chars().any(|c| c.is_ascii_control()) {
        return Err(RequestLineError::Target);
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(RequestLineError::Version);
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    Ok(RequestLine { method, path })
}

/// The answer a request gets.
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
    /// A malformed request line: 400.
    BadRequest,
}

/// Which answer the request head `head` gets.
pub fn route(head: &[u8]) -> Route {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return Route::BadRequest;
    };
    match parse_request_line(line) {
        Err(_) => Route::BadRequest,
        Ok(req) if req.method != "GET" => Route::MethodNotAllowed,
        Ok(req) if req.path == "/metrics" => Route::Metrics,
        Ok(req) if req.path == "/" => Route::Index,
        Ok(_) => Route::NotFound,
    }
}

/// The body of `GET /`.
pub const INDEX_BODY: &str = "tweed daemon: metrics are at /metrics\n";

/// A complete response that closes the connection.
pub fn response(status: u16, reason: &str, content_type: &str, body: &str) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    let _ = write!(
        head,
        "Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status == 405 {
        head.push_str("Allow: GET\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_parse() {
        let ok = parse_request_line("GET /metrics HTTP/1.1");
        assert_eq!(
            ok,
            Ok(RequestLine {
                method: "GET",
                path: "/metrics"
            })
        );
        let query = parse_request_line("GET /metrics?x=1 HTTP/1.0");
        assert_eq!(
            query,
            Ok(RequestLine {
                method: "GET",
                path: "/metrics"
            })
        );
        assert_eq!(
            parse_request_line("POST / HTTP/1.1").map(|r| r.method),
            Ok("POST")
        );
    }

    #[test]
    fn malformed_request_lines_are_refused() {
        use RequestLineError::*;
        let cases = [
            ("", Shape),
            ("GET /metrics", Shape),
            ("GET  /metrics HTTP/1.1", Shape),
            ("GET /metrics HTTP/1.1 extra", Shape),
            ("G(T /metrics HTTP/1.1", Method),
            ("GET metrics HTTP/1.1", Target),
            ("GET http://x/metrics HTTP/1.1", Target),
            ("GET /a\tb HTTP/1.1", Target),
            ("GET /metrics HTTP/2.0", Version),
            ("GET /metrics http/1.1", Version),
        ];
        for (line, want) in cases {
            assert_eq!(parse_request_line(line), Err(want), "{line:?}");
        }
    }

    #[test]
    fn routes() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"),
            Route::Metrics
        );
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::Index);
        assert_eq!(route(b"GET /other HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
        assert_eq!(
            route(b"HEAD /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
        assert_eq!(route(b"GET /metrics\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"GET /\xff HTTP/1.1\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"GET /metrics HTTP/1.1\n\n"), Route::Metrics);
    }

    #[test]
    fn head_ends_at_the_blank_line_within_the_limit() {
        assert_eq!(head_status(b"GET / HTTP/1.1\r\nA: b\r\n"), Head::Incomplete);
        assert_eq!(
            head_status(b"GET / HTTP/1.1\r\n\r\nbody"),
            Head::Complete(18)
        );
        assert_eq!(head_status(b"GET / HTTP/1.1\n\n"), Head::Complete(16));
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        big.resize(MAX_HEAD, b'a');
        assert_eq!(head_status(&big), Head::TooLarge);
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            head_status(&big),
            Head::TooLarge,
            "the end lies past the limit"
        );
        let mut fits = b"GET / HTTP/1.1\r\n".to_vec();
        fits.resize(MAX_HEAD - 4, b'a');
        fits.extend_from_slice(b"\r\n\r\n");
        assert_eq!(head_status(&fits), Head::Complete(MAX_HEAD));
    }

    #[test]
    fn responses_carry_length_and_close() {
        let bytes = response(200, "OK", METRICS_CONTENT_TYPE, "a 1\n");
        let text = String::from_utf8(bytes).expect("ASCII");
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: 4\r\nConnection: close\r\n\r\na 1\n"
        );
        let not_allowed = String::from_utf8(response(405, "Method Not Allowed", "text/plain", ""));
        assert!(not_allowed.expect("ASCII").contains("\r\nAllow: GET\r\n"));
    }
}
