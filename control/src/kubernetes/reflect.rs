//! One resource's objects as store entries, kept from the watcher's events:
//! which entries each object gave, so an update or a delete changes exactly
//! those, and a relist (after a lost watch or 410 Gone) replaces the whole
//! set at once — objects deleted while nobody watched lose their entries
//! then. Pure: the caller feeds events and applies the returned operations
//! to the mirror.

use std::collections::{BTreeMap, BTreeSet};

use super::translate::Entry;

/// A change to the mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorOp {
    /// Set a key.
    Put(String, Vec<u8>),
    /// Remove a key.
    Delete(String),
}

/// An object's identity within its resource: `NAMESPACE/NAME` or `NAME`.
pub type ObjectId = String;

/// A relist's objects so far: entries by object, and refusals.
type Listing = (BTreeMap<ObjectId, Vec<Entry>>, BTreeMap<ObjectId, String>);

/// What one resource's objects gave.
#[derive(Debug, Default)]
pub struct Reflector {
    /// Entries by object.
    given: BTreeMap<ObjectId, Vec<Entry>>,
    /// Objects whose translation failed, with the reason.
    rejected: BTreeMap<ObjectId, String>,
    /// A relist in progress: what it has seen so far.
    relist: Option<Listing>,
    /// Whether a listing has completed.
    synced: bool,
}

impl Reflector {
    /// An object was added or changed.
    pub fn apply(&mut self, id: ObjectId, translated: Result<Vec<Entry>, String>) -> Vec<MirrorOp> {
        let entries = self.note(&id, translated);
        let old = self.given.remove(&id).unwrap_or_default();
        let ops = diff(&old, &entries);
        if !entries.is_empty() {
            self.given.insert(id, entries);
        }
        ops
    }

    /// An object was deleted.
    pub fn delete(&mut self, id: &str) -> Vec<MirrorOp> {
        self.rejected.remove(id);
        let old = self.given.remove(id).unwrap_or_default();
        diff(&old, &[])
    }

    /// A relist starts.
    pub fn init(&mut self) {
        self.relist = Some(Default::default());
    }

    /// An object of the relist.
    pub fn init_apply(&mut self, id: ObjectId, translated: Result<Vec<Entry>, String>) {
        let relist = self.relist.get_or_insert_with(Default::default);
        match translated {
            Ok(entries) => {
                if !entries.is_empty() {
                    relist.0.insert(id, entries);
                }
            }
            Err(reason) => {
                relist.1.insert(id, reason);
            }
        }
    }

    /// The relist is complete: its objects replace the ones held.
    pub fn init_done(&mut self) -> Vec<MirrorOp> {
        let (given, rejected) = self.relist.take().unwrap_or_default();
        let old: Vec<Entry> = self.given.values().flatten().cloned().collect();
        let new: Vec<Entry> = given.values().flatten().cloned().collect();
        self.given = given;
        self.rejected = rejected;
        self.synced = true;
        diff(&old, &new)
    }

    /// Whether a listing has completed.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// How many objects gave entries.
    pub fn objects(&self) -> usize {
        self.given.len()
    }

    /// Objects whose translation failed, with the reason.
    pub fn rejected(&self) -> &BTreeMap<ObjectId, String> {
        &self.rejected
    }

    fn note(&mut self, id: &str, translated: Result<Vec<Entry>, String>) -> Vec<Entry> {
        match translated {
            Ok(entries) => {
                self.rejected.remove(id);
                entries
            }
            Err(reason) => {
                self.rejected.insert(id.to_owned(), reason);
                Vec::new()
            }
        }
    }
}

/// The operations that turn `old` into `new`: deletes of keys `new` lacks,
/// then puts of every new entry (the mirror ignores unchanged values).
fn diff(old: &[Entry], new: &[Entry]) -> Vec<MirrorOp> {
    let kept: BTreeSet<&str> = new.iter().map(|(k, _)| k.as_str()).collect();
    let mut ops: Vec<MirrorOp> = old
        .iter()
        .filter(|(k, _)| !kept.contains(k.as_str()))
        .map(|(k, _)| MirrorOp::Delete(k.clone()))
        .collect();
    ops.extend(new.iter().map(|(k, v)| MirrorOp::Put(k.clone(), v.clone())));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(key: &str, value: &str) -> Entry {
        (key.to_owned(), value.as_bytes().to_vec())
    }

    fn put(key: &str, value: &str) -> MirrorOp {
        MirrorOp::Put(key.into(), value.into())
    }

    #[test]
    fn an_update_removes_the_entries_the_object_no_longer_gives() {
        let mut r = Reflector::default();
        assert_eq!(
            r.apply("p".into(), Ok(vec![e("l/p", "1"), e("rec/p", "a")])),
            [put("l/p", "1"), put("rec/p", "a")]
        );
        assert_eq!(
            r.apply("p".into(), Ok(vec![e("l/p", "2")])),
            [MirrorOp::Delete("rec/p".into()), put("l/p", "2")]
        );
        assert_eq!(r.delete("p"), [MirrorOp::Delete("l/p".into())]);
        assert_eq!(r.objects(), 0);
    }

    #[test]
    fn a_rejected_object_loses_its_entries_and_says_why() {
        let mut r = Reflector::default();
        r.apply("np".into(), Ok(vec![e("pol/np", "x")]));
        let ops = r.apply("np".into(), Err("bad port".into()));
        assert_eq!(ops, [MirrorOp::Delete("pol/np".into())]);
        assert_eq!(r.rejected()["np"], "bad port");
        r.apply("np".into(), Ok(vec![e("pol/np", "y")]));
        assert!(r.rejected().is_empty());
    }

    #[test]
    fn a_relist_replaces_everything_at_once() {
        let mut r = Reflector::default();
        assert!(!r.synced());
        r.apply("a".into(), Ok(vec![e("k/a", "1")]));
        r.apply("b".into(), Ok(vec![e("k/b", "1")]));
        r.init();
        r.init_apply("b".into(), Ok(vec![e("k/b", "2")]));
        r.init_apply("c".into(), Err("nope".into()));
        // Nothing changes until the listing is complete.
        assert_eq!(r.objects(), 2);
        let ops = r.init_done();
        assert_eq!(ops, [MirrorOp::Delete("k/a".into()), put("k/b", "2")]);
        assert!(r.synced());
        assert_eq!(r.objects(), 1);
        assert_eq!(r.rejected()["c"], "nope");
    }
}
