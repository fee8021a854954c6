//! The least time a failed verification takes (SPEC §4: unknown users and wrong passwords take
//! comparable time). Verifying an imported bcrypt hash can take many times longer than the
//! dummy argon2id hash an unknown user is checked against, which would tell an attacker which
//! accounts exist. So every failed verification is answered no sooner than the slowest kind of
//! stored hash this process has verified takes: the wait is a timer, it holds no hashing
//! thread.
//!
//! Per kind (its cost parameters) the *fastest* verification seen is kept: that is what the
//! work costs without contention, so one verification slowed by a busy machine does not slow
//! every later failure. The floor is the slowest of those, at most [`MAX_FLOOR`]; at most
//! [`MAX_KINDS`] kinds are kept (the fastest is forgotten first, it never sets the floor).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::cost::Cost;

/// The floor never exceeds this, whatever was observed (a hash within the SPEC §5 bounds takes
/// less on a server CPU).
pub const MAX_FLOOR: Duration = Duration::from_secs(3);
/// The most kinds of hash remembered.
pub const MAX_KINDS: usize = 64;

#[derive(Debug, Default)]
pub struct Floor {
    fastest: Mutex<HashMap<Cost, Duration>>,
}

impl Floor {
    /// Records that verifying a hash of `kind` took `took` of work.
    pub fn observe(&self, kind: Cost, took: Duration) {
        let Ok(mut fastest) = self.fastest.lock() else {
            return;
        };
        if let Some(seen) = fastest.get_mut(&kind) {
            *seen = (*seen).min(took);
            return;
        }
        if fastest.len() >= MAX_KINDS {
            let quickest = fastest
                .iter()
                .min_by_key(|(_, took)| **took)
                .map(|(kind, took)| (*kind, *took));
            match quickest {
                Some((quickest, quickest_took)) if quickest_took < took => {
                    fastest.remove(&quickest);
                }
                _ => return,
            }
        }
        fastest.insert(kind, took);
    }

    /// The least time a failed verification takes now.
    pub fn get(&self) -> Duration {
        self.fastest
            .lock()
            .ok()
            .and_then(|fastest| fastest.values().max().copied())
            .unwrap_or_default()
            .min(MAX_FLOOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn bcrypt(cost: u32) -> Cost {
        Cost::Bcrypt { cost }
    }

    #[test]
    fn the_floor_is_the_slowest_kind_at_its_fastest() {
        let floor = Floor::default();

        floor.observe(bcrypt(4), 20 * MS);
        floor.observe(bcrypt(10), 900 * MS);
        floor.observe(bcrypt(10), 500 * MS);
        floor.observe(bcrypt(10), 700 * MS);

        assert_eq!(floor.get(), 500 * MS);
    }

    #[test]
    fn the_floor_is_bounded_in_time_and_in_kinds() {
        let floor = Floor::default();

        floor.observe(bcrypt(14), Duration::from_secs(60));
        for cost in 0..200 {
            floor.observe(
                Cost::Argon2 {
                    memory_kib: cost,
                    iterations: 1,
                    lanes: 1,
                },
                MS,
            );
        }

        assert_eq!(floor.get(), MAX_FLOOR);
        assert!(floor.fastest.lock().unwrap().len() <= MAX_KINDS);
    }
}
