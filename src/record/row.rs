//! A record as `ps` reads it: the fields it shows, filters on and refreshes, borrowed from
//! the file's bytes. A thousand records are listed by two threads sharing one allocator
//! lock: the owned parse (a dozen strings a record, then the row's) made them wait on each
//! other for a third of the listing's time.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::{Creator, Ext, HostConfig, NetworkSettings, Record, RecordConfig, State, Status};

/// A JSON string borrowed from the bytes it was parsed from; owned only when it had
/// escapes to undo.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'a> Text<'a> {
    fn of(s: &'a str) -> Text<'a> {
        Text(Cow::Borrowed(s))
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text<'a>, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

/// A JSON object of strings (labels) as pairs in the file's order (dockerd writes them
/// sorted, as ocishim does); `null` is empty.
#[derive(Debug, Clone, Default)]
pub struct Pairs<'a>(pub Vec<(Text<'a>, Text<'a>)>);

impl<'a> Pairs<'a> {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| **k == *key).map(|(_, v)| &**v)
    }
}

struct PairsVisitor;

impl<'de> Visitor<'de> for PairsVisitor {
    type Value = Pairs<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of strings")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Pairs<'de>, E> {
        Ok(Pairs::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Pairs<'de>, A::Error> {
        let mut v = Vec::new();
        while let Some(pair) = m.next_entry()? {
            v.push(pair);
        }
        Ok(Pairs(v))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Pairs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Pairs<'a>, D::Error> {
        d.deserialize_any(PairsVisitor)
    }
}

/// What `ps` shows, filters on and refreshes of a record: the rest (the stored config, the
/// host config's limits, the paths) is skipped by the parser.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", bound(deserialize = "'de: 'a"))]
pub struct Row<'a> {
    #[serde(rename = "ID")]
    pub id: Text<'a>,
    pub created: Text<'a>,
    pub path: Text<'a>,
    #[serde(default)]
    pub args: Vec<Text<'a>>,
    pub config: RowConfig<'a>,
    pub image: Text<'a>,
    pub name: Text<'a>,
    pub host_config: RowHostConfig<'a>,
    pub state: RowState<'a>,
    pub ocishim: RowExt<'a>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", bound(deserialize = "'de: 'a"))]
pub struct RowConfig<'a> {
    pub image: Text<'a>,
    #[serde(default)]
    pub labels: Pairs<'a>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", bound(deserialize = "'de: 'a"))]
pub struct RowHostConfig<'a> {
    pub network_mode: Text<'a>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", bound(deserialize = "'de: 'a"))]
pub struct RowState<'a> {
    pub status: Status,
    pub paused: bool,
    pub pid: i32,
    pub exit_code: i32,
    pub started_at: Text<'a>,
    pub finished_at: Text<'a>,
}

impl RowState<'_> {
    /// As [`State::set_paused`].
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        self.status = Status::running(paused);
    }

    /// As [`State::docker_status`].
    pub fn docker_status(&self) -> &'static str {
        self.status.docker(self.paused)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", bound(deserialize = "'de: 'a"))]
pub struct RowExt<'a> {
    pub runtime: Text<'a>,
    #[serde(default)]
    pub runtime_root: Option<Text<'a>>,
    pub cgroups_path: Text<'a>,
    pub monitor_pid: i32,
    pub monitor_start_time: u64,
    #[serde(default)]
    pub monitor_gone: bool,
    #[serde(default)]
    pub creator: Option<Creator>,
    #[serde(default)]
    pub boot_id: Text<'a>,
}

impl<'a> Row<'a> {
    /// The name without docker's leading '/'.
    pub fn short_name(&self) -> &str {
        self.name.strip_prefix('/').unwrap_or(&self.name)
    }

    /// The same fields of a whole record, borrowed from it.
    pub fn of(r: &'a Record) -> Row<'a> {
        let s = &r.state;
        Row {
            id: Text::of(&r.id),
            created: Text::of(&r.created),
            path: Text::of(&r.path),
            args: r.args.iter().map(|a| Text::of(a)).collect(),
            config: RowConfig {
                image: Text::of(&r.config.image),
                labels: Pairs(
                    r.config
                        .labels
                        .iter()
                        .map(|(k, v)| (Text::of(k), Text::of(v)))
                        .collect(),
                ),
            },
            image: Text::of(&r.image),
            name: Text::of(&r.name),
            host_config: RowHostConfig {
                network_mode: Text::of(&r.host_config.network_mode),
            },
            state: RowState {
                status: s.status,
                paused: s.paused,
                pid: s.pid,
                exit_code: s.exit_code,
                started_at: Text::of(&s.started_at),
                finished_at: Text::of(&s.finished_at),
            },
            ocishim: RowExt {
                runtime: Text::of(&r.ocishim.runtime),
                runtime_root: r.ocishim.runtime_root.as_deref().map(Text::of),
                cgroups_path: Text::of(&r.ocishim.cgroups_path),
                monitor_pid: r.ocishim.monitor_pid,
                monitor_start_time: r.ocishim.monitor_start_time,
                monitor_gone: r.ocishim.monitor_gone,
                creator: r.ocishim.creator,
                boot_id: Text::of(&r.ocishim.boot_id),
            },
        }
    }

    /// A record with these fields (and nothing else: for showing and refreshing, never
    /// for writing back).
    pub fn to_record(&self) -> Record {
        let s = &self.state;
        let own = |t: &Text| t.to_string();
        Record {
            id: own(&self.id),
            created: own(&self.created),
            path: own(&self.path),
            args: self.args.iter().map(own).collect(),
            config: RecordConfig {
                image: own(&self.config.image),
                labels: self
                    .config
                    .labels
                    .0
                    .iter()
                    .map(|(k, v)| (own(k), own(v)))
                    .collect(),
                ..Default::default()
            },
            image: own(&self.image),
            name: own(&self.name),
            host_config: HostConfig {
                network_mode: own(&self.host_config.network_mode),
                ..Default::default()
            },
            // What a listing does not read: as the status implies.
            state: State {
                status: s.status,
                running: s.status.is_running(),
                paused: s.paused,
                dead: s.status == Status::Dead,
                pid: s.pid,
                exit_code: s.exit_code,
                started_at: own(&s.started_at),
                finished_at: own(&s.finished_at),
                ..State::default()
            },
            network_settings: NetworkSettings::default(),
            log_path: String::new(),
            resolv_conf_path: String::new(),
            hostname_path: String::new(),
            hosts_path: String::new(),
            ocishim: Ext {
                runtime: own(&self.ocishim.runtime),
                runtime_root: self.ocishim.runtime_root.as_ref().map(own),
                cgroups_path: own(&self.ocishim.cgroups_path),
                monitor_pid: self.ocishim.monitor_pid,
                monitor_start_time: self.ocishim.monitor_start_time,
                monitor_gone: self.ocishim.monitor_gone,
                creator: self.ocishim.creator,
                boot_id: own(&self.ocishim.boot_id),
                ..Default::default()
            },
        }
    }
}

/// Cut a record's bytes before its stored config (`Ocishim.Config`) and close the two
/// objects it was in: all a [`Row`] reads, without the stored config, which is half of a
/// record's bytes and most of its parsing (`ps` reads a record per container). A record
/// of this version is compact JSON whose last key is `Ocishim` and whose `Ocishim`'s last
/// key is `Config`; neither pattern can occur inside a JSON string (its quotes would be
/// escaped), and the keys of `Ocishim` before `Config` are ocishim's own, so the first
/// `,"Config":` after `"Ocishim":{` is the stored config's. Bytes without the patterns
/// are left whole. Returns whether it cut.
pub fn cut_stored_config(buf: &mut Vec<u8>) -> bool {
    let Some(ext) = memchr::memmem::find(buf, b"\"Ocishim\":{") else {
        return false;
    };
    let Some(at) = memchr::memmem::find(&buf[ext..], b",\"Config\":") else {
        return false;
    };
    buf.truncate(ext + at);
    buf.extend_from_slice(b"}}");
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn record() -> Record {
        let cfg = crate::config::RawOptions {
            rootfs: Some("/r".into()),
            args: vec!["sh".into(), "-c".into(), "echo \"hi\"\n\tthere ☃".into()],
            label: vec!["tier=web".into(), "note=a \"quoted\" ☃".into()],
            ..Default::default()
        }
        .into_config(&crate::config::HostFacts::detect())
        .unwrap();
        let mut r = Record::new(&"ab".repeat(32), "n", &cfg, "2026-12-06T01:02:03.5Z".into());
        r.state.set_running(42, "2026-12-06T01:02:04Z".into());
        r.ocishim.cgroups_path = "/p/x".into();
        r.ocishim.monitor_pid = 7;
        r.ocishim.boot_id = "b".into();
        r
    }

    /// A row parsed from a record's file holds what a row made of the record holds, and
    /// borrows every string that had nothing to unescape.
    #[test]
    fn parsed_as_the_record_says_borrowing_what_it_can() {
        let rec = record();
        let bytes = serde_json::to_vec(&rec).unwrap();
        let row: Row = serde_json::from_slice(&bytes).unwrap();
        let of = Row::of(&rec);
        assert_eq!(row.id, of.id);
        assert_eq!(row.args, of.args);
        assert_eq!(row.config.labels.0, of.config.labels.0);
        assert_eq!(row.config.labels.get("note"), Some("a \"quoted\" ☃"));
        assert_eq!(row.config.labels.get("none"), None);
        assert_eq!(row.short_name(), "n");
        assert_eq!((row.state.status, row.state.pid), (Status::Running, 42));
        assert_eq!(&*row.ocishim.cgroups_path, "/p/x");
        assert!(matches!(row.id.0, Cow::Borrowed(_)));
        assert!(matches!(row.args[0].0, Cow::Borrowed(_)));
        assert!(matches!(row.args[1].0, Cow::Owned(_)), "escapes undone");
        // And back: the fields a listing shows and refreshes survive.
        let back = row.to_record();
        assert_eq!(
            (&back.id, &back.args, &back.config.labels, &back.state),
            (&rec.id, &rec.args, &rec.config.labels, &rec.state)
        );
        assert_eq!(back.ocishim.monitor_pid, 7);
        assert_eq!(back.ocishim.boot_id, "b");
    }

    /// The row of a record cut before its stored config is the row of the whole record,
    /// with labels named like the keys the cut looks for, an abandoned create's creator
    /// and an idmap range (the optional keys of `Ocishim`).
    #[test]
    fn a_record_cut_before_its_stored_config_gives_the_same_row() {
        let mut rec = record();
        rec.config
            .labels
            .insert("Config".into(), "\",\"Config\":{\"Ocishim\":{".into());
        rec.config.labels.insert("Ocishim".into(), "x".into());
        rec.ocishim.creator = Some(crate::record::Creator {
            pid: 9,
            start_time: 10,
        });
        rec.ocishim.userns_base = Some(100000);
        rec.ocishim.runtime_root = Some("/rt".into());
        let whole = serde_json::to_vec(&rec).unwrap();
        let mut cut = whole.clone();
        assert!(cut_stored_config(&mut cut));
        assert!(
            cut.len() < whole.len() * 3 / 4,
            "{} of {}",
            cut.len(),
            whole.len()
        );
        let (a, b): (Row, Row) = (
            serde_json::from_slice(&whole).unwrap(),
            serde_json::from_slice(&cut).unwrap(),
        );
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(b.ocishim.creator.map(|c| c.pid), Some(9));
        assert_eq!(b.config.labels.get("Ocishim"), Some("x"));
        // Not a record of this shape: left whole.
        let mut other = br#"{"ID":"x","Config":{}}"#.to_vec();
        assert!(!cut_stored_config(&mut other));
        assert_eq!(other, br#"{"ID":"x","Config":{}}"#);
    }

    #[test]
    fn null_labels_are_none_and_a_bad_record_is_an_error() {
        let rec = record();
        let mut v = serde_json::to_value(&rec).unwrap();
        v["Config"]["Labels"] = serde_json::Value::Null;
        let bytes = serde_json::to_vec(&v).unwrap();
        let row: Row = serde_json::from_slice(&bytes).unwrap();
        assert!(row.config.labels.0.is_empty());
        v["Config"]["Labels"] = serde_json::json!({"k": 1});
        let bytes = serde_json::to_vec(&v).unwrap();
        assert!(serde_json::from_slice::<Row>(&bytes).is_err());
        assert!(serde_json::from_slice::<Row>(b"{\"ID\": 1}").is_err());
    }
}
