//! The embedded store: one redb file, for a single node with nothing else to run.
//!
//! Every change is one redb write transaction with the default `Immediate` durability,
//! so it is on disk when the call returns. A `Mutex` around the in-memory state (current
//! revision, next lease id, lease deadlines) serializes all operations, reads included:
//! reads first reap expired leases, so nobody ever sees a key whose lease has run out,
//! and a watch subscribes under the same lock, so it sees exactly the changes committed
//! after it. The calls block (fsync), so each runs on tokio's blocking pool.
//!
//! On disk (see [`tables`]): the keys with their revision, lease and value; for each lease
//! its keys; each lease's TTL; and the store revision and next lease id. Lease deadlines
//! live only in memory: reopening gives every lease a fresh TTL (why: [`super::lease`]).
//!
//! Expired leases are reaped lazily at the start of every operation and by a periodic
//! sweep ([`EmbeddedStore::spawn_sweeper`]), each lease in its own transaction and
//! revision, with a `Delete` event per key, as etcd does.
//!
//! Watches are a `tokio::sync::broadcast` channel of every event, filtered per watcher:
//! in-process notification is all a single node needs.
//!
//! An I/O error (a full disk, above all) leaves redb unusable until the database is
//! closed and opened again (every later call fails with "a previous I/O error
//! occurred"). So the database lives in the locked state as an `Option`: an I/O error
//! closes it, and the next call opens it again (redb then recovers the file to its last
//! commit), failing as long as that fails. The store recovers by itself once space is
//! back, without a daemon restart. The file is created with mode 0600: it holds every
//! pod's name, labels and netns.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use redb::{Database, ReadableDatabase, ReadableTable};
use tokio::sync::broadcast;

use self::tables::{Batch, Fail, KV, META_NEXT_LEASE, META_REVISION, Tables};
use super::error::{Op, StoreError};
use super::lease::{Clock, Leases, MonotonicClock, granted_ttl};
use super::{BoxFuture, KeyValue, LeaseId, Revision, Store, WatchEvent, WatchStream, check_key};

mod tables;

/// How many events a watcher may fall behind before it gets `WatchLost`.
const WATCH_BUFFER: usize = 4096;

/// The embedded (redb) store. Cheap to share behind an `Arc<dyn Store>`.
pub struct EmbeddedStore {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    events: broadcast::Sender<WatchEvent>,
}

/// What the lock protects: the database (closed after an I/O error until the next
/// call opens it again) and what is kept beside it in memory.
struct State {
    db: Option<Database>,
    revision: u64,
    next_lease: i64,
    leases: Leases,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // State is only updated after a successful commit, so it is consistent even if a
        // holder panicked.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in one write transaction at the next revision; commits it if it changed
    /// anything, then advances the revision (if there were events) and publishes them.
    fn write<T>(
        &self,
        state: &mut State,
        f: impl FnOnce(&mut Tables<'_>, u64, &mut Batch) -> Result<T, Fail>,
    ) -> Result<T, Fail> {
        let rev = state.revision + 1;
        let txn = self.db(state)?.begin_write()?;
        let mut batch = Batch::default();
        let out = {
            let mut tables = Tables::open(&txn)?;
            let out = f(&mut tables, rev, &mut batch)?;
            if !batch.events.is_empty() {
                tables.meta.insert(META_REVISION, rev)?;
            }
            out
        };
        if !batch.dirty {
            txn.abort()?;
            return Ok(out);
        }
        txn.commit()?;
        if !batch.events.is_empty() {
            state.revision = rev;
        }
        for event in batch.events {
            // No receivers is fine: nobody is watching.
            let _ = self.events.send(event);
        }
        Ok(out)
    }

    /// Deletes every expired lease and its keys, one transaction (and revision) each.
    fn reap_due(&self, state: &mut State) -> Result<(), Fail> {
        for id in state.leases.expired(self.clock.now()) {
            self.write(state, |t, rev, batch| t.revoke(id, rev, batch))?;
            state.leases.remove(id);
            tracing::debug!(lease = %id, "embedded store: lease expired, keys deleted");
        }
        Ok(())
    }

    fn require_lease(&self, state: &State, lease: Option<LeaseId>) -> Result<(), Fail> {
        match lease {
            Some(id) if !state.leases.is_alive(id, self.clock.now()) => {
                Err(Fail::LeaseNotFound(id))
            }
            _ => Ok(()),
        }
    }

    /// The open database, opening it again if an I/O error closed it.
    fn db<'s>(&self, state: &'s mut State) -> Result<&'s Database, Fail> {
        if state.db.is_none() {
            let db = create_private(&self.path)?;
            // A commit that failed late may have reached the disk after all.
            let on_disk = load(&db, self.clock.now())?;
            state.revision = state.revision.max(on_disk.revision);
            state.next_lease = state.next_lease.max(on_disk.next_lease);
            tracing::info!(path = %self.path.display(), "embedded store: opened the database again after an I/O error");
            state.db = Some(db);
        }
        state
            .db
            .as_ref()
            .ok_or_else(|| Fail::Corrupt("the database could not be opened".into()))
    }

    /// Closes the database after an I/O error, so that the next call opens it again.
    fn close_after(&self, state: &mut State, fail: &Fail) {
        if let Fail::Db(e) = fail
            && is_io(e)
            && state.db.take().is_some()
        {
            tracing::warn!(path = %self.path.display(), error = %e, "embedded store: closed the database after an I/O error; the next call opens it again");
        }
    }

    fn get(&self, state: &mut State, key: &str) -> Result<Option<KeyValue>, Fail> {
        let txn = self.db(state)?.begin_read()?;
        let kv = txn.open_table(KV)?;
        Ok(kv.get(key)?.map(|g| {
            let (rev, _, value) = g.value();
            KeyValue {
                key: key.to_owned(),
                value: value.to_vec(),
                revision: Revision(rev),
            }
        }))
    }

    fn list(&self, state: &mut State, prefix: &str) -> Result<Vec<KeyValue>, Fail> {
        let txn = self.db(state)?.begin_read()?;
        let kv = txn.open_table(KV)?;
        let mut out = Vec::new();
        for entry in kv.range(prefix..)? {
            let (k, v) = entry?;
            let key = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            let (rev, _, value) = v.value();
            out.push(KeyValue {
                key: key.to_owned(),
                value: value.to_vec(),
                revision: Revision(rev),
            });
        }
        Ok(out)
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the database file at `path`, with the real monotonic clock.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with_clock(path, Arc::new(MonotonicClock::new()))
    }

    /// Opens (or creates) the database file at `path`, measuring lease deadlines on
    /// `clock`. Every persisted lease restarts with its full TTL.
    pub fn open_with_clock(
        path: impl AsRef<Path>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let open_err = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
            path: path.clone(),
            source,
        };
        let opened = create_private(&path).and_then(|db| {
            let mut state = load(&db, clock.now())?;
            state.db = Some(db);
            Ok(state)
        });
        let state = opened.map_err(|f| match f {
            Fail::Db(e) => open_err(Box::new(e)),
            Fail::Corrupt(reason) => open_err(reason.into()),
            Fail::LeaseNotFound(id) => open_err(format!("lease {id} vanished").into()),
        })?;
        let (events, _) = broadcast::channel(WATCH_BUFFER);
        Ok(EmbeddedStore {
            shared: Arc::new(Shared {
                path,
                clock,
                state: Mutex::new(state),
                events,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Reaps expired leases every `every` on the current tokio runtime, until the store
    /// is dropped (the task holds only a weak reference).
    pub fn spawn_sweeper(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(shared) = weak.upgrade() else { break };
                let swept = tokio::task::spawn_blocking(move || {
                    let mut state = shared.lock();
                    let swept = shared.reap_due(&mut state);
                    if let Err(f) = &swept {
                        shared.close_after(&mut state, f);
                    }
                    swept
                })
                .await;
                match swept {
                    Ok(Ok(())) => {}
                    Ok(Err(f)) => {
                        let e = f.into_error(Op::Revoke, "expired leases".into());
                        tracing::warn!(error = %e, "embedded store: sweeping expired leases failed");
                    }
                    Err(_) => break,
                }
            }
        })
    }

    /// Runs `f` on the blocking pool with the lock held, after reaping expired leases.
    fn run<T: Send + 'static>(
        &self,
        op: Op,
        key: String,
        f: impl FnOnce(&Shared, &mut State) -> Result<T, Fail> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let joined = tokio::task::spawn_blocking(move || {
                let mut state = shared.lock();
                let result = shared
                    .reap_due(&mut state)
                    .and_then(|()| f(&shared, &mut state));
                if let Err(fail) = &result {
                    shared.close_after(&mut state, fail);
                }
                result
            })
            .await;
            match joined {
                Ok(result) => result.map_err(|f| f.into_error(op, key)),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => Err(StoreError::Shutdown { op, key }),
            }
        })
    }
}

/// Creates the tables if missing and loads the revision, next lease id and leases.
fn load(db: &Database, now: Duration) -> Result<State, Fail> {
    let txn = db.begin_write()?;
    let mut state = State {
        db: None,
        revision: 0,
        next_lease: 1,
        leases: Leases::new(),
    };
    {
        let tables = Tables::open(&txn)?;
        if let Some(rev) = tables.meta.get(META_REVISION)? {
            state.revision = rev.value();
        }
        if let Some(next) = tables.meta.get(META_NEXT_LEASE)? {
            state.next_lease = i64::try_from(next.value())
                .map_err(|_| Fail::Corrupt("next lease id out of range".into()))?;
        }
        for entry in tables.leases.iter()? {
            let (id, ttl) = entry?;
            state
                .leases
                .insert(LeaseId(id.value()), Duration::from_secs(ttl.value()), now);
        }
    }
    txn.commit()?;
    Ok(state)
}

/// Opens (or creates) the database file, made mode 0600 first: redb would create it
/// with the process's umask, readable by everybody.
fn create_private(path: &Path) -> Result<Database, Fail> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |e: std::io::Error| Fail::Db(redb::Error::Io(e));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    // A file an older version created keeps its mode otherwise.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(Database::create(path)?)
}

/// Whether redb failed on I/O (or because of an earlier I/O failure): then only closing
/// and opening the database again lets it work on.
fn is_io(e: &redb::Error) -> bool {
    matches!(e, redb::Error::Io(_) | redb::Error::PreviousIo)
}

fn lease_key(id: LeaseId) -> String {
    format!("lease {id}")
}

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

impl Store for EmbeddedStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>, StoreError>> {
        if let Err(e) = check_key(Op::Get, key) {
            return Box::pin(async { Err(e) });
        }
        let k = key.to_owned();
        self.run(Op::Get, key.to_owned(), move |s, state| s.get(state, &k))
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<KeyValue>, StoreError>> {
        let p = prefix.to_owned();
        self.run(Op::List, prefix.to_owned(), move |s, state| {
            s.list(state, &p)
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, Result<Revision, StoreError>> {
        if let Err(e) = check_key(Op::Put, key) {
            return Box::pin(async { Err(e) });
        }
        let k = key.to_owned();
        self.run(Op::Put, key.to_owned(), move |s, state| {
            s.require_lease(state, lease)?;
            s.write(state, |t, rev, batch| {
                t.put(&k, &value, lease, rev, batch)?;
                Ok(Revision(rev))
            })
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, Result<Option<Revision>, StoreError>> {
        if let Err(e) = check_key(Op::Create, key) {
            return Box::pin(async { Err(e) });
        }
        let k = key.to_owned();
        self.run(Op::Create, key.to_owned(), move |s, state| {
            s.require_lease(state, lease)?;
            s.write(state, |t, rev, batch| {
                if t.head(&k)?.is_some() {
                    return Ok(None);
                }
                t.put(&k, &value, lease, rev, batch)?;
                Ok(Some(Revision(rev)))
            })
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Revision,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, Result<Option<Revision>, StoreError>> {
        if let Err(e) = check_key(Op::CompareAndSwap, key) {
            return Box::pin(async { Err(e) });
        }
        let k = key.to_owned();
        self.run(Op::CompareAndSwap, key.to_owned(), move |s, state| {
            s.require_lease(state, lease)?;
            s.write(state, |t, rev, batch| {
                match t.head(&k)? {
                    Some((current, _)) if current == expected.0 => {}
                    _ => return Ok(None),
                }
                t.put(&k, &value, lease, rev, batch)?;
                Ok(Some(Revision(rev)))
            })
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        if let Err(e) = check_key(Op::Delete, key) {
            return Box::pin(async { Err(e) });
        }
        let k = key.to_owned();
        self.run(Op::Delete, key.to_owned(), move |s, state| {
            s.write(state, |t, rev, batch| t.delete(&k, rev, batch))
        })
    }

    fn delete_if<'a>(
        &'a self,
        key: &'a str,
        expected: Revision,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        if let Err(e) = check_key(Op::DeleteIf, key) {
            return Box::pin(async { Err(e) });
        }
        let k = key.to_owned();
        self.run(Op::DeleteIf, key.to_owned(), move |s, state| {
            s.write(state, |t, rev, batch| match t.head(&k)? {
                Some((current, _)) if current == expected.0 => t.delete(&k, rev, batch),
                _ => Ok(false),
            })
        })
    }

    fn grant(&self, ttl: Duration) -> BoxFuture<'_, Result<LeaseId, StoreError>> {
        let ttl = granted_ttl(ttl);
        self.run(Op::Grant, "new lease".into(), move |s, state| {
            let id = LeaseId(state.next_lease);
            s.write(state, |t, _, batch| {
                t.leases.insert(id.0, ttl.as_secs())?;
                // Ids are never reused, even after a revoke.
                let next = u64::try_from(id.0 + 1).unwrap_or(u64::MAX);
                t.meta.insert(META_NEXT_LEASE, next)?;
                batch.dirty = true;
                Ok(())
            })?;
            state.next_lease += 1;
            state.leases.insert(id, ttl, s.clock.now());
            Ok(id)
        })
    }

    fn keep_alive(&self, lease: LeaseId) -> BoxFuture<'_, Result<(), StoreError>> {
        // Deadlines are not persisted, so a keep-alive costs no disk write.
        self.run(Op::KeepAlive, lease_key(lease), move |s, state| {
            if state.leases.refresh(lease, s.clock.now()) {
                Ok(())
            } else {
                Err(Fail::LeaseNotFound(lease))
            }
        })
    }

    fn revoke(&self, lease: LeaseId) -> BoxFuture<'_, Result<(), StoreError>> {
        self.run(Op::Revoke, lease_key(lease), move |s, state| {
            if state.leases.contains(lease) {
                s.write(state, |t, rev, batch| t.revoke(lease, rev, batch))?;
                state.leases.remove(lease);
            }
            Ok(())
        })
    }

    fn watch<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<WatchStream, StoreError>> {
        let p = prefix.to_owned();
        let subscribed = self.run(Op::Watch, prefix.to_owned(), |s, _| {
            // Under the lock: no commit can fall between "now" and the subscription.
            Ok(s.events.subscribe())
        });
        Box::pin(async move {
            let rx = subscribed.await?;
            Ok(watch_stream(rx, p))
        })
    }
}

/// The events under `prefix` from `rx`; ends with `WatchLost` if the receiver lagged.
pub(crate) fn watch_stream(rx: broadcast::Receiver<WatchEvent>, prefix: String) -> WatchStream {
    futures::stream::unfold(Some((rx, prefix)), |state| async move {
        let (mut rx, prefix) = state?;
        loop {
            match rx.recv().await {
                Ok(event) if event.key().starts_with(&prefix) => {
                    return Some((Ok(event), Some((rx, prefix))));
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let lost = StoreError::WatchLost {
                        reason: format!("fell {missed} events behind"),
                        prefix,
                    };
                    return Some((Err(lost), None));
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests;
