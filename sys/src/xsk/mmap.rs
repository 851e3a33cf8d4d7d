//! An owned memory mapping, unmapped on drop.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

use crate::error::Result;

/// A region returned by `mmap`, unmapped when dropped.
#[derive(Debug)]
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mmap {
    /// Maps `len` bytes of anonymous, private memory for a UMEM, populated
    /// up front so that the kernel never faults on the packet path.
    ///
    /// A UMEM of 2 MiB or more is placed on a 2 MiB boundary and asked for
    /// transparent huge pages (`MADV_HUGEPAGE`; honoured where THP is
    /// `always` or `madvise`, as distributions ship it). The kernel copies
    /// every frame into the UMEM in copy mode and the worker reads it, in
    /// the fill ring's order: through a 128 MiB UMEM on 4 KiB pages each
    /// frame is a TLB miss on both sides (a two-level walk under a
    /// hypervisor). Where THP is off the mapping keeps small pages.
    pub fn anonymous(len: usize) -> Result<Self> {
        const HUGE: usize = 2 << 20;
        if len < HUGE {
            return Self::populated(len);
        }
        let len = len.next_multiple_of(HUGE);
        // SAFETY: a fresh anonymous mapping aliases no Rust object; a failed
        // call returns MAP_FAILED (-1 as a pointer), checked below.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len + HUGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        let raw = Self::checked("mmap(UMEM)", raw, len + HUGE)?;
        let head = raw.as_ptr().align_offset(HUGE);
        // SAFETY: `head < HUGE`, so both pieces trimmed lie inside the
        // mapping just made, which nothing else refers to; `raw` is
        // forgotten and the aligned middle is owned by the value returned.
        let ptr = unsafe {
            let base = raw.as_ptr();
            let aligned = base.add(head);
            if head > 0 {
                libc::munmap(base.cast(), head);
            }
            libc::munmap(aligned.add(len).cast(), HUGE - head);
            std::mem::forget(raw);
            aligned
        };
        let map = Mmap {
            ptr: NonNull::new(ptr).expect("inside a non-null mapping"),
            len,
        };
        // SAFETY: advice on a range this value owns; MADV_HUGEPAGE fails
        // harmlessly (EINVAL) where THP is compiled out.
        unsafe { libc::madvise(ptr.cast(), len, libc::MADV_HUGEPAGE) };
        map.populate()?;
        Ok(map)
    }

    /// An anonymous mapping populated by `MAP_POPULATE`.
    fn populated(len: usize) -> Result<Self> {
        // SAFETY: as in `anonymous`.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        Self::checked("mmap(UMEM)", ptr, len)
    }

    /// Faults every page of the mapping in, writable: `MADV_POPULATE_WRITE`
    /// (Linux 5.14), else one write per page.
    fn populate(&self) -> Result<()> {
        // SAFETY: advice on a range this value owns.
        let ret = unsafe {
            libc::madvise(
                self.ptr.as_ptr().cast(),
                self.len,
                libc::MADV_POPULATE_WRITE,
            )
        };
        if ret == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINVAL) {
            return Err(crate::error::syscall_error(
                "madvise(UMEM, POPULATE_WRITE)",
                err,
            ));
        }
        for offset in (0..self.len).step_by(4096) {
            // SAFETY: inside the mapping, which is private, writable and not
            // yet shared with the kernel or any Rust reference.
            unsafe { self.ptr.as_ptr().add(offset).write_volatile(0) };
        }
        Ok(())
    }

    /// Maps `len` bytes of a socket's ring at page offset `offset`, shared with the kernel.
    pub fn ring(fd: BorrowedFd<'_>, len: usize, offset: u64, call: &'static str) -> Result<Self> {
        // SAFETY: maps memory the kernel owns for this socket; it aliases no
        // Rust object and stays valid until munmap, even after close(fd).
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        Self::checked(call, ptr, len)
    }

    fn checked(call: &'static str, ptr: *mut libc::c_void, len: usize) -> Result<Self> {
        if ptr == libc::MAP_FAILED {
            return Err(crate::error::syscall_error(
                call,
                std::io::Error::last_os_error(),
            ));
        }
        Ok(Mmap {
            ptr: NonNull::new(ptr.cast()).expect("mmap never returns NULL on success"),
            len,
        })
    }

    /// Start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never, for a successful map).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A pointer `offset` bytes into the mapping, typed as `T`.
    ///
    /// # Panics
    /// If `offset + size_of::<T>()` exceeds the mapping or the result is misaligned.
    pub fn at<T>(&self, offset: u64) -> NonNull<T> {
        let offset = usize::try_from(offset).expect("offset fits usize");
        assert!(
            offset + std::mem::size_of::<T>() <= self.len,
            "offset inside mapping"
        );
        // SAFETY: checked just above that the offset stays inside the mapping.
        let ptr = unsafe { self.ptr.as_ptr().add(offset) };
        assert_eq!(
            ptr.align_offset(std::mem::align_of::<T>()),
            0,
            "aligned ring field"
        );
        NonNull::new(ptr.cast()).expect("inside a non-null mapping")
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe a mapping we own; nothing borrows it past
        // drop (rings and frames that point into it are dropped first, being
        // fields declared before it or owned by the same socket).
        let ret = unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        debug_assert_eq!(ret, 0, "munmap of an owned mapping");
    }
}

// SAFETY: the mapping is plain memory owned by this value; moving it between
// threads moves that ownership.
unsafe impl Send for Mmap {}
