//! Any text as a seccomp profile (`--security-opt seccomp=FILE`), evaluated as `to_spec`
//! does for the spec: never a panic, the same result twice, and the spec section it gives
//! serializes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocishim::security::seccomp::{to_spec, Host};

fuzz_target!(|text: &str| {
    let host = Host::detect();
    for caps in [
        &[][..],
        &["CAP_SYS_ADMIN".to_string(), "CAP_SYS_PTRACE".to_string()][..],
    ] {
        match to_spec(text, caps, &host) {
            Ok(spec) => {
                let js = serde_json::to_string(&spec).expect("the spec serializes");
                let again = serde_json::to_string(&to_spec(text, caps, &host).unwrap()).unwrap();
                assert_eq!(js, again);
            }
            Err(e) => {
                assert!(to_spec(text, caps, &host).is_err());
                let _ = e.to_string();
            }
        }
    }
});
