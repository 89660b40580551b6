//! A few threads working through a list: the layers of a pull or a push,
//! the records of a large store.

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

/// `work` on each of `items`, by as many threads as the machine has cores
/// (at most 4) when there are enough items to pay for them; the results
/// in the items' order.
pub fn map<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    // A thread costs tens of microseconds: below this, one does it all.
    const WORTH_A_THREAD: usize = 256;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4)
        .min(items.len() / WORTH_A_THREAD);
    if workers <= 1 {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = vec![];
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(index) else {
                            return mine;
                        };
                        mine.push((index, work(item)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("a worker panicked"))
            .collect()
    });
    done.sort_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_keeps_the_order_with_threads_and_without() {
        for count in [3, 2000] {
            let items: Vec<usize> = (0..count).collect();
            let doubled = map(&items, |n| n * 2);
            assert_eq!(doubled, items.iter().map(|n| n * 2).collect::<Vec<_>>());
        }
    }

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
