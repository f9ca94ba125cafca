//! HTTP/1.1 framing on any byte stream: reading a request (headers, a
//! `Content-Length` or chunked body) and writing plain and chunked
//! responses. No routing, no sockets: [`super::http`] owns those.

use std::io::{self, BufRead, Read, Write};

/// The largest header block accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The largest body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target, path and query.
    pub target: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body (empty when none).
    pub body: Vec<u8>,
    /// HTTP/1.0, or `Connection: close`: close after the response.
    pub close: bool,
}

impl Request {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one line (CRLF or LF) without its terminator; `None` at EOF.
fn read_line(r: &mut impl BufRead, limit: &mut usize) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let n = Read::take(&mut *r, *limit as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if n > *limit {
        return Err(bad("request head too large"));
    }
    *limit -= n;
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| bad("request head is not UTF-8"))
}

/// Reads the next request; `Ok(None)` when the peer closed between requests.
pub fn read_request(r: &mut impl BufRead) -> io::Result<Option<Request>> {
    let mut limit = MAX_HEAD;
    let line = loop {
        match read_line(r, &mut limit)? {
            None => return Ok(None),
            // Tolerate empty lines between requests (RFC 9112 section 2.2).
            Some(l) if l.is_empty() => continue,
            Some(l) => break l,
        }
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(format!("bad request line {line:?}")));
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, &mut limit)?.ok_or_else(|| bad("EOF in request head"))?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut req = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        body: Vec::new(),
        close: version == "HTTP/1.0",
    };
    if let Some(c) = req.header("connection") {
        req.close = c.eq_ignore_ascii_case("close");
    }
    if req
        .header("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
    {
        req.body = read_chunked(r)?;
    } else if let Some(len) = req.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| bad(format!("bad Content-Length {len:?}")))?;
        if len > MAX_BODY {
            return Err(bad("request body too large"));
        }
        req.body = vec![0; len];
        r.read_exact(&mut req.body)?;
    }
    Ok(Some(req))
}

/// Reads a chunked body (RFC 9112 section 7.1), trailers ignored.
fn read_chunked(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut limit = MAX_HEAD;
        let line = read_line(r, &mut limit)?.ok_or_else(|| bad("EOF in chunked body"))?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size, 16).map_err(|_| bad(format!("bad chunk size {size:?}")))?;
        if size == 0 {
            while read_line(r, &mut limit)?.is_some_and(|l| !l.is_empty()) {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(bad("request body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        read_line(r, &mut limit)?;
    }
}

/// The reason phrase for the codes the server sends.
fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Writes a complete response with a `Content-Length`.
pub fn write_response(
    w: &mut impl Write,
    code: u16,
    content_type: &str,
    body: &[u8],
    close: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        reason(code),
        body.len()
    )
    .into_bytes();
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    w.write_all(&out)?;
    w.flush()
}

/// Writes the head of a chunked response.
pub fn write_chunked_head(w: &mut impl Write, code: u16, content_type: &str) -> io::Result<()> {
    write!(
        w,
        "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n",
        reason(code)
    )?;
    w.flush()
}

/// Writes one chunk (nothing for an empty `data`, which would end the body).
pub fn write_chunk(w: &mut impl Write, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    w.write_all(&out)?;
    w.flush()
}

/// Ends a chunked body.
pub fn write_last_chunk(w: &mut impl Write) -> io::Result<()> {
    w.write_all(b"0\r\n\r\n")?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    #[test]
    fn reads_keep_alive_requests_in_a_row() {
        let raw = b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n\
            POST /api/v1/namespaces HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}\
            PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext\r\nde\r\n0\r\n\r\n";
        let mut r = BufReader::new(&raw[..]);
        let a = read_request(&mut r).unwrap().unwrap();
        assert_eq!(
            (a.method.as_str(), a.target.as_str(), a.close),
            ("GET", "/api", false)
        );
        assert_eq!(a.header("host"), Some("x"));
        let b = read_request(&mut r).unwrap().unwrap();
        assert_eq!((b.body.as_slice(), b.close), (&b"{}"[..], true));
        let c = read_request(&mut r).unwrap().unwrap();
        assert_eq!(c.body, b"abcde");
        assert!(read_request(&mut r).unwrap().is_none());
    }

    #[test]
    fn rejects_garbage() {
        let mut r = BufReader::new(&b"NONSENSE\r\n\r\n"[..]);
        assert!(read_request(&mut r).is_err());
        let mut r = BufReader::new(&b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"[..]);
        assert!(read_request(&mut r).is_err());
    }

    #[test]
    fn chunked_response_frames() {
        let mut out = Vec::new();
        write_chunked_head(&mut out, 200, "application/json").unwrap();
        write_chunk(&mut out, b"{}\n").unwrap();
        write_chunk(&mut out, b"").unwrap();
        write_last_chunk(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.ends_with("\r\n\r\n3\r\n{}\n\r\n0\r\n\r\n"));
    }
}
