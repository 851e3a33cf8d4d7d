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
    /// Maps `len` bytes of anonymous, private memory, populated up front so
    /// that the kernel never faults on the packet path.
    pub fn anonymous(len: usize) -> Result<Self> {
        // SAFETY: a fresh anonymous mapping aliases no Rust object; a failed
        // call returns MAP_FAILED (-1 as a pointer), checked below.
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
