//! Single-producer/single-consumer AF_XDP rings.
//!
//! A ring is shared with the kernel: a producer index, a consumer index, a
//! flags word and a power-of-two array of descriptors. Indices are free-running
//! `u32`s; a slot is `index & mask`, and wrapping arithmetic gives the number of
//! entries, so the full 2^32 range is used before anything wraps.
//!
//! Memory ordering pairs with the kernel's side in `net/xdp/xsk_queue.h`
//! (the comment above `xskq_cons_peek_*`, barriers A to D):
//! - a consumer loads the producer index with Acquire before reading
//!   descriptors (C, pairing with the kernel's smp_wmb/store B), and stores its
//!   consumer index with Release after reading them (D, pairing with A);
//! - a producer loads the consumer index with Acquire before overwriting slots
//!   (pairs with the kernel's consumer release), and stores its producer index
//!   with Release after writing descriptors (pairs with the kernel's acquire).
//!
//! The same types serve both roles in the unit tests, where a second view of a
//! ring's memory plays the kernel.

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// Raw view of one ring's shared memory.
///
/// Holds pointers only; whoever builds it keeps the memory mapped for as long
/// as the ring lives (see [`RawRing::new`]).
#[derive(Debug)]
pub struct RawRing<T> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    descs: NonNull<T>,
    mask: u32,
    _marker: PhantomData<T>,
}

impl<T: Copy> RawRing<T> {
    /// Builds a ring view over shared memory.
    ///
    /// # Safety
    /// `producer`, `consumer` and `flags` point to aligned `u32`s and `descs` to
    /// `size` aligned `T`s, all valid for reads and writes (the index words
    /// through atomics) for the whole life of the returned value and every
    /// ring made from it. `size` is a power of two. Only one producer view and
    /// one consumer view of the memory exist in this process.
    pub unsafe fn new(
        producer: NonNull<AtomicU32>,
        consumer: NonNull<AtomicU32>,
        flags: NonNull<AtomicU32>,
        descs: NonNull<T>,
        size: u32,
    ) -> Self {
        debug_assert!(size.is_power_of_two());
        RawRing {
            producer,
            consumer,
            flags,
            descs,
            mask: size - 1,
            _marker: PhantomData,
        }
    }

    /// Number of slots.
    pub fn size(&self) -> u32 {
        self.mask + 1
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: valid and aligned for the ring's life (contract of `new`).
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: valid and aligned for the ring's life (contract of `new`).
        unsafe { self.consumer.as_ref() }
    }

    fn flags(&self) -> &AtomicU32 {
        // SAFETY: valid and aligned for the ring's life (contract of `new`).
        unsafe { self.flags.as_ref() }
    }

    #[inline(always)]
    fn read(&self, index: u32) -> T {
        let slot = (index & self.mask) as usize;
        // SAFETY: slot <= mask < size, so the pointer stays inside the
        // descriptor array; the producer's Release store of the index, seen by
        // our Acquire load, makes the slot's contents visible.
        unsafe { self.descs.as_ptr().add(slot).read_volatile() }
    }

    #[inline(always)]
    fn write(&self, index: u32, value: T) {
        let slot = (index & self.mask) as usize;
        // SAFETY: slot <= mask < size; the slot is between the consumer index
        // (loaded with Acquire) + size and our producer index, so the consumer
        // has released it and does not read it until we publish.
        unsafe { self.descs.as_ptr().add(slot).write_volatile(value) }
    }
}

// SAFETY: the ring is a single-producer or single-consumer end; moving it to
// another thread moves that end. The kernel (or test peer) synchronises
// through the atomics.
unsafe impl<T: Send> Send for RawRing<T> {}

/// The producer end of a ring (the fill ring, or the kernel's RX ring in tests).
#[derive(Debug)]
pub struct ProducerRing<T> {
    raw: RawRing<T>,
    /// Our producer index, published with `submit`.
    cached_prod: u32,
    /// The last seen consumer index plus the ring size: slots below it are free.
    cached_limit: u32,
}

impl<T: Copy> ProducerRing<T> {
    /// Takes the producer end of `raw`, starting from the indices in memory.
    pub fn new(raw: RawRing<T>) -> Self {
        let cached_prod = raw.producer().load(Ordering::Relaxed);
        let cached_limit = raw
            .consumer()
            .load(Ordering::Acquire)
            .wrapping_add(raw.size());
        ProducerRing {
            raw,
            cached_prod,
            cached_limit,
        }
    }

    /// Free slots, reloading the consumer index only when fewer than `wanted`
    /// are known to be free.
    #[inline(always)]
    pub fn free(&mut self, wanted: u32) -> u32 {
        let free = self.cached_limit.wrapping_sub(self.cached_prod);
        if free >= wanted {
            return free;
        }
        self.cached_limit = self
            .raw
            .consumer()
            .load(Ordering::Acquire)
            .wrapping_add(self.raw.size());
        self.cached_limit.wrapping_sub(self.cached_prod)
    }

    /// Writes as many of `items` as there are free slots, publishes them, and
    /// returns how many were written.
    #[inline(always)]
    pub fn produce(&mut self, items: &[T]) -> usize {
        let wanted = u32::try_from(items.len()).unwrap_or(u32::MAX);
        let n = self.free(wanted).min(wanted);
        for (i, item) in items[..n as usize].iter().enumerate() {
            self.raw
                .write(self.cached_prod.wrapping_add(i as u32), *item);
        }
        self.cached_prod = self.cached_prod.wrapping_add(n);
        if n > 0 {
            self.raw
                .producer()
                .store(self.cached_prod, Ordering::Release);
        }
        n as usize
    }

    /// Whether the kernel asked to be woken up to process this ring
    /// (`XDP_RING_NEED_WAKEUP`, set only with `XDP_USE_NEED_WAKEUP`).
    #[inline(always)]
    pub fn needs_wakeup(&self) -> bool {
        self.raw.flags().load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Number of slots.
    pub fn size(&self) -> u32 {
        self.raw.size()
    }
}

/// The consumer end of a ring (RX and completion, or the kernel's fill ring in tests).
#[derive(Debug)]
pub struct ConsumerRing<T> {
    raw: RawRing<T>,
    /// Our consumer index, published with `release`.
    cached_cons: u32,
    /// The last seen producer index.
    cached_prod: u32,
}

impl<T: Copy> ConsumerRing<T> {
    /// Takes the consumer end of `raw`, starting from the indices in memory.
    pub fn new(raw: RawRing<T>) -> Self {
        let cached_cons = raw.consumer().load(Ordering::Relaxed);
        let cached_prod = raw.producer().load(Ordering::Acquire);
        ConsumerRing {
            raw,
            cached_cons,
            cached_prod,
        }
    }

    /// Entries ready to read, reloading the producer index only when fewer
    /// than `wanted` are known.
    #[inline(always)]
    pub fn available(&mut self, wanted: u32) -> u32 {
        let avail = self.cached_prod.wrapping_sub(self.cached_cons);
        if avail >= wanted {
            return avail;
        }
        self.cached_prod = self.raw.producer().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Returns up to `max` ready entries as a batch. The entries stay owned by
    /// this end until [`ConsumerRing::release`] is called with the batch length.
    #[inline(always)]
    pub fn peek(&mut self, max: u32) -> Batch {
        let n = self.available(max).min(max);
        Batch {
            start: self.cached_cons,
            len: n,
        }
    }

    /// Reads entry `i` of `batch`.
    #[inline(always)]
    pub fn get(&self, batch: Batch, i: u32) -> T {
        debug_assert!(i < batch.len);
        self.raw.read(batch.start.wrapping_add(i))
    }

    /// Hands the first `n` peeked entries back to the producer.
    #[inline(always)]
    pub fn release(&mut self, n: u32) {
        debug_assert!(n <= self.cached_prod.wrapping_sub(self.cached_cons));
        self.cached_cons = self.cached_cons.wrapping_add(n);
        self.raw
            .consumer()
            .store(self.cached_cons, Ordering::Release);
    }

    /// Whether the producer asked to be woken up (see [`ProducerRing::needs_wakeup`]).
    pub fn needs_wakeup(&self) -> bool {
        self.raw.flags().load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Number of slots.
    pub fn size(&self) -> u32 {
        self.raw.size()
    }
}

/// A run of entries returned by [`ConsumerRing::peek`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    start: u32,
    len: u32,
}

impl Batch {
    /// Number of entries in the batch.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::xsk::testing::HeapRing;

    fn pair(mem: &HeapRing<u64>) -> (ProducerRing<u64>, ConsumerRing<u64>) {
        (ProducerRing::new(mem.raw()), ConsumerRing::new(mem.raw()))
    }

    fn drain(cons: &mut ConsumerRing<u64>, max: u32) -> Vec<u64> {
        let batch = cons.peek(max);
        let out = (0..batch.len()).map(|i| cons.get(batch, i)).collect();
        cons.release(batch.len());
        out
    }

    #[test]
    fn empty_ring_has_nothing_and_all_free() {
        let mem = HeapRing::starting_at(8, 0u64, 0);
        let (mut prod, mut cons) = pair(&mem);
        assert_eq!(prod.free(1), 8);
        assert!(cons.peek(64).is_empty());
    }

    #[test]
    fn full_ring_refuses_more() {
        let mem = HeapRing::starting_at(8, 0u64, 0);
        let (mut prod, mut cons) = pair(&mem);
        let items: Vec<u64> = (0..12).collect();
        assert_eq!(prod.produce(&items), 8, "only size slots fit");
        assert_eq!(prod.free(1), 0);
        assert_eq!(prod.produce(&[99]), 0);
        assert_eq!(drain(&mut cons, 3), vec![0, 1, 2]);
        assert_eq!(prod.free(1), 3, "released slots come back");
        assert_eq!(prod.produce(&items[8..]), 3);
        assert_eq!(drain(&mut cons, 64), vec![3, 4, 5, 6, 7, 8, 9, 10]);
    }

    #[test]
    fn batches_wrap_around_the_slot_array() {
        let mem = HeapRing::starting_at(16, 0u64, 0);
        let (mut prod, mut cons) = pair(&mem);
        let mut next = 0u64;
        let mut expected = 0u64;
        // Uneven batch sizes so that batches straddle the end of the array.
        for round in 0..200u64 {
            let n = (round * 7 % 13 + 1) as usize;
            let items: Vec<u64> = (next..next + n as u64).collect();
            let done = prod.produce(&items);
            next += done as u64;
            for v in drain(&mut cons, (round % 5 + 1) as u32) {
                assert_eq!(v, expected);
                expected += 1;
            }
        }
        for v in drain(&mut cons, 64) {
            assert_eq!(v, expected);
            expected += 1;
        }
        assert_eq!(expected, next);
        assert!(next > 16 * 10, "the test wrapped the ring many times");
    }

    #[test]
    fn indices_wrap_around_u32() {
        // Start the free-running indices just below u32::MAX.
        let mem = HeapRing::starting_at(4, 0u64, u32::MAX - 5);
        let (mut prod, mut cons) = pair(&mem);
        for base in (0..40u64).step_by(3) {
            assert_eq!(prod.produce(&[base, base + 1, base + 2]), 3);
            assert_eq!(drain(&mut cons, 2), vec![base, base + 1]);
            assert_eq!(drain(&mut cons, 2), vec![base + 2]);
        }
        assert!(
            mem.words[0].load(Ordering::Relaxed) < 100,
            "producer index wrapped"
        );
    }

    #[test]
    fn peek_is_capped_and_release_is_partial() {
        let mem = HeapRing::starting_at(32, 0u64, 0);
        let (mut prod, mut cons) = pair(&mem);
        assert_eq!(prod.produce(&(0..20).collect::<Vec<_>>()), 20);
        let batch = cons.peek(8);
        assert_eq!(batch.len(), 8);
        cons.release(5);
        let batch = cons.peek(64);
        assert_eq!(batch.len(), 15);
        assert_eq!(cons.get(batch, 0), 5);
    }

    #[test]
    fn need_wakeup_flag_is_read() {
        let mem = HeapRing::starting_at(4, 0u64, 0);
        let (prod, cons) = pair(&mem);
        assert!(!prod.needs_wakeup());
        mem.words[2].store(libc::XDP_RING_NEED_WAKEUP, Ordering::Relaxed);
        assert!(prod.needs_wakeup());
        assert!(cons.needs_wakeup());
    }

    #[test]
    fn producer_and_consumer_on_two_threads() {
        let mem = HeapRing::starting_at(64, 0u64, 0);
        let (mut prod, mut cons) = pair(&mem);
        const TOTAL: u64 = 200_000;
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut next = 0u64;
                let mut buf = [0u64; 16];
                while next < TOTAL {
                    let n = 16.min(TOTAL - next) as usize;
                    for (i, b) in buf[..n].iter_mut().enumerate() {
                        *b = next + i as u64;
                    }
                    next += prod.produce(&buf[..n]) as u64;
                }
            });
            let mut expected = 0u64;
            while expected < TOTAL {
                for v in drain(&mut cons, 32) {
                    assert_eq!(v, expected);
                    expected += 1;
                }
            }
        });
    }
}
