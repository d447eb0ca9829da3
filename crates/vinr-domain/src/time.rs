//! Instants as milliseconds since the Unix epoch. The domain never reads a clock: callers pass
//! `now`, which keeps every rule testable with a controlled clock.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    pub fn plus_ms(self, ms: i64) -> UnixMillis {
        UnixMillis(self.0.saturating_add(ms))
    }
}
