//! Time for the template functions: one clock reading per process (Packer's
//! `InitTime`), formatted with Go reference-time layouts (`isotime`) or the
//! strftime subset Packer's `strftime` supports.

use chrono::{DateTime, Datelike, Timelike, Utc};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub unix_secs: i64,
    pub nanos: u32,
}

static INIT_TIME: OnceLock<Clock> = OnceLock::new();

impl Clock {
    /// The single clock reading shared by every time function of this
    /// process, so `timestamp`, `isotime` and `strftime` agree everywhere.
    pub fn init_time() -> Clock {
        *INIT_TIME.get_or_init(Clock::now)
    }

    pub fn now() -> Clock {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Clock {
            unix_secs: d.as_secs() as i64,
            nanos: d.subsec_nanos(),
        }
    }

    pub fn from_unix(unix_secs: i64, nanos: u32) -> Clock {
        Clock { unix_secs, nanos }
    }

    fn datetime(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.unix_secs, self.nanos).unwrap_or_default()
    }

    /// Go's `time.Format(layout)` in UTC.
    pub fn format_go(&self, layout: &str) -> String {
        format_go(&self.datetime(), layout)
    }

    /// Packer's `isotime` without a layout: RFC 3339.
    pub fn rfc3339(&self) -> String {
        self.format_go("2006-01-02T15:04:05Z07:00")
    }

    /// Packer's `strftime` (jehiah/go-strftime): %a %A %b %B %d %H %I %L %m %M
    /// %p %S %y %Y %z %Z %%; any other directive is copied as is.
    pub fn strftime(&self, format: &str) -> String {
        let t = self.datetime();
        let mut out = String::new();
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let Some(d) = chars.next() else {
                out.push('%');
                break;
            };
            let layout = match d {
                'a' => "Mon",
                'A' => "Monday",
                'b' => "Jan",
                'B' => "January",
                'd' => "02",
                'H' => "15",
                'I' => "03",
                'L' => ".000",
                'm' => "01",
                'M' => "04",
                'p' => "PM",
                'S' => "05",
                'y' => "06",
                'Y' => "2006",
                'z' => "-0700",
                'Z' => "MST",
                '%' => {
                    out.push('%');
                    continue;
                }
                other => {
                    out.push('%');
                    out.push(other);
                    continue;
                }
            };
            out.push_str(&format_go(&t, layout));
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    TZ,
    /// ISO 8601 zones print "Z" for UTC.
    IsoZ(&'static str),
    /// Numeric zones always print digits.
    NumZ(&'static str),
    /// Fractional seconds: separator, digits, trailing zeros kept?
    Frac(char, usize, bool),
}

/// Finds the next layout element: (prefix literal, element, element length).
fn next_std_chunk(layout: &str) -> Option<(usize, Std, usize)> {
    let b = layout.as_bytes();
    let n = b.len();
    let starts = |i: usize, s: &str| layout[i..].starts_with(s);
    let lower_after = |i: usize| b.get(i).is_some_and(|c| c.is_ascii_lowercase());
    let mut i = 0;
    while i < n {
        match b[i] {
            b'J' if starts(i, "Jan") => {
                if starts(i, "January") {
                    return Some((i, Std::LongMonth, 7));
                }
                if !lower_after(i + 3) {
                    return Some((i, Std::Month, 3));
                }
            }
            b'M' => {
                if starts(i, "Mon") {
                    if starts(i, "Monday") {
                        return Some((i, Std::LongWeekDay, 6));
                    }
                    if !lower_after(i + 3) {
                        return Some((i, Std::WeekDay, 3));
                    }
                }
                if starts(i, "MST") {
                    return Some((i, Std::TZ, 3));
                }
            }
            b'0' => {
                if i + 1 < n && (b'1'..=b'6').contains(&b[i + 1]) {
                    let s = [
                        Std::ZeroMonth,
                        Std::ZeroDay,
                        Std::ZeroHour12,
                        Std::ZeroMinute,
                        Std::ZeroSecond,
                        Std::Year,
                    ][(b[i + 1] - b'1') as usize];
                    return Some((i, s, 2));
                }
                if starts(i, "002") {
                    return Some((i, Std::ZeroYearDay, 3));
                }
            }
            b'1' => {
                if starts(i, "15") {
                    return Some((i, Std::Hour, 2));
                }
                return Some((i, Std::NumMonth, 1));
            }
            b'2' => {
                if starts(i, "2006") {
                    return Some((i, Std::LongYear, 4));
                }
                return Some((i, Std::Day, 1));
            }
            b'_' => {
                if starts(i, "_2") {
                    if starts(i + 1, "2006") {
                        return Some((i + 1, Std::LongYear, 4));
                    }
                    return Some((i, Std::UnderDay, 2));
                }
                if starts(i, "__2") {
                    return Some((i, Std::UnderYearDay, 3));
                }
            }
            b'3' => return Some((i, Std::Hour12, 1)),
            b'4' => return Some((i, Std::Minute, 1)),
            b'5' => return Some((i, Std::Second, 1)),
            b'P' if starts(i, "PM") => return Some((i, Std::PM, 2)),
            b'p' if starts(i, "pm") => return Some((i, Std::Pm, 2)),
            b'-' => {
                for z in ["-070000", "-07:00:00", "-0700", "-07:00", "-07"] {
                    if starts(i, z) {
                        return Some((i, Std::NumZ(z), z.len()));
                    }
                }
            }
            b'Z' => {
                for z in ["Z070000", "Z07:00:00", "Z0700", "Z07:00", "Z07"] {
                    if starts(i, z) {
                        return Some((i, Std::IsoZ(z), z.len()));
                    }
                }
            }
            b'.' | b',' if i + 1 < n && (b[i + 1] == b'0' || b[i + 1] == b'9') => {
                let ch = b[i + 1];
                let mut j = i + 1;
                while j < n && b[j] == ch {
                    j += 1;
                }
                if !(j < n && b[j].is_ascii_digit()) {
                    return Some((i, Std::Frac(b[i] as char, j - i - 1, ch == b'0'), j - i));
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Go's time.Format for a UTC time.
pub fn format_go(t: &DateTime<Utc>, layout: &str) -> String {
    let mut out = String::new();
    let mut rest = layout;
    while let Some((prefix, std, len)) = next_std_chunk(rest) {
        out.push_str(&rest[..prefix]);
        let month = t.month0() as usize;
        let weekday = t.weekday().num_days_from_sunday() as usize;
        let hour = t.hour();
        match std {
            Std::LongMonth => out.push_str(LONG_MONTHS[month]),
            Std::Month => out.push_str(&LONG_MONTHS[month][..3]),
            Std::NumMonth => out.push_str(&(month + 1).to_string()),
            Std::ZeroMonth => out.push_str(&format!("{:02}", month + 1)),
            Std::LongWeekDay => out.push_str(LONG_DAYS[weekday]),
            Std::WeekDay => out.push_str(&LONG_DAYS[weekday][..3]),
            Std::Day => out.push_str(&t.day().to_string()),
            Std::UnderDay => out.push_str(&format!("{:>2}", t.day())),
            Std::ZeroDay => out.push_str(&format!("{:02}", t.day())),
            Std::UnderYearDay => out.push_str(&format!("{:>3}", t.ordinal())),
            Std::ZeroYearDay => out.push_str(&format!("{:03}", t.ordinal())),
            Std::Hour => out.push_str(&format!("{hour:02}")),
            Std::Hour12 => out.push_str(
                &(if hour.is_multiple_of(12) {
                    12
                } else {
                    hour % 12
                })
                .to_string(),
            ),
            Std::ZeroHour12 => out.push_str(&format!(
                "{:02}",
                if hour.is_multiple_of(12) {
                    12
                } else {
                    hour % 12
                }
            )),
            Std::Minute => out.push_str(&t.minute().to_string()),
            Std::ZeroMinute => out.push_str(&format!("{:02}", t.minute())),
            Std::Second => out.push_str(&t.second().to_string()),
            Std::ZeroSecond => out.push_str(&format!("{:02}", t.second())),
            Std::LongYear => out.push_str(&format!("{:04}", t.year())),
            Std::Year => out.push_str(&format!("{:02}", t.year().rem_euclid(100))),
            Std::PM => out.push_str(if hour >= 12 { "PM" } else { "AM" }),
            Std::Pm => out.push_str(if hour >= 12 { "pm" } else { "am" }),
            Std::TZ => out.push_str("UTC"),
            Std::IsoZ(_) => out.push('Z'),
            Std::NumZ(z) => out.push_str(match z {
                "-070000" => "+000000",
                "-07:00:00" => "+00:00:00",
                "-0700" => "+0000",
                "-07:00" => "+00:00",
                _ => "+00",
            }),
            Std::Frac(sep, digits, keep_zeros) => {
                let nanos = format!("{:09}", t.nanosecond() % 1_000_000_000);
                let mut d = nanos[..digits.min(9)].to_string();
                if digits > 9 {
                    d.push_str(&"0".repeat(digits - 9));
                }
                if !keep_zeros {
                    d = d.trim_end_matches('0').to_string();
                }
                if !d.is_empty() {
                    out.push(sep);
                    out.push_str(&d);
                }
            }
        }
        rest = &rest[prefix + len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-22T00:55:14.053Z, a Sunday: the clock of the Packer run these
    /// expectations were observed with.
    fn clock() -> Clock {
        Clock::from_unix(1_795_308_914, 53_000_000)
    }

    #[test]
    fn go_layouts_match_packer_isotime() {
        let c = clock();
        assert_eq!(c.rfc3339(), "2026-11-22T00:55:14Z");
        assert_eq!(
            c.format_go("Mon Jan _2 15:04:05.000 2006 -0700 MST Z07:00 pm PM 3 03 1 01 2 02 __2 002 .9 .99 ,000 Monday January -07 -07:00 Z0700"),
            "Sun Nov 22 00:55:14.053 2026 +0000 UTC Z am AM 12 12 11 11 22 22 326 326  .05 ,053 Sunday November +00 +00:00 Z"
        );
        assert_eq!(c.format_go("2006-01-02T1504"), "2026-11-22T0055");
        assert_eq!(c.format_go("20060102150405"), "20261122005514");
        assert_eq!(c.format_go("02-Jan-06 03_04_05"), "22-Nov-26 12_55_14");
        assert_eq!(c.format_go("2006/01/02_15-04-05"), "2026/11/22_00-55-14");
        assert_eq!(c.format_go("Janet"), "Janet");
        assert_eq!(c.format_go("_2006"), "_2026");
    }

    #[test]
    fn strftime_matches_packer() {
        let c = clock();
        assert_eq!(
            c.strftime(
                "%a|%A|%b|%B|%c|%C|%d|%D|%e|%f|%F|%H|%I|%j|%L|%m|%M|%p|%S|%y|%Y|%z|%Z|%%|%Q|%"
            ),
            "Sun|Sunday|Nov|November|%c|%C|22|%D|%e|%f|%F|00|12|%j|.053|11|55|AM|14|26|2026|+0000|UTC|%|%Q|%"
        );
    }

    #[test]
    fn one_reading_per_process() {
        assert_eq!(Clock::init_time(), Clock::init_time());
    }
}
