//! The settings file: what commands need that a scheduler's argv does not carry.
//! `/etc/ocishim/settings.json` when present, or the file `--config FILE` names (which
//! must exist). Keys are docker's `daemon.json` spellings; an unknown key is an error
//! (a typo must not silently mean "no mirror").
//!
//! ```json
//! {
//!   "insecure-registries": ["registry.internal:5000", "10.0.0.0/8"],
//!   "registry-mirrors": ["https://mirror.internal"],
//!   "max-concurrent-downloads": 3
//! }
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::image::registry::RegistryConfig;

/// Where the settings are read from without `--config`.
pub const DEFAULT_PATH: &str = "/etc/ocishim/settings.json";
/// docker's default `max-concurrent-downloads`.
const DEFAULT_DOWNLOADS: usize = 3;
/// Larger files are not settings.
const MAX_SIZE: u64 = 1 << 20;

#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Settings {
    /// Registries (`host[:port]` or a CIDR) that may be reached over plain HTTP.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Docker Hub mirrors, tried in order before Docker Hub.
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
    /// Layers a pull fetches at once.
    pub max_concurrent_downloads: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("settings {}: {why}", path.display())]
    Invalid { path: PathBuf, why: String },
}

impl Settings {
    /// The settings `--config` names (required to exist), else the default file if present.
    pub fn load(explicit: Option<&Path>) -> Result<Settings, SettingsError> {
        let path = explicit.unwrap_or(Path::new(DEFAULT_PATH));
        let io = |source| SettingsError::Io {
            path: path.into(),
            source,
        };
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
                return Ok(Settings::default())
            }
            Err(e) => return Err(io(e)),
        };
        if data.len() as u64 > MAX_SIZE {
            return Err(SettingsError::Invalid {
                path: path.into(),
                why: format!("larger than {MAX_SIZE} bytes"),
            });
        }
        Settings::parse(&data).map_err(|why| SettingsError::Invalid {
            path: path.into(),
            why,
        })
    }

    /// The JSON text, checked.
    pub fn parse(data: &[u8]) -> Result<Settings, String> {
        let s: Settings = serde_json::from_slice(data).map_err(|e| e.to_string())?;
        for m in &s.registry_mirrors {
            let ok = (m.starts_with("https://") || m.starts_with("http://"))
                && m.split_once("://").is_some_and(|(_, h)| {
                    let host = h.trim_end_matches('/');
                    !host.is_empty() && !host.contains(['/', '?', '#', '@', ' '])
                });
            if !ok {
                return Err(format!(
                    "registry-mirrors: {m:?} is not an http(s)://host[:port] URL"
                ));
            }
        }
        for r in &s.insecure_registries {
            if r.is_empty() || r.contains("://") || r.contains([' ', '@']) {
                return Err(format!(
                    "insecure-registries: {r:?} is not a host[:port] or a CIDR"
                ));
            }
        }
        if s.max_concurrent_downloads == Some(0) {
            return Err("max-concurrent-downloads: must be at least 1".into());
        }
        Ok(s)
    }

    pub fn registry(&self) -> RegistryConfig {
        RegistryConfig {
            insecure: self.insecure_registries.clone(),
            mirrors: self.registry_mirrors.clone(),
            max_concurrent_downloads: self.max_concurrent_downloads.unwrap_or(DEFAULT_DOWNLOADS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_s_spellings_parse() {
        let s = Settings::parse(
            br#"{"insecure-registries":["r:5000","10.0.0.0/8"],"registry-mirrors":["http://127.0.0.1:5000/"],"max-concurrent-downloads":5}"#,
        )
        .unwrap();
        let r = s.registry();
        assert_eq!(r.insecure, ["r:5000", "10.0.0.0/8"]);
        assert_eq!(r.mirrors, ["http://127.0.0.1:5000/"]);
        assert_eq!(r.max_concurrent_downloads, 5);
        assert_eq!(
            Settings::parse(b"{}")
                .unwrap()
                .registry()
                .max_concurrent_downloads,
            3
        );
    }

    #[test]
    fn bad_settings_are_refused_with_the_reason() {
        for (text, want) in [
            (&br#"{"registry-mirror":["http://x"]}"#[..], "unknown field"),
            (br#"{"registry-mirrors":["ftp://x"]}"#, "registry-mirrors"),
            (br#"{"registry-mirrors":["https://"]}"#, "registry-mirrors"),
            (
                br#"{"insecure-registries":["http://x"]}"#,
                "insecure-registries",
            ),
            (br#"{"max-concurrent-downloads":0}"#, "at least 1"),
            (br#"{"max-concurrent-downloads":-1}"#, "invalid value"),
            (b"{\"registry-mirrors\": [", "EOF"),
        ] {
            let e = Settings::parse(text).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn a_missing_default_file_is_no_settings_but_a_named_one_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.json");
        assert!(Settings::load(Some(&missing)).is_err());
        let p = dir.path().join("s.json");
        std::fs::write(&p, br#"{"registry-mirrors":["https://m.example"]}"#).unwrap();
        assert_eq!(
            Settings::load(Some(&p)).unwrap().registry_mirrors,
            ["https://m.example"]
        );
    }
}
