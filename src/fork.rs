//! Which process this is, as far as `fork()` goes.
//!
//! A child forked from a process has a copy of its memory but only the thread that forked:
//! the store's writer thread and the webhook's alert thread are gone, and the parent's open
//! files and locks must not be used. The binding registers [`after_fork_in_child`] with
//! `os.register_at_fork`, so every fork Python knows of (`os.fork`, `multiprocessing`,
//! gunicorn, celery) moves the [`generation`] on; the store and the webhook compare it with
//! the one they were opened in and start their own writer in the child, lazily, on first use.
//! The check is one relaxed atomic load: cheap enough for every appended record.

use std::sync::atomic::{AtomicU64, Ordering};

/// Forks since this library was loaded, along this process's line of ancestors.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The current process's generation: 0 in the process that loaded the library, one more in
/// each forked child.
pub fn generation() -> u64 {
    #[cfg(test)]
    {
        GENERATION.load(Ordering::Relaxed) + tests::SIMULATED.with(std::cell::Cell::get)
    }
    #[cfg(not(test))]
    GENERATION.load(Ordering::Relaxed)
}

/// Called in a child right after `fork()`, in the one thread it has: nothing else runs yet,
/// so it only bumps a counter (taking a lock here could wait for a thread that is gone).
pub fn after_fork_in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;

    thread_local! {
        /// Forks simulated by this test thread (tests run in parallel threads of one process,
        /// so a real fork or the global counter would affect the others).
        pub(crate) static SIMULATED: Cell<u64> = const { Cell::new(0) };
    }

    /// Makes this thread behave as if it were a child forked from the process so far.
    pub(crate) fn simulate_fork() {
        SIMULATED.with(|s| s.set(s.get() + 1));
    }

    #[test]
    fn a_fork_moves_the_generation() {
        let g = super::generation();
        simulate_fork();
        assert_eq!(super::generation(), g + 1);
    }
}
