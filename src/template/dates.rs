//! Dates, durations and relative deltas in templates, as Airflow's templates see
//! them: pendulum `DateTime`s (`logical_date`, …), Python `datetime`s
//! (`macros.datetime(2025, 1, 1)`), `date`s (`logical_date.date()`),
//! `timedelta`s/pendulum `Interval`s and dateutil `relativedelta`s.
//!
//! Every value prints as Python's `str()` prints it, since that is what Airflow
//! renders: `2025-01-08 00:00:00+00:00` (a space, not `T`), `1 day, 0:00:00`,
//! `relativedelta(months=+1)`.

use std::fmt;
use std::sync::Arc;

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime,
    TimeZone, Timelike,
};
use chrono_tz::Tz;
use minijinja::value::{DynObject, Kwargs, Object, ObjectRepr, Value, from_args};
use minijinja::{Error, ErrorKind, State};

pub(crate) fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

const MICROS_PER_SEC: i128 = 1_000_000;
const MICROS_PER_DAY: i128 = 86_400 * MICROS_PER_SEC;

/// Splits a call's arguments into positional ones and keyword arguments.
pub(crate) fn split_args(args: &[Value]) -> Result<(&[Value], Kwargs), Error> {
    match args.split_last() {
        Some((last, rest)) if last.is_kwargs() => {
            let (kwargs,): (Kwargs,) = from_args(std::slice::from_ref(last))?;
            Ok((rest, kwargs))
        }
        _ => Ok((
            args,
            Kwargs::from_iter(std::iter::empty::<(String, Value)>()),
        )),
    }
}

fn int_arg(v: &Value, what: &str) -> Result<i64, Error> {
    if (v.is_integer() || v.kind() == minijinja::value::ValueKind::Bool)
        && let Some(i) = v.as_i64()
    {
        return Ok(i);
    }
    Err(invalid(format!("{what} must be an integer, not {v}")))
}

/// A date with a time: aware (a pendulum `DateTime`, with its named zone when it
/// has one) or naive (a Python `datetime` without tzinfo).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DateObj {
    /// The wall time and its UTC offset (offset 0 for a naive date).
    dt: DateTime<FixedOffset>,
    /// The named zone, which date arithmetic follows across DST changes.
    tz: Option<Tz>,
    naive: bool,
}

impl DateObj {
    /// A timezone-aware date in a named zone.
    pub(crate) fn aware(d: DateTime<Tz>) -> DateObj {
        DateObj {
            dt: d.fixed_offset(),
            tz: Some(d.timezone()),
            naive: false,
        }
    }

    fn fixed(dt: DateTime<FixedOffset>) -> DateObj {
        DateObj {
            dt,
            tz: None,
            naive: false,
        }
    }

    fn naive(local: NaiveDateTime) -> DateObj {
        DateObj {
            dt: chrono::Utc.from_utc_datetime(&local).fixed_offset(),
            tz: None,
            naive: true,
        }
    }

    /// Whether this is a naive Python `datetime`.
    pub(crate) fn is_naive(&self) -> bool {
        self.naive
    }

    fn local(&self) -> NaiveDateTime {
        self.dt.naive_local()
    }

    /// The same zone at another wall time (DST gaps move forward, as pendulum does).
    fn with_local(&self, local: NaiveDateTime) -> Result<DateObj, Error> {
        if self.naive {
            return Ok(DateObj::naive(local));
        }
        let dt = match self.tz {
            Some(tz) => match tz.from_local_datetime(&local) {
                LocalResult::Single(d) | LocalResult::Ambiguous(d, _) => d.fixed_offset(),
                LocalResult::None => {
                    let later = local
                        .checked_add_signed(Duration::hours(1))
                        .ok_or_else(|| invalid("date value out of range"))?;
                    match tz.from_local_datetime(&later) {
                        LocalResult::Single(d) | LocalResult::Ambiguous(d, _) => d.fixed_offset(),
                        LocalResult::None => {
                            return Err(invalid("time does not exist in the zone"));
                        }
                    }
                }
            },
            None => self
                .dt
                .offset()
                .from_local_datetime(&local)
                .single()
                .ok_or_else(|| invalid("date out of range"))?,
        };
        Ok(DateObj { dt, ..*self })
    }

    /// The same zone after an absolute shift of `micros`.
    fn shifted(&self, micros: i128) -> Result<DateObj, Error> {
        let d = i64::try_from(micros)
            .ok()
            .map(Duration::microseconds)
            .and_then(|d| self.dt.checked_add_signed(d))
            .ok_or_else(|| invalid("date value out of range"))?;
        Ok(match self.tz {
            Some(tz) if !self.naive => DateObj::aware(d.with_timezone(&tz)),
            _ => DateObj { dt: d, ..*self },
        })
    }

    /// pendulum's `add`: calendar units on the wall time, then time units as an
    /// absolute shift (a Python `datetime` adds everything to the wall time).
    fn add_units(&self, u: &Units) -> Result<DateObj, Error> {
        let local = self.local();
        let date = add_months(
            local.date(),
            u.years.saturating_mul(12).saturating_add(u.months),
        )?;
        let date = Duration::try_days(u.weeks.saturating_mul(7).saturating_add(u.days))
            .and_then(|days| date.checked_add_signed(days))
            .ok_or_else(|| invalid("date value out of range"))?;
        let moved = self.with_local(date.and_time(local.time()))?;
        moved.shifted(u.time_micros)
    }

    fn utc_micros(&self) -> i128 {
        i128::from(self.dt.timestamp()) * MICROS_PER_SEC
            + i128::from(self.dt.timestamp_subsec_micros())
    }

    /// Python's `isoformat(sep)`.
    fn iso(&self, sep: char) -> String {
        let mut s = self.local().format("%Y-%m-%d").to_string();
        s.push(sep);
        s.push_str(&time_text(self.local().time()));
        if !self.naive {
            s.push_str(&offset_text(self.dt.offset().local_minus_utc(), true));
        }
        s
    }

    fn strftime(&self, fmt: &str) -> Result<String, Error> {
        // Python prints nothing for %z/%Z of a naive datetime.
        if self.naive {
            let fmt = fmt.replace("%z", "").replace("%Z", "");
            super::chrono_format::Formattable::format_checked(&self.local(), &fmt)
        } else {
            super::chrono_format::Formattable::format_checked(&self.dt, fmt)
        }
    }

    fn zone_name(&self) -> String {
        match self.tz {
            Some(tz) => tz.name().to_string(),
            None if self.naive => String::new(),
            None => offset_text(self.dt.offset().local_minus_utc(), true),
        }
    }

    fn start_of(&self, unit: &str, end: bool) -> Result<DateObj, Error> {
        let l = self.local();
        let d = l.date();
        let (from, to) = match unit {
            "second" => {
                let s = d.and_hms_opt(l.hour(), l.minute(), l.second());
                (s, s)
            }
            "minute" => (
                d.and_hms_opt(l.hour(), l.minute(), 0),
                d.and_hms_opt(l.hour(), l.minute(), 59),
            ),
            "hour" => (
                d.and_hms_opt(l.hour(), 0, 0),
                d.and_hms_opt(l.hour(), 59, 59),
            ),
            "day" => (d.and_hms_opt(0, 0, 0), d.and_hms_opt(23, 59, 59)),
            "week" => {
                let monday = d.checked_sub_signed(Duration::days(i64::from(
                    d.weekday().num_days_from_monday(),
                )));
                let sunday = monday.and_then(|m| m.checked_add_signed(Duration::days(6)));
                (
                    monday.and_then(|m| m.and_hms_opt(0, 0, 0)),
                    sunday.and_then(|s| s.and_hms_opt(23, 59, 59)),
                )
            }
            "month" => {
                let first = d.with_day(1);
                let last = first
                    .and_then(|f| add_months(f, 1).ok())
                    .and_then(|n| n.pred_opt());
                (
                    first.and_then(|f| f.and_hms_opt(0, 0, 0)),
                    last.and_then(|f| f.and_hms_opt(23, 59, 59)),
                )
            }
            "year" => (
                NaiveDate::from_ymd_opt(d.year(), 1, 1).and_then(|f| f.and_hms_opt(0, 0, 0)),
                NaiveDate::from_ymd_opt(d.year(), 12, 31).and_then(|f| f.and_hms_opt(23, 59, 59)),
            ),
            other => {
                return Err(invalid(format!(
                    "start_of/end_of: unit {other:?} is not one of second, minute, hour, day, week, month, year"
                )));
            }
        };
        let t = if end {
            to.and_then(|t| t.with_nanosecond(999_999_000))
        } else {
            from
        };
        self.with_local(t.ok_or_else(|| invalid("date value out of range"))?)
    }

    fn replace(&self, kwargs: &Kwargs) -> Result<DateObj, Error> {
        let l = self.local();
        let get = |k: &str, v: i64| -> Result<i64, Error> {
            Ok(kwargs.get::<Option<i64>>(k)?.unwrap_or(v))
        };
        let year = get("year", i64::from(l.year()))?;
        let month = get("month", i64::from(l.month()))?;
        let day = get("day", i64::from(l.day()))?;
        let hour = get("hour", i64::from(l.hour()))?;
        let minute = get("minute", i64::from(l.minute()))?;
        let second = get("second", i64::from(l.second()))?;
        let micro = get("microsecond", i64::from(l.nanosecond() / 1000))?;
        kwargs.assert_all_used()?;
        let u32_of = |v: i64| u32::try_from(v).ok();
        let date = i32::try_from(year)
            .ok()
            .zip(u32_of(month))
            .zip(u32_of(day))
            .and_then(|((y, m), d)| NaiveDate::from_ymd_opt(y, m, d))
            .ok_or_else(|| invalid("replace: day is out of range for month"))?;
        let time = u32_of(hour)
            .zip(u32_of(minute))
            .zip(u32_of(second))
            .zip(u32_of(micro))
            .and_then(|(((h, m), s), us)| NaiveTime::from_hms_micro_opt(h, m, s, us))
            .ok_or_else(|| invalid("replace: time out of range"))?;
        self.with_local(date.and_time(time))
    }
}

/// `HH:MM:SS[.ffffff]`, as Python prints a time.
fn time_text(t: NaiveTime) -> String {
    let micros = t.nanosecond() / 1000;
    if micros == 0 {
        t.format("%H:%M:%S").to_string()
    } else {
        format!("{}.{micros:06}", t.format("%H:%M:%S"))
    }
}

/// `+09:00` (`colon`) or `+0900`.
fn offset_text(secs: i32, colon: bool) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let secs = secs.unsigned_abs();
    let (h, m) = (secs / 3600, secs % 3600 / 60);
    if colon {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}")
    }
}

/// `date` + `months` calendar months, the day clamped to the month's end.
fn add_months(d: NaiveDate, months: i64) -> Result<NaiveDate, Error> {
    let total = (i64::from(d.year()) * 12 + i64::from(d.month0()))
        .checked_add(months)
        .ok_or_else(|| invalid("year out of range"))?;
    let year = i32::try_from(total.div_euclid(12)).map_err(|_| invalid("year out of range"))?;
    let month = u32::try_from(total.rem_euclid(12) + 1).unwrap_or(1);
    let last = days_in_month(year, month).ok_or_else(|| invalid("year out of range"))?;
    NaiveDate::from_ymd_opt(year, month, d.day().min(last))
        .ok_or_else(|| invalid("year out of range"))
}

fn days_in_month(year: i32, month: u32) -> Option<u32> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    u32::try_from((next - first).num_days()).ok()
}

/// pendulum's `add`/`subtract` keyword arguments.
#[derive(Default)]
struct Units {
    years: i64,
    months: i64,
    weeks: i64,
    days: i64,
    time_micros: i128,
}

impl Units {
    fn from_kwargs(kwargs: &Kwargs, sign: i64) -> Result<Units, Error> {
        let int = |k: &str| -> Result<i64, Error> {
            Ok(kwargs
                .get::<Option<i64>>(k)?
                .unwrap_or(0)
                .saturating_mul(sign))
        };
        let float = |k: &str| -> Result<f64, Error> {
            Ok(kwargs.get::<Option<f64>>(k)?.unwrap_or(0.0) * sign as f64)
        };
        let u = Units {
            years: int("years")?,
            months: int("months")?,
            weeks: int("weeks")?,
            days: int("days")?,
            time_micros: (float("hours")? * 3.6e9
                + float("minutes")? * 6e7
                + float("seconds")? * 1e6
                + float("microseconds")?)
            .round() as i128,
        };
        kwargs.assert_all_used()?;
        Ok(u)
    }
}

impl fmt::Display for DateObj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iso(' '))
    }
}

impl Object for DateObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    /// Dates compare by the instant, whatever their zones (`==`, `<`, sorting).
    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<std::cmp::Ordering> {
        let other = other.downcast_ref::<Self>()?;
        Some(self.utc_micros().cmp(&other.utc_micros()))
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let l = self.local();
        Some(Value::from(match key.as_str()? {
            "year" => i64::from(l.year()),
            "month" => i64::from(l.month()),
            "day" => i64::from(l.day()),
            "hour" => i64::from(l.hour()),
            "minute" => i64::from(l.minute()),
            "second" => i64::from(l.second()),
            "microsecond" => i64::from(l.nanosecond() / 1000),
            "int_timestamp" => self.dt.timestamp(),
            "day_of_week" => i64::from(l.weekday().num_days_from_monday()),
            "day_of_year" => i64::from(l.ordinal()),
            "days_in_month" => i64::from(days_in_month(l.year(), l.month()).unwrap_or(0)),
            "week_of_year" => i64::from(l.iso_week().week()),
            "quarter" => i64::from(l.month0() / 3 + 1),
            "offset" if !self.naive => i64::from(self.dt.offset().local_minus_utc()),
            "timezone" | "timezone_name" | "tzname" if !self.naive => {
                return Some(Value::from(self.zone_name()));
            }
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let d = **self;
        let ret = |d: DateObj| Ok(Value::from_object(d));
        match method {
            "strftime" => {
                let (fmt,): (&str,) = from_args(args)?;
                d.strftime(fmt).map(Value::from)
            }
            "isoformat" => {
                let (sep,): (Option<&str>,) = from_args(args)?;
                let sep = sep.and_then(|s| s.chars().next()).unwrap_or('T');
                Ok(Value::from(d.iso(sep)))
            }
            "date" => {
                from_args::<()>(args)?;
                Ok(Value::from_object(DateOnly(d.local().date())))
            }
            "timestamp" => {
                from_args::<()>(args)?;
                Ok(Value::from(d.utc_micros() as f64 / 1e6))
            }
            "weekday" => Ok(Value::from(d.local().weekday().num_days_from_monday())),
            "isoweekday" => Ok(Value::from(d.local().weekday().number_from_monday())),
            "to_date_string" => Ok(Value::from(d.local().format("%Y-%m-%d").to_string())),
            "to_time_string" => Ok(Value::from(d.local().format("%H:%M:%S").to_string())),
            "to_datetime_string" => Ok(Value::from(
                d.local().format("%Y-%m-%d %H:%M:%S").to_string(),
            )),
            "to_iso8601_string" => {
                let iso = d.iso('T');
                Ok(Value::from(match iso.strip_suffix("+00:00") {
                    Some(utc) => format!("{utc}Z"),
                    None => iso,
                }))
            }
            "format" => {
                let (fmt,): (&str,) = from_args(args)?;
                Ok(Value::from(pendulum_format(&d, fmt)))
            }
            "in_timezone" | "in_tz" | "astimezone" => {
                let (name,): (&str,) = from_args(args)?;
                let tz: Tz = name
                    .parse()
                    .map_err(|_| invalid(format!("{method}: unknown timezone {name:?}")))?;
                if d.naive {
                    return Err(invalid(format!(
                        "{method}: a naive datetime has no timezone to convert from"
                    )));
                }
                ret(DateObj::aware(d.dt.with_timezone(&tz)))
            }
            "add" | "subtract" => {
                let (pos, kwargs) = split_args(args)?;
                if !pos.is_empty() {
                    return Err(invalid(format!(
                        "{method} takes keyword arguments only (days=1)"
                    )));
                }
                let u = Units::from_kwargs(&kwargs, if method == "add" { 1 } else { -1 })?;
                ret(d.add_units(&u)?)
            }
            "start_of" | "end_of" => {
                let (unit,): (&str,) = from_args(args)?;
                ret(d.start_of(unit, method == "end_of")?)
            }
            "replace" => {
                let (pos, kwargs) = split_args(args)?;
                if !pos.is_empty() {
                    return Err(invalid("replace takes keyword arguments only (day=1)"));
                }
                ret(d.replace(&kwargs)?)
            }
            "naive" => ret(DateObj::naive(d.local())),
            "diff_for_humans" => {
                let (other,): (Option<Value>,) = from_args(args)?;
                diff_for_humans(&d, other.as_ref()).map(Value::from)
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("a date has no method {method} in gust's templates"),
            )),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// pendulum's `format` tokens (`YYYY-MM-DD HH:mm:ss`); text in `[…]` is literal.
fn pendulum_format(d: &DateObj, fmt: &str) -> String {
    let l = d.local();
    let tokens: &[&str] = &[
        "YYYY", "YY", "Q", "MMMM", "MMM", "MM", "M", "DDDD", "DDD", "Do", "DD", "D", "dddd", "ddd",
        "d", "E", "HH", "H", "hh", "h", "mm", "m", "ss", "s", "SSSSSS", "SSS", "S", "A", "a", "ZZ",
        "Z", "zz", "z", "X", "x",
    ];
    let mut out = String::with_capacity(fmt.len() + 8);
    let mut rest = fmt;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            match after.find(']') {
                Some(end) => {
                    out.push_str(&after[..end]);
                    rest = &after[end + 1..];
                }
                None => {
                    out.push_str(after);
                    rest = "";
                }
            }
            continue;
        }
        let Some(tok) = tokens.iter().find(|t| rest.starts_with(**t)) else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        };
        let h12 = match l.hour() % 12 {
            0 => 12,
            h => h,
        };
        let micros = l.nanosecond() / 1000;
        let off = d.dt.offset().local_minus_utc();
        let text = match *tok {
            "YYYY" => format!("{:04}", l.year()),
            "YY" => format!("{:02}", l.year().rem_euclid(100)),
            "Q" => (l.month0() / 3 + 1).to_string(),
            "MMMM" => l.format("%B").to_string(),
            "MMM" => l.format("%b").to_string(),
            "MM" => format!("{:02}", l.month()),
            "M" => l.month().to_string(),
            "DDDD" => format!("{:03}", l.ordinal()),
            "DDD" => l.ordinal().to_string(),
            "Do" => {
                let day = l.day();
                let suffix = match (day % 10, day % 100) {
                    (_, 11..=13) => "th",
                    (1, _) => "st",
                    (2, _) => "nd",
                    (3, _) => "rd",
                    _ => "th",
                };
                format!("{day}{suffix}")
            }
            "DD" => format!("{:02}", l.day()),
            "D" => l.day().to_string(),
            "dddd" => l.format("%A").to_string(),
            "ddd" => l.format("%a").to_string(),
            "d" => l.weekday().num_days_from_sunday().to_string(),
            "E" => l.weekday().number_from_monday().to_string(),
            "HH" => format!("{:02}", l.hour()),
            "H" => l.hour().to_string(),
            "hh" => format!("{h12:02}"),
            "h" => h12.to_string(),
            "mm" => format!("{:02}", l.minute()),
            "m" => l.minute().to_string(),
            "ss" => format!("{:02}", l.second()),
            "s" => l.second().to_string(),
            "SSSSSS" => format!("{micros:06}"),
            "SSS" => format!("{:03}", micros / 1000),
            "S" => (micros / 100_000).to_string(),
            "A" => if l.hour() < 12 { "AM" } else { "PM" }.to_string(),
            "a" => if l.hour() < 12 { "am" } else { "pm" }.to_string(),
            "ZZ" if !d.naive => offset_text(off, false),
            "Z" if !d.naive => offset_text(off, true),
            "zz" | "z" if !d.naive => d.zone_name(),
            "X" => d.dt.timestamp().to_string(),
            "x" => (d.utc_micros() / 1000).to_string(),
            _ => String::new(),
        };
        out.push_str(&text);
        rest = &rest[tok.len()..];
    }
    out
}

/// pendulum's `diff_for_humans`: `1 day before`, `4 days after`, `3 hours ago`.
fn diff_for_humans(d: &DateObj, other: Option<&Value>) -> Result<String, Error> {
    let (other, is_now) = match other.filter(|v| !v.is_none()) {
        Some(v) => (
            *v.downcast_object_ref::<DateObj>()
                .ok_or_else(|| invalid("diff_for_humans needs a date"))?,
            false,
        ),
        None => (DateObj::fixed(chrono::Utc::now().fixed_offset()), true),
    };
    let micros = d.utc_micros() - other.utc_micros();
    let (earlier, later) = if micros < 0 { (d, &other) } else { (&other, d) };
    // Calendar months between the two, then what is left.
    let (a, b) = (earlier.local(), later.local());
    let mut months =
        i64::from(b.year() - a.year()) * 12 + i64::from(b.month()) - i64::from(a.month());
    if months > 0
        && add_months(a.date(), months)
            .map(|x| x.and_time(a.time()) > b)
            .unwrap_or(false)
    {
        months -= 1;
    }
    let secs = micros.unsigned_abs() / 1_000_000;
    let days = secs / 86_400;
    let (count, unit) = if months >= 12 {
        (months as u128 / 12, "year")
    } else if months > 0 {
        (months as u128, "month")
    } else if days >= 7 {
        (days / 7, "week")
    } else if days > 0 {
        (days, "day")
    } else if secs >= 3600 {
        (secs / 3600, "hour")
    } else if secs >= 60 {
        (secs / 60, "minute")
    } else if secs > 10 {
        (secs, "second")
    } else {
        (0, "")
    };
    let amount = match (count, unit) {
        (_, "") => "a few seconds".to_string(),
        (1, u) => format!("1 {u}"),
        (n, u) => format!("{n} {u}s"),
    };
    Ok(match (is_now, micros < 0) {
        (true, true) => format!("{amount} ago"),
        (true, false) => format!("in {amount}"),
        (false, true) => format!("{amount} before"),
        (false, false) => format!("{amount} after"),
    })
}

/// A calendar date without a time (Python's `date`, pendulum's `Date`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DateOnly(pub(crate) NaiveDate);

impl Object for DateOnly {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<std::cmp::Ordering> {
        Some(self.0.cmp(&other.downcast_ref::<Self>()?.0))
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let d = self.0;
        Some(Value::from(match key.as_str()? {
            "year" => i64::from(d.year()),
            "month" => i64::from(d.month()),
            "day" => i64::from(d.day()),
            "day_of_week" => i64::from(d.weekday().num_days_from_monday()),
            "day_of_year" => i64::from(d.ordinal()),
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let d = self.0;
        match method {
            "isoformat" | "to_date_string" => Ok(Value::from(d.format("%Y-%m-%d").to_string())),
            "strftime" => {
                let (fmt,): (&str,) = from_args(args)?;
                let fmt = fmt.replace("%z", "").replace("%Z", "");
                super::chrono_format::Formattable::format_checked(&d.and_time(NaiveTime::MIN), &fmt)
                    .map(Value::from)
            }
            "format" => {
                let (fmt,): (&str,) = from_args(args)?;
                Ok(Value::from(pendulum_format(
                    &DateObj::naive(d.and_time(NaiveTime::MIN)),
                    fmt,
                )))
            }
            "weekday" => Ok(Value::from(d.weekday().num_days_from_monday())),
            "isoweekday" => Ok(Value::from(d.weekday().number_from_monday())),
            "add" | "subtract" => {
                let (pos, kwargs) = split_args(args)?;
                if !pos.is_empty() {
                    return Err(invalid(format!(
                        "{method} takes keyword arguments only (days=1)"
                    )));
                }
                let u = Units::from_kwargs(&kwargs, if method == "add" { 1 } else { -1 })?;
                let moved = DateObj::naive(d.and_time(NaiveTime::MIN)).add_units(&u)?;
                Ok(Value::from_object(DateOnly(moved.local().date())))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("a date has no method {method} in gust's templates"),
            )),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

/// A duration: Python's `timedelta`, or pendulum's `Interval` when it is the
/// difference of two dates (which prints as `<Interval [start -> end]>`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delta {
    micros: i128,
    interval: Option<(DateObj, DateObj)>,
}

/// Python's `timedelta` range: under a billion days either way.
const DELTA_LIMIT: i128 = 1_000_000_000 * MICROS_PER_DAY;

impl Delta {
    fn new(micros: i128) -> Delta {
        Delta {
            micros,
            interval: None,
        }
    }

    /// A timedelta of `micros`, or Python's `OverflowError` beyond its range.
    fn checked(micros: Option<i128>) -> Result<Value, Error> {
        match micros {
            Some(m) if m.abs() < DELTA_LIMIT => Ok(Value::from_object(Delta::new(m))),
            _ => Err(invalid("timedelta out of range (under 1e9 days)")),
        }
    }

    /// `macros.timedelta(days, seconds, microseconds, milliseconds, minutes, hours, weeks)`.
    pub(crate) fn from_args(args: &[Value]) -> Result<Delta, Error> {
        let (pos, kwargs) = split_args(args)?;
        const NAMES: [(&str, f64); 7] = [
            ("days", 86_400e6),
            ("seconds", 1e6),
            ("microseconds", 1.0),
            ("milliseconds", 1e3),
            ("minutes", 60e6),
            ("hours", 3_600e6),
            ("weeks", 604_800e6),
        ];
        if pos.len() > NAMES.len() {
            return Err(invalid("timedelta takes at most 7 arguments"));
        }
        let mut micros: f64 = 0.0;
        let mut exact: i128 = 0;
        for (i, (name, scale)) in NAMES.iter().enumerate() {
            let v = match pos.get(i) {
                Some(v) => Some(v.clone()),
                None => kwargs.get::<Option<Value>>(name)?,
            };
            let Some(v) = v else { continue };
            if v.is_integer() {
                let i = i128::try_from(v).map_err(|_| invalid("timedelta: bad number"))?;
                exact = i
                    .checked_mul(*scale as i128)
                    .and_then(|x| exact.checked_add(x))
                    .ok_or_else(|| invalid("timedelta out of range"))?;
            } else {
                let f = f64::try_from(v.clone())
                    .map_err(|_| invalid(format!("timedelta: {name} must be a number, not {v}")))?;
                micros += f * scale;
            }
        }
        kwargs.assert_all_used()?;
        if !micros.is_finite() || micros.abs() > 1e20 {
            return Err(invalid("timedelta out of range"));
        }
        let total = exact
            .checked_add(micros.round() as i128)
            .ok_or_else(|| invalid("timedelta out of range"))?;
        if total.abs() >= DELTA_LIMIT {
            return Err(invalid("timedelta out of range"));
        }
        Ok(Delta::new(total))
    }

    fn parts(&self) -> (i128, i128, i128) {
        let days = self.micros.div_euclid(MICROS_PER_DAY);
        let rest = self.micros.rem_euclid(MICROS_PER_DAY);
        (days, rest / MICROS_PER_SEC, rest % MICROS_PER_SEC)
    }
}

impl fmt::Display for Delta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((start, end)) = &self.interval {
            return write!(f, "<Interval [{start} -> {end}]>");
        }
        let (days, secs, micros) = self.parts();
        if days != 0 {
            let s = if days.abs() == 1 { "" } else { "s" };
            write!(f, "{days} day{s}, ")?;
        }
        write!(
            f,
            "{}:{:02}:{:02}",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )?;
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        Ok(())
    }
}

impl Object for Delta {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<std::cmp::Ordering> {
        Some(self.micros.cmp(&other.downcast_ref::<Self>()?.micros))
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let (days, secs, micros) = self.parts();
        Some(match key.as_str()? {
            "days" => Value::from(days),
            "seconds" => Value::from(secs),
            "microseconds" => Value::from(micros),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        from_args::<()>(args)?;
        // pendulum's in_* truncate toward zero.
        let whole = |unit: i128| Value::from(self.micros / unit);
        match method {
            "total_seconds" => Ok(Value::from(self.micros as f64 / 1e6)),
            "in_weeks" => Ok(whole(7 * MICROS_PER_DAY)),
            "in_days" => Ok(whole(MICROS_PER_DAY)),
            "in_hours" => Ok(whole(3_600 * MICROS_PER_SEC)),
            "in_minutes" => Ok(whole(60 * MICROS_PER_SEC)),
            "in_seconds" => Ok(whole(MICROS_PER_SEC)),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("a timedelta has no method {method} in gust's templates"),
            )),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// dateutil's `relativedelta`: relative fields (plural) and absolute ones (singular).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RelDelta {
    years: i64,
    months: i64,
    days: i64,
    hours: i64,
    minutes: i64,
    seconds: i64,
    microseconds: i64,
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    hour: Option<i64>,
    minute: Option<i64>,
    second: Option<i64>,
    microsecond: Option<i64>,
}

impl RelDelta {
    /// `relativedelta(months=1, day=1, …)`; the two-dates form and `weekday` are
    /// not supported (an error says so).
    pub(crate) fn from_args(args: &[Value]) -> Result<RelDelta, Error> {
        let (pos, kwargs) = split_args(args)?;
        if !pos.is_empty() {
            return Err(invalid(
                "relativedelta(dt1, dt2) is not supported in gust's templates; use keyword arguments",
            ));
        }
        if kwargs.has("weekday") || kwargs.has("leapdays") || kwargs.has("yearday") {
            return Err(invalid(
                "relativedelta: weekday, leapdays and yearday are not supported in gust's templates",
            ));
        }
        let int = |k: &str| -> Result<i64, Error> {
            match kwargs.get::<Option<Value>>(k)? {
                Some(v) => int_arg(&v, k),
                None => Ok(0),
            }
        };
        let abs = |k: &str| -> Result<Option<i64>, Error> {
            kwargs
                .get::<Option<Value>>(k)?
                .map(|v| int_arg(&v, k))
                .transpose()
        };
        let mut r = RelDelta {
            years: int("years")?,
            months: int("months")?,
            days: int("days")?.saturating_add(int("weeks")?.saturating_mul(7)),
            hours: int("hours")?,
            minutes: int("minutes")?,
            seconds: int("seconds")?,
            microseconds: int("microseconds")?,
            year: abs("year")?,
            month: abs("month")?,
            day: abs("day")?,
            hour: abs("hour")?,
            minute: abs("minute")?,
            second: abs("second")?,
            microsecond: abs("microsecond")?,
        };
        kwargs.assert_all_used()?;
        if r.month.is_some_and(|m| !(1..=12).contains(&m)) {
            return Err(invalid("relativedelta: month must be in 1..12"));
        }
        r.fix();
        Ok(r)
    }

    /// dateutil's `_fix`: carries each unit into the next larger one.
    fn fix(&mut self) {
        fn carry(small: &mut i64, big: &mut i64, limit: i64) {
            // Truncating division keeps both parts on the sign of `small`, as
            // dateutil's divmod on the absolute value does.
            *big = big.saturating_add(*small / limit);
            *small %= limit;
        }
        carry(&mut self.microseconds, &mut self.seconds, 1_000_000);
        carry(&mut self.seconds, &mut self.minutes, 60);
        carry(&mut self.minutes, &mut self.hours, 60);
        carry(&mut self.hours, &mut self.days, 24);
        carry(&mut self.months, &mut self.years, 12);
    }

    fn neg(&self) -> RelDelta {
        RelDelta {
            years: -self.years,
            months: -self.months,
            days: -self.days,
            hours: -self.hours,
            minutes: -self.minutes,
            seconds: -self.seconds,
            microseconds: -self.microseconds,
            ..*self
        }
    }

    /// dateutil's `__add__` to a date: absolute fields, then years and months,
    /// the day clamped to the month's end, then the rest as a timedelta.
    fn apply(&self, d: &DateObj) -> Result<DateObj, Error> {
        let l = d.local();
        let year = self
            .year
            .unwrap_or(i64::from(l.year()))
            .checked_add(self.years)
            .ok_or_else(|| invalid("year is out of range"))?;
        let mut month = self.month.unwrap_or(i64::from(l.month()));
        let mut year = year;
        if self.months != 0 {
            month += self.months;
            if month > 12 {
                year += 1;
                month -= 12;
            } else if month < 1 {
                year -= 1;
                month += 12;
            }
        }
        let year = i32::try_from(year).map_err(|_| invalid("year is out of range"))?;
        let month = u32::try_from(month).map_err(|_| invalid("month is out of range"))?;
        let last = days_in_month(year, month).ok_or_else(|| invalid("year is out of range"))?;
        let day = self
            .day
            .unwrap_or(i64::from(l.day()))
            .clamp(1, i64::from(last));
        let kw = |v: Option<i64>, dflt: u32| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(dflt);
        let date = NaiveDate::from_ymd_opt(year, month, day as u32)
            .ok_or_else(|| invalid("date is out of range"))?;
        let time = NaiveTime::from_hms_micro_opt(
            kw(self.hour, l.hour()),
            kw(self.minute, l.minute()),
            kw(self.second, l.second()),
            kw(self.microsecond, l.nanosecond() / 1000),
        )
        .ok_or_else(|| invalid("time is out of range"))?;
        let replaced = d.with_local(date.and_time(time))?;
        let micros = i128::from(self.hours) * 3_600 * MICROS_PER_SEC
            + i128::from(self.minutes) * 60 * MICROS_PER_SEC
            + i128::from(self.seconds) * MICROS_PER_SEC
            + i128::from(self.microseconds);
        add_delta(&replaced, i128::from(self.days) * MICROS_PER_DAY + micros)
    }
}

impl fmt::Display for RelDelta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        for (name, v) in [
            ("years", self.years),
            ("months", self.months),
            ("days", self.days),
            ("hours", self.hours),
            ("minutes", self.minutes),
            ("seconds", self.seconds),
            ("microseconds", self.microseconds),
        ] {
            if v != 0 {
                parts.push(format!("{name}={v:+}"));
            }
        }
        for (name, v) in [
            ("year", self.year),
            ("month", self.month),
            ("day", self.day),
            ("hour", self.hour),
            ("minute", self.minute),
            ("second", self.second),
            ("microsecond", self.microsecond),
        ] {
            if let Some(v) = v {
                parts.push(format!("{name}={v}"));
            }
        }
        write!(f, "relativedelta({})", parts.join(", "))
    }
}

impl Object for RelDelta {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "years" => Value::from(self.years),
            "months" => Value::from(self.months),
            "days" => Value::from(self.days),
            "hours" => Value::from(self.hours),
            "minutes" => Value::from(self.minutes),
            "seconds" => Value::from(self.seconds),
            "microseconds" => Value::from(self.microseconds),
            _ => return None,
        })
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// A Python `timedelta` added to a date: pendulum moves whole days on the
/// calendar and the rest as an absolute shift; a naive `datetime` moves its wall
/// time.
fn add_delta(d: &DateObj, micros: i128) -> Result<DateObj, Error> {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let rest = micros.rem_euclid(MICROS_PER_DAY);
    let u = Units {
        days: i64::try_from(days).map_err(|_| invalid("date value out of range"))?,
        time_micros: rest,
        ..Units::default()
    };
    d.add_units(&u)
}

/// `a + b` for dates and durations; `None` when neither is one.
pub(crate) fn add(a: &Value, b: &Value) -> Result<Option<Value>, Error> {
    let date = a.downcast_object_ref::<DateObj>();
    let day = a.downcast_object_ref::<DateOnly>();
    let delta = a.downcast_object_ref::<Delta>();
    let rel = a.downcast_object_ref::<RelDelta>();
    let (b_date, b_day) = (
        b.downcast_object_ref::<DateObj>(),
        b.downcast_object_ref::<DateOnly>(),
    );
    let (b_delta, b_rel) = (
        b.downcast_object_ref::<Delta>(),
        b.downcast_object_ref::<RelDelta>(),
    );
    let obj = |d: DateObj| Ok(Some(Value::from_object(d)));
    match (date, day, delta, rel) {
        (Some(d), ..) => match (b_delta, b_rel) {
            (Some(t), _) => obj(add_delta(d, t.micros)?),
            (_, Some(r)) => obj(r.apply(d)?),
            _ => Ok(None),
        },
        (_, Some(d), ..) => {
            let as_dt = DateObj::naive(d.0.and_time(NaiveTime::MIN));
            let moved = match (b_delta, b_rel) {
                // date + timedelta uses only the timedelta's days.
                (Some(t), _) => {
                    add_delta(&as_dt, t.micros.div_euclid(MICROS_PER_DAY) * MICROS_PER_DAY)?
                }
                (_, Some(r)) => r.apply(&as_dt)?,
                _ => return Ok(None),
            };
            Ok(Some(Value::from_object(DateOnly(moved.local().date()))))
        }
        (_, _, Some(t), _) => match (b_date, b_day, b_delta) {
            (Some(_), ..) | (_, Some(_), _) => add(b, a),
            (_, _, Some(u)) => Delta::checked(t.micros.checked_add(u.micros)).map(Some),
            _ => Ok(None),
        },
        (_, _, _, Some(_)) if b_date.is_some() || b_day.is_some() => add(b, a),
        _ => Ok(None),
    }
}

/// `a - b` for dates and durations; `None` when neither is one.
pub(crate) fn sub(a: &Value, b: &Value) -> Result<Option<Value>, Error> {
    let a_is_date = a.downcast_object_ref::<DateObj>().is_some()
        || a.downcast_object_ref::<DateOnly>().is_some();
    if let Some(t) = b.downcast_object_ref::<Delta>()
        && (a_is_date || a.downcast_object_ref::<Delta>().is_some())
    {
        return add(a, &Value::from_object(Delta::new(-t.micros)));
    }
    if let Some(r) = b.downcast_object_ref::<RelDelta>()
        && a_is_date
    {
        return add(a, &Value::from_object(r.neg()));
    }
    if let (Some(x), Some(y)) = (
        a.downcast_object_ref::<DateObj>(),
        b.downcast_object_ref::<DateObj>(),
    ) {
        if x.naive != y.naive {
            return Err(invalid(
                "can't subtract offset-naive and offset-aware datetimes",
            ));
        }
        let micros = x.utc_micros() - y.utc_micros();
        // pendulum: the difference of two aware DateTimes is an Interval.
        let interval = (!x.naive).then_some((*y, *x));
        return Ok(Some(Value::from_object(Delta { micros, interval })));
    }
    if let (Some(x), Some(y)) = (
        a.downcast_object_ref::<DateOnly>(),
        b.downcast_object_ref::<DateOnly>(),
    ) {
        return Ok(Some(Value::from_object(Delta::new(
            i128::from((x.0 - y.0).num_days()) * MICROS_PER_DAY,
        ))));
    }
    Ok(None)
}

/// `macros.datetime(2025, 1, 1[, h, m, s, us])`: a naive Python `datetime`.
pub(crate) fn datetime_ctor(args: &[Value]) -> Result<Value, Error> {
    let (pos, kwargs) = split_args(args)?;
    const NAMES: [&str; 7] = [
        "year",
        "month",
        "day",
        "hour",
        "minute",
        "second",
        "microsecond",
    ];
    if pos.len() > NAMES.len() {
        return Err(invalid("datetime takes at most 7 arguments"));
    }
    if kwargs.has("tzinfo") {
        return Err(invalid(
            "macros.datetime(..., tzinfo=...) is not supported in gust's templates; use .in_timezone() on logical_date",
        ));
    }
    let mut v = [0i64; 7];
    for (i, name) in NAMES.iter().enumerate() {
        v[i] = match pos.get(i) {
            Some(x) => int_arg(x, name)?,
            None => match kwargs.get::<Option<Value>>(name)? {
                Some(x) => int_arg(&x, name)?,
                None if i < 3 => return Err(invalid(format!("datetime: missing argument {name}"))),
                None => 0,
            },
        };
    }
    kwargs.assert_all_used()?;
    let u = |x: i64| u32::try_from(x).ok();
    let dt = i32::try_from(v[0])
        .ok()
        .zip(u(v[1]))
        .zip(u(v[2]))
        .and_then(|((y, m), d)| NaiveDate::from_ymd_opt(y, m, d))
        .zip(
            u(v[3])
                .zip(u(v[4]))
                .zip(u(v[5]))
                .zip(u(v[6]))
                .and_then(|(((h, mi), s), us)| NaiveTime::from_hms_micro_opt(h, mi, s, us)),
        )
        .map(|(d, t)| d.and_time(t))
        .ok_or_else(|| invalid("datetime: value out of range"))?;
    Ok(Value::from_object(DateObj::naive(dt)))
}

/// `datetime.strptime(text, format)`: naive, or aware when the format has `%z`.
pub(crate) fn strptime(text: &str, fmt: &str) -> Result<Value, Error> {
    if fmt.contains("%z")
        && let Ok(d) = DateTime::parse_from_str(text, fmt)
    {
        return Ok(Value::from_object(DateObj::fixed(d)));
    }
    let parsed = NaiveDateTime::parse_from_str(text, fmt)
        .or_else(|_| NaiveDate::parse_from_str(text, fmt).map(|d| d.and_time(NaiveTime::MIN)))
        .map_err(|e| {
            invalid(format!(
                "time data {text:?} does not match format {fmt:?}: {e}"
            ))
        })?;
    Ok(Value::from_object(DateObj::naive(parsed)))
}

/// `dateutil.parser.parse(text)` for ISO-8601-like text (what DAGs pass it); other
/// forms are an error saying so rather than a guess.
pub(crate) fn parse_date(text: &str) -> Result<Value, Error> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(Value::from_object(DateObj::fixed(d)));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(d) = DateTime::parse_from_str(t, fmt) {
            return Ok(Value::from_object(DateObj::fixed(d)));
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
        "%Y%m%dT%H%M%S",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(Value::from_object(DateObj::naive(d)));
        }
    }
    for fmt in ["%Y-%m-%d", "%Y%m%d", "%Y/%m/%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, fmt) {
            return Ok(Value::from_object(DateObj::naive(
                d.and_time(NaiveTime::MIN),
            )));
        }
    }
    Err(invalid(format!(
        "dateutil.parser.parse({text:?}): gust parses ISO-8601 dates and times only"
    )))
}

/// `datetime.now()`/`utcnow()`: the current time as a naive datetime (UTC).
pub(crate) fn now() -> Value {
    Value::from_object(DateObj::naive(chrono::Utc::now().naive_utc()))
}

/// `datetime_diff_for_humans(dt, since=None)`.
pub(crate) fn diff_for_humans_macro(args: &[Value]) -> Result<Value, Error> {
    let (dt, since): (Value, Option<Value>) = from_args(args)?;
    let d = dt
        .downcast_object_ref::<DateObj>()
        .ok_or_else(|| invalid("datetime_diff_for_humans needs a date"))?;
    diff_for_humans(d, since.as_ref()).map(Value::from)
}

/// The date (`logical_date`, …) behind a value, for Airflow's date filters.
pub(crate) fn filter_text(v: &Value, f: impl Fn(&DateObj) -> String) -> Option<String> {
    if let Some(d) = v.downcast_object_ref::<DateObj>() {
        return Some(f(d));
    }
    v.downcast_object_ref::<DateOnly>()
        .map(|d| f(&DateObj::naive(d.0.and_time(NaiveTime::MIN))))
}

/// `date.isoformat()` when `v` is a date without a time.
pub(crate) fn date_only_iso(v: &Value) -> Option<String> {
    v.downcast_object_ref::<DateOnly>()
        .map(|d| d.0.format("%Y-%m-%d").to_string())
}

/// The filters' formats, on a date object.
pub(crate) fn ds(d: &DateObj) -> String {
    d.local().format("%Y-%m-%d").to_string()
}
/// `ds_nodash`.
pub(crate) fn ds_nodash(d: &DateObj) -> String {
    d.local().format("%Y%m%d").to_string()
}
/// `ts`: `isoformat()`.
pub(crate) fn ts(d: &DateObj) -> String {
    d.iso('T')
}
/// `ts_nodash`.
pub(crate) fn ts_nodash(d: &DateObj) -> String {
    d.local().format("%Y%m%dT%H%M%S").to_string()
}
/// `ts_nodash_with_tz`.
pub(crate) fn ts_nodash_with_tz(d: &DateObj) -> String {
    d.iso('T').replace(['-', ':'], "")
}

/// `timedelta * number` (either order); `None` when neither is a timedelta.
pub(crate) fn mul(a: &Value, b: &Value) -> Result<Option<Value>, Error> {
    let (t, n) = match (
        a.downcast_object_ref::<Delta>(),
        b.downcast_object_ref::<Delta>(),
    ) {
        (Some(t), None) => (t, b),
        (None, Some(t)) => (t, a),
        _ => return Ok(None),
    };
    let micros = if n.is_integer() {
        let k = i128::try_from(n.clone()).map_err(|_| invalid("timedelta out of range"))?;
        t.micros.checked_mul(k)
    } else {
        f64::try_from(n.clone())
            .ok()
            .map(|f| (t.micros as f64 * f).round())
            .filter(|f| f.is_finite() && f.abs() < 1e20)
            .map(|f| f as i128)
    }
    .ok_or_else(|| {
        invalid(format!(
            "unsupported operand type(s) for *: 'timedelta' and {n}"
        ))
    })?;
    Ok(Some(Value::from_object(Delta::new(micros))))
}

/// Unary `-` of a `timedelta` or `relativedelta`.
pub(crate) fn neg(a: &Value) -> Option<Value> {
    if let Some(t) = a.downcast_object_ref::<Delta>() {
        return Some(Value::from_object(Delta::new(-t.micros)));
    }
    a.downcast_object_ref::<RelDelta>()
        .map(|r| Value::from_object(r.neg()))
}
