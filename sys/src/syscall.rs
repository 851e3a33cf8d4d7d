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
