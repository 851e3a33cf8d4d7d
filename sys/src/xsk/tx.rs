//! The transmit side of one UMEM: the TX ring, the completion ring and the
//! frames between them. Like [`super::rx::RxRings`], separate from the
//! socket so that the same code runs over heap memory in tests
//! ([`super::testing::HeapTx`]), on the same ring ends.
//!
//! Frames keep what was last written into them: a generator writes its
//! template into every frame once ([`TxRings::prefill`]) and then patches
//! only the bytes that change from frame to frame (a stamp, a port).

use std::ptr::NonNull;

use super::ring::{ConsumerRing, ProducerRing};

/// Descriptors produced at a time (a stack array; the ring takes any number).
const BURST: usize = 64;

/// The TX and completion rings of one UMEM and the frames userspace holds.
#[derive(Debug)]
pub struct TxRings {
    tx: ProducerRing<libc::xdp_desc>,
    completion: ConsumerRing<u64>,
    /// Frames neither queued for transmit nor awaiting completion (a stack).
    free_frames: Vec<u64>,
    frames: usize,
    frame_size: u32,
    umem: NonNull<u8>,
    umem_len: usize,
}

// SAFETY: as for RxRings: one producer end and one consumer end, and a UMEM
// written only through them; moving the value moves those ends.
unsafe impl Send for TxRings {}

impl TxRings {
    /// Takes the ends of the rings of a UMEM of `umem_len` bytes at `umem`,
    /// cut into `frame_size` chunks, all free.
    ///
    /// # Safety
    /// `umem` points to `umem_len` bytes that stay mapped for as long as the
    /// returned value lives, and the kernel (or its stand-in) reads a frame
    /// only between its TX descriptor and its completion.
    pub unsafe fn new(
        tx: ProducerRing<libc::xdp_desc>,
        completion: ConsumerRing<u64>,
        umem: NonNull<u8>,
        umem_len: usize,
        frame_size: u32,
    ) -> TxRings {
        let frames = umem_len / frame_size as usize;
        TxRings {
            tx,
            completion,
            free_frames: (0..frames as u64)
                .rev()
                .map(|i| i * u64::from(frame_size))
                .collect(),
            frames,
            frame_size,
            umem,
            umem_len,
        }
    }

    /// Writes `template` at the start of every free frame. Call before the
    /// first [`TxRings::send`], while every frame is free.
    pub fn prefill(&mut self, template: &[u8]) {
        assert!(template.len() <= self.frame_size as usize, "fits a frame");
        for &addr in &self.free_frames {
            debug_assert!(addr as usize + template.len() <= self.umem_len);
            // SAFETY: the frame lies in the UMEM (addresses come from `new`)
            // and is free: the kernel does not read it (contract of `new`).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    template.as_ptr(),
                    self.umem.as_ptr().add(addr as usize),
                    template.len(),
                )
            };
        }
    }

    /// Takes back the frames the kernel finished sending; returns how many.
    #[inline(always)]
    pub fn complete(&mut self) -> u32 {
        let batch = self.completion.peek(self.frames as u32);
        for i in 0..batch.len() {
            let addr = self.completion.get(batch, i);
            self.free_frames.push(addr);
        }
        self.completion.release(batch.len());
        batch.len()
    }

    /// Queues up to `max` frames on the TX ring: frame `i` is written by
    /// `write(i, frame)`, which returns its length (the frame holds what was
    /// last written into it). Fewer go when the ring or the free frames run
    /// out; returns how many were queued.
    #[inline(always)]
    pub fn send(&mut self, max: u32, mut write: impl FnMut(u32, &mut [u8]) -> u32) -> u32 {
        if (self.free_frames.len() as u32) < max {
            self.complete();
        }
        let n = (max as usize)
            .min(self.free_frames.len())
            .min(self.tx.free(max) as usize);
        let mut descs = [libc::xdp_desc {
            addr: 0,
            len: 0,
            options: 0,
        }; BURST];
        let mut queued = 0;
        while queued < n {
            let burst = (n - queued).min(BURST);
            for (j, desc) in descs[..burst].iter_mut().enumerate() {
                let addr = self.free_frames.pop().expect("counted above");
                // SAFETY: the frame lies in the UMEM and is free, so the
                // kernel does not read it until its descriptor is published.
                let frame = unsafe {
                    std::slice::from_raw_parts_mut(
                        self.umem.as_ptr().add(addr as usize),
                        self.frame_size as usize,
                    )
                };
                let len = write((queued + j) as u32, frame).min(self.frame_size);
                *desc = libc::xdp_desc {
                    addr,
                    len,
                    options: 0,
                };
            }
            let produced = self.tx.produce(&descs[..burst]);
            debug_assert_eq!(produced, burst, "the TX ring had room for these");
            queued += burst;
        }
        n as u32
    }

    /// Frames queued or in flight, not yet completed.
    pub fn in_flight(&self) -> usize {
        self.frames - self.free_frames.len()
    }

    /// Whether the kernel must be kicked to transmit what is queued.
    #[inline(always)]
    pub fn tx_needs_wakeup(&self) -> bool {
        self.tx.needs_wakeup()
    }
}
