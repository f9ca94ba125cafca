//! JSON merge patch (RFC 7386), also used for strategic merge patches.
//!
//! A strategic merge patch is applied as a merge patch after dropping its
//! `$`-directives (`$patch`, `$setElementOrder/...`, `$retainKeys`, ...): a
//! list in it replaces the whole list instead of merging by key. That is
//! enough for labels, annotations and status fields, which is what the tests
//! and kubectl's `label`/`annotate` change.
//!
//! JSON patch (RFC 6902) is applied in full: add, remove, replace, move,
//! copy, test, all-or-nothing.

use serde_json::{Map, Value};

/// Applies `patch` to `target` as RFC 7386 section 2 says: an object merges
/// key by key (null deletes), anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target) = target else {
        return;
    };
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Removes strategic-merge directives (keys starting with `$`) at any depth.
pub fn strip_directives(patch: &mut Value) {
    match patch {
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with('$'));
            map.values_mut().for_each(strip_directives);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

/// The reference tokens of a JSON pointer (RFC 6901), `~1` and `~0`
/// unescaped.
fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| format!("JSON pointer {pointer:?} does not start with '/'"))?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// The value at `path`, if any.
fn get<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |v, t| match v {
        Value::Object(m) => m.get(t),
        Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// The container holding `path`'s last token, and that token.
fn parent<'a>(doc: &'a mut Value, path: &'a [String]) -> Result<(&'a mut Value, &'a str), String> {
    let (last, init) = path
        .split_last()
        .ok_or("the whole document cannot be the target")?;
    let mut v = doc;
    for t in init {
        v = match v {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("path component {t:?} does not exist"))?;
    }
    Ok((v, last))
}

fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    match parent(doc, path)? {
        (Value::Object(m), key) => {
            m.insert(key.to_owned(), value);
        }
        (Value::Array(a), "-") => a.push(value),
        (Value::Array(a), index) => {
            let i: usize = index
                .parse()
                .map_err(|_| format!("bad array index {index:?}"))?;
            if i > a.len() {
                return Err(format!("array index {i} out of bounds"));
            }
            a.insert(i, value);
        }
        _ => return Err("the parent of the target is not a container".into()),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, String> {
    match parent(doc, path)? {
        (Value::Object(m), key) => m
            .remove(key)
            .ok_or_else(|| format!("no member {key:?} to remove")),
        (Value::Array(a), index) => {
            let i: usize = index
                .parse()
                .map_err(|_| format!("bad array index {index:?}"))?;
            (i < a.len())
                .then(|| a.remove(i))
                .ok_or_else(|| format!("array index {i} out of bounds"))
        }
        _ => Err("the parent of the target is not a container".into()),
    }
}

/// Applies a JSON patch (RFC 6902 section 4); on error `target` is left
/// unchanged.
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or("a JSON patch is an array of operations")?;
    let mut doc = target.clone();
    for op in ops {
        let name = op["op"].as_str().ok_or("an operation without \"op\"")?;
        let path = tokens(op["path"].as_str().ok_or("an operation without \"path\"")?)?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or(format!("{name} without \"value\""))
        };
        let from = || tokens(op["from"].as_str().unwrap_or_default());
        match name {
            "add" => add(&mut doc, &path, value()?)?,
            "remove" => {
                remove(&mut doc, &path)?;
            }
            "replace" => {
                remove(&mut doc, &path)?;
                add(&mut doc, &path, value()?)?;
            }
            "move" => {
                let moved = remove(&mut doc, &from()?)?;
                add(&mut doc, &path, moved)?;
            }
            "copy" => {
                let copied = get(&doc, &from()?)
                    .cloned()
                    .ok_or("copy from a missing path")?;
                add(&mut doc, &path, copied)?;
            }
            "test" => {
                if get(&doc, &path) != Some(&value()?) {
                    return Err(format!("test failed at {:?}", op["path"]));
                }
            }
            other => return Err(format!("unknown operation {other:?}")),
        }
    }
    *target = doc;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The examples of RFC 7386 appendix A.
    #[test]
    fn rfc7386_examples() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (mut target, patch, want) in cases {
            merge(&mut target, &patch);
            assert_eq!(target, want, "patch {patch}");
        }
    }

    #[test]
    fn json_patch_operations() {
        let mut doc = json!({"metadata": {"annotations": {"a": "1"}}, "list": [1, 2]});
        let ops = json!([
            {"op": "add", "path": "/metadata/annotations/tweed.dev~1vtep", "value": "x"},
            {"op": "replace", "path": "/metadata/annotations/a", "value": "2"},
            {"op": "add", "path": "/list/-", "value": 3},
            {"op": "remove", "path": "/list/0"},
            {"op": "copy", "from": "/list", "path": "/copy"},
            {"op": "move", "from": "/copy", "path": "/moved"},
            {"op": "test", "path": "/moved/1", "value": 3}
        ]);
        json_patch(&mut doc, &ops).unwrap();
        assert_eq!(
            doc,
            json!({"metadata": {"annotations": {"a": "2", "tweed.dev/vtep": "x"}}, "list": [2, 3], "moved": [2, 3]})
        );
        let before = doc.clone();
        let failing = json!([{"op": "remove", "path": "/list/0"}, {"op": "test", "path": "/list/0", "value": 9}]);
        assert!(json_patch(&mut doc, &failing).is_err());
        assert_eq!(doc, before, "a failed patch changes nothing");
        assert!(json_patch(&mut doc, &json!([{"op": "remove", "path": "/nope/x"}])).is_err());
    }

    #[test]
    fn directives_are_dropped() {
        let mut p = json!({
            "metadata": {"labels": {"a": "1"}},
            "$setElementOrder/containers": [{"name": "c"}],
            "spec": {"containers": [{"name": "c", "$patch": "merge"}]}
        });
        strip_directives(&mut p);
        assert_eq!(
            p,
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "c"}]}})
        );
    }
}
