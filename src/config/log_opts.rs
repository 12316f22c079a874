//! `--log-opt KEY=VALUE` for the json-file driver, validated as dockerd validates them:
//! `max-size` (docker's `FromHumanSize`: decimal units, `10m` = 10,000,000 bytes, > 0) and
//! `max-file` (an integer ≥ 1; without max-size it has no effect, as in docker). Any other
//! key is refused naming it: docker's other json-file options (labels, env, tag, compress,
//! …) are not implemented, and dockerd refuses keys it does not know.

use std::collections::BTreeMap;

use super::parse::{size_bytes, size_number, size_power};
use super::{invalid, ConfigError, LogDriver};
use crate::log_file::Rotation;

/// The json-file options docker knows and ocishim does not implement.
const UNSUPPORTED: &[&str] = &[
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
    "mode",
    "max-buffer-size",
];

/// A size as docker's `units.FromHumanSize`: `512`, `1.5k`, `10m`, `1g`, `2kb`, `3KiB`
/// (decimal multipliers whatever the spelling), an optional space before the unit.
pub fn parse_human_size(s: &str) -> Result<u64, String> {
    let err = || format!("invalid size: '{s}'");
    let (value, unit) = size_number(s).ok_or_else(err)?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let bad_suffix = || format!("invalid suffix: '{unit}'");
    let mut chars = unit.chars();
    let power = match chars.next() {
        None => 0,
        Some('b') if unit.len() == 1 => 0,
        Some(c) => {
            let p = size_power(c).ok_or_else(bad_suffix)?;
            if !matches!(chars.as_str(), "" | "b" | "ib") {
                return Err(bad_suffix());
            }
            p
        }
    };
    size_bytes(value, 1000.0, power)
        .map(|b| b as u64)
        .ok_or_else(err)
}

fn max_size(v: &str) -> Result<u64, String> {
    match parse_human_size(v)? {
        0 => Err("max-size must be a positive number".into()),
        n => Ok(n),
    }
}

fn max_file(v: &str) -> Result<u32, String> {
    let n: i64 = v
        .parse()
        .map_err(|_| format!("max-file: {v:?} is not an integer"))?;
    if n < 1 {
        return Err("max-file cannot be less than 1".into());
    }
    u32::try_from(n).map_err(|_| format!("max-file: {v:?} is out of range"))
}

/// The rotation the options ask for: None without max-size (docker's default: one file,
/// unbounded). Messages as docker's.
pub fn rotation(opts: &BTreeMap<String, String>) -> Result<Option<Rotation>, String> {
    let size = opts.get("max-size").map(|v| max_size(v)).transpose()?;
    let files = opts.get("max-file").map(|v| max_file(v)).transpose()?;
    Ok(size.map(|max_size| Rotation {
        max_size,
        max_file: files.unwrap_or(1),
    }))
}

/// `--log-opt` values (KEY=VALUE, the last one of a key wins) checked against the driver.
pub fn parse(raw: &[String], driver: LogDriver) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut opts = BTreeMap::new();
    for o in raw {
        let Some((k, v)) = o.split_once('=') else {
            return Err(invalid("--log-opt", o, "expected KEY=VALUE"));
        };
        if driver == LogDriver::None {
            return Err(invalid(
                "--log-opt",
                o,
                "the none log driver takes no options",
            ));
        }
        match k {
            "max-size" | "max-file" => {}
            k if UNSUPPORTED.contains(&k) => {
                return Err(invalid(
                    "--log-opt",
                    o,
                    format!("log opt '{k}' of the json-file log driver is not supported (max-size, max-file)"),
                ))
            }
            k => {
                return Err(invalid(
                    "--log-opt",
                    o,
                    format!("unknown log opt '{k}' for json-file log driver"),
                ))
            }
        }
        opts.insert(k.to_string(), v.to_string());
    }
    let bad = |k: &str, why: String| invalid("--log-opt", &format!("{k}={}", opts[k]), why);
    if let Some(v) = opts.get("max-size") {
        max_size(v).map_err(|why| bad("max-size", why))?;
    }
    if let Some(v) = opts.get("max-file") {
        max_file(v).map_err(|why| bad("max-file", why))?;
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[&str]) -> Result<BTreeMap<String, String>, String> {
        let raw: Vec<String> = kv.iter().map(|s| s.to_string()).collect();
        parse(&raw, LogDriver::JsonFile).map_err(|e| e.to_string())
    }

    #[test]
    fn human_sizes_as_docker() {
        for (s, want) in [
            ("1", 1),
            ("1k", 1000),
            ("1K", 1000),
            ("10m", 10_000_000),
            ("1g", 1_000_000_000),
            ("1.5k", 1500),
            ("2kb", 2000),
            ("3KiB", 3000),
            ("4 m", 4_000_000),
            ("7b", 7),
            ("0", 0),
        ] {
            assert_eq!(parse_human_size(s), Ok(want), "{s}");
        }
        for bad in ["", "k", "-1", "1.2.3", "x1", ".5", "5."] {
            assert_eq!(parse_human_size(bad), Err(format!("invalid size: '{bad}'")));
        }
        assert_eq!(parse_human_size("1q"), Err("invalid suffix: 'q'".into()));
        assert_eq!(
            parse_human_size("1mbb"),
            Err("invalid suffix: 'mbb'".into())
        );
        assert_eq!(parse_human_size("1bk"), Err("invalid suffix: 'bk'".into()));
    }

    #[test]
    fn rotation_from_options() {
        let map = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(rotation(&map(&[])), Ok(None));
        assert_eq!(rotation(&map(&[("max-file", "3")])), Ok(None));
        assert_eq!(
            rotation(&map(&[("max-size", "1k")])),
            Ok(Some(Rotation {
                max_size: 1000,
                max_file: 1
            }))
        );
        assert_eq!(
            rotation(&map(&[("max-size", "10m"), ("max-file", "3")])),
            Ok(Some(Rotation {
                max_size: 10_000_000,
                max_file: 3
            }))
        );
        assert_eq!(
            rotation(&map(&[("max-size", "0")])),
            Err("max-size must be a positive number".into())
        );
        assert_eq!(
            rotation(&map(&[("max-size", "1k"), ("max-file", "0")])),
            Err("max-file cannot be less than 1".into())
        );
    }

    #[test]
    fn log_opt_values() {
        assert_eq!(
            opts(&["max-size=10m", "max-file=3"]).unwrap(),
            [
                ("max-file".to_string(), "3".to_string()),
                ("max-size".to_string(), "10m".to_string())
            ]
            .into()
        );
        assert!(
            opts(&["max-file=2"]).is_ok(),
            "docker: no effect without max-size"
        );
        assert_eq!(
            opts(&["max-size=1", "max-size=2"]).unwrap()["max-size"],
            "2"
        );
        for (bad, why) in [
            (
                "max-size=0",
                "max-size=0\" for --log-opt: max-size must be a positive number",
            ),
            (
                "max-size=-1k",
                "max-size=-1k\" for --log-opt: invalid size: '-1k'",
            ),
            (
                "max-size=12q",
                "max-size=12q\" for --log-opt: invalid suffix: 'q'",
            ),
            (
                "max-file=0",
                "max-file=0\" for --log-opt: max-file cannot be less than 1",
            ),
            (
                "max-file=x",
                "max-file=x\" for --log-opt: max-file: \"x\" is not an integer",
            ),
            (
                "maxsize=1k",
                "unknown log opt 'maxsize' for json-file log driver",
            ),
            (
                "compress=true",
                "log opt 'compress' of the json-file log driver is not supported",
            ),
            ("max-size", "\"max-size\" for --log-opt: expected KEY=VALUE"),
        ] {
            let e = opts(&["max-size=1k", bad]).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.starts_with("invalid value \""), "{e}");
        }
        let e = parse(&["max-size=1k".into()], LogDriver::None).unwrap_err();
        assert!(
            e.to_string().contains("none log driver takes no options"),
            "{e}"
        );
        assert!(parse(&[], LogDriver::None).unwrap().is_empty());
    }
}
