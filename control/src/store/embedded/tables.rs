//! The embedded store's redb tables and the row-level changes made in one transaction.
//!
//! A key's row holds its revision, its lease (0: none) and its value; `lease_keys` is the
//! reverse index a revoke needs. Each change records its watch event in a [`Batch`],
//! published only after the transaction commits.

use redb::{MultimapTableDefinition, ReadableTable, TableDefinition, WriteTransaction};

use crate::store::error::{Op, StoreError};
use crate::store::{LeaseId, Revision, WatchEvent};

/// key → (revision of its last change, lease id or 0, value).
pub(super) const KV: TableDefinition<&str, (u64, i64, &[u8])> = TableDefinition::new("kv");
/// lease id → the keys attached to it.
pub(super) const LEASE_KEYS: MultimapTableDefinition<i64, &str> =
    MultimapTableDefinition::new("lease_keys");
/// lease id → TTL in seconds.
pub(super) const LEASES: TableDefinition<i64, u64> = TableDefinition::new("leases");
/// [`META_REVISION`] and [`META_NEXT_LEASE`] → value.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(super) const META_REVISION: &str = "revision";
pub(super) const META_NEXT_LEASE: &str = "next_lease";

/// Why an internal operation failed, before it is given its `Op` and key.
pub(super) enum Fail {
    Db(redb::Error),
    LeaseNotFound(LeaseId),
    Corrupt(String),
}

macro_rules! fail_from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Fail {
            fn from(e: $t) -> Self {
                Fail::Db(e.into())
            }
        }
    )*};
}
fail_from_redb!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::DatabaseError
);

impl Fail {
    pub(super) fn into_error(self, op: Op, key: String) -> StoreError {
        match self {
            Fail::Db(source) => StoreError::Embedded { op, key, source },
            Fail::LeaseNotFound(lease) => StoreError::LeaseNotFound { op, key, lease },
            Fail::Corrupt(reason) => StoreError::Corrupt { op, key, reason },
        }
    }
}

/// The tables of one write transaction.
pub(super) struct Tables<'txn> {
    // Private: only `put`, `delete` and `revoke` change them, keeping the index in step.
    kv: redb::Table<'txn, &'static str, (u64, i64, &'static [u8])>,
    lease_keys: redb::MultimapTable<'txn, i64, &'static str>,
    /// Lease id → TTL in seconds.
    pub(super) leases: redb::Table<'txn, i64, u64>,
    /// The store revision and the next lease id.
    pub(super) meta: redb::Table<'txn, &'static str, u64>,
}

/// The events of one write transaction, and whether it changed anything at all.
#[derive(Default)]
pub(super) struct Batch {
    /// The watch events, all at the transaction's revision.
    pub(super) events: Vec<WatchEvent>,
    /// True if the transaction wrote anything (then it is committed).
    pub(super) dirty: bool,
}

impl<'txn> Tables<'txn> {
    pub(super) fn open(txn: &'txn WriteTransaction) -> Result<Self, Fail> {
        Ok(Tables {
            kv: txn.open_table(KV)?,
            lease_keys: txn.open_multimap_table(LEASE_KEYS)?,
            leases: txn.open_table(LEASES)?,
            meta: txn.open_table(META)?,
        })
    }

    /// The revision and lease (0: none) of `key`, if it exists.
    pub(super) fn head(&self, key: &str) -> Result<Option<(u64, i64)>, Fail> {
        Ok(self.kv.get(key)?.map(|g| {
            let (rev, lease, _) = g.value();
            (rev, lease)
        }))
    }

    pub(super) fn put(
        &mut self,
        key: &str,
        value: &[u8],
        lease: Option<LeaseId>,
        rev: u64,
        batch: &mut Batch,
    ) -> Result<(), Fail> {
        let new_lease = lease.map_or(0, |l| l.0);
        if let Some((_, old_lease)) = self.head(key)?
            && old_lease != 0
            && old_lease != new_lease
        {
            self.lease_keys.remove(old_lease, key)?;
        }
        if new_lease != 0 {
            self.lease_keys.insert(new_lease, key)?;
        }
        self.kv.insert(key, (rev, new_lease, value))?;
        batch.dirty = true;
        batch.events.push(WatchEvent::Put {
            key: key.to_owned(),
            value: value.to_vec(),
            revision: Revision(rev),
        });
        Ok(())
    }

    /// Deletes `key`; false if it did not exist.
    pub(super) fn delete(&mut self, key: &str, rev: u64, batch: &mut Batch) -> Result<bool, Fail> {
        let lease = match self.kv.remove(key)? {
            Some(old) => old.value().1,
            None => return Ok(false),
        };
        if lease != 0 {
            self.lease_keys.remove(lease, key)?;
        }
        batch.dirty = true;
        batch.events.push(WatchEvent::Delete {
            key: key.to_owned(),
            revision: Revision(rev),
        });
        Ok(true)
    }

    /// Deletes lease `id` and all its keys.
    pub(super) fn revoke(&mut self, id: LeaseId, rev: u64, batch: &mut Batch) -> Result<(), Fail> {
        let mut keys = Vec::new();
        for k in self.lease_keys.remove_all(id.0)? {
            keys.push(k?.value().to_owned());
        }
        for key in keys {
            if self.kv.remove(key.as_str())?.is_some() {
                batch.events.push(WatchEvent::Delete {
                    key,
                    revision: Revision(rev),
                });
            }
        }
        self.leases.remove(id.0)?;
        batch.dirty = true;
        Ok(())
    }
}
