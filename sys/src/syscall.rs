//! The one place where libc calls are made: each wrapper turns a `-1` return
//! into an error naming the call.

/// Calls a libc function and turns a `-1` return into [`crate::Error::Syscall`]
/// named `$name`. The call itself is unsafe; the caller writes the SAFETY
/// comment for the arguments it passes.
macro_rules! syscall {
    ($name:expr, $call:expr) => {{
        let ret = $call;
        if ret == -1 {
            Err($crate::error::syscall_error(
                $name,
                ::std::io::Error::last_os_error(),
            ))
        } else {
            Ok(ret)
        }
    }};
}
pub(crate) use syscall;

/// Sets socket option `level`/`name` of `fd` to `value`; errors name `call`.
pub(crate) fn setsockopt_at<T>(
    fd: &std::os::fd::OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
    call: &'static str,
) -> crate::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `value` is a live T and we pass its exact size; the kernel only reads it.
    syscall!(call, unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// A datagram socket of `family` (close-on-exec), for interface ioctls and
/// socket options; errors name `call`.
pub(crate) fn dgram_socket(
    family: libc::c_int,
    call: &'static str,
) -> crate::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket(2), no pointers.
    let fd = syscall!(call, unsafe {
        libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
    })?;
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}
