//! An `--env-file` of any text, through `RawOptions::into_config`: never a panic; a file is
//! refused exactly when one of its lines has an empty key or a key with whitespace, and
//! every accepted entry is `KEY=VALUE` with such a key.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use ocishim::config::{ConfigError, HostFacts, RawOptions};

fuzz_target!(|text: &str| {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    let host = HostFacts {
        ncpu: 2,
        cpus_online: "0-1".into(),
        mems_online: "0".into(),
        env: [("HOSTVAR".to_string(), "from host".to_string())].into(),
    };
    let raw = RawOptions {
        rootfs: Some("/tmp/rootfs".into()),
        args: vec!["true".into()],
        env_file: vec![f.path().to_path_buf()],
        ..Default::default()
    };
    let bad_line = text.lines().find(|l| {
        let l = l.trim_start();
        if l.is_empty() || l.starts_with('#') {
            return false;
        }
        let k = l.split_once('=').map_or(l.trim_end(), |(k, _)| k);
        k.is_empty() || k.contains(char::is_whitespace)
    });
    match raw.into_config(&host) {
        Ok(c) => {
            assert!(bad_line.is_none(), "{bad_line:?} accepted");
            for e in &c.env {
                let (k, _) = e.split_once('=').expect("KEY=VALUE");
                assert!(!k.is_empty() && !k.contains(char::is_whitespace), "{e:?}");
            }
        }
        Err(e) => {
            assert!(bad_line.is_some(), "{text:?}: {e}");
            assert!(matches!(e, ConfigError::EnvFile { .. }), "{e}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }
});
