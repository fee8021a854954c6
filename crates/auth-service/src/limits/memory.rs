//! The in-process store: fixed windows and failure counts in one map, timed by the service
//! [`Clock`] so tests can expire them by moving a manual clock.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::{KeyDigest, Scope};
use crate::clock::Clock;
use crate::config::Rate;

/// Entries kept before the first sweep of expired ones; later sweeps wait until the map has
/// doubled since the last one, so sweeping stays cheap per request and memory stays bounded
/// by the keys seen within one window or lockout.
const PRUNE_FLOOR: usize = 1024;

pub(super) struct Memory {
    clock: Clock,
    state: Mutex<State>,
}

struct State {
    windows: HashMap<(Scope, KeyDigest), Window>,
    failures: HashMap<KeyDigest, Failures>,
    prune_at: usize,
}

/// Requests counted in the window that ends at `ends`.
struct Window {
    count: u32,
    ends: DateTime<Utc>,
}

/// Consecutive failures; forgotten at `expires`, which is `lockout` after the last one.
struct Failures {
    count: u32,
    expires: DateTime<Utc>,
}

impl Memory {
    pub(super) fn new(clock: Clock) -> Self {
        Self {
            clock,
            state: Mutex::new(State {
                windows: HashMap::new(),
                failures: HashMap::new(),
                prune_at: PRUNE_FLOOR,
            }),
        }
    }

    /// A poisoned lock only means another request panicked mid-update of plain counters; the
    /// counts are still usable, and refusing every login over it would be worse.
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn hit(&self, scope: Scope, key: &KeyDigest, rate: Rate) -> Result<(), Duration> {
        let now = self.clock.now();
        let mut state = self.state();
        state.prune_if_large(now);
        let window = state.windows.entry((scope, *key)).or_insert(Window {
            count: 0,
            ends: now,
        });
        if window.ends <= now {
            *window = Window {
                count: 0,
                ends: after(now, rate.per),
            };
        }
        window.count = window.count.saturating_add(1);
        if window.count > rate.max {
            Err(remaining(window.ends, now))
        } else {
            Ok(())
        }
    }

    pub(super) fn locked(&self, key: &KeyDigest, limit: u32) -> Option<Duration> {
        let now = self.clock.now();
        let state = self.state();
        let failures = state.failures.get(key)?;
        (failures.count >= limit && failures.expires > now)
            .then(|| remaining(failures.expires, now))
    }

    pub(super) fn record_failure(
        &self,
        key: &KeyDigest,
        limit: u32,
        lockout: Duration,
    ) -> Option<Duration> {
        let now = self.clock.now();
        let mut state = self.state();
        state.prune_if_large(now);
        let failures = state.failures.entry(*key).or_insert(Failures {
            count: 0,
            expires: now,
        });
        if failures.expires <= now {
            failures.count = 0;
        }
        // Failures while locked do not extend the lock: the caller refuses those attempts
        // before checking a password, so they are not evidence of new guessing.
        if failures.count >= limit {
            return None;
        }
        failures.count += 1;
        failures.expires = after(now, lockout);
        (failures.count == limit).then_some(lockout)
    }

    pub(super) fn reset(&self, key: &KeyDigest) {
        self.state().failures.remove(key);
    }
}

impl State {
    fn prune_if_large(&mut self, now: DateTime<Utc>) {
        if self.windows.len() + self.failures.len() < self.prune_at {
            return;
        }
        self.windows.retain(|_, window| window.ends > now);
        self.failures.retain(|_, failures| failures.expires > now);
        let live = self.windows.len() + self.failures.len();
        self.prune_at = PRUNE_FLOOR.max(live.saturating_mul(2));
    }
}

/// `now + span`, saturating instead of overflowing on absurd configured durations.
fn after(now: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(span)
        .ok()
        .and_then(|span| now.checked_add_signed(span))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn remaining(until: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    super::at_least_a_millisecond((until - now).to_std().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> KeyDigest {
        KeyDigest::of(text)
    }

    #[test]
    fn expired_entries_are_swept_once_the_map_grows() {
        let clock = Clock::manual();
        let memory = Memory::new(clock.clone());
        let rate = Rate::new(1, Duration::from_secs(60));
        for n in 0..PRUNE_FLOOR {
            let _ = memory.hit(Scope::LoginIp, &key(&n.to_string()), rate);
        }

        clock.advance(Duration::from_secs(61));
        let _ = memory.hit(Scope::LoginIp, &key("fresh"), rate);

        assert_eq!(memory.state().windows.len(), 1);
    }

    #[test]
    fn failures_while_locked_do_not_extend_the_lock() {
        let clock = Clock::manual();
        let memory = Memory::new(clock.clone());
        let lockout = Duration::from_secs(900);
        let identifier = key("email:alice@example.com");
        for _ in 0..3 {
            memory.record_failure(&identifier, 3, lockout);
        }

        clock.advance(Duration::from_secs(600));
        let again = memory.record_failure(&identifier, 3, lockout);

        assert_eq!(again, None);
        assert_eq!(
            memory.locked(&identifier, 3),
            Some(Duration::from_secs(300))
        );
    }
}
