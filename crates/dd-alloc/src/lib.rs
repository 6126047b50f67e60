//! The global allocator the `deepdecipher` binary and the benchmarks use, and its one setting.
//!
//! A forward pass allocates a fresh tensor per op, gigabytes per batch on the larger models.
//! glibc returned those pages to the OS and faulted them back in on every batch; mimalloc keeps
//! them, but by default still returns ("purges") pages that stay free for a while, and a recording
//! leaves the forward pass's pages free while its accumulators run. Over 16k tokens of gpt2-small
//! that cost 1.3 million page faults and a fifth of the forward pass's speed (`docs/benchmarks.md`).

/// The allocator to declare as `#[global_allocator]`.
pub use mimalloc::MiMalloc as Allocator;

/// mimalloc's `mi_option_purge_delay` (`mimalloc.h`, v3, the version `mimalloc` builds by default).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to return freed pages to the OS, so they are reused without page faults;
/// the process keeps its high-water mark of memory. Call it first thing in `main`, before other
/// threads start: mimalloc's options are plain globals.
pub fn keep_freed_pages() {
    // SAFETY: the call takes two integers and writes one option slot; mimalloc documents option
    // setters as not thread-safe, and callers make it before starting threads (see above).
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    /// Set in the child process of [`the_option_number_is_the_purge_delay`].
    const CHILD: &str = "DD_ALLOC_PURGE_DELAY_CHILD";

    /// mimalloc reads `MIMALLOC_PURGE_DELAY` into the purge delay option: a child process started
    /// with it must see the value in the slot this crate sets, so the number is the right one.
    #[test]
    fn the_option_number_is_the_purge_delay() {
        let status = Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "tests::child_reads_the_environment", "--test-threads=1"])
            .env(CHILD, "1")
            .env("MIMALLOC_PURGE_DELAY", "4321")
            .status()
            .expect("run the child");
        assert!(status.success(), "the child saw another value in the purge delay slot");
    }

    /// The purge delay option as mimalloc reads it.
    fn purge_delay() -> std::ffi::c_long {
        // SAFETY: reads one option slot.
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_option_get(super::PURGE_DELAY)
        }
    }

    #[test]
    fn child_reads_the_environment() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        assert_eq!(purge_delay(), 4321);
    }

    #[test]
    fn keeping_freed_pages_takes_effect() {
        super::keep_freed_pages();
        assert_eq!(purge_delay(), -1);
    }
}
