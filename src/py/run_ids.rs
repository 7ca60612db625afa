//! Run ids (`uuid.UUID`) as `u128`, remembered per thread by object.
//!
//! LangChain passes the same `UUID` object to every event of a run (start, each streamed
//! chunk, end) and as the parent id of its children's events. Converting one costs an
//! attribute read and, under the limited API, a 128-bit integer conversion that allocates
//! (~40 ns); each thread keeps the objects it converted lately, by address, with a
//! reference that keeps the address from being reused while it is remembered.

use std::cell::RefCell;

use pyo3::prelude::*;
use uuid::Uuid;

/// Remembered objects per thread (direct-mapped by address; a collision replaces).
const SLOTS: usize = 512;

/// A thread's remembered objects and their ids, by slot.
type Seen = Vec<Option<(Py<PyAny>, u128)>>;

thread_local! {
    static SEEN: RefCell<Seen> = const { RefCell::new(Vec::new()) };
}

fn slot_of(obj: &Bound<'_, PyAny>) -> usize {
    // Objects are at least 16-byte aligned: a multiplicative hash of the address spreads them.
    let addr = obj.as_ptr() as usize as u64;
    // The top bits of the product index the table (SLOTS is a power of two).
    #[allow(clippy::cast_possible_truncation)]
    let slot = (addr.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros())) as usize;
    slot
}

/// `obj` (a `uuid.UUID`) as a `u128`.
pub fn run_id(obj: &Bound<'_, PyAny>) -> PyResult<u128> {
    let slot = slot_of(obj);
    let known = SEEN
        .try_with(|seen| {
            let seen = seen.try_borrow().ok()?;
            match seen.get(slot) {
                Some(Some((o, id))) if o.as_ptr() == obj.as_ptr() => Some(*id),
                _ => None,
            }
        })
        .ok()
        .flatten();
    if let Some(id) = known {
        return Ok(id);
    }
    let id = obj.extract::<Uuid>()?.as_u128();
    let _ = SEEN.try_with(|seen| {
        if let Ok(mut seen) = seen.try_borrow_mut() {
            if seen.is_empty() {
                seen.resize_with(SLOTS, || None);
            }
            // The entry replaced (if any) is dropped here, with the thread attached.
            seen[slot] = Some((obj.clone().unbind(), id));
        }
    });
    Ok(id)
}
