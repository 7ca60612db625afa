//! Model, provider and price-entry names as shared strings: they recur call after call, so
//! the records of one model share one allocation instead of holding a copy each.

use std::sync::Arc;

/// A name that recurs call after call (model, provider) as a shared string: each thread keeps
/// the last few it made, so the records of a model share one allocation instead of one each.
pub fn shared_name(name: &str) -> Arc<str> {
    const KEPT: usize = 8;
    thread_local! {
        static NAMES: std::cell::RefCell<(Vec<Arc<str>>, usize)> =
            const { std::cell::RefCell::new((Vec::new(), 0)) };
    }
    NAMES
        .try_with(|names| {
            let (kept, next) = &mut *names.borrow_mut();
            if let Some(n) = kept.iter().find(|n| ***n == *name) {
                return n.clone();
            }
            let n: Arc<str> = Arc::from(name);
            if kept.len() < KEPT {
                kept.push(n.clone());
            } else {
                kept[*next] = n.clone();
                *next = (*next + 1) % KEPT;
            }
            n
        })
        .unwrap_or_else(|_| Arc::from(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_names_are_one_allocation_per_recent_name() {
        let a = shared_name("gpt-4o-mini");
        let b = shared_name("gpt-4o-mini");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*a, "gpt-4o-mini");
        // Names beyond the few kept are still right, just not shared.
        let names: Vec<String> = (0..20).map(|i| format!("model-{i}")).collect();
        for n in &names {
            assert_eq!(&*shared_name(n), n.as_str());
        }
        assert_eq!(&*shared_name("gpt-4o-mini"), "gpt-4o-mini");
        // Another thread keeps its own.
        let other = std::thread::spawn(|| shared_name("gpt-4o-mini"))
            .join()
            .unwrap();
        assert_eq!(other, a);
    }
}
