//! io_uring for a worker's tap I/O: multishot readiness polls on fds, and
//! batches of reads and writes submitted with one `io_uring_enter`.
//!
//! The safe API keeps every buffer the kernel may touch borrowed for as long
//! as the kernel may touch it: [`Ring::read_batch`] and [`Ring::write_batch`]
//! return only once every operation they submitted has completed (or was
//! cancelled and its cancellation completed). Polls take no buffer; the
//! kernel holds its own reference to a polled file, so closing the fd while
//! its poll is armed is safe too (the poll keeps the file, not the number).
//!
//! Reads must complete inline (`EAGAIN` when the queue is empty), never be
//! parked until data comes: a tap that supports `IOCB_NOWAIT` (recent
//! kernels) would otherwise have io_uring arm an internal poll for a read of
//! an empty queue even with `O_NONBLOCK`, so reads carry `RWF_NOWAIT`; where
//! the file refuses that flag (`EOPNOTSUPP`, older taps) io_uring treats
//! `O_NONBLOCK` as "do not wait" and the flag is dropped. If a read is ever
//! parked anyway, the batch cancels what has not completed after
//! [`BATCH_PATIENCE`].
//!
//! Tokens (`user_data`) of polls are the caller's; the top bit is reserved
//! for the batches' own operations.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use io_uring::{IoUring, cqueue, opcode, squeue, types};

/// Operations of one batch at most (reads or writes).
pub const MAX_BATCH: usize = 64;
/// Submission queue entries.
const SQ_ENTRIES: u32 = 256;
/// Completion queue entries: multishot polls may post many between waits.
const CQ_ENTRIES: u32 = 4096;
/// How long a batch waits for operations that did not complete inline
/// before cancelling them.
pub const BATCH_PATIENCE: Duration = Duration::from_millis(10);

/// Tokens with this bit are the ring's own.
const INTERNAL: u64 = 1 << 63;
/// A read or write of the current batch: `BATCH_OP | index`.
const BATCH_OP: u64 = INTERNAL | (1 << 62);
/// A cancellation's own completion.
const CANCEL_OP: u64 = INTERNAL | (1 << 61);

/// A completion of a poll: its token, the poll mask or a negative errno, and
/// whether the poll stays armed (`IORING_CQE_F_MORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// The token the poll was armed with.
    pub token: u64,
    /// The events (`POLLIN`, ...) or `-errno`.
    pub result: i32,
    /// False when this was the poll's last completion (cancelled, failed or
    /// the kernel ended the multishot).
    pub more: bool,
}

/// Why io_uring cannot serve as the tap I/O back end.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    /// `io_uring_setup` failed (old kernel, seccomp, `io_uring_disabled`).
    #[error("io_uring_setup: {0}")]
    Setup(#[source] io::Error),
    /// The probe could not be registered.
    #[error("probe the supported operations: {0}")]
    Probe(#[source] io::Error),
    /// An operation the worker needs is not supported.
    #[error("operation {0} not supported by this kernel")]
    Missing(&'static str),
    /// Waiting with a timeout (`IORING_FEAT_EXT_ARG`, 5.11) is not supported.
    #[error("waiting with a timeout (IORING_FEAT_EXT_ARG) not supported by this kernel")]
    NoExtArg,
}

/// One worker's ring.
pub struct Ring {
    ring: IoUring,
    /// Poll completions reaped while a batch waited.
    stash: Vec<Completion>,
    /// Results of the batch in progress, by index.
    results: Vec<Option<i32>>,
    /// `RWF_NOWAIT` while the files read support it.
    read_flags: i32,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("fd", &self.ring.as_raw_fd())
            .field("stashed", &self.stash.len())
            .finish()
    }
}

impl Ring {
    /// Sets up a ring and checks that the kernel supports what the worker
    /// uses: multishot poll, read, writev, cancel, waits with a timeout.
    pub fn new() -> Result<Self, Unavailable> {
        let mut builder = IoUring::builder();
        // Completions wait as task work until the worker enters the kernel
        // (it is not interrupted for them); the flag tells a wait that does
        // not sleep when entering is needed.
        builder
            .setup_cqsize(CQ_ENTRIES)
            .setup_coop_taskrun()
            .setup_taskrun_flag();
        let ring = match builder.build(SQ_ENTRIES) {
            Ok(ring) => ring,
            // Before 5.19 the cooperative task running flags are unknown.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => IoUring::builder()
                .setup_cqsize(CQ_ENTRIES)
                .build(SQ_ENTRIES)
                .map_err(Unavailable::Setup)?,
            Err(e) => return Err(Unavailable::Setup(e)),
        };
        if !ring.params().is_feature_ext_arg() {
            return Err(Unavailable::NoExtArg);
        }
        let mut probe = io_uring::Probe::new();
        ring.submitter()
            .register_probe(&mut probe)
            .map_err(Unavailable::Probe)?;
        for (code, name) in [
            (opcode::PollAdd::CODE, "POLL_ADD"),
            (opcode::Read::CODE, "READ"),
            (opcode::Writev::CODE, "WRITEV"),
            (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
        ] {
            if !probe.is_supported(code) {
                return Err(Unavailable::Missing(name));
            }
        }
        Ok(Ring {
            ring,
            stash: Vec::new(),
            results: Vec::with_capacity(MAX_BATCH),
            read_flags: libc::RWF_NOWAIT,
        })
    }

    /// Arms a multishot poll for readability of `fd`, reported with `token`
    /// (its top bit must be clear) until cancelled. Submitted at once, so the
    /// fd only needs to be open during this call.
    pub fn poll(&mut self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        if token & INTERNAL != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "poll token uses the reserved top bit",
            ));
        }
        let entry = opcode::PollAdd::new(types::Fd(fd.as_raw_fd()), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(token);
        self.push(&entry)?;
        self.submit_all()
    }

    /// Cancels the poll armed with `token`; its last completion (without
    /// `more`) follows in a later [`Ring::wait`].
    pub fn cancel(&mut self, token: u64) -> io::Result<()> {
        let entry = opcode::AsyncCancel::new(token).build().user_data(CANCEL_OP);
        self.push(&entry)?;
        self.submit_all()
    }

    /// Waits up to `timeout` (zero: do not sleep) for poll completions and
    /// appends them to `out`, with those reaped while batches waited.
    pub fn wait(&mut self, timeout: Duration, out: &mut Vec<Completion>) -> io::Result<()> {
        out.append(&mut self.stash);
        if timeout.is_zero() {
            // A look only: enter the kernel just when completions wait there
            // as task work (a busy-polling worker mostly does not).
            if self.ring.submission().taskrun() {
                match self.ring.submitter().submit_and_wait(0) {
                    Ok(_) => {}
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
                    Err(e) => return Err(e),
                }
            }
        } else if out.is_empty() {
            let ts = types::Timespec::from(timeout);
            let args = types::SubmitArgs::new().timespec(&ts);
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        self.reap(out);
        Ok(())
    }

    /// Reads into each buffer of `bufs` (at most [`MAX_BATCH`]) from `fd`,
    /// all submitted at once; `results` gets one entry per buffer: the bytes
    /// read or `-errno` (`-EAGAIN`: nothing there). Returns once the kernel
    /// is done with every buffer.
    pub fn read_batch<'a>(
        &mut self,
        fd: BorrowedFd<'_>,
        bufs: impl Iterator<Item = &'a mut [u8]>,
        results: &mut Vec<i32>,
    ) -> io::Result<()> {
        results.clear();
        self.results.clear();
        for (i, buf) in bufs.take(MAX_BATCH).enumerate() {
            let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
            let entry = opcode::Read::new(types::Fd(fd.as_raw_fd()), buf.as_mut_ptr(), len)
                .rw_flags(self.read_flags)
                .build()
                .user_data(BATCH_OP | i as u64);
            // SAFETY: the SQ has room for MAX_BATCH entries once `push`
            // submitted what was queued; `buf` stays borrowed (the iterator
            // hands out `&'a mut` that live past this call) and `run_batch`
            // below returns only after this read completed, so the kernel
            // never writes to it after the borrow ends.
            if let Err(e) = unsafe { self.push_unchecked(&entry) } {
                // Nothing of this batch was submitted yet: the queued
                // entries are submitted and waited for below anyway.
                tracing::debug!(error = %e, "io_uring submission queue full");
                break;
            }
            self.results.push(None);
        }
        self.run_batch();
        results.extend(self.results.iter().map(|r| r.unwrap_or(-libc::ECANCELED)));
        if self.read_flags != 0 && results.first() == Some(&-libc::EOPNOTSUPP) {
            // The file cannot do RWF_NOWAIT: then O_NONBLOCK alone makes
            // io_uring answer EAGAIN. The next batch reads without it.
            self.read_flags = 0;
        }
        Ok(())
    }

    /// Writes each buffer of `writes` to its fd (at most [`MAX_BATCH`]), all
    /// submitted at once; `results` gets the bytes written or `-errno` per
    /// entry. Returns once the kernel is done with every buffer.
    pub fn write_each<'a>(
        &mut self,
        writes: impl Iterator<Item = (BorrowedFd<'a>, &'a [u8])>,
        results: &mut Vec<i32>,
    ) -> io::Result<()> {
        results.clear();
        self.results.clear();
        for (i, (fd, buf)) in writes.take(MAX_BATCH).enumerate() {
            let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
            let entry = opcode::Write::new(types::Fd(fd.as_raw_fd()), buf.as_ptr(), len)
                .build()
                .user_data(BATCH_OP | i as u64);
            // SAFETY: `buf` is borrowed for 'a, past this call, and
            // `run_batch` returns only after this write completed, so the
            // kernel never reads it later.
            if let Err(e) = unsafe { self.push_unchecked(&entry) } {
                tracing::debug!(error = %e, "io_uring submission queue full");
                break;
            }
            self.results.push(None);
        }
        self.run_batch();
        results.extend(self.results.iter().map(|r| r.unwrap_or(-libc::ECANCELED)));
        Ok(())
    }

    /// Writes each entry of `writes` (a fd and the slices of one frame, at
    /// most [`MAX_BATCH`] entries), all submitted at once; `results` gets the
    /// bytes written or `-errno` per entry. Returns once the kernel is done
    /// with every slice.
    pub fn write_batch(
        &mut self,
        writes: &[(BorrowedFd<'_>, &[IoSlice<'_>])],
        results: &mut Vec<i32>,
    ) -> io::Result<()> {
        results.clear();
        self.results.clear();
        for (i, (fd, slices)) in writes.iter().take(MAX_BATCH).enumerate() {
            let count = u32::try_from(slices.len()).unwrap_or(u32::MAX);
            // `IoSlice` is ABI-compatible with `struct iovec` on Unix.
            let iov = slices.as_ptr().cast::<libc::iovec>();
            let entry = opcode::Writev::new(types::Fd(fd.as_raw_fd()), iov, count)
                .build()
                .user_data(BATCH_OP | i as u64);
            // SAFETY: `slices` and the memory they point to are borrowed
            // for the whole call, and `run_batch` returns only after this
            // write completed, so the kernel never reads them later.
            if let Err(e) = unsafe { self.push_unchecked(&entry) } {
                tracing::debug!(error = %e, "io_uring submission queue full");
                break;
            }
            self.results.push(None);
        }
        self.run_batch();
        results.extend(self.results.iter().map(|r| r.unwrap_or(-libc::ECANCELED)));
        Ok(())
    }

    /// Submits the queued batch and waits until every one of its operations
    /// completed: first up to [`BATCH_PATIENCE`], then it cancels the rest
    /// and waits for them. It never returns with an operation in flight (the
    /// batch's buffers are borrowed only until it returns): errors of
    /// `io_uring_enter` are retried, and one that would leave a submitted
    /// buffer in the kernel's hands aborts the process.
    fn run_batch(&mut self) {
        let mut cancelled = false;
        let mut idle_rounds = 0u32;
        loop {
            let mut out = std::mem::take(&mut self.stash);
            self.reap(&mut out);
            self.stash = out;
            let pending = self.results.iter().filter(|r| r.is_none()).count();
            if pending == 0 && self.ring.submission().is_empty() {
                return;
            }
            let ts = types::Timespec::from(BATCH_PATIENCE);
            let args = types::SubmitArgs::new().timespec(&ts);
            let entered = if cancelled {
                self.ring.submitter().submit_and_wait(pending)
            } else {
                self.ring.submitter().submit_with_args(pending, &args)
            };
            match entered {
                Ok(_) => idle_rounds = 0,
                Err(e) if e.raw_os_error() == Some(libc::ETIME) && !cancelled => {
                    self.cancel_pending();
                    cancelled = true;
                }
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY | libc::ETIME)
                    ) =>
                {
                    idle_rounds += 1;
                    if idle_rounds > 1000 && !cancelled {
                        self.cancel_pending();
                        cancelled = true;
                    }
                }
                Err(e) => {
                    // The kernel may hold pointers into borrowed buffers
                    // and we cannot tell it to stop: unwinding would free
                    // them under its feet.
                    tracing::error!(error = %e, "io_uring_enter failed with a batch in flight");
                    std::process::abort();
                }
            }
        }
    }

    /// Cancels the batch's operations that have not completed.
    fn cancel_pending(&mut self) {
        let pending: Vec<u64> = (0..self.results.len())
            .filter(|&i| self.results[i].is_none())
            .map(|i| BATCH_OP | i as u64)
            .collect();
        for user_data in pending {
            let entry = opcode::AsyncCancel::new(user_data)
                .build()
                .user_data(CANCEL_OP);
            // Cancellations take no buffer; a full queue is submitted first.
            let _ = self.push(&entry);
        }
    }

    /// Moves every completion from the completion queue: the batch's into
    /// `self.results`, polls' into `out`, cancellations' nowhere.
    fn reap(&mut self, out: &mut Vec<Completion>) {
        for cqe in self.ring.completion() {
            let token = cqe.user_data();
            if token & INTERNAL == 0 {
                out.push(Completion {
                    token,
                    result: cqe.result(),
                    more: cqueue::more(cqe.flags()),
                });
            } else if token & BATCH_OP == BATCH_OP {
                let i = (token & 0xffff) as usize;
                if let Some(slot) = self.results.get_mut(i) {
                    *slot = Some(cqe.result());
                }
            }
        }
    }

    /// Queues an entry that references no memory, submitting first if the
    /// queue is full.
    fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        // SAFETY: the entries pushed through here (poll, cancel) carry no
        // pointer into memory.
        unsafe { self.push_unchecked(entry) }
    }

    /// Queues an entry, submitting what is queued first if the queue is
    /// full.
    ///
    /// # Safety
    /// Memory the entry points to must stay valid until it completes.
    unsafe fn push_unchecked(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        for _ in 0..2 {
            // SAFETY: the caller keeps what `entry` points to valid until
            // it completes.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return Ok(());
            }
            self.submit_all()?;
        }
        Err(io::Error::other("io_uring submission queue stays full"))
    }

    /// Submits everything queued, retrying interrupted submissions.
    fn submit_all(&mut self) -> io::Result<()> {
        while !self.ring.submission().is_empty() {
            match self.ring.submit() {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN)) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    // The completion queue overflowed: make room.
                    let mut out = std::mem::take(&mut self.stash);
                    self.reap(&mut out);
                    self.stash = out;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixDatagram;

    fn ring() -> Option<Ring> {
        match Ring::new() {
            Ok(ring) => Some(ring),
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "io_uring unavailable under CI: {e}"
                );
                eprintln!("skipping: io_uring unavailable: {e}");
                None
            }
        }
    }

    #[test]
    fn a_poll_reports_readiness_and_a_batch_reads_what_is_there() {
        let Some(mut ring) = ring() else { return };
        let (a, b) = UnixDatagram::pair().expect("pair");
        b.set_nonblocking(true).expect("nonblocking");
        ring.poll(b.as_fd(), 7).expect("poll");
        let mut out = Vec::new();
        ring.wait(Duration::ZERO, &mut out).expect("wait");
        assert!(out.is_empty(), "nothing to read yet: {out:?}");
        a.send(b"one").expect("send");
        a.send(b"two").expect("send");
        ring.wait(Duration::from_secs(5), &mut out).expect("wait");
        assert!(out.iter().any(|c| c.token == 7 && c.more), "{out:?}");

        let mut bufs = vec![vec![0u8; 16]; 3];
        let mut results = Vec::new();
        ring.read_batch(
            b.as_fd(),
            bufs.iter_mut().map(|b| b.as_mut_slice()),
            &mut results,
        )
        .expect("read");
        // A socket (unlike a tap) may park the third read: then it is cancelled.
        assert_eq!(results[..2], [3, 3]);
        assert!(
            results[2] == -libc::EAGAIN || results[2] == -libc::ECANCELED,
            "{results:?}"
        );
        assert_eq!(&bufs[0][..3], b"one");
        assert_eq!(&bufs[1][..3], b"two");

        ring.cancel(7).expect("cancel");
        out.clear();
        for _ in 0..100 {
            ring.wait(Duration::from_millis(50), &mut out)
                .expect("wait");
            if out.iter().any(|c| c.token == 7 && !c.more) {
                return;
            }
        }
        panic!("no last completion after the cancel: {out:?}");
    }

    #[test]
    fn a_write_batch_gathers_slices_per_entry() {
        let Some(mut ring) = ring() else { return };
        let (a, b) = UnixDatagram::pair().expect("pair");
        let head = [1u8, 2];
        let tail = [3u8, 4, 5];
        let first = [IoSlice::new(&head), IoSlice::new(&tail)];
        let second = [IoSlice::new(&tail)];
        let mut results = Vec::new();
        ring.write_batch(
            &[(a.as_fd(), &first[..]), (a.as_fd(), &second[..])],
            &mut results,
        )
        .expect("write");
        assert_eq!(results, vec![5, 3]);
        let mut buf = [0u8; 8];
        assert_eq!(b.recv(&mut buf).expect("recv"), 5);
        assert_eq!(&buf[..5], &[1, 2, 3, 4, 5]);
        assert_eq!(b.recv(&mut buf).expect("recv"), 3);

        let frames: [&[u8]; 2] = [&head, &tail];
        ring.write_each(frames.iter().map(|f| (a.as_fd(), *f)), &mut results)
            .expect("write");
        assert_eq!(results, vec![2, 3]);
        assert_eq!(b.recv(&mut buf).expect("recv"), 2);
        assert_eq!(b.recv(&mut buf).expect("recv"), 3);
    }

    /// The worker relies on it: a read of an empty non-blocking tap answers
    /// `EAGAIN` at once instead of being parked (needs root: a tap in a
    /// network namespace of its own thread).
    #[test]
    fn a_read_of_an_empty_tap_answers_eagain() {
        let Some(mut ring) = ring() else { return };
        let root = unsafe_free_is_root();
        if !root {
            assert!(std::env::var_os("CI").is_none(), "needs root under CI");
            eprintln!("skipping: needs root");
            return;
        }
        let results = std::thread::spawn(move || {
            // SAFETY: unshare takes no pointers; it moves only this thread
            // (which exits at the end) into a new network namespace.
            let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "unshare: {}", io::Error::last_os_error());
            let queues = crate::tap::open_tap_queues("urtest0", 1).expect("tap");
            let mut bufs = vec![vec![0u8; 2048]; 2];
            let mut results = Vec::new();
            ring.read_batch(
                queues[0].as_fd(),
                bufs.iter_mut().map(|b| b.as_mut_slice()),
                &mut results,
            )
            .expect("read");
            results
        })
        .join()
        .expect("thread");
        assert_eq!(results, vec![-libc::EAGAIN, -libc::EAGAIN]);
    }

    fn unsafe_free_is_root() -> bool {
        // SAFETY: geteuid takes no arguments and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn reserved_tokens_are_refused() {
        let Some(mut ring) = ring() else { return };
        let (a, _b) = UnixDatagram::pair().expect("pair");
        assert!(ring.poll(a.as_fd(), INTERNAL | 1).is_err());
    }
}
