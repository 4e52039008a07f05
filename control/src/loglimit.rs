//! Log lines that traffic or a peer can trigger, bounded: at most a burst of lines per
//! interval from one call site, the rest counted and reported with the next line let
//! through, so a flood of refused connections or learned remotes cannot flood the log.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

/// One call site's budget of log lines.
#[derive(Debug)]
pub struct LogLimit {
    burst: u32,
    per: Duration,
    window: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl LogLimit {
    /// At most `burst` lines per `per`.
    pub const fn new(burst: u32, per: Duration) -> Self {
        LogLimit { burst, per, window: None, used: 0, suppressed: 0 }
    }

    /// Whether a line may be logged at `now`: `Some(n)` with the number of lines left
    /// out since the last one logged (to say so in it), `None` to leave this one out.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self.window.is_none_or(|start| now.duration_since(start) >= self.per) {
            (self.window, self.used) = (Some(now), 0);
        }
        if self.used < self.burst {
            self.used += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

/// The tail of a line let through by [`LogLimit::allow`]: empty, or how many similar
/// lines were left out before it.
pub fn suppressed_note(n: u64) -> String {
    match n {
        0 => String::new(),
        n => format!(" ({n} similar lines left out before this one)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_interval_then_the_count() {
        let t0 = Instant::now();
        let mut l = LogLimit::new(2, Duration::from_secs(10));
        assert_eq!(l.allow(t0), Some(0));
        assert_eq!(l.allow(t0), Some(0));
        for _ in 0..5 {
            assert_eq!(l.allow(t0 + Duration::from_secs(1)), None);
        }
        assert_eq!(l.allow(t0 + Duration::from_secs(10)), Some(5), "the next window reports what was left out");
        assert_eq!(l.allow(t0 + Duration::from_secs(11)), Some(0));
        assert_eq!(suppressed_note(0), "");
        assert_eq!(suppressed_note(5), " (5 similar lines left out before this one)");
    }
}
