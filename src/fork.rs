//! Which process this is, as far as `fork()` goes.
//!
//! A child forked from a process has a copy of its memory but only the thread that forked:
//! the store's writer thread and the webhook's alert thread are gone, and the parent's open
//! files and locks must not be used. The binding registers [`after_fork_in_child`] with
//! `os.register_at_fork`, so every fork Python knows of (`os.fork`, `multiprocessing`,
//! gunicorn, celery) moves the [`generation`] on; the store and the webhook compare it with
//! the one they were opened in and start their own writer in the child, lazily, on first use.
//! The check is one relaxed atomic load: cheap enough for every appended record.
//!
//! A fork copies the memory of locks held by threads the child does not get: had the writer
//! thread been inside SQLite (which holds process-wide mutexes while it opens, locks and
//! commits) at the moment of the fork, the child's first open of the ledger would wait on a
//! mutex nobody will ever release, and hang. So ledger I/O runs in [`writing`] sections, and
//! [`before_fork`] (registered as `os.register_at_fork(before=...)`) waits until none is in
//! progress and holds new ones back until the fork is done.
//!
//! The trackers' own locks (open runs, records, held prompts, budgets, metrics) are taken by
//! the hooks. Most of a hook runs with the GIL, which the forking thread needs too, and takes
//! and releases its locks in Rust code that runs no Python, so no fork can happen while such a
//! lock is held. But some hook work runs with the GIL released (the end of a call whose tokens
//! are counted, a shared budget store's request, long tokenizing): a fork from another thread
//! at that moment would copy a tracker's mutex locked by a thread the child does not have, and
//! the child's first call on that tracker would wait for ever. So that work runs in
//! [`hook_work`] sections, which [`before_fork`] waits out first (as it waits out ledger I/O).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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

/// A fork is about to happen: ledger I/O waits.
static FORKING: AtomicBool = AtomicBool::new(false);
/// Ledger I/O sections in progress.
static WRITING: AtomicUsize = AtomicUsize::new(0);
/// The longest a fork waits for ledger I/O in progress (a write stalled on a locked disk
/// must not stall the fork for ever; the child is then as unsafe as without the wait).
const FORK_WAIT: Duration = Duration::from_secs(5);

/// A fork is about to happen: hook work without the GIL waits.
static FORKING_HOOKS: AtomicBool = AtomicBool::new(false);
/// Hook work sections without the GIL in progress.
static HOOK_WORK: AtomicUsize = AtomicUsize::new(0);

/// A section of hook work without the GIL (see [`hook_work`]); it ends when dropped.
#[must_use]
pub struct HookWork(());

impl Drop for HookWork {
    fn drop(&mut self) {
        HOOK_WORK.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Enters a section of hook work that runs with the GIL released and may take a tracker's
/// locks: at once, unless a fork is under way, which it waits out. Call it with the GIL
/// released and no lock held (it may wait). Ledger I/O ([`writing`]) may run inside it.
pub fn hook_work() -> HookWork {
    enter(&HOOK_WORK, &FORKING_HOOKS);
    HookWork(())
}

/// Counts a section in `count`, once `forking` is not set (waiting it out, no lock held).
fn enter(count: &AtomicUsize, forking: &AtomicBool) {
    loop {
        count.fetch_add(1, Ordering::SeqCst);
        if !forking.load(Ordering::SeqCst) {
            return;
        }
        count.fetch_sub(1, Ordering::SeqCst);
        while forking.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

/// Sets `forking` and waits until `count` is 0 or `deadline` is past.
fn hold_back(count: &AtomicUsize, forking: &AtomicBool, deadline: Instant) {
    forking.store(true, Ordering::SeqCst);
    while count.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// A section of ledger I/O (see [`writing`]); it ends when dropped.
#[must_use]
pub struct Writing(());

impl Drop for Writing {
    fn drop(&mut self) {
        WRITING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Enters a section of ledger I/O (SQLite or file work that may take process-wide locks):
/// at once, unless a fork is under way, which it waits out. Sections must not nest.
pub fn writing() -> Writing {
    enter(&WRITING, &FORKING);
    Writing(())
}

/// Called right before `fork()`: holds new hook work without the GIL back and waits until the
/// sections in progress are done, then does the same for ledger I/O (which hook work may do:
/// ledger I/O is only held back once no hook work is left to wait for it), each at most
/// `FORK_WAIT`, so that no lock of theirs is copied held.
pub fn before_fork() {
    let deadline = Instant::now() + FORK_WAIT;
    hold_back(&HOOK_WORK, &FORKING_HOOKS, deadline);
    hold_back(&WRITING, &FORKING, deadline + FORK_WAIT);
}

/// Called in the parent right after `fork()`: hook work and ledger I/O go on.
pub fn after_fork_in_parent() {
    FORKING.store(false, Ordering::SeqCst);
    FORKING_HOOKS.store(false, Ordering::SeqCst);
}

/// Called in a child right after `fork()`, in the one thread it has: nothing else runs yet,
/// so it only sets counters (taking a lock here could wait for a thread that is gone).
pub fn after_fork_in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
    // Sections of threads the child does not have are not in progress here.
    WRITING.store(0, Ordering::SeqCst);
    HOOK_WORK.store(0, Ordering::SeqCst);
    FORKING.store(false, Ordering::SeqCst);
    FORKING_HOOKS.store(false, Ordering::SeqCst);
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;

    thread_local! {
        /// Forks simulated by this test thread (tests run in parallel threads of one process,
        /// so a real fork or the global counter would affect the others).
        pub(crate) static SIMULATED: Cell<u64> = const { Cell::new(0) };
    }

    /// The tests that fork (simulated) one at a time: they share the process's counters.
    static FORKS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Makes this thread behave as if it were a child forked from the process so far.
    pub(crate) fn simulate_fork() {
        SIMULATED.with(|s| s.set(s.get() + 1));
    }

    #[test]
    fn a_fork_waits_for_ledger_io_in_progress_and_holds_new_io_back() {
        use std::sync::atomic::Ordering;
        use std::time::{Duration, Instant};
        let _one = FORKS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Other tests write ledgers in parallel threads of this process: they only make the
        // fork below wait for them too.
        let section = super::writing();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(section);
        });
        let t0 = Instant::now();
        super::before_fork();
        assert!(
            t0.elapsed() >= Duration::from_millis(150),
            "{:?}",
            t0.elapsed()
        );
        assert!(super::FORKING.load(Ordering::SeqCst));
        let held_back = std::thread::spawn(|| {
            let t = Instant::now();
            let _s = super::writing();
            t.elapsed()
        });
        std::thread::sleep(Duration::from_millis(100));
        super::after_fork_in_parent();
        assert!(held_back.join().unwrap() >= Duration::from_millis(50));
        writer.join().unwrap();
    }

    #[test]
    fn a_fork_waits_for_hook_work_then_holds_it_back_and_ledger_io_inside_it_goes_on() {
        use std::sync::atomic::Ordering;
        use std::time::{Duration, Instant};
        let _one = FORKS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Hook work that does ledger I/O after the fork began to wait for it: the I/O must
        // not wait for the fork (that would stall both for FORK_WAIT).
        let work = super::hook_work();
        let worker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            let t = Instant::now();
            let io = super::writing();
            let io_wait = t.elapsed();
            drop(io);
            drop(work);
            io_wait
        });
        let t0 = Instant::now();
        super::before_fork();
        let waited = t0.elapsed();
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert!(waited < Duration::from_secs(4), "{waited:?}");
        assert!(super::FORKING_HOOKS.load(Ordering::SeqCst));
        let held_back = std::thread::spawn(|| {
            let t = Instant::now();
            let _w = super::hook_work();
            t.elapsed()
        });
        std::thread::sleep(Duration::from_millis(100));
        super::after_fork_in_parent();
        assert!(held_back.join().unwrap() >= Duration::from_millis(50));
        assert!(worker.join().unwrap() < Duration::from_millis(50));
    }

    #[test]
    fn a_fork_moves_the_generation() {
        let g = super::generation();
        simulate_fork();
        assert_eq!(super::generation(), g + 1);
    }
}
