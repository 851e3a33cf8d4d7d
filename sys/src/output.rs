//! Opening a capture's output file safely: never through a link or into a
//! file someone else planted where anyone may create files.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// Whether `dir` is world-writable and sticky (as /tmp): anyone may create
/// a name there, so a name may be a trap.
fn shared_directory(dir: &Path) -> bool {
    std::fs::metadata(dir)
        .map(|m| m.permissions().mode() & 0o1002 == 0o1002)
        .unwrap_or(false)
}

/// Opens `path` for writing without truncating it; returns the file and
/// whether this call created it. A new file is created exclusively
/// (`O_EXCL`) with mode 0666 less the umask (0644 under the usual 022), as
/// tcpdump does. In a world-writable sticky directory an existing name is
/// opened only if it is a regular file of this user, never through a
/// symbolic link (`O_NOFOLLOW`).
///
/// # Errors
/// [`Error::Output`] with the system's reason, [`Error::OutputUnsafe`] for a
/// link or another user's file in a shared directory.
pub fn open_output(path: &Path) -> Result<(File, bool)> {
    let failed = |error: io::Error| Error::Output {
        path: path.to_path_buf(),
        error,
    };
    let dir = xsktap_core::rotation::directory_of(path);
    let shared = shared_directory(dir);
    let mut create = OpenOptions::new();
    create.write(true).create_new(true);
    if shared {
        create.custom_flags(libc::O_NOFOLLOW);
    }
    match create.open(path) {
        Ok(file) => return Ok((file, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(failed(e)),
    }
    let mut existing = OpenOptions::new();
    existing.write(true);
    if !shared {
        return existing.open(path).map(|f| (f, false)).map_err(failed);
    }
    let unsafe_output = |why| Error::OutputUnsafe {
        path: path.to_path_buf(),
        why,
    };
    let file = existing
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => unsafe_output("it is a symbolic link"),
            _ => failed(e),
        })?;
    let meta = file.metadata().map_err(failed)?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.is_file() && meta.uid() != me {
        return Err(unsafe_output("it belongs to another user"));
    }
    Ok((file, false))
}

/// Whether `e` says the disk (or the user's quota) is full.
pub fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// The size in bytes of the file system that holds `dir`.
///
/// # Errors
/// The system's error from statvfs(2).
pub fn filesystem_bytes(dir: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_dir = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: statvfs is plain data; all-zero is a valid value to overwrite.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a valid statvfs to fill.
    if unsafe { libc::statvfs(c_dir.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_blocks as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_is_created_and_an_existing_one_kept() {
        let dir = std::env::temp_dir().join(format!("xsktap-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.pcap");
        let (_, created) = open_output(&path).unwrap();
        assert!(created);
        std::fs::write(&path, b"keep").unwrap();
        let (_, created) = open_output(&path).unwrap();
        assert!(!created);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"keep",
            "never truncated here"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_link_in_a_shared_directory_is_refused() {
        let dir = std::env::temp_dir().join(format!("xsktap-sticky-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let target = std::env::temp_dir().join(format!("xsktap-target-{}", std::process::id()));
        std::fs::write(&target, b"precious").unwrap();
        let link = dir.join("out.pcap");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = open_output(&link).unwrap_err();
        assert!(matches!(err, Error::OutputUnsafe { .. }), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_file(&target).unwrap();
    }
}
