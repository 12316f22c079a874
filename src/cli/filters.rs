//! `ps --filter`, as docker combines them: values of one key are alternatives (any may
//! match), different keys must all match.

use regex::Regex;

use crate::error::Error;
use crate::record::row::Row;

/// The parsed `--filter` flags of one `ps`.
#[derive(Debug, Default)]
pub struct PsFilter {
    names: Vec<Regex>,
    ids: Vec<String>,
    statuses: Vec<String>,
    labels: Vec<(String, Option<String>)>,
    exited: Vec<i32>,
}

const STATUSES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

impl PsFilter {
    /// Parse `KEY=VALUE` filters: name (an unanchored regex, as docker's), id (a prefix),
    /// status, label (KEY or KEY=VALUE) and exited (an exit code).
    pub fn parse(filters: &[String]) -> Result<PsFilter, Error> {
        let mut f = PsFilter::default();
        for spec in filters {
            let bad = |why: &str| Error::BadFilter {
                filter: spec.clone(),
                why: why.to_string(),
            };
            let (key, value) = spec.split_once('=').ok_or_else(|| bad("not KEY=VALUE"))?;
            match key {
                "name" => f
                    .names
                    .push(Regex::new(value).map_err(|e| bad(&e.to_string()))?),
                "id" => f.ids.push(value.to_ascii_lowercase()),
                "status" if STATUSES.contains(&value) => f.statuses.push(value.to_string()),
                "status" => return Err(bad(
                    "status is one of created, restarting, running, removing, paused, exited, dead",
                )),
                "label" => f.labels.push(match value.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (value.to_string(), None),
                }),
                "exited" => f.exited.push(
                    value
                        .parse()
                        .map_err(|_| bad("exited takes an exit code"))?,
                ),
                _ => {
                    return Err(bad(
                        "supported filters are name, id, status, label and exited",
                    ))
                }
            }
        }
        Ok(f)
    }

    /// Whether `ps` lists stopped containers without -a: docker does when a status (or
    /// an exit code) is asked for.
    pub fn implies_all(&self) -> bool {
        !self.statuses.is_empty() || !self.exited.is_empty()
    }

    /// Whether name filters are all there is (`ps -aq --filter name=...` then needs no
    /// record read).
    pub fn only_names(&self) -> bool {
        !self.names.is_empty()
            && self.ids.is_empty()
            && self.statuses.is_empty()
            && self.labels.is_empty()
            && self.exited.is_empty()
    }

    /// Whether a name filter was given.
    pub fn has_names(&self) -> bool {
        !self.names.is_empty()
    }

    /// Whether the name alone can match (the cheap first test, before the record is read
    /// in full).
    pub fn name_matches(&self, name: &str) -> bool {
        // docker matches "/NAME": both spellings are accepted.
        self.names.is_empty()
            || self
                .names
                .iter()
                .any(|re| re.is_match(name) || re.is_match(&format!("/{name}")))
    }

    /// Whether the record passes every filter.
    pub fn matches(&self, r: &Row) -> bool {
        let status = r.state.docker_status();
        self.name_matches(r.short_name())
            && (self.ids.is_empty() || self.ids.iter().any(|p| r.id.starts_with(p.as_str())))
            && (self.statuses.is_empty() || self.statuses.iter().any(|s| s == status))
            && self.labels.iter().all(|(k, v)| match v {
                Some(v) => r.config.labels.get(k) == Some(v.as_str()),
                None => r.config.labels.get(k).is_some(),
            })
            && (self.exited.is_empty()
                || (r.state.status == crate::record::Status::Exited
                    && self.exited.contains(&r.state.exit_code)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Record, Status};

    fn rec(name: &str, status: Status, paused: bool) -> Record {
        let cfg = crate::config::RawOptions {
            rootfs: Some("/r".into()),
            args: vec!["true".into()],
            label: vec!["tier=web".into(), "x".into()],
            ..Default::default()
        }
        .into_config(&crate::config::HostFacts::detect())
        .unwrap();
        let mut r = Record::new(&"ab".repeat(32), name, &cfg, String::new());
        r.state.status = status;
        r.state.paused = paused;
        r
    }

    fn f(specs: &[&str]) -> PsFilter {
        PsFilter::parse(&specs.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn one_key_is_any_of_its_values_and_keys_all_match() {
        let web = rec("wsk00_1_guest", Status::Running, true);
        assert!(f(&["name=wsk00_"]).matches(&Row::of(&web)));
        assert!(f(&["name=^/wsk00_1"]).matches(&Row::of(&web)));
        assert!(f(&["name=nope", "name=guest$"]).matches(&Row::of(&web)));
        assert!(f(&["name=wsk", "status=paused"]).matches(&Row::of(&web)));
        assert!(!f(&["name=wsk", "status=running"]).matches(&Row::of(&web)));
        assert!(f(&["status=exited", "status=paused"]).matches(&Row::of(&web)));
        assert!(f(&["label=tier=web", "label=x", "id=abab"]).matches(&Row::of(&web)));
        assert!(!f(&["label=tier=db"]).matches(&Row::of(&web)));
        assert!(!f(&["id=ba"]).matches(&Row::of(&web)));
        let mut done = rec("b", Status::Exited, false);
        done.state.exit_code = 3;
        assert!(f(&["exited=3"]).matches(&Row::of(&done)));
        assert!(!f(&["exited=0"]).matches(&Row::of(&done)));
        assert!(f(&["status=exited"]).implies_all());
        assert!(!f(&["name=x"]).implies_all());
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for bad in ["name=(", "status=up", "colour=red", "exited=x", "name"] {
            let e = PsFilter::parse(&[bad.to_string()]).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }
}
