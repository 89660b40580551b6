//! A few threads working through a list: the layers of a pull or a push.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::Result;

/// Runs `work` on each of `items`, at most `workers` at once. After the
/// first error no new item starts; that error is returned once the items
/// already started have finished.
pub fn try_for_each<T: Sync>(
    items: &[T],
    workers: usize,
    work: impl Fn(&T) -> Result<()> + Sync,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers.min(items.len()) {
            scope.spawn(|| loop {
                if first_error.lock().unwrap().is_some() {
                    return;
                }
                let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    return;
                };
                if let Err(err) = work(item) {
                    first_error.lock().unwrap().get_or_insert(err);
                }
            });
        }
    });
    match first_error.into_inner().unwrap() {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_once_or_the_first_error() {
        let done = Mutex::new(vec![]);
        try_for_each(&[1, 2, 3, 4, 5, 6, 7], 3, |n| {
            done.lock().unwrap().push(*n);
            Ok(())
        })
        .unwrap();
        let mut done = done.into_inner().unwrap();
        done.sort();
        assert_eq!(done, [1, 2, 3, 4, 5, 6, 7]);

        let err = try_for_each(&[1, 2, 3], 1, |n| {
            if *n == 2 {
                anyhow::bail!("item {n} failed")
            }
            Ok(())
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "item 2 failed");
        assert!(try_for_each(&[] as &[u8], 4, |_| Ok(())).is_ok());
    }
}
