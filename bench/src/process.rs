//! What `/proc` says about a process: its resident memory now and at its peak, and the CPU
//! time it has used. Read for the spawned service and for this benchmark itself.

/// Resident memory of a process, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resident {
    /// `VmRSS`: resident now.
    pub now_kib: u64,
    /// `VmHWM`: the most it has been resident since it started.
    pub peak_kib: u64,
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// The resident memory of process `pid`; `None` where `/proc` does not say (not Linux).
pub fn resident(pid: u32) -> Option<Resident> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status(&status)
}

/// CPU seconds (user + system, all threads) process `pid` has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// The command name of process `pid` (`/proc/<pid>/comm`).
pub fn command(pid: u32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.trim_end().to_owned())
}

fn parse_status(status: &str) -> Option<Resident> {
    let kib = |field: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    Some(Resident {
        now_kib: kib("VmRSS:")?,
        peak_kib: kib("VmHWM:")?,
    })
}

/// `utime` and `stime` are fields 14 and 15; the command name before them may hold spaces,
/// so fields are counted from the closing parenthesis (field 3 is the first after it).
fn parse_stat(stat: &str) -> Option<f64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    Some((ticks(14)? + ticks(15)?) as f64 / TICKS_PER_SECOND)
}

/// CPU time used between two readings, per operation, in microseconds.
pub fn micros_per(before: Option<f64>, after: Option<f64>, operations: u64) -> Option<f64> {
    let seconds = after? - before?;
    (operations > 0).then(|| seconds * 1e6 / operations as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_and_its_high_water_mark_are_read_in_kib() {
        let status =
            "Name:\tauth-service\nVmPeak:\t 900000 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   20480 kB\n";

        assert_eq!(
            parse_status(status),
            Some(Resident {
                now_kib: 20480,
                peak_kib: 40960
            })
        );
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn cpu_time_is_user_plus_system_ticks() {
        let stat =
            "4242 (auth service) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 50 0 0 20 0 9 0 100 0 0";

        assert_eq!(parse_stat(stat), Some(2.0));
        assert_eq!(micros_per(Some(1.0), Some(2.0), 1000), Some(1000.0));
        assert_eq!(micros_per(Some(1.0), Some(2.0), 0), None);
    }

    #[test]
    fn this_process_has_a_resident_set_and_cpu_time() {
        let me = resident(std::process::id()).unwrap();

        assert!(me.now_kib > 0 && me.peak_kib >= me.now_kib, "{me:?}");
        assert!(cpu_seconds(std::process::id()).is_some());
        assert!(command(std::process::id()).is_some_and(|name| !name.is_empty()));
    }
}
