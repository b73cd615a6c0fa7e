//! A bounded queue between the daemon's loops and a slow consumer: pushing never waits, and a
//! full queue drops its oldest item (counted) to make room, so that a receiver that is down
//! costs memory up to the bound and never time in the loops that emit events.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

/// Items waiting for one consumer.
#[derive(Debug)]
pub struct Queue<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
    ready: Notify,
    dropped: AtomicU64,
}

impl<T> Queue<T> {
    pub fn new(capacity: usize) -> Queue<T> {
        Queue {
            items: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            ready: Notify::new(),
            dropped: AtomicU64::new(0),
        }
    }

    /// Adds `item`; when the queue is full the oldest item is dropped, and returned.
    pub fn push(&self, item: T) -> Option<T> {
        let dropped = {
            let mut items = self
                .items
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            let dropped = if items.len() >= self.capacity {
                items.pop_front()
            } else {
                None
            };
            items.push_back(item);
            dropped
        };
        if dropped.is_some() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.ready.notify_one();
        dropped
    }

    pub fn try_pop(&self) -> Option<T> {
        let mut items = self
            .items
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        items.pop_front()
    }

    /// The oldest item, waiting for one. Cancel-safe: an item is taken only when returned.
    pub async fn pop(&self) -> T {
        loop {
            if let Some(item) = self.try_pop() {
                return item;
            }
            self.ready.notified().await;
        }
    }

    /// How many items a full queue dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        let items = self
            .items
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let queue = Queue::new(3);
        for n in 1..=3 {
            assert_eq!(queue.push(n), None);
        }
        assert_eq!(queue.push(4), Some(1));
        assert_eq!(queue.push(5), Some(2));
        assert_eq!(queue.dropped(), 2);
        assert_eq!(queue.len(), 3);
        let left: Vec<i32> = std::iter::from_fn(|| queue.try_pop()).collect();
        assert_eq!(left, [3, 4, 5]);
        assert!(queue.is_empty());
    }

    #[tokio::test]
    async fn pop_waits_for_a_push() {
        let queue = std::sync::Arc::new(Queue::new(2));
        let consumer = tokio::spawn({
            let queue = queue.clone();
            async move { queue.pop().await }
        });
        tokio::task::yield_now().await;
        queue.push("event");
        let popped = tokio::time::timeout(std::time::Duration::from_secs(5), consumer).await;
        assert_eq!(popped.expect("in time").expect("joined"), "event");
    }
}
