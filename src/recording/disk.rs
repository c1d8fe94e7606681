//! Free space under the recordings directory, so recording stops before the disk is
//! full (and the catalog, `lesson.json` and the rest of the system keep room to write).
//!
//! Invariant: a failed `statvfs` reads as "unknown", never as "full": recording goes
//! on and real write errors still surface as pipeline faults.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Bytes available to this (unprivileged) process on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string and `st` points to writable
    // memory of the right type; statvfs fills it completely when it returns 0.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: rc == 0, so statvfs initialised the struct.
    let st = unsafe { st.assume_init() };
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_free_space_and_unknown_paths_are_unknown() {
        let free = free_bytes(Path::new("/")).expect("the root filesystem exists");
        assert!(free > 0);
        assert_eq!(free_bytes(Path::new("/no/such/dir/anywhere")), None);
        assert_eq!(free_bytes(Path::new("bad\0path")), None);
    }
}
