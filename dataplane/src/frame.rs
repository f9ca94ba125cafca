//! The owned buffer a frame lives in while a worker decides its fate.
//!
//! A [`Frame`] keeps free space in front of its bytes (headroom) so that the
//! pipeline can prepend headers in place (a virtio-net and Ethernet header on
//! decapsulation) and strip them (the Ethernet header on UDP encapsulation)
//! without copying the payload. Workers allocate their frames once and reuse
//! them for every batch.

/// Headroom a frame keeps in front of its bytes when reset: enough to prepend
/// a virtio-net header and an Ethernet header to a bare IP packet.
pub const DEFAULT_HEADROOM: usize = 64;

/// A frame buffer with headroom.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("headroom", &self.start)
            .field("len", &self.len())
            .finish()
    }
}

impl Frame {
    /// An empty frame able to hold `capacity` bytes after the default headroom.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: vec![0; DEFAULT_HEADROOM + capacity].into_boxed_slice(),
            start: DEFAULT_HEADROOM,
            end: DEFAULT_HEADROOM,
        }
    }

    /// A frame holding a copy of `bytes`, with the default headroom.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut frame = Self::with_capacity(bytes.len());
        frame.buf[DEFAULT_HEADROOM..].copy_from_slice(bytes);
        frame.end = DEFAULT_HEADROOM + bytes.len();
        frame
    }

    /// The frame's bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The frame's bytes, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    /// Length of the frame in bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the frame holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Free space in front of the frame.
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Empties the frame and restores the default headroom (or what fits).
    pub fn reset(&mut self) {
        self.start = DEFAULT_HEADROOM.min(self.buf.len());
        self.end = self.start;
    }

    /// The space after the headroom into which a read may write; follow with
    /// [`Frame::set_len`]. Resets the frame first.
    pub fn read_buffer(&mut self) -> &mut [u8] {
        self.reset();
        &mut self.buf[self.start..]
    }

    /// Sets the frame's length after a read into [`Frame::read_buffer`]
    /// (clamped to the buffer).
    pub fn set_len(&mut self, len: usize) {
        self.end = (self.start + len).min(self.buf.len());
    }

    /// Shortens the frame to `len` bytes (no-op if already shorter).
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.end = self.start + len;
        }
    }

    /// Grows the frame by `n` bytes at the front and returns them, or `None`
    /// when the headroom is too small.
    pub fn push_front(&mut self, n: usize) -> Option<&mut [u8]> {
        let start = self.start.checked_sub(n)?;
        self.start = start;
        Some(&mut self.buf[start..start + n])
    }

    /// Drops `n` bytes from the front; `false` (and no change) if the frame is
    /// shorter than that.
    pub fn pull_front(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.start += n;
        true
    }

    /// Replaces the frame's bytes with `bytes`, keeping the default headroom;
    /// the buffer grows if they do not fit (answers are the slow path).
    pub fn replace(&mut self, bytes: &[u8]) {
        let start = DEFAULT_HEADROOM;
        if start + bytes.len() > self.buf.len() {
            self.buf = vec![0; start + bytes.len()].into_boxed_slice();
        }
        self.buf[start..start + bytes.len()].copy_from_slice(bytes);
        self.start = start;
        self.end = start + bytes.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_and_pull_front_use_the_headroom() {
        let mut frame = Frame::from_bytes(&[1, 2, 3]);
        assert_eq!(frame.headroom(), DEFAULT_HEADROOM);
        frame
            .push_front(2)
            .expect("headroom")
            .copy_from_slice(&[8, 9]);
        assert_eq!(frame.data(), &[8, 9, 1, 2, 3]);
        assert!(frame.pull_front(3));
        assert_eq!(frame.data(), &[2, 3]);
        assert!(!frame.pull_front(3));
        assert_eq!(frame.data(), &[2, 3]);
    }

    #[test]
    fn push_front_beyond_headroom_fails_without_change() {
        let mut frame = Frame::from_bytes(&[1]);
        assert!(frame.push_front(DEFAULT_HEADROOM + 1).is_none());
        assert_eq!(frame.data(), &[1]);
    }

    #[test]
    fn read_buffer_then_set_len() {
        let mut frame = Frame::with_capacity(16);
        let buf = frame.read_buffer();
        assert_eq!(buf.len(), 16);
        buf[..4].copy_from_slice(&[4, 3, 2, 1]);
        frame.set_len(4);
        assert_eq!(frame.data(), &[4, 3, 2, 1]);
        frame.set_len(1000);
        assert_eq!(frame.len(), 16);
    }

    #[test]
    fn replace_grows_the_buffer_when_needed() {
        let mut frame = Frame::with_capacity(4);
        frame.replace(&[1, 2, 3, 4]);
        assert_eq!(frame.data(), &[1, 2, 3, 4]);
        frame.replace(&[9; 100]);
        assert_eq!(frame.data(), &[9; 100][..]);
        assert_eq!(frame.headroom(), DEFAULT_HEADROOM);
    }
}
