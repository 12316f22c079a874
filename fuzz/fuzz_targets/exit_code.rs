//! The runtime's error text (and the container's command) through `translate`: never a
//! panic; the recorded code is 126, 127 or 128, the CLI status 125, 126 or 127 and what
//! `cli_status` gives for the message; the message starts with the trimmed text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocishim::exit_code::{cli_status, from_wait_status, translate, ENOTDIR_HINT};

fuzz_target!(|s: &str| {
    let (text, cmd) = s.split_once('\0').unwrap_or((s, ""));
    let f = translate(text, cmd);
    assert!(matches!(f.exit_code, 126..=128), "{f:?}");
    assert!(matches!(f.cli_status, 125..=127), "{f:?}");
    assert_eq!(f.cli_status, cli_status(&f.message));
    assert!(f.message.starts_with(text.trim()));
    assert_eq!(translate(text, cmd), f);
    let lower = text.to_ascii_lowercase();
    if lower.contains("not a directory") {
        assert_eq!(f.exit_code, 127);
        assert!(f.message.ends_with(ENOTDIR_HINT));
    } else if lower.contains("permission denied") || lower.contains("is a directory") {
        assert_eq!(f.exit_code, 126);
    }
    let mut status = [0u8; 4];
    for (d, b) in status.iter_mut().zip(s.bytes()) {
        *d = b;
    }
    assert!((0..=255).contains(&from_wait_status(i32::from_le_bytes(status))));
});
