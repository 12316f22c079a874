//! A `--format` template (and, after a NUL, the JSON it is applied to): parsing and
//! rendering never panic, errors are one line quoting the template, rendering is
//! deterministic, and text without `{{` renders as itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocishim::cli::template::Template;
use serde_json::{json, Value};

fuzz_target!(|s: &str| {
    let (text, data) = s.split_once('\0').unwrap_or((s, ""));
    let data: Value = serde_json::from_str(data).unwrap_or_else(|_| {
        json!({
            "Args": ["-c", "echo <hi>"],
            "Config": {"Cmd": null, "Env": ["A=1"], "Labels": {"a": "1", "b\nc": "x"}},
            "Id": "4f1c2d",
            "State": {"ExitCode": 0, "Pid": 4242, "Running": true},
            "Num": 1e6
        })
    });
    let one_line = |m: String| {
        assert!(!m.contains('\n'), "{m}");
        assert!(m.contains(&format!("{text:?}")), "{m}");
    };
    match Template::parse(text) {
        Ok(t) => {
            let first = t.render(&data);
            let again = t.render(&data);
            match (&first, &again) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a, b);
                    if !text.contains("{{") {
                        assert_eq!(a, text);
                    }
                }
                (Err(a), Err(b)) => {
                    assert_eq!(a.to_string(), b.to_string());
                    one_line(a.to_string());
                }
                _ => panic!("rendering twice differs: {first:?} / {again:?}"),
            }
        }
        Err(e) => one_line(e.to_string()),
    }
});
