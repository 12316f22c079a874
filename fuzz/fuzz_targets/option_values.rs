//! One option value through every single-value parser: sizes, `--cpus`, cpusets,
//! `--ulimit`, `-v`, `--tmpfs`, `--device` and path cleaning. None may panic, and whatever
//! parses prints back to text that parses to the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocishim::config::{
    clean_path, parse_bytes, parse_cpuset, parse_device, parse_nano_cpus, parse_tmpfs,
    parse_ulimit, parse_volume,
};

fn is_clean(p: &str) -> bool {
    p == "/" || (p.starts_with('/') && p[1..].split('/').all(|c| !matches!(c, "" | "." | "..")))
}

fuzz_target!(|s: &str| {
    if let Ok(v) = parse_bytes(s) {
        assert!(v >= 0, "{s:?} -> {v}");
        assert_eq!(parse_bytes(&format!(" {s} ")), Ok(v));
    }
    if let Ok(v) = parse_nano_cpus(s) {
        let a = v.unsigned_abs();
        let sign = if v < 0 { "-" } else { "" };
        let back = format!("{sign}{}.{:09}", a / 1_000_000_000, a % 1_000_000_000);
        assert_eq!(parse_nano_cpus(&back), Ok(v), "{s:?}");
    }
    if let Some(v) = parse_cpuset(s) {
        let list: Vec<String> = v.iter().map(u32::to_string).collect();
        assert_eq!(parse_cpuset(&list.join(",")), Some(v), "{s:?}");
    }
    if let Ok(u) = parse_ulimit(s) {
        assert!(u.soft >= -1 && u.hard >= -1, "{s:?}");
        let again = parse_ulimit(&format!("{}={}:{}", u.name, u.soft, u.hard));
        assert_eq!(again, Ok(u), "{s:?}");
    }
    let c = clean_path(s);
    assert!(is_clean(&c), "{s:?} -> {c:?}");
    assert_eq!(clean_path(&c), c);
    if let Ok(b) = parse_volume(s) {
        let src = b.source.to_str().unwrap().to_string();
        assert!(
            is_clean(&src) && is_clean(&b.destination) && b.destination != "/",
            "{s:?}"
        );
        let mode = if b.read_only { "ro" } else { "rw" };
        let again = format!("{src}:{}:{mode},{}", b.destination, b.propagation);
        assert_eq!(parse_volume(&again), Ok(b), "{s:?}");
    }
    if let Ok(t) = parse_tmpfs(s) {
        assert!(is_clean(&t.destination) && t.destination != "/", "{s:?}");
        let again = format!("{}:{}", t.destination, t.options.join(","));
        assert_eq!(parse_tmpfs(&again), Ok(t), "{s:?}");
    }
    if let Ok(d) = parse_device(s) {
        let host = d.host.to_str().unwrap().to_string();
        assert!(host.starts_with('/') && is_clean(&d.container), "{s:?}");
        assert!(!d.permissions.is_empty() && d.permissions.chars().all(|c| "rwm".contains(c)));
        let again = format!("{host}:{}:{}", d.container, d.permissions);
        assert_eq!(parse_device(&again), Ok(d), "{s:?}");
    }
});
