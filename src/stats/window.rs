//! Averages and maxima over the retention window without keeping every sample: the window is
//! cut into a fixed number of buckets, each holding the sum, count and maximum of its span.
//! Memory stays the same however long the window or short the interval; the window's edge
//! moves a bucket (retention / 120) at a time.

use std::collections::VecDeque;
use std::time::Duration;

/// How many buckets a window holds.
pub const BUCKETS: u64 = 120;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    index: u64,
    sum: f64,
    count: u64,
    max: f64,
}

/// One metric's history over the retention window.
#[derive(Debug, Clone)]
pub struct Window {
    span: f64,
    buckets: VecDeque<Bucket>,
}

impl Window {
    pub fn new(retention: Duration) -> Window {
        Window {
            span: (retention.as_secs_f64() / BUCKETS as f64).max(0.001),
            buckets: VecDeque::new(),
        }
    }

    /// The bucket that holds time `at` (seconds on the caller's monotonic clock).
    pub fn bucket_of(&self, at: f64) -> u64 {
        (at.max(0.0) / self.span) as u64
    }

    /// Adds one value seen at `at`.
    pub fn add(&mut self, at: f64, value: f64) {
        self.add_aggregate(self.bucket_of(at), value, 1, value);
    }

    /// Adds an aggregate of earlier values (from the database, at start-up) to bucket `index`.
    pub fn add_aggregate(&mut self, index: u64, sum: f64, count: u64, max: f64) {
        if count == 0 || !sum.is_finite() || !max.is_finite() {
            return;
        }
        let position = self.buckets.iter().position(|b| b.index >= index);
        match position {
            Some(i) if self.buckets[i].index == index => {
                let bucket = &mut self.buckets[i];
                bucket.sum += sum;
                bucket.count += count;
                bucket.max = bucket.max.max(max);
            }
            Some(i) => self.buckets.insert(
                i,
                Bucket {
                    index,
                    sum,
                    count,
                    max,
                },
            ),
            None => self.buckets.push_back(Bucket {
                index,
                sum,
                count,
                max,
            }),
        }
        self.forget_before(index.saturating_sub(BUCKETS - 1));
    }

    /// The mean of the values within the window ending at `now`.
    pub fn average(&mut self, now: f64) -> Option<f64> {
        self.forget_before(self.bucket_of(now).saturating_sub(BUCKETS - 1));
        let (sum, count) = self
            .buckets
            .iter()
            .fold((0.0, 0), |(sum, count), b| (sum + b.sum, count + b.count));
        (count > 0).then(|| sum / count as f64)
    }

    /// The largest value within the window ending at `now`.
    pub fn max(&mut self, now: f64) -> Option<f64> {
        self.forget_before(self.bucket_of(now).saturating_sub(BUCKETS - 1));
        self.buckets.iter().map(|b| b.max).reduce(f64::max)
    }

    fn forget_before(&mut self, first: u64) {
        while self.buckets.front().is_some_and(|b| b.index < first) {
            self.buckets.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_and_max_cover_the_window() {
        // 120 s of retention: one bucket per second.
        let mut window = Window::new(Duration::from_secs(120));
        assert_eq!(window.average(0.0), None);
        window.add(0.5, 10.0);
        window.add(1.5, 30.0);
        window.add(1.7, 20.0);
        assert_eq!(window.average(2.0), Some(20.0));
        assert_eq!(window.max(2.0), Some(30.0));
        // At 120.5 s the bucket of 0.5 s has left the window; those of 1.x s have not.
        assert_eq!(window.average(120.5), Some(25.0));
        assert_eq!(window.max(121.5), None);
    }

    #[test]
    fn aggregates_from_the_database_merge_with_new_values() {
        let mut window = Window::new(Duration::from_secs(1200));
        window.add_aggregate(3, 30.0, 3, 15.0);
        window.add_aggregate(1, 2.0, 2, 1.5);
        window.add(35.0, 6.0); // bucket 3 (10 s per bucket)
        assert_eq!(window.average(40.0), Some(38.0 / 6.0));
        assert_eq!(window.max(40.0), Some(15.0));
    }

    #[test]
    fn memory_stays_bounded_however_many_values() {
        let mut window = Window::new(Duration::from_secs(60));
        for i in 0..100_000 {
            window.add(f64::from(i) * 0.01, 1.0);
        }
        assert!(window.buckets.len() <= BUCKETS as usize);
        assert_eq!(window.average(1000.0), Some(1.0));
    }

    #[test]
    fn values_that_are_not_numbers_are_ignored() {
        let mut window = Window::new(Duration::from_secs(60));
        window.add(0.0, f64::NAN);
        assert_eq!(window.average(0.0), None);
    }
}
