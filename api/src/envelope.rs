//! The NDJSON envelope both tweed APIs speak (the dataplane's and the
//! control daemon's), generic over each protocol's request, answer and
//! error types. Pure: no I/O.
//!
//! A request is `{"version":V,"request":{"<op>":{...}}}`, a reply
//! `{"version":V,"ok":...}` or `{"version":V,"error":{"kind","message"}}`.
//! A request line is decoded in steps so that each failure gets its own
//! kind (see `dataplane/API.md`, "Decoding order"): not UTF-8 or not JSON is
//! `bad_json`; a `version` other than the protocol's is
//! `unsupported_version` (checked before the request itself, so a newer
//! client learns it is talking to an older server, not that its fields are
//! wrong); anything else that does not fit the types is `invalid`, with
//! serde's message prefixed by the path of the failing field
//! (`request.port_add.ipv4: invalid IPv4 address syntax`).
//!
//! One implementation, so that the two APIs cannot drift apart in the order
//! or the wording of these answers.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::json::{self, RawEnvelope};

/// The error kinds the envelope layer answers with itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The line is not UTF-8 or not JSON.
    BadJson,
    /// The `version` is another number.
    UnsupportedVersion,
    /// The envelope or the request does not fit the types.
    Invalid,
    /// The connecting process may not use the socket.
    Forbidden,
    /// A step failed inside the server.
    Io,
}

/// A protocol's error reply, as the envelope layer builds it.
pub trait EnvelopeError: Sized {
    /// The protocol's error of `kind` with `message`.
    fn envelope_error(kind: Kind, message: String) -> Self;
}

/// Who answers on a socket, and the protocol version it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Speaker {
    /// As named in messages: `"dataplane"`, `"daemon"`.
    pub name: &'static str,
    /// The one version it accepts.
    pub version: u32,
}

/// Decodes one request line (without its newline), bytes as read.
pub fn decode_request_bytes<R, E>(line: &[u8], speaker: Speaker) -> Result<R, E>
where
    R: DeserializeOwned,
    E: EnvelopeError,
{
    let line = std::str::from_utf8(line)
        .map_err(|e| E::envelope_error(Kind::BadJson, format!("the request is not UTF-8: {e}")))?;
    decode_request(line, speaker)
}

/// Decodes one request line (without its newline), in the order the module
/// docs give, without building a JSON tree of it (see [`super::json`]): a
/// repeated key anywhere is `invalid`.
pub fn decode_request<R, E>(line: &str, speaker: Speaker) -> Result<R, E>
where
    R: DeserializeOwned,
    E: EnvelopeError,
{
    let version = speaker.version;
    let invalid = |message: String| E::envelope_error(Kind::Invalid, message);
    let envelope: RawEnvelope<'_> = serde_json::from_str(line).map_err(|e| {
        E::envelope_error(
            Kind::BadJson,
            format!("the request is not JSON: {}", json::message(&e)),
        )
    })?;
    if !envelope.object {
        return Err(invalid(format!(
            "the request must be a JSON object {{\"version\":{version},\"request\":{{...}}}}"
        )));
    }
    if let Some(field) = &envelope.duplicate {
        return Err(invalid(format!(
            "field `{field}` is given twice in the envelope; give it once"
        )));
    }
    let Some(given) = envelope.version else {
        return Err(invalid(format!(
            "missing field `version`: add \"version\":{version}"
        )));
    };
    match serde_json::from_str::<serde_json::Number>(given.get()) {
        Ok(n) if n.as_u64() == Some(u64::from(version)) => {}
        Ok(n) => {
            return Err(E::envelope_error(
                Kind::UnsupportedVersion,
                format!(
                    "version {n} is not supported; this {} speaks version {version}",
                    speaker.name
                ),
            ));
        }
        Err(_) => {
            return Err(invalid(format!(
                "`version` must be the number {version}, not {}",
                given.get()
            )));
        }
    }
    if let Some(unknown) = &envelope.unknown {
        return Err(invalid(format!(
            "unknown field `{unknown}` in the envelope, expected `version` and `request`"
        )));
    }
    let request = envelope
        .request
        .ok_or_else(|| invalid("missing field `request`".to_owned()))?;
    if let Err(dup) = json::unique_keys(request.get()) {
        let at = if dup.path.is_empty() {
            "request".to_owned()
        } else {
            format!("request.{}", dup.path)
        };
        return Err(invalid(format!(
            "{at}: key `{}` is given twice; give it once",
            dup.key
        )));
    }
    // Decode with the path of the failing field, so a bad value is named.
    let mut de = serde_json::Deserializer::from_str(request.get());
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = json::message(e.inner());
        if path.is_empty() || path == "." {
            invalid(format!("request: {inner}"))
        } else {
            invalid(format!("request.{path}: {inner}"))
        }
    })
}

/// Encodes a request as one line (without its newline).
pub fn encode_request<R: Serialize>(request: &R, version: u32) -> String {
    // Serializing the APIs' types cannot fail: every map key is a string.
    serde_json::to_string(&RequestOut { version, request }).unwrap_or_default()
}

/// Encodes a reply as one line (without its newline; serde_json escapes any
/// newline inside strings).
pub fn encode_response<B, E>(response: &Result<B, E>, version: u32) -> String
where
    B: Serialize,
    E: EnvelopeError + Serialize,
{
    let (ok, error) = match response {
        Ok(body) => (Some(body), None),
        Err(error) => (None, Some(error)),
    };
    serde_json::to_string(&ReplyOut { version, ok, error }).unwrap_or_else(|e| {
        // Unreachable with the APIs' types; still answer with a well-formed line.
        let error = E::envelope_error(Kind::Io, format!("encoding the reply: {e}"));
        serde_json::to_string(&ReplyOut::<B, E> {
            version,
            ok: None,
            error: Some(&error),
        })
        .unwrap_or_default()
    })
}

/// Decodes a reply line to a request of the op named `op`, whose `ok`
/// payload `decode_ok` reads. The outer `Err` is a protocol error (the line
/// is not a reply this client understands); the inner result is the
/// server's answer.
pub fn decode_response<B, E>(
    line: &str,
    version: u32,
    op: &str,
    decode_ok: impl FnOnce(Value) -> Result<B, serde_json::Error>,
) -> Result<Result<B, E>, String>
where
    E: DeserializeOwned,
{
    let reply: ReplyIn<E> = serde_json::from_str(line)
        .map_err(|e| format!("the reply is not a valid envelope: {e}"))?;
    if reply.version != version {
        return Err(format!(
            "the reply has version {}, this client speaks {version}",
            reply.version
        ));
    }
    match (reply.ok, reply.error) {
        (Some(ok), None) => decode_ok(ok)
            .map(Ok)
            .map_err(|e| format!("the `ok` payload of a {op} reply: {e}")),
        (None, Some(error)) => Ok(Err(error)),
        _ => Err("the reply must have exactly one of `ok` and `error`".to_owned()),
    }
}

/// Whether a peer of uid `peer` (or the failure to learn it) may use a
/// socket served as `own_uid`: root and the server's own uid may.
pub fn authorise<E: EnvelopeError>(
    peer: Result<u32, impl fmt::Display>,
    own_uid: u32,
) -> Result<(), E> {
    match peer {
        Ok(uid) if uid == 0 || uid == own_uid => Ok(()),
        Ok(uid) => Err(E::envelope_error(
            Kind::Forbidden,
            format!("uid {uid} may not use this socket; connect as root or uid {own_uid}"),
        )),
        Err(e) => Err(E::envelope_error(
            Kind::Io,
            format!("reading the peer's credentials: {e}"),
        )),
    }
}

/// The answer to a request line longer than `max` bytes.
pub fn too_long<E: EnvelopeError>(max: usize) -> E {
    E::envelope_error(
        Kind::Invalid,
        format!("the request line is longer than {max} bytes; closing the connection"),
    )
}

/// The answer to a request whose handler panicked on the op named `op`.
pub fn handler_panicked<E: EnvelopeError>(op: &str, speaker: Speaker) -> E {
    E::envelope_error(
        Kind::Io,
        format!("the {} failed internally handling {op}", speaker.name),
    )
}

/// The request envelope as written.
#[derive(Serialize)]
struct RequestOut<'a, R> {
    version: u32,
    request: &'a R,
}

/// The reply envelope as written.
#[derive(Serialize)]
struct ReplyOut<'a, B, E> {
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    ok: Option<&'a B>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a E>,
}

/// The reply envelope as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyIn<E> {
    version: u32,
    // A missing `ok` or `error` is `None`.
    ok: Option<Value>,
    error: Option<E>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A protocol of one op, `echo`, to test the envelope apart from both APIs.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case", deny_unknown_fields)]
    enum Req {
        Echo { text: String },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Refusal {
        kind: String,
        message: String,
    }

    const TESTER: Speaker = Speaker {
        name: "tester",
        version: 3,
    };

    impl EnvelopeError for Refusal {
        fn envelope_error(kind: Kind, message: String) -> Self {
            Refusal {
                kind: format!("{kind:?}"),
                message,
            }
        }
    }

    fn error(line: &[u8]) -> Refusal {
        decode_request_bytes::<Req, Refusal>(line, TESTER).expect_err("refused")
    }

    #[test]
    fn decoding_order_is_utf8_json_version_then_request() {
        assert_eq!(error(b"\xff").kind, "BadJson");
        assert_eq!(error(b"{").kind, "BadJson");
        let version = error(br#"{"version":1,"request":{"nope":{}}}"#);
        assert_eq!(version.kind, "UnsupportedVersion");
        assert!(version.message.contains("this tester speaks version 3"));
        for line in [
            &br#"{"version":"3","request":{"echo":{"text":"a"}}}"#[..],
            br#"{"request":{"echo":{"text":"a"}}}"#,
            br#"{"version":3}"#,
            br#"{"version":3,"request":{"echo":{"text":"a"}},"x":1}"#,
            br#"[]"#,
        ] {
            assert_eq!(error(line).kind, "Invalid");
        }
        let field = error(br#"{"version":3,"request":{"echo":{"text":1}}}"#);
        assert!(
            field.message.starts_with("request.echo.text: "),
            "{field:?}"
        );
    }

    #[test]
    fn a_repeated_key_is_invalid_in_the_envelope_and_in_the_request() {
        let twice = error(br#"{"version":3,"version":3,"request":{"echo":{"text":"a"}}}"#);
        assert_eq!(twice.kind, "Invalid");
        assert!(
            twice.message.contains("`version` is given twice"),
            "{twice:?}"
        );
        let inner = error(br#"{"version":3,"request":{"echo":{"text":"a","text":"b"}}}"#);
        assert_eq!(inner.kind, "Invalid");
        assert!(
            inner
                .message
                .starts_with("request.echo: key `text` is given twice"),
            "{inner:?}"
        );
        let ops = error(br#"{"version":3,"request":{"echo":{"text":"a"},"echo":{"text":"b"}}}"#);
        assert_eq!(ops.kind, "Invalid");
        assert!(ops.message.contains("`echo` is given twice"), "{ops:?}");
    }

    #[test]
    fn requests_and_replies_round_trip() {
        let request = Req::Echo {
            text: "a\nb".into(),
        };
        let line = encode_request(&request, 3);
        assert_eq!(line, r#"{"version":3,"request":{"echo":{"text":"a\nb"}}}"#);
        assert_eq!(decode_request::<Req, Refusal>(&line, TESTER), Ok(request));

        let ok: Result<u8, Refusal> = Ok(7);
        let line = encode_response(&ok, 3);
        assert_eq!(line, r#"{"version":3,"ok":7}"#);
        let decode =
            |line: &str| decode_response::<u8, Refusal>(line, 3, "echo", serde_json::from_value);
        assert_eq!(decode(&line), Ok(ok));
        let refused = Refusal::envelope_error(Kind::Io, "m".into());
        let line = encode_response::<u8, Refusal>(&Err(refused), 3);
        assert_eq!(line, r#"{"version":3,"error":{"kind":"Io","message":"m"}}"#);
        assert!(matches!(decode(&line), Ok(Err(_))));
        for bad in [
            r#"{"version":2,"ok":7}"#,
            r#"{"version":3}"#,
            r#"{"version":3,"ok":"x"}"#,
        ] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_root_and_the_own_uid_are_authorised() {
        let peer = |uid| Ok::<u32, String>(uid);
        assert_eq!(authorise::<Refusal>(peer(0), 1000), Ok(()));
        assert_eq!(authorise::<Refusal>(peer(1000), 1000), Ok(()));
        let other = authorise::<Refusal>(peer(1001), 1000).expect_err("forbidden");
        assert_eq!(other.kind, "Forbidden");
        assert!(other.message.contains("uid 1001"), "{other:?}");
        let unknown = authorise::<Refusal>(Err("EBADF".to_owned()), 1000).expect_err("io");
        assert_eq!(unknown.kind, "Io");
    }
}
