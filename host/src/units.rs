//! Sizes ("16MiB") and durations ("10s") as the CLI flags and the manifest
//! write them, parsed and shown the same way, so that a default is written
//! once: in the library's `Default` impls.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A size in bytes, written like `65536`, `64KiB` or `16MiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub usize);

impl FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        parse_size(s).map(Size)
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        match n {
            _ if n != 0 && n.is_multiple_of(1 << 30) => write!(f, "{}GiB", n >> 30),
            _ if n != 0 && n.is_multiple_of(1 << 20) => write!(f, "{}MiB", n >> 20),
            _ if n != 0 && n.is_multiple_of(1 << 10) => write!(f, "{}KiB", n >> 10),
            _ => write!(f, "{n}"),
        }
    }
}

/// A duration, written like `500ms`, `10s` or `2m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl FromStr for Dur {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        parse_duration(s).map(Dur)
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        match ms {
            _ if ms != 0 && ms.is_multiple_of(60_000) => write!(f, "{}m", ms / 60_000),
            _ if ms.is_multiple_of(1000) => write!(f, "{}s", ms / 1000),
            _ => write!(f, "{ms}ms"),
        }
    }
}

/// Parses a size: a number of bytes with an optional unit, `B`, `KiB`,
/// `MiB` or `GiB` (`K`, `M`, `G` too). Zero is refused.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("`{s}` is not a size: write e.g. 65536, 64KiB or 16MiB"))?;
    let scale = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}`: use B, KiB, MiB or GiB"
            ))
        }
    };
    number
        .checked_mul(scale)
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("`{s}` is out of range"))
}

/// Parses a duration: a number with an optional unit, `ms`, `s` (the
/// default) or `m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: write e.g. 500ms, 10s or 2m"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        other => return Err(format!("unknown duration unit `{other}`: use ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{s}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_shown_parses_back() {
        for n in [1, 1000, 4096, 1 << 20, 16 << 20, 256 << 20, 3 << 30] {
            let shown = Size(n).to_string();
            assert_eq!(shown.parse::<Size>(), Ok(Size(n)), "{shown}");
        }
        assert_eq!(Size(16 << 20).to_string(), "16MiB");
        for ms in [1, 500, 1000, 10_000, 120_000, 90_500] {
            let d = Dur(Duration::from_millis(ms));
            assert_eq!(d.to_string().parse::<Dur>(), Ok(d), "{d}");
        }
        assert_eq!(Dur(Duration::from_secs(10)).to_string(), "10s");
    }

    #[test]
    fn sizes() {
        for (text, want) in [
            ("65536", Some(65536)),
            ("64KiB", Some(64 << 10)),
            ("16MiB", Some(16 << 20)),
            ("1GiB", Some(1 << 30)),
            ("2 M", Some(2 << 20)),
            ("0", None),
            ("16XB", None),
            ("MiB", None),
            ("-1", None),
            ("99999999999999999999GiB", None),
        ] {
            assert_eq!(parse_size(text).ok(), want, "{text}");
        }
        assert!(parse_size("16XB")
            .unwrap_err()
            .contains("use B, KiB, MiB or GiB"));
    }

    #[test]
    fn durations() {
        for (text, want) in [
            ("10s", Some(Duration::from_secs(10))),
            ("10", Some(Duration::from_secs(10))),
            ("500ms", Some(Duration::from_millis(500))),
            ("2m", Some(Duration::from_secs(120))),
            ("1.5s", Some(Duration::from_millis(1500))),
            ("0s", Some(Duration::ZERO)),
            ("10h", None),
            ("soon", None),
        ] {
            assert_eq!(parse_duration(text).ok(), want, "{text}");
        }
        assert!(parse_duration("10h")
            .unwrap_err()
            .contains("use ms, s or m"));
    }
}
