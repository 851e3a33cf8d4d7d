//! Running as another user once the privileged work is done (`-Z USER`, as
//! tcpdump's): the user's ids and groups from the password database, and
//! the switch that leaves no capability behind.

use std::ffi::CString;
use std::io;

use crate::error::{syscall_error, Error, Result};

/// A user to switch to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The name given.
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
    /// Every group it belongs to, the primary one included.
    pub groups: Vec<u32>,
}

impl User {
    /// Looks `name` up in the password and group databases (getpwnam_r,
    /// getgrouplist), so files, NSS and LDAP users work as for tcpdump.
    ///
    /// # Errors
    /// [`Error::Config`] when there is no such user.
    pub fn lookup(name: &str) -> Result<User> {
        let unknown = || {
            Error::Config(format!(
                "-Z {name}: no such user (give a user name from /etc/passwd, such as nobody)"
            ))
        };
        let c_name = CString::new(name).map_err(|_| unknown())?;
        // SAFETY: passwd is plain data; all-zero is a valid value to overwrite.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut buf = vec![0u8; 16 * 1024];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call and buf has buf.len()
        // bytes; getpwnam_r writes the strings it points pwd at into buf.
        let rc = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc != 0 || found.is_null() {
            return Err(unknown());
        }
        let (uid, gid) = (pwd.pw_uid, pwd.pw_gid);
        let mut groups = vec![0 as libc::gid_t; 256];
        let mut n = groups.len() as libc::c_int;
        // SAFETY: the name is a valid C string, groups has n writable
        // entries, and n is updated with the count (or the count needed).
        let rc = unsafe { libc::getgrouplist(c_name.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        if rc < 0 {
            return Err(Error::Config(format!(
                "-Z {name}: the user belongs to more than {} groups",
                groups.len()
            )));
        }
        groups.truncate(n.max(0) as usize);
        if !groups.contains(&gid) {
            groups.push(gid);
        }
        Ok(User {
            name: name.to_string(),
            uid,
            gid,
            groups,
        })
    }

    /// Switches every thread of the process to this user, its groups and
    /// no capability at all: setgroups, setresgid and setresuid (glibc
    /// applies each to every thread), then checks that the effective and
    /// permitted capability sets are empty.
    ///
    /// # Errors
    /// [`Error::Syscall`] naming the call that failed, or a capability left.
    pub fn switch_to(&self) -> Result<()> {
        // SAFETY: groups holds groups.len() valid gids.
        if unsafe { libc::setgroups(self.groups.len(), self.groups.as_ptr()) } != 0 {
            return Err(syscall_error("setgroups", io::Error::last_os_error()));
        }
        // SAFETY: no pointers; sets the real, effective and saved group ids.
        if unsafe { libc::setresgid(self.gid, self.gid, self.gid) } != 0 {
            return Err(syscall_error("setresgid", io::Error::last_os_error()));
        }
        // SAFETY: no pointers. Leaving uid 0 for a non-zero uid in all three
        // ids clears the permitted, effective and ambient capabilities.
        if unsafe { libc::setresuid(self.uid, self.uid, self.uid) } != 0 {
            return Err(syscall_error("setresuid", io::Error::last_os_error()));
        }
        let eff = crate::caps::effective_capabilities()?;
        if eff != 0 && self.uid != 0 {
            return Err(syscall_error(
                "setresuid",
                io::Error::other(format!("capabilities {eff:#x} remain after the switch")),
            ));
        }
        Ok(())
    }
}

impl User {
    /// Whether this user may create a file in `dir`, tried for real: a
    /// thread of its own takes the user's groups and file-system ids (raw
    /// syscalls, which change that thread alone, where glibc's wrappers
    /// change every thread), creates and removes a file, and ends. So modes,
    /// ACLs, read-only mounts and security modules all have their say.
    ///
    /// # Errors
    /// Why the file could not be created (`Permission denied`, …).
    pub fn can_create_in(&self, dir: &std::path::Path) -> io::Result<()> {
        let probe = dir.join(format!(".xsktap-probe-{}", std::process::id()));
        std::thread::scope(|s| {
            s.spawn(|| -> io::Result<()> {
                // SAFETY: groups holds groups.len() valid gids; the raw
                // syscall sets this thread's supplementary groups only.
                let rc = unsafe {
                    libc::syscall(libc::SYS_setgroups, self.groups.len(), self.groups.as_ptr())
                };
                if rc != 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: no pointers; this thread's file-system group and
                // user ids (which also drop its file capabilities). Both
                // return the previous id, not an error: -1 reads them back.
                let (gid, uid) = unsafe {
                    libc::syscall(libc::SYS_setfsgid, self.gid);
                    libc::syscall(libc::SYS_setfsuid, self.uid);
                    (
                        libc::syscall(libc::SYS_setfsgid, u32::MAX),
                        libc::syscall(libc::SYS_setfsuid, u32::MAX),
                    )
                };
                if (gid, uid) != (self.gid as libc::c_long, self.uid as libc::c_long) {
                    return Err(io::Error::other(format!(
                        "cannot take uid {} and gid {} to try (kept {uid} and {gid})",
                        self.uid, self.gid
                    )));
                }
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&probe)?;
                std::fs::remove_file(&probe)
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the probing thread panicked")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_looked_up_and_unknown_ones_named() {
        let root = User::lookup("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.groups.contains(&0));
        let err = User::lookup("no-such-user-xsktap").unwrap_err().to_string();
        assert!(
            err.contains("-Z no-such-user-xsktap: no such user"),
            "{err}"
        );
    }

    #[test]
    fn creating_files_is_tried_as_the_user_on_its_own_thread() {
        // SAFETY: no pointers.
        if unsafe { libc::geteuid() } != 0 {
            let why = "user::creating_files_is_tried_as_the_user_on_its_own_thread: needs root";
            eprintln!("skipped: {why}");
            // tools/test.sh counts the skipped tests from this file.
            if let Some(path) = std::env::var_os("XSKTAP_TEST_SKIPPED") {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(path);
                let _ = f.as_mut().map(|f| writeln!(f, "{why}"));
            }
            return;
        }
        let nobody = User::lookup("nobody").unwrap();
        let dir = std::env::temp_dir().join(format!("xsktap-user-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mode = |m| {
            std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap()
        };
        mode(0o755);
        let refused = nobody.can_create_in(&dir).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
        mode(0o777);
        nobody.can_create_in(&dir).unwrap();
        // The rest of the process kept its ids: root still writes here.
        mode(0o755);
        std::fs::write(dir.join("root"), b"x").unwrap();
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "the probe is gone"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
