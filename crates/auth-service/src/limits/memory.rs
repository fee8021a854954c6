//! The in-process store: fixed windows and failure counts in one map, timed by the service
//! [`Clock`] so tests can expire them by moving a manual clock.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::digest::KeyDigest;
use super::scope::{at_least_a_millisecond, Attempt, Scope};
use crate::clock::Clock;
use crate::config::Rate;

/// Entries kept before the first sweep of expired ones; later sweeps wait until the map has
/// doubled since the last one, so sweeping stays cheap per request and memory stays bounded
/// by the keys seen within one window or lockout.
const PRUNE_FLOOR: usize = 1024;

/// Hard cap on each of the two maps, so a flood of distinct keys (spoofed or IPv6 clients,
/// made-up login names) cannot grow the process without bound: about 100 bytes an entry,
/// some 20 MB for both maps when full.
const MAX_ENTRIES: usize = 100_000;

/// Least time between two sweeps of a full map. A full map of live entries would otherwise
/// be scanned on every request with a new key, under the lock every request takes.
const FULL_SWEEP_GAP: Duration = Duration::from_secs(1);

pub(super) struct Memory {
    clock: Clock,
    state: Mutex<State>,
}

struct State {
    windows: HashMap<(Scope, KeyDigest), Window>,
    failures: HashMap<KeyDigest, Failures>,
    prune_at: usize,
    /// No sweep of a full map before this.
    next_full_sweep: DateTime<Utc>,
}

/// Requests counted in the window that ends at `ends`.
struct Window {
    count: u32,
    ends: DateTime<Utc>,
}

/// Login attempts since the last correct password; forgotten at `expires`, which is
/// `lockout` after the last counted one.
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
                next_full_sweep: DateTime::<Utc>::MIN_UTC,
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
        let id = (scope, *key);
        // A full map lets a new key through uncounted rather than refusing it: refusing would
        // lock every new client out while the flood lasts, and these are abuse limits, not
        // the lockout, which still guards each login name (see `attempt`).
        if !state.windows.contains_key(&id) {
            state.sweep_if_due(now);
            if state.windows.len() >= MAX_ENTRIES {
                metrics::counter!("auth_rate_limiter_full_total", "outcome" => "uncounted")
                    .increment(1);
                return Ok(());
            }
        }
        let window = state.windows.entry(id).or_insert(Window {
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

    /// Refuses while `key` is locked; otherwise counts this attempt and says whether it
    /// reached `limit`. Checked and counted under one lock, so concurrent attempts cannot
    /// all pass before any is counted.
    pub(super) fn attempt(
        &self,
        key: &KeyDigest,
        limit: u32,
        lockout: Duration,
    ) -> Result<Attempt, Duration> {
        let now = self.clock.now();
        let mut state = self.state();
        if !state.failures.contains_key(key) {
            state.sweep_if_due(now);
            // A full map still counts the attempt, making room by evicting one entry: letting
            // it through uncounted would let anyone switch the lockout off by first flooding
            // made-up login names. See `State::evict_one` for which entry goes.
            if state.failures.len() >= MAX_ENTRIES {
                state.evict_one(limit);
                metrics::counter!("auth_rate_limiter_full_total", "outcome" => "evicted")
                    .increment(1);
            }
        }
        let failures = state.failures.entry(*key).or_insert(Failures {
            count: 0,
            expires: now,
        });
        if failures.expires <= now {
            failures.count = 0;
        }
        // Attempts while locked are refused before any password is checked and do not extend
        // the lock: they are not evidence of new guessing.
        if failures.count >= limit {
            return Err(remaining(failures.expires, now));
        }
        failures.count += 1;
        failures.expires = after(now, lockout);
        Ok(Attempt {
            locked_now: failures.count == limit,
        })
    }

    pub(super) fn reset(&self, key: &KeyDigest) {
        self.state().failures.remove(key);
    }
}

impl State {
    fn len(&self) -> usize {
        self.windows.len() + self.failures.len()
    }

    /// Sweeps expired entries once the maps have doubled since the last sweep, or, while
    /// either is at [`MAX_ENTRIES`], at most once per [`FULL_SWEEP_GAP`]. The maps are capped
    /// apart, so a flood of per-IP windows cannot crowd out lockouts, nor the other way round.
    fn sweep_if_due(&mut self, now: DateTime<Utc>) {
        let full = self.windows.len() >= MAX_ENTRIES || self.failures.len() >= MAX_ENTRIES;
        let due = if full {
            now >= self.next_full_sweep
        } else {
            self.len() >= self.prune_at
        };
        if !due {
            return;
        }
        self.windows.retain(|_, window| window.ends > now);
        self.failures.retain(|_, failures| failures.expires > now);
        self.prune_at = PRUNE_FLOOR.max(self.len().saturating_mul(2));
        self.next_full_sweep = after(now, FULL_SWEEP_GAP);
    }

    /// Makes room in a full failures map by dropping the entry closest to expiry among those
    /// not locked, or, when every entry is locked, the lock closest to its end. Locks go last
    /// because dropping one hands its owner fresh guesses; an attacker's own flood of
    /// one-attempt names is what gets evicted first. A scan of the map, but only on a full
    /// map and once per attempt, which also costs a password hash.
    fn evict_one(&mut self, limit: u32) {
        let victim = self
            .failures
            .iter()
            .min_by_key(|(_, failures)| (failures.count >= limit, failures.expires))
            .map(|(key, _)| *key);
        if let Some(key) = victim {
            self.failures.remove(&key);
        }
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
    at_least_a_millisecond((until - now).to_std().unwrap_or_default())
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
    fn attempts_while_locked_are_refused_and_do_not_extend_the_lock() {
        let clock = Clock::manual();
        let memory = Memory::new(clock.clone());
        let lockout = Duration::from_secs(900);
        let identifier = key("email:alice@example.com");
        let counted: Vec<_> = (0..3)
            .map(|_| memory.attempt(&identifier, 3, lockout))
            .collect();

        clock.advance(Duration::from_secs(600));
        let again = memory.attempt(&identifier, 3, lockout);
        let last = memory.attempt(&identifier, 3, lockout);

        assert_eq!(
            counted,
            [false, false, true].map(|locked_now| Ok(Attempt { locked_now }))
        );
        assert_eq!(again, Err(Duration::from_secs(300)));
        assert_eq!(last, Err(Duration::from_secs(300)));
    }

    #[test]
    fn a_full_map_lets_new_per_ip_keys_through_uncounted_and_keeps_counting_known_ones() {
        let memory = Memory::new(Clock::manual());
        let rate = Rate::new(1, Duration::from_secs(60));
        for n in 0..MAX_ENTRIES {
            let _ = memory.hit(Scope::LoginIp, &key(&n.to_string()), rate);
        }

        let new_key = [0, 1].map(|_| memory.hit(Scope::LoginIp, &key("new"), rate));
        let known_key = memory.hit(Scope::LoginIp, &key("0"), rate);

        assert_eq!(new_key, [Ok(()), Ok(())]);
        assert!(known_key.is_err());
        assert_eq!(memory.state().windows.len(), MAX_ENTRIES);
    }

    #[test]
    fn a_full_map_still_counts_attempts_and_evicts_an_unlocked_entry_before_a_lock() {
        let clock = Clock::manual();
        let memory = Memory::new(clock.clone());
        let lockout = Duration::from_secs(900);
        let target = key("username:alice");
        for _ in 0..3 {
            let _ = memory.attempt(&target, 3, lockout);
        }
        clock.advance(Duration::from_secs(1));
        for n in 1..MAX_ENTRIES {
            let _ = memory.attempt(&key(&n.to_string()), 3, lockout);
        }

        let newcomer = key("username:mallory");
        let attempts: Vec<_> = (0..4)
            .map(|_| memory.attempt(&newcomer, 3, lockout))
            .collect();
        let target_after = memory.attempt(&target, 3, lockout);

        assert_eq!(
            attempts[..3],
            [false, false, true].map(|locked_now| Ok(Attempt { locked_now }))
        );
        assert!(attempts[3].is_err());
        assert!(target_after.is_err(), "the lock survives the flood");
        assert_eq!(memory.state().failures.len(), MAX_ENTRIES);
    }
}
