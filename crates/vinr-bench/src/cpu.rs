//! The server's CPU time, read from `/proc/PID/stat` (`--server-pid`), so a report can give
//! the server's CPU cost per request beside the rate.
//!
//! `utime + stime` covers every thread of the process, in clock ticks (usually 10 ms each).
//! With thousands of requests per window, the per-request figure is still resolved to a few
//! microseconds; short runs at low rates are coarser.

use std::time::Duration;

/// `AT_CLKTCK` in the auxiliary vector: the kernel's `sysconf(_SC_CLK_TCK)`.
const AT_CLKTCK: usize = 17;
/// POSIX's usual value, used when `/proc/self/auxv` cannot be read.
const CLOCK_TICKS_PER_SECOND_DEFAULT: u64 = 100;

/// Reads one process's CPU time.
#[derive(Clone, Copy, Debug)]
pub struct CpuClock {
    pub pid: u32,
    ticks_per_second: u64,
}

impl CpuClock {
    /// Checks once that the process's stat can be read, so a wrong pid fails before any load.
    pub fn new(pid: u32) -> Result<Self, String> {
        let clock = Self {
            pid,
            ticks_per_second: clock_ticks_per_second(),
        };
        clock.read()?;
        Ok(clock)
    }

    /// User plus system CPU time of the whole process so far.
    pub fn read(&self) -> Result<Duration, String> {
        let path = format!("/proc/{}/stat", self.pid);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let ticks = parse_stat_ticks(&text).ok_or_else(|| format!("{path}: unexpected format"))?;
        Ok(ticks_to_duration(ticks, self.ticks_per_second))
    }
}

fn ticks_to_duration(ticks: u64, per_second: u64) -> Duration {
    let per_second = per_second.max(1);
    let whole = ticks / per_second;
    let rest = ticks % per_second;
    Duration::from_secs(whole) + Duration::from_nanos(rest * 1_000_000_000 / per_second)
}

/// `utime + stime` (fields 14 and 15 of `proc_pid_stat(5)`). The command name (field 2) may
/// hold spaces and parentheses, so fields are counted from its closing parenthesis.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, so utime (14) and stime (15) are the 12th and 13th.
    let mut fields = after_name.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime.checked_add(stime)
}

/// The kernel's clock tick rate, from this process's auxiliary vector (pairs of native
/// words, key then value), which is where libc's `sysconf(_SC_CLK_TCK)` reads it too.
fn clock_ticks_per_second() -> u64 {
    std::fs::read("/proc/self/auxv")
        .ok()
        .and_then(|auxv| auxv_value(&auxv, AT_CLKTCK))
        .filter(|&ticks| ticks > 0)
        .map_or(CLOCK_TICKS_PER_SECOND_DEFAULT, |ticks| ticks as u64)
}

fn auxv_value(auxv: &[u8], key: usize) -> Option<usize> {
    const WORD: usize = std::mem::size_of::<usize>();
    auxv.chunks_exact(2 * WORD).find_map(|pair| {
        let (k, v) = pair.split_at(WORD);
        let k = usize::from_ne_bytes(k.try_into().ok()?);
        let v = usize::from_ne_bytes(v.try_into().ok()?);
        (k == key).then_some(v)
    })
}

/// CPU microseconds per request, when there were requests.
pub fn micros_per_request(cpu: Duration, requests: u64) -> Option<f64> {
    (requests > 0).then(|| cpu.as_secs_f64() * 1e6 / requests as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime_past_an_awkward_name() {
        let stat = "4242 (vinr (serve) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    1234 567 0 0 20 0 9 0 100 2000000 500 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(1234 + 567));
        assert_eq!(parse_stat_ticks("1 (x) S 1 2"), None);
        assert_eq!(parse_stat_ticks("no parenthesis"), None);
    }

    #[test]
    fn converts_ticks_exactly() {
        assert_eq!(ticks_to_duration(250, 100), Duration::from_millis(2_500));
        assert_eq!(ticks_to_duration(1, 3), Duration::from_nanos(333_333_333));
        assert_eq!(
            micros_per_request(Duration::from_millis(10), 200),
            Some(50.0)
        );
        assert_eq!(micros_per_request(Duration::from_millis(10), 0), None);
    }

    #[test]
    fn reads_this_process() {
        let clock = CpuClock::new(std::process::id()).expect("own stat");
        // Burn CPU until at least one tick passes (bounded, on a busy machine too).
        let before = clock.read().expect("read");
        let until = std::time::Instant::now() + Duration::from_secs(5);
        let mut x = 0u64;
        while clock.read().expect("read") == before && std::time::Instant::now() < until {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        assert!(clock.read().expect("read") > before);
        assert!(clock.ticks_per_second >= 1);
        assert!(CpuClock::new(u32::MAX).is_err());
    }

    #[test]
    fn finds_a_key_in_an_auxiliary_vector() {
        let words: Vec<usize> = vec![6, 4096, AT_CLKTCK, 100, 0, 0];
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(auxv_value(&bytes, AT_CLKTCK), Some(100));
        assert_eq!(auxv_value(&bytes, 99), None);
    }
}
