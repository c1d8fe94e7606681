//! Calendar arithmetic for the timetable: proleptic Gregorian dates as day
//! numbers, weekdays, and the local wall clock's offset from UTC.
//!
//! Invariants:
//! - `Date` is a day count since 1970-01-01 (negative before); conversions are
//!   exact for years 0..=9999 (Howard Hinnant's `days_from_civil`).
//! - Weekdays are ISO: 1 = Monday ... 7 = Sunday, as in the timetable.
//! - The local offset comes from the C library (`localtime_r`, so `TZ` and the
//!   zone database apply), taken at the instant in question.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub i64);

impl Date {
    pub fn from_ymd(y: i64, m: u32, d: u32) -> Date {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m as i64 + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Date(era * 146_097 + doe - 719_468)
    }

    pub fn ymd(self) -> (i64, u32, u32) {
        let z = self.0 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
    }

    /// `YYYY-MM-DD` (the store validates dates before they get here).
    pub fn parse(s: &str) -> Option<Date> {
        let mut it = s.splitn(3, '-');
        let (y, m, d) = (it.next()?.parse().ok()?, it.next()?.parse().ok()?, it.next()?.parse().ok()?);
        (s.len() == 10 && (1..=12).contains(&m) && (1..=31).contains(&d)).then(|| Date::from_ymd(y, m, d))
    }

    /// ISO weekday: 1 = Monday ... 7 = Sunday (1970-01-01 was a Thursday).
    pub fn weekday(self) -> u8 {
        ((self.0 + 3).rem_euclid(7) + 1) as u8
    }

    pub fn add_days(self, n: i64) -> Date {
        Date(self.0 + n)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// How far the local wall clock is ahead of UTC at `unix_secs`, in seconds.
pub fn local_offset_secs(unix_secs: i64) -> i64 {
    let t = unix_secs as libc::time_t;
    // SAFETY: `localtime_r` writes only into the `tm` we own and reads `t`; a
    // zeroed `tm` is a valid value of the plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if ok { tm.tm_gmtoff } else { 0 }
}

/// A local wall-clock reading: the date and the minute of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub date: Date,
    /// Milliseconds since local midnight.
    pub ms_of_day: i64,
}

/// The local reading of `unix_ms`, given the zone's offset function.
pub fn to_local(unix_ms: i64, offset_secs: impl Fn(i64) -> i64) -> LocalTime {
    let local_ms = unix_ms + offset_secs(unix_ms.div_euclid(1000)) * 1000;
    LocalTime { date: Date(local_ms.div_euclid(86_400_000)), ms_of_day: local_ms.rem_euclid(86_400_000) }
}

/// The Unix ms of `minute` (of the local day) on `date`.
pub fn to_unix_ms(date: Date, minute: u16, offset_secs: impl Fn(i64) -> i64) -> i64 {
    let naive_ms = date.0 * 86_400_000 + minute as i64 * 60_000;
    // The offset at that instant; near a DST change, the offset in force an hour away
    // may differ: take the one that maps back onto the same wall time if there is one.
    let guess = naive_ms - offset_secs(naive_ms.div_euclid(1000)) * 1000;
    naive_ms - offset_secs(guess.div_euclid(1000)) * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_know_their_weekday() {
        assert_eq!(Date::from_ymd(1970, 1, 1), Date(0));
        assert_eq!(Date(0).weekday(), 4, "a Thursday");
        let d = Date::parse("2026-11-23").unwrap();
        assert_eq!(d.weekday(), 1, "a Monday");
        assert_eq!(d.to_string(), "2026-11-23");
        assert_eq!(Date::parse("2024-02-29").unwrap().add_days(1).to_string(), "2024-03-01");
        assert_eq!(Date::parse("2000-12-31").unwrap().add_days(1).to_string(), "2001-01-01");
        for n in [-800_000, -1, 0, 1, 19_000, 2_900_000] {
            let (y, m, day) = Date(n).ymd();
            assert_eq!(Date::from_ymd(y, m, day), Date(n));
        }
        assert_eq!(Date::parse("2026-13-01"), None);
        assert_eq!(Date::parse("26-1-1"), None);
    }

    #[test]
    fn local_time_follows_the_offset() {
        let beijing = |_| 8 * 3600;
        let monday_0800 = to_unix_ms(Date::parse("2026-11-23").unwrap(), 8 * 60, beijing);
        assert_eq!(monday_0800, 1_795_392_000_000, "2026-11-23T00:00:00Z");
        let l = to_local(monday_0800 + 90_000, beijing);
        assert_eq!((l.date.to_string(), l.ms_of_day), ("2026-11-23".to_string(), 8 * 3_600_000 + 90_000));
        let late = to_local(monday_0800 - 9 * 3_600_000, beijing);
        assert_eq!((late.date.to_string(), late.ms_of_day), ("2026-11-22".to_string(), 23 * 3_600_000));
    }

    #[test]
    fn the_c_library_offset_is_a_whole_zone() {
        let off = local_offset_secs(1_763_856_000);
        assert!(off.abs() <= 14 * 3600 && off % 900 == 0, "{off}");
    }
}
