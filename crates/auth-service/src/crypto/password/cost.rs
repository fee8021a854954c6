//! What a stored password hash costs to verify, read from the hash itself, and the bounds a
//! hash given by an administrator or an import must keep (SPEC §5).

use argon2::password_hash::PasswordHash;
use argon2::Params;

/// SPEC §5: the costliest argon2 memory a given hash may ask for (256 MiB, in KiB).
pub const MAX_ARGON2_MEMORY_KIB: u32 = 256 * 1024;
/// SPEC §5: the most argon2 passes.
pub const MAX_ARGON2_ITERATIONS: u32 = 10;
/// SPEC §5: the most argon2 lanes.
pub const MAX_ARGON2_PARALLELISM: u32 = 8;
/// SPEC §5: the highest bcrypt cost (2^14 rounds).
pub const MAX_BCRYPT_COST: u32 = 14;

/// The parameters that decide how long verifying a hash takes; also the "kind" of a hash for
/// the timing floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cost {
    Bcrypt {
        cost: u32,
    },
    Argon2 {
        memory_kib: u32,
        iterations: u32,
        lanes: u32,
    },
}

impl Cost {
    /// The cost of a bcrypt (`$2a$`, `$2b$`, `$2y$`) or argon2 PHC hash, or why it is not one
    /// this service could ever verify.
    pub fn of(hash: &str) -> Result<Self, &'static str> {
        if let Some(rest) = bcrypt_body(hash) {
            // "NN$" (cost 4–31), then 22 characters of salt and 31 of hash in bcrypt's base64.
            let bytes = rest.as_bytes();
            let cost = std::str::from_utf8(bytes.get(..2).unwrap_or_default())
                .ok()
                .and_then(|cost| cost.parse::<u32>().ok())
                .filter(|cost| (4..=31).contains(cost));
            let well_formed = bytes.len() == 56
                && bytes[2] == b'$'
                && bytes[3..]
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/'));
            return match cost {
                Some(cost) if well_formed => Ok(Cost::Bcrypt { cost }),
                _ => Err("is not a well-formed bcrypt hash"),
            };
        }
        if hash.starts_with("$argon2") {
            let parsed = PasswordHash::new(hash).map_err(|_| "is not a well-formed argon2 hash")?;
            let known = matches!(
                parsed.algorithm.as_str(),
                "argon2id" | "argon2i" | "argon2d"
            );
            let complete = parsed.salt.is_some() && parsed.hash.is_some();
            return match Params::try_from(&parsed) {
                Ok(params) if known && complete => Ok(Cost::of_params(&params)),
                _ => Err("is not a usable argon2 hash"),
            };
        }
        Err("must be a bcrypt ($2a$, $2b$, $2y$) or argon2 PHC hash")
    }

    pub fn of_params(params: &Params) -> Self {
        Cost::Argon2 {
            memory_kib: params.m_cost(),
            iterations: params.t_cost(),
            lanes: params.p_cost(),
        }
    }

    /// Whether verifying costs no more than `bound` (the same kind of bound for each part).
    pub fn within(self, bound: &Bounds) -> bool {
        match self {
            Cost::Bcrypt { cost } => cost <= bound.bcrypt_cost,
            Cost::Argon2 {
                memory_kib,
                iterations,
                lanes,
            } => {
                memory_kib <= bound.argon2_memory_kib
                    && iterations <= bound.argon2_iterations
                    && lanes <= bound.argon2_parallelism
            }
        }
    }
}

/// The costliest hash that is stored or verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub bcrypt_cost: u32,
}

impl Bounds {
    /// SPEC §5, for hashes from an administrator or an import.
    pub const GIVEN: Bounds = Bounds {
        argon2_memory_kib: MAX_ARGON2_MEMORY_KIB,
        argon2_iterations: MAX_ARGON2_ITERATIONS,
        argon2_parallelism: MAX_ARGON2_PARALLELISM,
        bcrypt_cost: MAX_BCRYPT_COST,
    };

    /// [`Bounds::GIVEN`], widened to admit this service's own hashes should its configured
    /// parameters exceed them: what a login is willing to verify.
    pub fn admitting(params: &Params) -> Self {
        let given = Self::GIVEN;
        Bounds {
            argon2_memory_kib: given.argon2_memory_kib.max(params.m_cost()),
            argon2_iterations: given.argon2_iterations.max(params.t_cost()),
            argon2_parallelism: given.argon2_parallelism.max(params.p_cost()),
            bcrypt_cost: given.bcrypt_cost,
        }
    }
}

/// Why a hash from an administrator or an import is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashRefusal {
    /// Not a hash this service can verify; the message says what was expected.
    Malformed(&'static str),
    /// Verifying it would cost more than SPEC §5 allows.
    TooCostly,
}

impl HashRefusal {
    /// The field error code.
    pub fn code(self) -> &'static str {
        match self {
            HashRefusal::Malformed(_) => "invalid",
            HashRefusal::TooCostly => "too_costly",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            HashRefusal::Malformed(message) => message,
            HashRefusal::TooCostly => {
                "costs too much to verify: at most argon2 m=262144 (256 MiB), t=10, p=8, or bcrypt cost 14"
            }
        }
    }
}

/// SPEC §4, §5: a hash an administrator or an import gives must be bcrypt or argon2 (verified
/// at login and re-hashed to argon2id then) and within [`Bounds::GIVEN`], so no stored hash can
/// hold a hashing thread for long.
pub fn check_given_hash(hash: &str) -> Result<(), HashRefusal> {
    let cost = Cost::of(hash).map_err(HashRefusal::Malformed)?;
    if cost.within(&Bounds::GIVEN) {
        Ok(())
    } else {
        Err(HashRefusal::TooCostly)
    }
}

/// The part of a bcrypt hash after its `$2x$` prefix.
pub fn bcrypt_body(hash: &str) -> Option<&str> {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .find_map(|prefix| hash.strip_prefix(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BCRYPT_BODY: &str = "abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234";

    fn argon2(m: u64, t: u64, p: u64) -> String {
        format!("$argon2id$v=19$m={m},t={t},p={p}$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG")
    }

    #[test]
    fn bcrypt_and_argon2_hashes_are_recognised() {
        let bcrypt = format!("$2b$04${BCRYPT_BODY}");

        assert_eq!(check_given_hash(&bcrypt), Ok(()));
        assert_eq!(check_given_hash(&bcrypt.replace("$2b$", "$2y$")), Ok(()));
        assert_eq!(check_given_hash(&argon2(19456, 2, 1)), Ok(()));
        for bad in [
            &bcrypt[..50],
            &format!("$2b$99${BCRYPT_BODY}"),
            "$argon2id$v=19$m=19456",
            "5f4dcc3b5aa765d61d8327deb882cf99",
            "$2b$04$ä",
        ] {
            assert!(
                matches!(check_given_hash(bad), Err(HashRefusal::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn given_hashes_keep_the_spec_cost_bounds() {
        let at_bounds = [format!("$2b$14${BCRYPT_BODY}"), argon2(262_144, 10, 8)];
        let above = [
            format!("$2b$15${BCRYPT_BODY}"),
            format!("$2b$31${BCRYPT_BODY}"),
            argon2(262_145, 1, 1),
            argon2(4 * 1024 * 1024, 1, 1),
            argon2(19456, 11, 1),
            argon2(19456, 4_294_967_295, 1),
            argon2(19456, 2, 9),
        ];

        for hash in at_bounds {
            assert_eq!(check_given_hash(&hash), Ok(()), "{hash}");
        }
        for hash in above {
            assert_eq!(
                check_given_hash(&hash),
                Err(HashRefusal::TooCostly),
                "{hash}"
            );
        }
    }

    #[test]
    fn own_parameters_above_the_bounds_stay_verifiable() {
        let own = Params::new(512 * 1024, 12, 1, None).unwrap();
        let bounds = Bounds::admitting(&own);

        assert!(Cost::of_params(&own).within(&bounds));
        assert!(!Cost::Bcrypt { cost: 15 }.within(&bounds));
    }
}
