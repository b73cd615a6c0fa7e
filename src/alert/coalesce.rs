//! Coalescing: the first event of a kind for a process goes out at once; those that follow
//! within `min_interval` of it are folded into one, sent when the interval is over with the
//! number it stands for. A flapping process pages a person once a `min_interval`, not once a
//! restart. Pure: the caller passes the time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::config::EventKind;

use super::event::Event;

/// An event to send now, standing for `count` of its kind and process since `first_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub event: Event,
    pub count: u32,
    pub first_at: DateTime<Utc>,
}

/// What is known of one kind for one process.
#[derive(Debug)]
struct Slot {
    /// When the last one went out.
    sent_at: Instant,
    /// Those folded since, the latest standing for them all.
    pending: Option<Outgoing>,
}

#[derive(Debug)]
pub struct Coalescer {
    min_interval: Duration,
    slots: HashMap<(EventKind, Option<String>), Slot>,
}

impl Coalescer {
    pub fn new(min_interval: Duration) -> Coalescer {
        Coalescer {
            min_interval,
            slots: HashMap::new(),
        }
    }

    /// Takes `event`, seen at `now`: `Some` to send it now, `None` when it was folded into one
    /// to be sent by [`Coalescer::due`].
    pub fn offer(&mut self, event: Event, now: Instant) -> Option<Outgoing> {
        let key = (event.kind, event.process.clone());
        let min_interval = self.min_interval;
        match self.slots.get_mut(&key) {
            Some(slot) if now.saturating_duration_since(slot.sent_at) < min_interval => {
                let pending = slot.pending.get_or_insert_with(|| Outgoing {
                    first_at: event.at,
                    count: 0,
                    event: event.clone(),
                });
                pending.count += 1;
                pending.event = event;
                None
            }
            Some(slot) => {
                slot.sent_at = now;
                let (count, first_at) = match slot.pending.take() {
                    Some(pending) => (pending.count + 1, pending.first_at),
                    None => (1, event.at),
                };
                Some(Outgoing {
                    event,
                    count,
                    first_at,
                })
            }
            None => {
                let slot = Slot {
                    sent_at: now,
                    pending: None,
                };
                self.slots.insert(key, slot);
                Some(Outgoing {
                    first_at: event.at,
                    event,
                    count: 1,
                })
            }
        }
    }

    /// The folded events whose interval is over at `now`, oldest slot first; slots with
    /// nothing pending and whose interval is over are forgotten.
    pub fn due(&mut self, now: Instant) -> Vec<Outgoing> {
        let min_interval = self.min_interval;
        let mut due = Vec::new();
        self.slots.retain(|_, slot| {
            if now.saturating_duration_since(slot.sent_at) < min_interval {
                return true;
            }
            match slot.pending.take() {
                Some(pending) => {
                    due.push((slot.sent_at, pending));
                    slot.sent_at = now;
                    true
                }
                None => false,
            }
        });
        due.sort_by_key(|(sent_at, pending)| (*sent_at, pending.first_at));
        due.into_iter().map(|(_, pending)| pending).collect()
    }

    /// When [`Coalescer::due`] will next have something, if anything is pending.
    pub fn next_due(&self) -> Option<Instant> {
        self.slots
            .values()
            .filter(|slot| slot.pending.is_some())
            .map(|slot| slot.sent_at + self.min_interval)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(process: &str) -> Event {
        Event::new(EventKind::RestartFailed, Some(process), "restart failed")
    }

    #[test]
    fn the_first_goes_out_at_once_and_the_rest_within_the_interval_as_one() {
        let start = Instant::now();
        let minute = Duration::from_secs(60);
        let mut coalescer = Coalescer::new(minute);
        let first = coalescer
            .offer(failed("a"), start)
            .expect("the first at once");
        assert_eq!(first.count, 1);
        for second in 1..=4 {
            let at = start + Duration::from_secs(second);
            assert_eq!(coalescer.offer(failed("a"), at), None, "folded");
        }
        assert_eq!(coalescer.next_due(), Some(start + minute));
        assert!(coalescer.due(start + Duration::from_secs(59)).is_empty());
        let due = coalescer.due(start + minute);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].count, 4);
        assert!(due[0].first_at <= due[0].event.at);
        assert_eq!(coalescer.next_due(), None);
    }

    #[test]
    fn kinds_and_processes_are_coalesced_apart() {
        let now = Instant::now();
        let mut coalescer = Coalescer::new(Duration::from_secs(60));
        assert!(coalescer.offer(failed("a"), now).is_some());
        assert!(coalescer.offer(failed("b"), now).is_some());
        let opened = Event::new(EventKind::BreakerOpened, Some("a"), "open");
        assert!(coalescer.offer(opened, now).is_some());
        let down = Event::new(EventKind::DatabaseDown, None, "down");
        assert!(coalescer.offer(down.clone(), now).is_some());
        assert!(coalescer.offer(down, now).is_none());
    }

    #[test]
    fn after_the_interval_an_event_goes_out_at_once_with_what_was_folded() {
        let start = Instant::now();
        let mut coalescer = Coalescer::new(Duration::from_secs(10));
        assert!(coalescer.offer(failed("a"), start).is_some());
        assert!(
            coalescer
                .offer(failed("a"), start + Duration::from_secs(1))
                .is_none()
        );
        let later = coalescer.offer(failed("a"), start + Duration::from_secs(11));
        assert_eq!(later.map(|out| out.count), Some(2));
        // Nothing left over, and a quiet slot is forgotten once its interval is over.
        assert!(coalescer.due(start + Duration::from_secs(30)).is_empty());
        assert!(coalescer.slots.is_empty());
    }

    #[test]
    fn no_interval_means_every_event_goes_out() {
        let now = Instant::now();
        let mut coalescer = Coalescer::new(Duration::ZERO);
        for _ in 0..3 {
            assert_eq!(coalescer.offer(failed("a"), now).map(|o| o.count), Some(1));
        }
    }
}
