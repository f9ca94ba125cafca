//! Where a worker waits for readable sources (tap queues, underlay sockets)
//! and which it reports by token: its epoll set, or its own io_uring with a
//! multishot poll per source.
//!
//! A multishot poll reports a source when it becomes readable, not while it
//! stays readable: a source the worker left unread (a full batch, for
//! fairness) is reported again by the next wait, which then does not sleep.
//!
//! With io_uring the worker follows the published port handles itself: a
//! pod's queue gets a poll when it appears and its poll is cancelled when it
//! goes. The worker keeps the pod's handles until the cancelled poll's last
//! completion arrived, so the kernel never holds a poll on a queue the
//! control side already closed (and a reused fd number is never polled by
//! mistake: polls hold the file, and tokens are never reused).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use super::shared::{PortIo, TapHandles};
use crate::table::nexthop::PortId;
use tweed_sys::epoll::Epoll;
use tweed_sys::eventfd::EventFd;
use tweed_sys::uring::{Completion, Ring};

/// Epoll token of the VXLAN socket.
pub const TOKEN_VXLAN: u64 = u64::MAX;
/// Epoll token of the flannel-UDP socket.
pub const TOKEN_UDP: u64 = u64::MAX - 1;
/// Epoll token of the host port's queue.
pub const TOKEN_HOST: u64 = u64::MAX - 2;
/// io_uring token of the worker's wake-up eventfd.
pub const TOKEN_WAKE: u64 = u64::MAX - 3;

/// Epoll token of a pod port's queue.
pub fn port_token(port: PortId) -> u64 {
    u64::from(port.0)
}

/// Reads of a source's first batch; later batches follow [`next_depth`].
const FIRST_DEPTH: usize = 2;

/// A worker's sources.
#[derive(Debug)]
pub enum Sources {
    /// The worker's epoll set (level-triggered; the control side adds pods)
    /// and a buffer for its events.
    Epoll(Arc<Epoll>, Vec<(u64, bool)>),
    /// The worker's ring.
    Uring(Box<UringSources>),
}

impl Sources {
    /// Waits up to `timeout` and replaces `events` with the tokens of the
    /// sources to read, each once.
    pub fn wait(
        &mut self,
        ports: &Arc<PortIo>,
        events: &mut Vec<u64>,
        timeout: Duration,
    ) -> io::Result<()> {
        events.clear();
        match self {
            Sources::Epoll(epoll, raw) => {
                epoll.wait(raw, timeout.as_millis() as i32)?;
                events.extend(raw.iter().map(|&(token, _)| token));
                Ok(())
            }
            Sources::Uring(uring) => uring.wait(ports, events, timeout),
        }
    }

    /// The ring, when the worker runs io_uring.
    pub fn ring(&mut self) -> Option<&mut UringSources> {
        match self {
            Sources::Uring(uring) => Some(uring),
            Sources::Epoll(..) => None,
        }
    }
}

/// What a poll's registration keeps open while the poll may be armed.
#[derive(Debug)]
enum Held {
    /// A duplicate of a source the worker owns for its whole life.
    Fd(OwnedFd),
    /// A pod's queues (the worker polls its own).
    Tap(Arc<TapHandles>),
}

#[derive(Debug)]
struct Registration {
    token: u64,
    held: Held,
    /// Its poll was cancelled; it goes with the poll's last completion.
    cancelling: bool,
}

/// A worker's io_uring readiness: a multishot poll per source.
#[derive(Debug)]
pub struct UringSources {
    ring: Ring,
    /// The worker's queue index on every tap.
    index: usize,
    /// The control side wakes the worker through it after a port change.
    wake: Arc<EventFd>,
    wake_token: u64,
    /// Registrations by poll id (the ring's `user_data`, never reused).
    polls: HashMap<u64, Registration>,
    /// The live (not cancelling) poll id of each token.
    live: HashMap<u64, u64>,
    next_id: u64,
    /// The port handles the polls follow.
    seen: Option<Arc<PortIo>>,
    /// Sources left readable by the last round.
    ready: Vec<u64>,
    /// Reads of the next batch per token.
    depth: HashMap<u64, usize>,
    completions: Vec<Completion>,
    /// Sources whose polls the worker arms on its first wait (see
    /// [`UringSources::new`]).
    unarmed: Vec<(u64, Held)>,
}

impl UringSources {
    /// A ring for worker `index` polling `fixed` (the underlay sockets and
    /// the host queue, by token, duplicated here) and `wake`, reported as
    /// `wake_token` and consumed here.
    ///
    /// The polls are armed by the worker's first wait, on its own thread: a
    /// request's completion work runs on the thread that submitted it, so a
    /// poll armed here (on the thread that starts the workers) would have
    /// that thread woken for every datagram the worker is told of — measured
    /// as 4% of the CPU and a cross-thread wake-up in every overlay round
    /// trip.
    pub fn new(
        ring: Ring,
        index: usize,
        fixed: &[(BorrowedFd<'_>, u64)],
        wake: Arc<EventFd>,
        wake_token: u64,
    ) -> io::Result<Self> {
        let mut sources = UringSources {
            ring,
            index,
            wake: wake.clone(),
            wake_token,
            polls: HashMap::new(),
            live: HashMap::new(),
            next_id: 1,
            seen: None,
            ready: Vec::new(),
            depth: HashMap::new(),
            completions: Vec::new(),
            unarmed: Vec::with_capacity(fixed.len() + 1),
        };
        sources
            .unarmed
            .push((wake_token, Held::Fd(wake.as_fd().try_clone_to_owned()?)));
        for (fd, token) in fixed {
            sources
                .unarmed
                .push((*token, Held::Fd(fd.try_clone_to_owned()?)));
        }
        Ok(sources)
    }

    /// Arms the polls of the sources [`UringSources::new`] was given (on
    /// the calling thread, the worker's). One that fails stays unarmed for
    /// the next wait to try again.
    fn arm_fixed(&mut self) -> io::Result<()> {
        while let Some((token, held)) = self.unarmed.pop() {
            if let Err((e, held)) = self.try_register(token, held) {
                self.unarmed.push((token, held));
                return Err(e);
            }
        }
        Ok(())
    }

    /// The ring, for the worker's read and write batches.
    pub fn ring(&mut self) -> &mut Ring {
        &mut self.ring
    }

    /// Reads to submit for `token`'s next batch.
    pub fn depth(&self, token: u64) -> usize {
        self.depth.get(&token).copied().unwrap_or(FIRST_DEPTH)
    }

    /// Records a batch of `asked` reads of `token` that got `got` frames:
    /// a full batch leaves the source to be read again without waiting.
    pub fn read(&mut self, token: u64, asked: usize, got: usize) {
        self.depth.insert(token, next_depth(got));
        if got >= asked {
            self.left_readable(token);
        }
    }

    /// Marks `token` as still readable (the worker stopped early).
    pub fn left_readable(&mut self, token: u64) {
        if !self.ready.contains(&token) {
            self.ready.push(token);
        }
    }

    fn wait(
        &mut self,
        ports: &Arc<PortIo>,
        events: &mut Vec<u64>,
        timeout: Duration,
    ) -> io::Result<()> {
        if !self.unarmed.is_empty() {
            self.arm_fixed()?;
        }
        if !self.seen.as_ref().is_some_and(|s| Arc::ptr_eq(s, ports)) {
            self.follow(ports);
        }
        let timeout = if self.ready.is_empty() {
            timeout
        } else {
            Duration::ZERO
        };
        self.completions.clear();
        let mut completions = std::mem::take(&mut self.completions);
        let waited = self.ring.wait(timeout, &mut completions);
        for c in &completions {
            self.complete(*c, events);
        }
        self.completions = completions;
        for token in self.ready.drain(..) {
            if !events.contains(&token) {
                events.push(token);
            }
        }
        waited
    }

    /// Handles one poll completion.
    fn complete(&mut self, c: Completion, events: &mut Vec<u64>) {
        let Some(reg) = self.polls.get(&c.token) else {
            return;
        };
        let token = reg.token;
        if c.more {
            if !reg.cancelling {
                self.report(token, events);
            }
            return;
        }
        // The poll's last completion.
        let Some(reg) = self.polls.remove(&c.token) else {
            return;
        };
        if reg.cancelling {
            return;
        }
        self.live.remove(&token);
        if c.result < 0 {
            tracing::warn!(token, error = %io::Error::from_raw_os_error(-c.result), "a readiness poll failed; the source is no longer watched");
            return;
        }
        // The kernel ended the multishot (it may): arm it again.
        self.report(token, events);
        if let Err(e) = self.register(token, reg.held) {
            tracing::warn!(token, error = %e, "could not re-arm a readiness poll");
        }
    }

    fn report(&mut self, token: u64, events: &mut Vec<u64>) {
        if token == self.wake_token {
            self.wake.drain();
        } else if !events.contains(&token) {
            events.push(token);
        }
    }

    /// Polls the pods' queues that appeared and cancels the polls of those
    /// that went (or were replaced by new queues under the same id).
    fn follow(&mut self, ports: &Arc<PortIo>) {
        let mut gone: Vec<u64> = Vec::new();
        for (&token, id) in &self.live {
            let Some(Registration {
                held: Held::Tap(handles),
                ..
            }) = self.polls.get(id)
            else {
                continue;
            };
            let current = u32::try_from(token)
                .ok()
                .and_then(|port| ports.pods.get(&PortId(port)));
            if !current.is_some_and(|c| Arc::ptr_eq(c, handles)) {
                gone.push(token);
            }
        }
        for token in gone {
            if let Some(id) = self.live.remove(&token) {
                if let Some(reg) = self.polls.get_mut(&id) {
                    reg.cancelling = true;
                }
                if let Err(e) = self.ring.cancel(id) {
                    tracing::warn!(token, error = %e, "could not cancel a readiness poll");
                }
            }
            self.depth.remove(&token);
            self.ready.retain(|&t| t != token);
        }
        for (&port, handles) in &ports.pods {
            let token = port_token(port);
            if self.live.contains_key(&token) || handles.queues.get(self.index).is_none() {
                continue;
            }
            if let Err(e) = self.register(token, Held::Tap(handles.clone())) {
                tracing::warn!(port = port.0, error = %e, "could not watch a pod's tap queue");
            }
        }
        self.seen = Some(ports.clone());
    }

    /// Arms a poll for a source under a fresh id.
    fn register(&mut self, token: u64, held: Held) -> io::Result<()> {
        self.try_register(token, held).map_err(|(e, _)| e)
    }

    /// [`Self::register`], handing `held` back when the poll could not be
    /// armed.
    fn try_register(&mut self, token: u64, held: Held) -> Result<(), (io::Error, Held)> {
        let id = self.next_id;
        let fd = match &held {
            Held::Fd(fd) => fd.as_fd(),
            Held::Tap(handles) => match handles.queues.get(self.index) {
                Some(queue) => queue.as_fd(),
                None => return Ok(()),
            },
        };
        if let Err(e) = self.ring.poll(fd, id) {
            return Err((e, held));
        }
        self.next_id += 1;
        self.polls.insert(
            id,
            Registration {
                token,
                held,
                cancelling: false,
            },
        );
        self.live.insert(token, id);
        Ok(())
    }
}

/// Reads to submit next for a source whose last batch got `got` frames:
/// twice that (a burst grows the batch quickly; a lone frame costs one empty
/// read), within 2..=[`tweed_sys::uring::MAX_BATCH`].
pub fn next_depth(got: usize) -> usize {
    (got * 2).clamp(FIRST_DEPTH, tweed_sys::uring::MAX_BATCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_follows_what_came() {
        assert_eq!(next_depth(0), 2);
        assert_eq!(next_depth(1), 2);
        assert_eq!(next_depth(2), 4);
        assert_eq!(next_depth(4), 8);
        assert_eq!(next_depth(64), 64);
        assert_eq!(next_depth(3), 6);
    }
}
