//! A stand-in for the kernel over heap memory: the same [`RxRings`] code a
//! socket runs, fed by a "kernel" end that takes frames from the fill ring,
//! copies bytes into the UMEM and publishes RX descriptors. For unit tests
//! and benchmarks of the receive path without a socket or root.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use xsktap_core::worker::RxQueue;

use super::ring::{ConsumerRing, ProducerRing, RawRing};
use super::rx::RxRings;
use super::tx::TxRings;

/// Memory laid out like one mapped ring: producer, consumer and flags
/// words, then the descriptors. Also the ring unit tests' memory.
pub(crate) struct HeapRing<T> {
    /// Producer, consumer and flags words.
    pub(crate) words: Box<[AtomicU32; 3]>,
    descs: NonNull<[T]>,
}

impl<T: Copy> HeapRing<T> {
    /// A ring of `size` slots filled with `zero`, both indices at `start`.
    pub(crate) fn starting_at(size: u32, zero: T, start: u32) -> Self {
        let descs = vec![zero; size as usize].into_boxed_slice();
        HeapRing {
            words: Box::new([
                AtomicU32::new(start),
                AtomicU32::new(start),
                AtomicU32::new(0),
            ]),
            descs: NonNull::from(Box::leak(descs)),
        }
    }

    /// A view of the ring's memory, valid while `self` lives (every user
    /// drops its rings before the HeapRing).
    pub(crate) fn raw(&self) -> RawRing<T> {
        let size = self.descs.len() as u32;
        // SAFETY: the index words are AtomicU32s and `descs` holds `size`
        // aligned Ts, all on the heap, unmoved and freed only when `self`
        // drops; every HeapQueue drops its rings before this memory.
        unsafe {
            RawRing::new(
                NonNull::from(&self.words[0]),
                NonNull::from(&self.words[1]),
                NonNull::from(&self.words[2]),
                self.descs.cast::<T>(),
                size,
            )
        }
    }
}

impl<T> Drop for HeapRing<T> {
    fn drop(&mut self) {
        // SAFETY: `descs` came from Box::leak in `new` and is freed once, here.
        drop(unsafe { Box::from_raw(self.descs.as_ptr()) });
    }
}

/// One RX queue over heap memory, with the kernel's side played by
/// [`HeapQueue::deliver`].
pub struct HeapQueue {
    // Ring ends first: they are dropped before the memory they point into.
    rings: RxRings,
    kernel_fill: ConsumerRing<u64>,
    kernel_rx: ProducerRing<libc::xdp_desc>,
    umem: NonNull<[u8]>,
    _fill_mem: HeapRing<u64>,
    _rx_mem: HeapRing<libc::xdp_desc>,
    /// Fill-ring wake-ups asked of the "kernel".
    pub kicks: u64,
}

impl HeapQueue {
    /// Rings of `ring_size` entries over a UMEM of twice as many frames of
    /// `frame_size` bytes, as a socket has.
    pub fn new(ring_size: u32, frame_size: u32) -> HeapQueue {
        assert!(ring_size.is_power_of_two() && frame_size.is_power_of_two());
        let zero_desc = libc::xdp_desc {
            addr: 0,
            len: 0,
            options: 0,
        };
        let fill_mem = HeapRing::starting_at(ring_size, 0u64, 0);
        let rx_mem = HeapRing::starting_at(ring_size, zero_desc, 0);
        let umem_len = 2 * ring_size as usize * frame_size as usize;
        let umem = NonNull::from(Box::leak(vec![0u8; umem_len].into_boxed_slice()));
        let kernel_fill = ConsumerRing::new(fill_mem.raw());
        let kernel_rx = ProducerRing::new(rx_mem.raw());
        // SAFETY: the UMEM is heap memory owned by this HeapQueue, freed in
        // its Drop after `rings`; only `deliver` writes it, and only into
        // frames it took from the fill ring and has not yet published.
        let rings = unsafe {
            RxRings::new(
                ProducerRing::new(fill_mem.raw()),
                ConsumerRing::new(rx_mem.raw()),
                umem.cast::<u8>(),
                umem_len,
                frame_size,
            )
        };
        HeapQueue {
            rings,
            kernel_fill,
            kernel_rx,
            umem,
            _fill_mem: fill_mem,
            _rx_mem: rx_mem,
            kicks: 0,
        }
    }

    /// The kernel's side with multi-buffer (`XDP_USE_SG`): each frame cut
    /// into buffers of at most `chunk` bytes, all but the last flagged
    /// `XDP_PKT_CONTD`. Takes whole frames only; returns how many went in.
    pub fn deliver_chained(&mut self, frames: &[Vec<u8>], chunk: usize) -> usize {
        let mut done = 0;
        for frame in frames {
            let pieces: Vec<&[u8]> = frame.chunks(chunk).collect();
            let n = pieces.len() as u32;
            if self.kernel_rx.free(n) < n {
                break;
            }
            let batch = self.kernel_fill.peek(n);
            if batch.len() < n {
                break;
            }
            for (i, piece) in pieces.iter().enumerate() {
                let addr = self.kernel_fill.get(batch, i as u32);
                assert!(addr as usize + piece.len() <= self.umem.len());
                // SAFETY: as in `deliver`: inside the UMEM, a frame taken
                // off the fill ring and not yet published.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        piece.as_ptr(),
                        self.umem.cast::<u8>().as_ptr().add(addr as usize),
                        piece.len(),
                    )
                };
                let options = if i + 1 < pieces.len() {
                    libc::XDP_PKT_CONTD
                } else {
                    0
                };
                self.kernel_rx.produce(&[libc::xdp_desc {
                    addr,
                    len: piece.len() as u32,
                    options,
                }]);
            }
            self.kernel_fill.release(n);
            done += 1;
        }
        done
    }

    /// The kernel's side: puts as many of `frames` as there are filled
    /// frames and RX slots for into the UMEM and the RX ring. Returns how many.
    pub fn deliver<'a>(&mut self, frames: impl ExactSizeIterator<Item = &'a [u8]>) -> usize {
        let want = u32::try_from(frames.len()).unwrap_or(u32::MAX);
        let room = self.kernel_rx.free(want).min(want);
        let batch = self.kernel_fill.peek(room);
        let mut descs = [libc::xdp_desc {
            addr: 0,
            len: 0,
            options: 0,
        }; 64];
        let mut done = 0usize;
        for (i, frame) in frames.take(batch.len() as usize).enumerate() {
            let addr = self.kernel_fill.get(batch, i as u32);
            let start = addr as usize;
            assert!(
                start + frame.len() <= self.umem.len(),
                "frame fits its chunk"
            );
            // SAFETY: [start, start + len) is inside the UMEM (asserted); the
            // frame at `addr` came off the fill ring, so userspace does not
            // read it until its descriptor is published below.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    frame.as_ptr(),
                    self.umem.cast::<u8>().as_ptr().add(start),
                    frame.len(),
                )
            };
            descs[done % 64] = libc::xdp_desc {
                addr,
                len: frame.len() as u32,
                options: 0,
            };
            done += 1;
            if done.is_multiple_of(64) {
                self.kernel_rx.produce(&descs);
            }
        }
        self.kernel_rx.produce(&descs[..done % 64]);
        self.kernel_fill.release(done as u32);
        done
    }

    /// Says where the stand-in program carries stamps (see [`RxRings::set_carry`]).
    pub fn set_carry(&mut self, carry: xsktap_core::rxmeta::Carry) {
        self.rings.set_carry(carry);
    }

    /// Frames userspace holds outside both rings.
    pub fn free_frames(&self) -> usize {
        self.rings.free_frames()
    }
}

impl Drop for HeapQueue {
    fn drop(&mut self) {
        // SAFETY: `umem` came from Box::leak in `new` and is freed once; the
        // rings that point into it are fields dropped after this body, but
        // they never touch the UMEM in their drop.
        drop(unsafe { Box::from_raw(self.umem.as_ptr()) });
    }
}

impl RxQueue for HeapQueue {
    #[inline(always)]
    fn recv<F: FnMut(u32, u32, &[u8], u64)>(&mut self, max: u32, on_frame: F) -> u32 {
        self.rings.recv(max, on_frame)
    }
    fn fill_needs_wakeup(&self) -> bool {
        self.rings.fill_needs_wakeup()
    }
    fn kick(&mut self) {
        self.kicks += 1;
    }
    fn busy_poll(&mut self) {}
    fn wait(&mut self, _timeout: Duration) -> io::Result<bool> {
        Ok(false)
    }
    fn napi_id(&self) -> u32 {
        0
    }
}

/// One TX queue over heap memory, with the kernel's side played by
/// [`HeapTx::transmit`].
pub struct HeapTx {
    /// Userspace's end, as a socket has it.
    pub rings: TxRings,
    kernel_tx: ConsumerRing<libc::xdp_desc>,
    kernel_completion: ProducerRing<u64>,
    umem: NonNull<[u8]>,
    _tx_mem: HeapRing<libc::xdp_desc>,
    _completion_mem: HeapRing<u64>,
}

impl HeapTx {
    /// Rings of `ring_size` entries over a UMEM of twice as many frames of
    /// `frame_size` bytes, as a TX socket has.
    pub fn new(ring_size: u32, frame_size: u32) -> HeapTx {
        let zero_desc = libc::xdp_desc {
            addr: 0,
            len: 0,
            options: 0,
        };
        let tx_mem = HeapRing::starting_at(ring_size, zero_desc, 0);
        let completion_mem = HeapRing::starting_at(ring_size, 0u64, 0);
        let umem_len = 2 * ring_size as usize * frame_size as usize;
        let umem = NonNull::from(Box::leak(vec![0u8; umem_len].into_boxed_slice()));
        // SAFETY: the UMEM is heap memory owned by this HeapTx, freed in its
        // Drop after `rings`; `transmit` reads only published frames.
        let rings = unsafe {
            TxRings::new(
                ProducerRing::new(tx_mem.raw()),
                ConsumerRing::new(completion_mem.raw()),
                umem.cast::<u8>(),
                umem_len,
                frame_size,
            )
        };
        HeapTx {
            rings,
            kernel_tx: ConsumerRing::new(tx_mem.raw()),
            kernel_completion: ProducerRing::new(completion_mem.raw()),
            umem,
            _tx_mem: tx_mem,
            _completion_mem: completion_mem,
        }
    }

    /// The kernel's side: takes up to `max` descriptors off the TX ring,
    /// hands each frame's bytes to `wire`, and completes them.
    pub fn transmit(&mut self, max: u32, mut wire: impl FnMut(&[u8])) -> u32 {
        let room = self.kernel_completion.free(max).min(max);
        let batch = self.kernel_tx.peek(room);
        for i in 0..batch.len() {
            let d = self.kernel_tx.get(batch, i);
            let (start, end) = (d.addr as usize, d.addr as usize + d.len as usize);
            assert!(end <= self.umem.len(), "descriptor inside the UMEM");
            // SAFETY: inside the UMEM (asserted); userspace published the
            // descriptor, so it does not write the frame until completion.
            wire(unsafe {
                std::slice::from_raw_parts(self.umem.cast::<u8>().as_ptr().add(start), end - start)
            });
            self.kernel_completion.produce(&[d.addr]);
        }
        self.kernel_tx.release(batch.len());
        batch.len()
    }
}

impl Drop for HeapTx {
    fn drop(&mut self) {
        // SAFETY: `umem` came from Box::leak in `new` and is freed once.
        drop(unsafe { Box::from_raw(self.umem.as_ptr()) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmitted_frames_leave_in_order_byte_exact_and_frames_recycle() {
        let mut q = HeapTx::new(64, 2048);
        let template = vec![0xabu8; 60];
        q.rings.prefill(&template);
        let (mut next, mut seen) = (0u32, 0u32);
        for round in 0..400u32 {
            let before = next;
            let queued = q.rings.send(round % 70 + 1, |_, frame| {
                frame[..4].copy_from_slice(&next.to_le_bytes());
                next += 1;
                60
            });
            assert_eq!(queued, next - before, "returns the frames it wrote");
            assert!(
                q.rings.in_flight() <= 128,
                "never more frames than the UMEM"
            );
            q.transmit(round % 50 + 1, |f| {
                assert_eq!(f.len(), 60);
                assert_eq!(u32::from_le_bytes(f[..4].try_into().unwrap()), seen);
                assert!(f[4..].iter().all(|&b| b == 0xab), "the template stays");
                seen += 1;
            });
        }
        // The completion ring holds what userspace has not taken back yet.
        loop {
            q.rings.complete();
            if q.transmit(64, |_| seen += 1) == 0 {
                break;
            }
        }
        assert_eq!(seen, next, "every frame queued went out once");
        assert!(seen > 20 * 64, "the rings wrapped: {seen}");
        q.rings.complete();
        assert_eq!(q.rings.in_flight(), 0, "every frame completed");
    }

    #[test]
    fn chained_buffers_come_back_as_whole_frames_across_batches() {
        let mut q = HeapQueue::new(64, 2048);
        let frames: Vec<Vec<u8>> = [60usize, 9014, 1500, 4096, 3000, 61, 8000]
            .iter()
            .enumerate()
            .map(|(k, &len)| (0..len).map(|j| (j * 7 + k) as u8).collect())
            .collect();
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut sent = 0;
        while got.len() < frames.len() {
            sent += q.deliver_chained(&frames[sent..], 1000);
            // Three buffers at a time: chains straddle batches.
            let mut counted = 0;
            let n = q.recv(3, |i, n, frame, _| {
                assert!(i < n);
                counted += 1;
                got.push(frame.to_vec());
            });
            assert_eq!(n, counted, "returns the frames it completed");
        }
        assert!(got == frames, "every frame whole and in order");
    }

    #[test]
    fn stamps_carried_in_headroom_are_stripped_whole_frames_and_chains_alike() {
        use xsktap_core::rxmeta::{encode_headroom, Carry};
        let mut q = HeapQueue::new(64, 2048);
        q.set_carry(Carry::Headroom);
        let frame: Vec<u8> = (0..100u8).collect();
        let jumbo: Vec<u8> = (0..5000u32).map(|j| (j * 3) as u8).collect();
        let stamped = |ns: u64, f: &[u8]| [&encode_headroom(ns)[..], f].concat();
        // One stamped, one the program found no room for, one stamped chain.
        q.deliver([&stamped(11, &frame)[..], &frame[..]].into_iter());
        q.deliver_chained(&[stamped(33, &jumbo)], 1000);
        let mut got = Vec::new();
        while got.len() < 3 {
            q.recv(64, |_, _, f, ns| got.push((ns, f.to_vec())));
        }
        assert_eq!(
            got[0],
            (11, frame.clone()),
            "stamp taken, 16 bytes stripped"
        );
        assert_eq!(got[1], (0, frame), "no stamp: the frame whole");
        assert_eq!(got[2], (33, jumbo), "a chain's first buffer stripped");
    }

    #[test]
    fn frames_come_back_byte_exact_and_none_is_lost_or_duplicated() {
        let ring = 64u32;
        let mut q = HeapQueue::new(ring, 2048);
        let total_frames = 2 * ring as usize;
        let mut next = 0u32;
        let mut expected = 0u32;
        for round in 0..500u32 {
            let n = (round * 7 % 60 + 1) as usize;
            let frames: Vec<Vec<u8>> = (0..n)
                .map(|i| {
                    let id = next + i as u32;
                    let mut f = vec![(id % 251) as u8; 60 + (id % 1400) as usize];
                    f[..4].copy_from_slice(&id.to_le_bytes());
                    f
                })
                .collect();
            next += q.deliver(frames.iter().map(Vec::as_slice)) as u32;
            let max = round % 33 + 1;
            q.recv(max, |_, _, frame, _| {
                let id = u32::from_le_bytes(frame[..4].try_into().unwrap());
                assert_eq!(id, expected, "in order, none lost");
                assert_eq!(frame.len(), 60 + (id % 1400) as usize);
                assert!(frame[4..].iter().all(|&b| b == (id % 251) as u8));
                expected += 1;
            });
            let in_rx = (next - expected) as usize;
            let in_fill = total_frames - in_rx - q.free_frames();
            assert!(in_fill <= ring as usize, "the fill ring never overflows");
            assert!(
                q.free_frames() <= ring as usize + 64,
                "the stack stays bounded"
            );
        }
        assert!(
            expected > 50 * ring,
            "the rings wrapped many times: {expected}"
        );
    }
}
