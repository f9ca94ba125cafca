//! Reading a request line without building a JSON tree. Pure: no I/O.
//!
//! A generic `serde_json::Value` of a line costs many times the line's size
//! (every number and string its own 32-byte node, every object a map), so a
//! few large lines could take gigabytes. Here the envelope is read into
//! [`RawEnvelope`], whose `version` and `request` are slices of the line
//! itself; the request is then checked for duplicate keys ([`unique_keys`],
//! which keeps only the keys of the objects it is inside) and decoded
//! straight into the API's types. What a request costs in memory is then
//! about its line plus the typed request, both bounded by the line limit.
//!
//! JSON allows an object to repeat a key (RFC 8259 says the names "SHOULD be
//! unique") and decoders disagree on which one counts, so a repeated key is
//! an error, at any depth, naming the key and where it is.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The envelope of a request line, its values left as JSON text.
#[derive(Debug, Default)]
pub struct RawEnvelope<'a> {
    /// The line is a JSON object.
    pub object: bool,
    /// The `version` field's text.
    pub version: Option<&'a RawValue>,
    /// The `request` field's text.
    pub request: Option<&'a RawValue>,
    /// The first field other than those two.
    pub unknown: Option<String>,
    /// The first field given twice.
    pub duplicate: Option<String>,
}

impl<'de: 'a, 'a> Deserialize<'de> for RawEnvelope<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = RawEnvelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut envelope = RawEnvelope {
            object: true,
            ..RawEnvelope::default()
        };
        while let Some(Key(key)) = map.next_key()? {
            let slot = match &*key {
                "version" => &mut envelope.version,
                "request" => &mut envelope.request,
                _ => {
                    envelope.unknown.get_or_insert_with(|| key.to_string());
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if slot.is_some() {
                envelope.duplicate.get_or_insert_with(|| key.to_string());
            }
            *slot = Some(map.next_value()?);
        }
        Ok(envelope)
    }

    // Anything else is valid JSON that is not an object: read it whole, so
    // that a syntax error further on is still a syntax error.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RawEnvelope::default())
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(RawEnvelope::default())
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(RawEnvelope::default())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(RawEnvelope::default())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(RawEnvelope::default())
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(RawEnvelope::default())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(RawEnvelope::default())
    }
}

/// An object key, borrowed from the line unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A repeated key: the key and the path of the object that has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Duplicate {
    /// The path, as `port_add.labels` or `gc.valid[2]` (empty: the top).
    pub path: String,
    /// The key.
    pub key: String,
}

/// Checks that no object in the JSON text `text` repeats a key.
pub fn unique_keys(text: &str) -> Result<(), Duplicate> {
    let mut path = Vec::new();
    let mut found = None;
    let mut de = serde_json::Deserializer::from_str(text);
    let scan = Unique {
        path: &mut path,
        found: &mut found,
    };
    // Only a duplicate stops the scan early; the text was parsed before.
    let _ = scan.deserialize(&mut de);
    match found {
        Some(duplicate) => Err(duplicate),
        None => Ok(()),
    }
}

enum Segment<'de> {
    Key(Cow<'de, str>),
    Index(usize),
}

fn render(path: &[Segment<'_>]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Walks one value, failing at the first object that repeats a key.
struct Unique<'p, 'de> {
    path: &'p mut Vec<Segment<'de>>,
    found: &'p mut Option<Duplicate>,
}

impl<'de> DeserializeSeed<'de> for Unique<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(Key(key)) = map.next_key()? {
            if !seen.insert(key.clone()) {
                *self.found = Some(Duplicate {
                    path: render(self.path),
                    key: key.into_owned(),
                });
                return Err(de::Error::custom("duplicate key"));
            }
            self.path.push(Segment::Key(key));
            map.next_value_seed(Unique {
                path: &mut *self.path,
                found: &mut *self.found,
            })?;
            self.path.pop();
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            self.path.push(Segment::Index(index));
            let more = seq.next_element_seed(Unique {
                path: &mut *self.path,
                found: &mut *self.found,
            })?;
            self.path.pop();
            if more.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A serde_json error's message without the "at line 1 column N" that
/// errors read from text carry (a request is one line; the field path
/// says where).
pub fn message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(bare) if e.line() > 0 => bare.to_owned(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(line: &str) -> RawEnvelope<'_> {
        serde_json::from_str(line).expect(line)
    }

    #[test]
    fn the_envelope_keeps_its_values_as_text() {
        let e = envelope(r#"{"version":1,"request":{"port_list":{}}}"#);
        assert!(e.object);
        assert_eq!(e.version.map(RawValue::get), Some("1"));
        assert_eq!(e.request.map(RawValue::get), Some(r#"{"port_list":{}}"#));
        assert_eq!((e.unknown, e.duplicate), (None, None));
    }

    #[test]
    fn the_envelope_notes_unknown_and_repeated_fields_and_non_objects() {
        let e = envelope(r#"{"version":1,"x":[1,{"y":2}],"version":2}"#);
        assert_eq!(e.unknown.as_deref(), Some("x"));
        assert_eq!(e.duplicate.as_deref(), Some("version"));
        assert_eq!(e.version.map(RawValue::get), Some("2"));
        for line in ["[1,2]", "\"x\"", "7", "null", "true"] {
            assert!(!envelope(line).object, "{line}");
        }
    }

    #[test]
    fn syntax_errors_anywhere_are_errors() {
        for line in [
            "{",
            r#"{"version":1,"request":{"a":}}"#,
            "[1,",
            r#"{"a":1}x"#,
        ] {
            let e = serde_json::from_str::<RawEnvelope>(line).expect_err(line);
            assert!(
                matches!(
                    e.classify(),
                    serde_json::error::Category::Syntax | serde_json::error::Category::Eof
                ),
                "{line}: {e}"
            );
        }
    }

    #[test]
    fn a_repeated_key_is_found_at_any_depth_with_its_path() {
        assert_eq!(unique_keys(r#"{"a":{"b":[{"c":1},{"c":2}]}}"#), Ok(()));
        assert_eq!(
            unique_keys(r#"{"pod_add":{"labels":{"app":"a","app":"b"}}}"#),
            Err(Duplicate {
                path: "pod_add.labels".into(),
                key: "app".into()
            })
        );
        assert_eq!(
            unique_keys(r#"{"gc":{"valid":[{},{"ifname":"a","ifname":"b"}]}}"#),
            Err(Duplicate {
                path: "gc.valid[1]".into(),
                key: "ifname".into()
            })
        );
        assert_eq!(
            unique_keys(r#"{"a":1,"\u0061":2}"#),
            Err(Duplicate {
                path: String::new(),
                key: "a".into()
            }),
            "an escaped key is the same key"
        );
    }

    #[test]
    fn messages_lose_their_position() {
        let e = serde_json::from_str::<u8>("300").expect_err("too big");
        assert!(!message(&e).contains("line 1"), "{}", message(&e));
        assert!(e.to_string().contains("line 1"));
    }
}
