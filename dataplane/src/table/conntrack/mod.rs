//! Connection tracking: "replies of allowed flows pass".
//!
//! A packet that policy allowed creates a flow ([`Conntrack::insert`]); later
//! packets of that flow, in either direction, find it ([`Conntrack::observe`])
//! and skip policy. Every worker thread shares one [`Conntrack`].
//!
//! # Contract
//!
//! - **Bounded.** All memory is allocated by [`Conntrack::new`]: a power of two
//!   of buckets of [`WAYS`] slots. An insert into a full bucket evicts the least
//!   recently seen live flow of that bucket (counted in [`Conntrack::evictions`]).
//!   Four ways: a miss (every new flow's first packet) reads four cache lines,
//!   and LRU choice among four keeps eviction close to table-wide LRU.
//! - **Time is passed in** as `now_ms`, milliseconds from any monotonic origin;
//!   the table never reads a clock. A flow is live while
//!   `now_ms < last_seen + timeout(state)`: it is gone exactly at the boundary.
//!   `last_seen` is only rewritten when it is [`REFRESH_MS`] behind or the state
//!   changes (fewer cross-core cache-line writes), so a flow may expire up to
//!   1 s before `last packet + timeout`.
//! - **Readers never block.** `observe`/`lookup` never wait for a writer: a slot
//!   that stays torn after a few retries reads as a miss, which is safe (the
//!   packet goes through policy again, and `insert` then finds the flow).
//! - **Both directions, one slot.** The key is canonicalized by ordering the
//!   two `(address, port)` endpoints; the slot records which one originated the
//!   flow, which gives each hit its [`Direction`]. IPv4 and IPv6 keys carry their
//!   family, so they never collide.
//! - **Keyed hash.** Buckets are chosen by `ahash` keyed with the caller's
//!   [`ConntrackConfig::seed`]: without the seed a pod cannot aim its flows at
//!   one bucket to evict others'.
//!
//! # Slots and memory ordering
//!
//! A slot is one 64-byte line of eight `AtomicU64`: a sequence word, four
//! address words, a key word (ports, protocol, family, plus the state and
//! originator bit), last-seen and tag/creation. Family 0 marks an empty slot.
//!
//! It is a seqlock over atomics (H.-J. Boehm, "Can seqlocks get along with
//! programming language memory models?", MSPC 2012):
//!
//! - Writer: `CAS(seq, s → s+1, Acquire)` from the even `s` it read, then
//!   `fence(Release)`, relaxed data stores, `store(seq, s+2, Release)`.
//! - Reader: `s1 = load(seq, Acquire)` (retry if odd), relaxed data loads,
//!   `fence(Acquire)`, `s2 = load(seq, Relaxed)`; the copy is good iff `s1 == s2`.
//!
//! If a reader's data load sees a store of a write section, the writer's
//! release fence synchronizes with the reader's acquire fence, so the odd
//! sequence (stored before that fence) happens-before the reader's second
//! sequence load, which therefore sees it or later: `s2 != s1`, copy rejected.
//! If `s1` is the even value stored by a section's unlock (Release, read with
//! Acquire), every data store of that section and earlier ones are visible.
//! So an accepted copy is exactly the slot between two write sections: no torn
//! keys, no tag of another flow. All accesses are atomic, so there is no data
//! race and no `unsafe`.
//!
//! Because a writer locks from the sequence it validated, a successful CAS
//! also proves the slot still holds what it read (the 64-bit sequence never
//! wraps in practice): refresh, free and evict decisions are made on the exact
//! contents they change. A writer that loses the CAS re-reads and retries a
//! few times, then gives up (the hot path drops a refresh, never a packet).
//!
//! Inserts also take a per-bucket try-lock (a byte array beside the slots,
//! never touched by readers). It serializes "is the flow there? else take a
//! slot", so concurrent inserts of one flow never create two entries. The
//! design brief only had slot locks; without this, two workers seeing the first
//! packets of one flow could both insert it and later packets would update one
//! copy while lookups might find the other. Removal, sweep and retain only free
//! slots, so they need no bucket lock.
//!
//! Counters (occupied slots, evictions) are striped across 16 cache lines by
//! bucket and summed on read. Each change is made by the writer that turned a
//! slot empty↔occupied under its lock, so [`Conntrack::len`] is exact when
//! quiescent and never exceeds the capacity.
//!
//! # States
//!
//! See [`FlowState`] and [`Timeouts`] (Cilium's defaults). TCP tracking is
//! loose: no sequence windows, and a flow first seen with an ACK is picked up
//! as established. A fresh SYN on a closing or closed flow ends it and is a
//! miss: the new connection on that 5-tuple is judged by policy again and
//! gets its own tag, as the kernel ends a flow in TIME_WAIT. ICMP echo uses
//! the identifier as both ports (the caller's job) and the ICMP timeout.

mod key;
mod slot;
mod state;
mod table;

pub use key::FlowKey;
pub use state::{Direction, FlowState, TcpFlags, Timeouts};
pub use table::{Conntrack, ConntrackConfig, FlowEntry, Hit, InsertOutcome, REFRESH_MS, WAYS};

#[cfg(test)]
mod concurrent_tests;
#[cfg(test)]
mod tests;
