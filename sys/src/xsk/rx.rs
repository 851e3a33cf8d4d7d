//! The receive side of one UMEM: the RX ring, the fill ring and the frames
//! between them. Separate from the socket so that the same code runs over
//! heap memory in tests and benchmarks ([`super::testing`]).
//!
//! Frames are recycled one for one, as xdpsock's `rx_drop` does: every
//! frame taken from the RX ring goes onto a stack of free frames, and as many
//! as the fill ring has room for go straight back from the top of that
//! stack, so a batch of n frames costs O(n), whatever the stack's depth.

use std::ptr::NonNull;

use xsktap_core::rxmeta::{self, Carry};

use super::ring::{ConsumerRing, ProducerRing};

/// The RX and fill rings of one UMEM and the frames userspace holds.
#[derive(Debug)]
pub struct RxRings {
    fill: ProducerRing<u64>,
    rx: ConsumerRing<libc::xdp_desc>,
    /// Addresses of frames owned by userspace, waiting to go back to the
    /// fill ring; used as a stack (pushed and taken at the end).
    free_frames: Vec<u64>,
    chunk_mask: u64,
    umem: NonNull<u8>,
    umem_len: usize,
    /// A frame spanning several buffers (AF_XDP multi-buffer), assembled
    /// from the buffers read so far; it may continue in the next batch.
    chain: Vec<u8>,
    /// The receive stamp of the chain's first buffer.
    chain_stamp: u64,
    /// Where the XDP program puts each frame's stamp.
    carry: Carry,
}

// SAFETY: the rings are one producer end and one consumer end, and the UMEM
// pointer is only read through them; moving the whole value to another
// thread moves those ends (the kernel synchronises through the ring atomics).
unsafe impl Send for RxRings {}

impl RxRings {
    /// Takes the ends of the rings of a UMEM of `umem_len` bytes at `umem`,
    /// cut into `frame_size` chunks, and fills the fill ring with as many
    /// chunks as it holds; the rest wait on the free stack.
    ///
    /// # Safety
    /// `umem` points to `umem_len` bytes that stay mapped, and are written
    /// only by the kernel (or its stand-in) between a frame's production on
    /// the fill ring and its consumption from the RX ring, for as long as the
    /// returned value lives. `frame_size` is a power of two.
    pub unsafe fn new(
        mut fill: ProducerRing<u64>,
        rx: ConsumerRing<libc::xdp_desc>,
        umem: NonNull<u8>,
        umem_len: usize,
        frame_size: u32,
    ) -> RxRings {
        debug_assert!(frame_size.is_power_of_two());
        let frames = umem_len as u64 / u64::from(frame_size);
        let all: Vec<u64> = (0..frames).map(|i| i * u64::from(frame_size)).collect();
        let filled = fill.produce(&all);
        // The stack's top is its end: keep the lowest addresses there.
        let mut free_frames = Vec::with_capacity(all.len());
        free_frames.extend(all[filled..].iter().rev());
        RxRings {
            fill,
            rx,
            free_frames,
            chunk_mask: !(u64::from(frame_size) - 1),
            umem,
            umem_len,
            chain: Vec::new(),
            chain_stamp: 0,
            carry: Carry::Metadata,
        }
    }

    /// Says where the XDP program carries the stamps (metadata unless set):
    /// with [`Carry::Headroom`], a frame's first 16 bytes are its stamp and
    /// are stripped before `recv` hands the frame on.
    pub fn set_carry(&mut self, carry: Carry) {
        self.carry = carry;
    }

    /// Takes up to `max` buffers, calling `on_frame(i, n, bytes, rx_ns)` for
    /// frame `i` of the `n` frames they complete (`rx_ns`: the XDP program's
    /// receive stamp from the frame's metadata, 0 if none), then returns the
    /// buffers to the fill ring. Returns the number of frames completed.
    ///
    /// A frame spanning several buffers (descriptors flagged
    /// `XDP_PKT_CONTD`, with `XDP_USE_SG`) is copied together into one
    /// slice; its buffers may straddle two calls.
    #[inline(always)]
    pub fn recv(&mut self, max: u32, mut on_frame: impl FnMut(u32, u32, &[u8], u64)) -> u32 {
        let batch = self.rx.peek(max);
        if batch.is_empty() {
            return 0;
        }
        let contd = |d: &libc::xdp_desc| d.options & libc::XDP_PKT_CONTD != 0;
        // Frames completed in this batch (the -c budget is claimed per frame).
        let mut frames = batch.len();
        let mut chained = !self.chain.is_empty();
        for i in 0..batch.len() {
            if contd(&self.rx.get(batch, i)) {
                frames -= 1;
                chained = true;
            }
        }
        let mut frame_index = 0;
        for i in 0..batch.len() {
            let desc = self.rx.get(batch, i);
            let start = desc.addr as usize;
            let end = start + desc.len as usize;
            // A descriptor outside the UMEM would be a kernel bug; skip rather than trust it.
            if end <= self.umem_len {
                // SAFETY: [start, end) lies inside the UMEM (checked above); the
                // kernel wrote the frame before publishing the descriptor and
                // does not touch it until the address returns on the fill ring,
                // which happens after `on_frame` returns (contract of `new`).
                let bytes = unsafe {
                    std::slice::from_raw_parts(self.umem.as_ptr().add(start), end - start)
                };
                if !chained {
                    let (stamp, bytes) = self.stamp_of(desc.addr, bytes);
                    on_frame(frame_index, frames, bytes, stamp);
                    frame_index += 1;
                } else {
                    let mut bytes = bytes;
                    if self.chain.is_empty() {
                        (self.chain_stamp, bytes) = self.stamp_of(desc.addr, bytes);
                    }
                    self.chain.extend_from_slice(bytes);
                    if !contd(&desc) {
                        on_frame(frame_index, frames, &self.chain, self.chain_stamp);
                        frame_index += 1;
                        self.chain.clear();
                    }
                }
            } else {
                // A frame with a buffer we cannot read is not assembled from the rest.
                self.chain.clear();
            }
            self.free_frames.push(desc.addr & self.chunk_mask);
        }
        self.rx.release(batch.len());
        self.refill();
        frames
    }

    /// The receive stamp of the frame (or first buffer) `bytes` at `addr`,
    /// 0 if none, and the frame without the stamp carried in headroom.
    #[inline(always)]
    fn stamp_of<'a>(&mut self, addr: u64, bytes: &'a [u8]) -> (u64, &'a [u8]) {
        match self.carry {
            Carry::Metadata => (self.take_stamp(addr), bytes),
            Carry::Headroom => rxmeta::strip(bytes).unwrap_or((0, bytes)),
        }
    }

    /// The receive stamp in the metadata in front of the frame at `addr`,
    /// cleared once read so that a later frame in the same chunk cannot
    /// find it; 0 if there is none.
    #[inline(always)]
    fn take_stamp(&mut self, addr: u64) -> u64 {
        let offset_in_chunk = addr & !self.chunk_mask;
        if offset_in_chunk < rxmeta::LEN as u64 {
            return 0;
        }
        let at = addr as usize - rxmeta::LEN;
        // SAFETY: [at, addr) lies in the frame's own chunk (checked above; the
        // chunk lies in the UMEM since the frame does), which userspace owns
        // until it returns to the fill ring; plain bytes, read unaligned.
        let meta: [u8; rxmeta::LEN] =
            unsafe { std::ptr::read_unaligned(self.umem.as_ptr().add(at).cast()) };
        let stamp = rxmeta::decode(&meta).unwrap_or(0);
        if stamp != 0 {
            // SAFETY: the same bytes, owned by userspace as above.
            unsafe {
                std::ptr::write_unaligned(
                    self.umem
                        .as_ptr()
                        .add(at + rxmeta::MAGIC_OFFSET)
                        .cast::<u32>(),
                    0,
                )
            };
        }
        stamp
    }

    /// Moves frames from the top of the free stack to the fill ring, as many
    /// as fit.
    #[inline(always)]
    fn refill(&mut self) {
        let held = self.free_frames.len();
        let room = self.fill.free(held as u32) as usize;
        let from = held - room.min(held);
        let produced = self.fill.produce(&self.free_frames[from..]);
        debug_assert_eq!(produced, held - from, "the fill ring had room for these");
        self.free_frames.truncate(from);
    }

    /// Whether the kernel asked to be woken before it fills more frames.
    #[inline(always)]
    pub fn fill_needs_wakeup(&self) -> bool {
        self.fill.needs_wakeup()
    }

    /// Frames userspace holds (neither in the fill ring nor in the RX ring).
    pub fn free_frames(&self) -> usize {
        self.free_frames.len()
    }
}
