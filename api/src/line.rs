//! Splitting a byte stream into request lines of bounded length. Pure: the
//! servers' read loops (std threads here, tokio in the control daemon) feed
//! it what their buffered reader has and consume what it used.

/// What a request line ended as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// A line (without its newline or a trailing `\r`) is in the buffer.
    Complete,
    /// The peer closed the connection before sending anything more.
    Eof,
    /// The line exceeds the limit.
    TooLong,
}

/// Appends the bytes of `available` up to the first newline to `buf`, unless
/// that makes `buf` longer than `max`. Returns how many bytes of `available`
/// were used (consume them) and the line's end, or `None` if the line goes
/// on in bytes not yet read. An empty `available` is the end of the stream,
/// where a last line without a newline still counts.
pub fn feed(buf: &mut Vec<u8>, available: &[u8], max: usize) -> (usize, Option<Line>) {
    if available.is_empty() {
        let end = if buf.is_empty() {
            Line::Eof
        } else {
            Line::Complete
        };
        return (0, Some(end));
    }
    let (take, done) = match available.iter().position(|&b| b == b'\n') {
        Some(i) => (i, true),
        None => (available.len(), false),
    };
    if buf.len() + take > max {
        return (0, Some(Line::TooLong));
    }
    buf.extend_from_slice(&available[..take]);
    if !done {
        return (take, None);
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    (take + 1, Some(Line::Complete))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` in turn until a line ends.
    fn run(chunks: &[&[u8]], max: usize) -> (Vec<u8>, Line, Vec<usize>) {
        let mut buf = Vec::new();
        let mut used = Vec::new();
        for chunk in chunks {
            let (n, end) = feed(&mut buf, chunk, max);
            used.push(n);
            if let Some(end) = end {
                return (buf, end, used);
            }
        }
        panic!("no line ended in {chunks:?}");
    }

    #[test]
    fn a_line_ends_at_its_newline_and_leaves_the_rest() {
        let (buf, end, used) = run(&[b"ab", b"c\r\nnext"], 10);
        assert_eq!((buf.as_slice(), end), (&b"abc"[..], Line::Complete));
        assert_eq!(used, [2, 3]);
    }

    #[test]
    fn the_end_of_the_stream_ends_a_last_line_or_is_eof() {
        assert_eq!(run(&[b"ab", b""], 10).1, Line::Complete);
        assert_eq!(run(&[b""], 10).1, Line::Eof);
    }

    #[test]
    fn a_line_longer_than_max_is_too_long_even_across_chunks() {
        assert_eq!(run(&[b"abcd", b"e\n"], 4).1, Line::TooLong);
        assert_eq!(run(&[b"abcd\n"], 4).1, Line::Complete);
        assert_eq!(run(&[b"abcde\n"], 4).1, Line::TooLong);
    }
}
