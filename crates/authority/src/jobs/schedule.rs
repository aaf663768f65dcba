//! When a job runs: every so many seconds, minutes or hours, or daily or weekly at a time of
//! day (UTC). Written as people write it — `every 90s`, `every 5m`, `every 2h`,
//! `daily 02:30`, `weekly mon 03:00` — which is also how the database and the API hold it.

use std::fmt;
use std::str::FromStr;

use time::{Duration, OffsetDateTime, Time, Weekday};

use crate::{Error, Result};

/// The shortest interval: the scheduler looks for due jobs once a second.
const MIN_INTERVAL: Duration = Duration::SECOND;
/// The longest interval.
const MAX_INTERVAL: Duration = Duration::days(31);

/// A job's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// At a fixed interval from the end of the last run.
    Every(Duration),
    /// Every day at a time (UTC).
    Daily(Time),
    /// Every week on a day at a time (UTC).
    Weekly(Weekday, Time),
}

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

fn invalid(text: &str) -> Error {
    Error::Invalid(format!(
        "schedule '{text}' is not 'every N' with N in seconds, minutes or hours (every 90s, \
         every 5m, every 2h; 1 second to 31 days), 'daily HH:MM' or 'weekly DAY HH:MM' (DAY \
         is mon to sun; times are UTC)"
    ))
}

fn time_of_day(text: &str) -> Option<Time> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    Time::from_hms(h.parse().ok()?, m.parse().ok()?, 0).ok()
}

impl FromStr for Schedule {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let parsed = match words.as_slice() {
            ["every", amount] => {
                let split = amount
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(amount.len());
                let (n, unit) = amount.split_at(split);
                let n: i64 = n.parse().map_err(|_| invalid(text))?;
                let interval = match unit {
                    "s" => Duration::seconds(n),
                    "m" => Duration::minutes(n),
                    "h" => Duration::hours(n),
                    _ => return Err(invalid(text)),
                };
                (MIN_INTERVAL..=MAX_INTERVAL)
                    .contains(&interval)
                    .then_some(Schedule::Every(interval))
            }
            ["daily", at] => time_of_day(at).map(Schedule::Daily),
            ["weekly", day, at] => DAYS
                .iter()
                .find(|(name, _)| name == day)
                .zip(time_of_day(at))
                .map(|((_, day), at)| Schedule::Weekly(*day, at)),
            _ => None,
        };
        parsed.ok_or_else(|| invalid(text))
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |t: &Time| format!("{:02}:{:02}", t.hour(), t.minute());
        match self {
            Schedule::Every(d) => {
                let s = d.whole_seconds();
                if s % 3600 == 0 {
                    write!(f, "every {}h", s / 3600)
                } else if s % 60 == 0 {
                    write!(f, "every {}m", s / 60)
                } else {
                    write!(f, "every {s}s")
                }
            }
            Schedule::Daily(t) => write!(f, "daily {}", at(t)),
            Schedule::Weekly(day, t) => {
                let name = DAYS
                    .iter()
                    .find(|(_, d)| d == day)
                    .map_or("mon", |(name, _)| name);
                write!(f, "weekly {name} {}", at(t))
            }
        }
    }
}

impl Schedule {
    /// When a run is due after one that ended (or a schedule set) at `after`.
    pub fn next_after(&self, after: OffsetDateTime) -> OffsetDateTime {
        let after = after.to_offset(time::UtcOffset::UTC);
        match self {
            Schedule::Every(d) => after + *d,
            Schedule::Daily(at) => {
                let today = after.replace_time(*at);
                if today > after {
                    today
                } else {
                    today + Duration::DAY
                }
            }
            Schedule::Weekly(day, at) => {
                let ahead = (i64::from(day.number_days_from_monday())
                    - i64::from(after.weekday().number_days_from_monday()))
                .rem_euclid(7);
                let candidate = after.replace_time(*at) + Duration::days(ahead);
                if candidate > after {
                    candidate
                } else {
                    candidate + Duration::WEEK
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn schedules_read_and_write_as_people_write_them() -> Result<()> {
        for text in [
            "every 90s",
            "every 5m",
            "every 2h",
            "daily 02:30",
            "weekly sun 23:59",
        ] {
            assert_eq!(text.parse::<Schedule>()?.to_string(), text);
        }
        assert_eq!("every 120s".parse::<Schedule>()?.to_string(), "every 2m");
        assert_eq!(
            "  every   60m ".parse::<Schedule>()?,
            Schedule::Every(Duration::HOUR)
        );
        for bad in [
            "",
            "every",
            "every 0s",
            "every 5",
            "every 5d",
            "every -5m",
            "every 745h",
            "daily 24:00",
            "daily 2:30",
            "weekly monday 02:00",
            "weekly mon",
            "hourly",
        ] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad:?} parsed");
        }
        Ok(())
    }

    #[test]
    fn the_next_run_follows_the_schedule() -> Result<()> {
        // A Wednesday.
        let now = datetime!(2026-12-02 10:15:00 UTC);
        let next = |text: &str| -> Result<OffsetDateTime> {
            Ok(text.parse::<Schedule>()?.next_after(now))
        };
        assert_eq!(next("every 5m")?, datetime!(2026-12-02 10:20:00 UTC));
        assert_eq!(next("daily 11:00")?, datetime!(2026-12-02 11:00:00 UTC));
        assert_eq!(next("daily 10:15")?, datetime!(2026-12-03 10:15:00 UTC));
        assert_eq!(next("daily 03:00")?, datetime!(2026-12-03 03:00:00 UTC));
        assert_eq!(
            next("weekly wed 12:00")?,
            datetime!(2026-12-02 12:00:00 UTC)
        );
        assert_eq!(
            next("weekly wed 09:00")?,
            datetime!(2026-12-09 09:00:00 UTC)
        );
        assert_eq!(
            next("weekly mon 00:00")?,
            datetime!(2026-12-07 00:00:00 UTC)
        );
        assert_eq!(
            next("weekly sun 23:00")?,
            datetime!(2026-12-06 23:00:00 UTC)
        );
        Ok(())
    }
}
