//! Parsers for single option values (sizes, CPUs, cpusets, integers, names, ulimits, env
//! entries) with docker's spelling and messages.

use std::collections::BTreeMap;

use super::{invalid, ConfigError, Ulimit};

/// A size's number and what follows it: digits with at most one inner dot (docker's size
/// parsers agree on that much); None for anything else.
pub(super) fn size_number(t: &str) -> Option<(f64, &str)> {
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1
    {
        return None;
    }
    Some((num.parse().ok()?, unit))
}

/// The power of a size unit's first letter: k 1, m 2, g 3, t 4, p 5.
pub(super) fn size_power(c: char) -> Option<i32> {
    Some(match c {
        'k' => 1,
        'm' => 2,
        'g' => 3,
        't' => 4,
        'p' => 5,
        _ => return None,
    })
}

/// `value` × `base`^`power` as bytes; None from i64's limit on.
pub(super) fn size_bytes(value: f64, base: f64, power: i32) -> Option<i64> {
    let bytes = value * base.powi(power);
    (bytes.is_finite() && bytes < i64::MAX as f64).then_some(bytes as i64)
}

/// Parse a byte size as docker's `RAMInBytes`: `512`, `512b`, `256k`, `256m`, `1g`, `1.5g`,
/// `1gb`, `1GiB`; binary multipliers.
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    let err = || format!("invalid size: '{s}'");
    let (value, unit) = size_number(s.trim()).ok_or_else(err)?;
    let unit = unit.trim_start_matches(' ').to_ascii_lowercase();
    let mut chars = unit.chars();
    let power = match chars.next() {
        None => 0,
        Some('b') if chars.next().is_none() => 0,
        Some(c) => {
            let p = size_power(c).ok_or_else(err)?;
            if !matches!(chars.as_str(), "" | "b" | "i" | "ib") {
                return Err(err());
            }
            p
        }
    };
    size_bytes(value, 1024.0, power).ok_or_else(err)
}

/// Parse `--cpus` as docker's NanoCPUs: a decimal with at most 9 fractional digits.
pub fn parse_nano_cpus(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(format!("failed to parse {s} as a rational number"));
    }
    let frac_trim = frac.trim_end_matches('0');
    if frac_trim.len() > 9 {
        return Err("value is too precise".into());
    }
    let int_v: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| "value is too large".to_string())?
    };
    let frac_v: i64 = if frac_trim.is_empty() {
        0
    } else {
        format!("{frac_trim:0<9}").parse().unwrap_or(0)
    };
    let v = int_v
        .checked_mul(1_000_000_000)
        .and_then(|v| v.checked_add(frac_v))
        .ok_or_else(|| "value is too large".to_string())?;
    Ok(if neg { -v } else { v })
}

/// Parse a cpuset list ("0-2,4") into the set of numbers.
pub fn parse_cpuset(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    if s.trim().is_empty() {
        return Some(out);
    }
    for part in s.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u32 = a.parse().ok()?;
                let b: u32 = b.parse().ok()?;
                if b < a || b - a > 4096 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// An integer option value.
pub(super) fn parse_int(flag: &'static str, v: &str) -> Result<i64, ConfigError> {
    v.trim()
        .parse::<i64>()
        .map_err(|_| invalid(flag, v, "not an integer"))
}

/// Container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, an optional leading '/'.
pub fn validate_name(name: &str) -> Result<String, ConfigError> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {
            chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        }
        _ => false,
    };
    if !ok || n.len() > 253 {
        return Err(ConfigError::Invalid(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    Ok(n.to_string())
}

/// The `--ulimit` names docker accepts (RLIMIT_ without the prefix, lowercase).
const ULIMIT_NAMES: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `--ulimit NAME=SOFT[:HARD]`; -1 is unlimited.
pub fn parse_ulimit(s: &str) -> Result<Ulimit, ConfigError> {
    let (name, vals) = s
        .split_once('=')
        .ok_or_else(|| invalid("--ulimit", s, "expected NAME=SOFT[:HARD]"))?;
    if !ULIMIT_NAMES.contains(&name) {
        return Err(invalid(
            "--ulimit",
            s,
            format!("invalid ulimit type: {name}"),
        ));
    }
    let num = |v: &str| {
        v.parse::<i64>()
            .ok()
            .filter(|n| *n >= -1)
            .ok_or_else(|| invalid("--ulimit", s, format!("invalid ulimit value: {v}")))
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let v = num(vals)?;
            (v, v)
        }
    };
    let as_u = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    if as_u(soft) > as_u(hard) {
        return Err(invalid(
            "--ulimit",
            s,
            format!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"),
        ));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// One `-e` value or `--env-file` line: `K=V`, or `K` for the host's value (None if the
/// host has none); blank and comment lines give None.
pub(super) fn parse_env_line(
    line: &str,
    host_env: &BTreeMap<String, String>,
) -> Result<Option<String>, String> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (k, v) = match line.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (line.trim_end(), None),
    };
    if k.is_empty() {
        return Err(format!("invalid environment variable: {line}"));
    }
    if k.contains(char::is_whitespace) {
        return Err(format!("variable '{k}' contains whitespaces"));
    }
    Ok(match v {
        Some(v) => Some(format!("{k}={v}")),
        None => host_env.get(k).map(|v| format!("{k}={v}")),
    })
}

/// Merge env lists: later entries replace earlier ones of the same key, order of first
/// appearance kept.
pub fn merge_env(lists: &[&[String]]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for list in lists {
        for kv in list.iter() {
            let key = kv.split('=').next().unwrap_or(kv);
            match out
                .iter_mut()
                .find(|e| e.split('=').next().unwrap_or(e) == key)
            {
                Some(slot) => *slot = kv.clone(),
                None => out.push(kv.clone()),
            }
        }
    }
    out
}

/// Whether `s` is an IPv4 or IPv6 address.
pub(super) fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_as_docker() {
        let cases: &[(&str, i64)] = &[
            ("512", 512),
            ("512b", 512),
            ("1k", 1024),
            ("512k", 512 * 1024),
            ("256m", 256 << 20),
            ("256M", 256 << 20),
            ("1g", 1 << 30),
            ("1gb", 1 << 30),
            ("1GiB", 1 << 30),
            ("1.5g", 3 << 29),
            ("2t", 2 << 40),
            ("32 m", 32 << 20),
        ];
        for (s, want) in cases {
            assert_eq!(parse_bytes(s), Ok(*want), "{s}");
        }
        for bad in ["12q", "", "m", "-1", "1.2.3m", "1mbb", "1x", ".5m", "5.m"] {
            assert_eq!(
                parse_bytes(bad),
                Err(format!("invalid size: '{bad}'")),
                "{bad}"
            );
        }
    }

    #[test]
    fn nano_cpus() {
        assert_eq!(parse_nano_cpus("0.5"), Ok(500_000_000));
        assert_eq!(parse_nano_cpus("1.25"), Ok(1_250_000_000));
        assert_eq!(parse_nano_cpus("2"), Ok(2_000_000_000));
        assert_eq!(parse_nano_cpus("-1"), Ok(-1_000_000_000));
        assert_eq!(parse_nano_cpus(".5"), Ok(500_000_000));
        assert!(parse_nano_cpus("0.0000000001").is_err());
        assert!(parse_nano_cpus("abc").is_err());
    }

    #[test]
    fn names() {
        for ok in ["a", "web", "web-1.2_x", "/web", "A9"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["../x", "", "-x", "_x", "a b", "a/b", "ä"] {
            let e = validate_name(bad).unwrap_err().to_string();
            assert!(e.starts_with("Invalid container name"), "{bad}: {e}");
        }
    }

    #[test]
    fn ulimits() {
        assert_eq!(
            parse_ulimit("nofile=1024:2048").unwrap(),
            Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048
            }
        );
        assert_eq!(parse_ulimit("nproc=10").unwrap().hard, 10);
        assert!(parse_ulimit("nofile=2048:1024").is_err());
        assert!(parse_ulimit("bogus=1").is_err());
        assert!(parse_ulimit("nofile").is_err());
        assert!(parse_ulimit("nofile=x").is_err());
    }
}
