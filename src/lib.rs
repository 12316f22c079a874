//! ocishim: a daemonless, low-level container shim that drives an OCI runtime.
//!
//! See README.md for the architecture; each module owns one concern and has its own
//! error type, rolled up into [`error::Error`] and mapped to exit codes in `main.rs`.

pub mod cgroup;
pub mod cli;
pub mod config;
pub mod container;
pub mod error;
pub mod exit_code;
pub mod image;
pub mod log_file;
pub mod monitor;
pub mod network;
#[cfg(test)]
mod proptests;
pub mod record;
pub mod runtime;
pub mod security;
pub mod settings;
pub mod spec;
pub mod store;
pub mod sys;
pub mod teardown;

/// The layout's rules, checked on the source tree (README, "Architecture").
#[cfg(test)]
mod layout {
    use std::path::{Path, PathBuf};

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    fn all() -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&root, &mut files);
        files
            .into_iter()
            .map(|p| {
                let rel = p.strip_prefix(&root).unwrap().display().to_string();
                (rel, std::fs::read_to_string(&p).unwrap())
            })
            .collect()
    }

    #[test]
    fn arrows_run_one_way() {
        for (file, text) in all() {
            let below_container = file.starts_with("monitor/")
                || !(file.starts_with("container/")
                    || file.starts_with("cli/")
                    || file == "main.rs"
                    || file == "lib.rs"
                    // Test-only: the properties of every layer's parsers, the CLI's included.
                    || file == "proptests.rs");
            if below_container {
                assert!(
                    !text.contains("crate::container") && !text.contains("crate::cli"),
                    "{file} imports container/ or cli/: only cli → container → the rest"
                );
            }
        }
    }

    #[test]
    fn no_source_file_over_a_thousand_lines() {
        for (file, text) in all() {
            let n = text.lines().count();
            assert!(n <= 1000, "{file} has {n} lines");
        }
    }

    #[test]
    fn unsafe_code_only_where_allowed() {
        for (file, text) in all() {
            if file != "lib.rs" && text.contains("allow(unsafe_code)") {
                assert!(
                    matches!(file.as_str(), "sys.rs" | "monitor/launch.rs"),
                    "{file} allows unsafe code"
                );
            }
        }
    }
}
