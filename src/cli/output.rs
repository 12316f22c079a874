//! What the CLI prints: `ps`'s table and JSON lines, `stats`' samples, docker's human
//! durations, sizes and statuses.

use std::fmt::Write as _;
use std::io::Write;
use std::time::{Duration, SystemTime};

use super::filters::PsFilter;
use super::template::Template;
use crate::container::{self, Context};
use crate::error::Error;
use crate::log_file;
use crate::record::row::Row;
use crate::record::Status;

impl From<super::template::TemplateError> for Error {
    fn from(e: super::template::TemplateError) -> Error {
        Error::Usage(e.to_string())
    }
}

/// A `--format`: docker's table, JSON lines, or a Go template per row.
pub enum Format {
    Table,
    Json,
    Template(Template),
}

impl Format {
    pub fn parse(f: Option<&str>) -> Result<Format, Error> {
        Ok(match f {
            None | Some("table") => Format::Table,
            Some("json") => Format::Json,
            // docker's "table TEMPLATE" is printed without its header row.
            Some(t) => Format::Template(Template::parse(t.strip_prefix("table ").unwrap_or(t))?),
        })
    }

    /// A JSON value as this format prints it: one line, or the template's output.
    pub fn line(&self, v: &serde_json::Value) -> Result<String, Error> {
        match self {
            Format::Template(t) => Ok(t.render(v)?),
            _ => Ok(v.to_string()),
        }
    }
}

pub fn ps(
    ctx: &Context,
    out: &mut std::io::StdoutLock,
    all: bool,
    quiet: bool,
    no_trunc: bool,
    filters: &[String],
    format: Option<&str>,
) -> Result<i32, Error> {
    let filter = PsFilter::parse(filters)?;
    // One write for the whole listing, not one a line.
    let out = &mut std::io::BufWriter::with_capacity(64 * 1024, out);
    let format = Format::parse(format)?;
    let now = SystemTime::now();
    let by_name = |n: &str| filter.name_matches(n);
    // The OpenWhisk invoker's cleanup listing (`ps -aq --no-trunc --filter name=PREFIX`):
    // the IDs come from the name index alone, not from the records (not in creation order).
    if quiet && all && filter.only_names() {
        for id in ctx.store.ids_named(&by_name, true)? {
            let _ = writeln!(out, "{}", shown_id(&id, no_trunc));
        }
        return Ok(0);
    }
    let names: Option<&(dyn Fn(&str) -> bool + Sync)> = if filter.has_names() {
        Some(&by_name)
    } else {
        None
    };
    let all = all || filter.implies_all();
    // Each line is made by the thread that read its record.
    let lines: Vec<Result<String, String>> = if quiet {
        container::list(ctx, all, names, &|r| {
            filter
                .matches(r)
                .then(|| Ok(shown_id(&r.id, no_trunc).to_string()))
        })?
    } else if let Format::Table = format {
        let _ = writeln!(
            out,
            "{:<14}{:<24}{:<24}{:<26}{:<32}NAMES",
            "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS"
        );
        container::list(ctx, all, names, &|r| {
            filter.matches(r).then(|| Ok(table_row(r, now, no_trunc)))
        })?
    } else {
        container::list(ctx, all, names, &|r| {
            if !filter.matches(r) {
                return None;
            }
            let v = serde_json::json!({
                "ID": shown_id(&r.id, no_trunc),
                "Image": &*r.config.image,
                "Command": command(r, no_trunc),
                "CreatedAt": &*r.created,
                "RunningFor": ago(&r.created, now),
                "Status": human_status(r, now),
                "State": r.state.docker_status(),
                "Names": r.short_name(),
                "Labels": r.config.labels.0.iter().map(|(k, v)| format!("{}={}", &**k, &**v)).collect::<Vec<_>>().join(","),
                "Networks": &*r.host_config.network_mode,
                "Pid": r.state.pid,
                "ExitCode": r.state.exit_code,
            });
            Some(format.line(&v).map_err(|e| e.to_string()))
        })?
    };
    for line in lines {
        let _ = writeln!(out, "{}", line.map_err(Error::Usage)?);
    }
    Ok(0)
}

/// One row of `ps`'s table (docker's columns and widths).
fn table_row(r: &Row, now: SystemTime, no_trunc: bool) -> String {
    let mut o = String::with_capacity(176);
    cell(&mut o, 14, |o| o.push_str(shown_id(&r.id, no_trunc)));
    // The image as given (docker's `ps` shows Config.Image).
    cell(&mut o, 24, |o| {
        let start = o.len();
        o.push_str(&r.config.image);
        if !no_trunc {
            cut(o, start, 22);
        }
    });
    cell(&mut o, 24, |o| push_command(o, r, no_trunc));
    cell(&mut o, 26, |o| push_ago(o, &r.created, now));
    cell(&mut o, 32, |o| push_status(o, r, now));
    o.push_str(r.short_name());
    o
}

/// What `fill` appends, padded with spaces to `width` characters (as `{:<width}`).
fn cell(o: &mut String, width: usize, fill: impl FnOnce(&mut String)) {
    let start = o.len();
    fill(o);
    let n = o[start..].chars().count();
    o.extend(std::iter::repeat_n(' ', width.saturating_sub(n)));
}

/// What `o` holds from `start` on, cut to `n` characters as docker's `Ellipsis` (the first
/// `n - 1` and `…`) when it is longer, in place.
fn cut(o: &mut String, start: usize, n: usize) {
    if let Some((at, _)) = o[start..].char_indices().nth(n) {
        let keep = o[start..].char_indices().nth(n - 1).map_or(at, |(i, _)| i);
        o.truncate(start + keep);
        o.push('…');
    }
}

/// docker's COMMAND column: the command line cut to 20 characters unless `no_trunc`, then
/// quoted as Go's `strconv.Quote` does (`"` and `\` escaped, control characters spelled).
fn push_command(o: &mut String, r: &Row, no_trunc: bool) {
    let start = o.len();
    o.push_str(&r.path);
    for a in &r.args {
        o.push(' ');
        o.push_str(a);
    }
    if !no_trunc {
        cut(o, start, 20);
    }
    if !o[start..]
        .bytes()
        .any(|b| b == b'"' || b == b'\\' || b < 0x20 || b == 0x7f)
    {
        o.insert(start, '"');
        o.push('"');
        return;
    }
    let raw = o.split_off(start);
    o.push('"');
    for c in raw.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            '\u{7}' => o.push_str("\\a"),
            '\u{8}' => o.push_str("\\b"),
            '\u{b}' => o.push_str("\\v"),
            '\u{c}' => o.push_str("\\f"),
            c if c.is_ascii_control() => {
                let _ = write!(o, "\\x{:02x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
}

fn command(r: &Row, no_trunc: bool) -> String {
    let mut o = String::new();
    push_command(&mut o, r, no_trunc);
    o
}

/// docker's "RunningFor"/CREATED column: "5 minutes ago" (nothing for a time that does
/// not parse).
fn push_ago(o: &mut String, time: &str, now: SystemTime) {
    if let Some(t) = log_file::parse_time(time) {
        push_duration(o, now.duration_since(t).unwrap_or_default());
        o.push_str(" ago");
    }
}

fn ago(time: &str, now: SystemTime) -> String {
    let mut o = String::new();
    push_ago(&mut o, time, now);
    o
}

/// A container ID as `ps` shows it: whole with `--no-trunc`, else its first 12 characters.
fn shown_id(id: &str, no_trunc: bool) -> &str {
    if no_trunc {
        id
    } else {
        id.get(..12).unwrap_or(id)
    }
}

/// docker's binary size units ("1.5MiB").
pub fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + units[i]
    }
}

pub fn stats(
    ctx: &Context,
    out: &mut std::io::StdoutLock,
    no_stream: bool,
    format: Option<&str>,
    containers: &[String],
) -> Result<i32, Error> {
    if let Some(fmt) = format.filter(|f| !matches!(*f, "json" | "table")) {
        return Err(Error::BadFormat(fmt.to_string()));
    }
    let sample = |c: &String| container::stats(ctx, c);
    let mut prev: Vec<(crate::cgroup::Stats, std::time::Instant)> = Vec::new();
    for c in containers {
        let (_, s) = sample(c)?;
        prev.push((s, std::time::Instant::now()));
    }
    // A first interval for the CPU percentage.
    std::thread::sleep(std::time::Duration::from_millis(if no_stream {
        200
    } else {
        1000
    }));
    loop {
        if format != Some("json") {
            let _ = writeln!(
                out,
                "{:<14}{:<22}{:<9}{:<24}{:<9}{:<7}OOM KILLS",
                "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"
            );
        }
        let mut any_running = false;
        for (i, c) in containers.iter().enumerate() {
            let (rec, s) = sample(c)?;
            any_running |= rec.state.running;
            let now = std::time::Instant::now();
            let (p, t) = &prev[i];
            let wall = now.duration_since(*t).as_nanos().max(1) as f64;
            let cpu = (s.cpu_usage_ns.saturating_sub(p.cpu_usage_ns)) as f64 / wall * 100.0;
            let limit = if s.memory_limit >= (i64::MAX as u64) - 4096 {
                0
            } else {
                s.memory_limit
            };
            let mem_pct = if limit > 0 {
                s.memory_usage as f64 / limit as f64 * 100.0
            } else {
                0.0
            };
            if format == Some("json") {
                let v = serde_json::json!({
                    "ID": rec.id,
                    "Name": rec.short_name(),
                    "CPUPerc": format!("{cpu:.2}%"),
                    "MemPerc": format!("{mem_pct:.2}%"),
                    "MemoryUsage": s.memory_usage,
                    "MemoryLimit": s.memory_limit,
                    "MemoryMaxUsage": s.memory_max_usage,
                    "CpuUsageNs": s.cpu_usage_ns,
                    "PidsCurrent": s.pids_current,
                    "OomKills": s.oom_kills,
                });
                let _ = writeln!(out, "{v}");
            } else {
                let lim = if limit > 0 {
                    human_bytes(limit)
                } else {
                    "unlimited".into()
                };
                let _ = writeln!(
                    out,
                    "{:<14}{:<22}{:<9}{:<24}{:<9}{:<7}{}",
                    &rec.id[..12],
                    rec.short_name(),
                    format!("{cpu:.2}%"),
                    format!("{} / {lim}", human_bytes(s.memory_usage)),
                    format!("{mem_pct:.2}%"),
                    s.pids_current,
                    s.oom_kills
                );
            }
            prev[i] = (s, now);
        }
        let _ = out.flush();
        if no_stream || !any_running {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// `inspect` of several objects: one JSON array of those found, or with a template one
/// rendering per object; the first failure is returned after it is printed, as docker does.
pub fn inspect_all(
    out: &mut dyn Write,
    queries: &[String],
    format: Option<&str>,
    inspect: impl Fn(&str) -> Result<serde_json::Value, Error>,
) -> Result<i32, Error> {
    let template = format.map(Template::parse).transpose()?;
    let mut found = Vec::new();
    let mut err = None;
    for q in queries {
        match inspect(q) {
            Ok(v) => found.push(v),
            Err(e) => {
                err.get_or_insert(e);
            }
        }
    }
    match &template {
        Some(t) => {
            for v in &found {
                let _ = writeln!(out, "{}", t.render(v)?);
            }
        }
        None => {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&found).expect("json")
            );
        }
    }
    err.map_or(Ok(0), Err)
}

/// The status column of `ps`, as docker words it.
pub fn human_status(r: &Row, now: SystemTime) -> String {
    let mut o = String::new();
    push_status(&mut o, r, now);
    o
}

fn push_status(o: &mut String, r: &Row, now: SystemTime) {
    let since = |o: &mut String, t: &str| {
        if let Some(t) = log_file::parse_time(t) {
            push_duration(o, now.duration_since(t).unwrap_or_default());
        }
    };
    match r.state.status {
        Status::Running | Status::Paused => {
            o.push_str("Up ");
            since(o, &r.state.started_at);
            if r.state.paused {
                o.push_str(" (Paused)");
            }
            if r.ocishim.monitor_gone {
                o.push_str(" (monitor gone)");
            }
        }
        Status::Exited => {
            let _ = write!(o, "Exited ({}) ", r.state.exit_code);
            since(o, &r.state.finished_at);
            o.push_str(" ago");
        }
        Status::Created => o.push_str("Created"),
        other => {
            let s = other.as_str();
            o.push_str(&s[..1].to_ascii_uppercase());
            o.push_str(&s[1..]);
        }
    }
}

/// docker's HumanDuration.
pub fn human_duration(d: Duration) -> String {
    let mut o = String::new();
    push_duration(&mut o, d);
    o
}

fn push_duration(o: &mut String, d: Duration) {
    let s = d.as_secs();
    let _ = match s {
        0 => write!(o, "Less than a second"),
        1 => write!(o, "1 second"),
        2..=59 => write!(o, "{s} seconds"),
        60..=119 => write!(o, "About a minute"),
        120..=3599 => write!(o, "{} minutes", s / 60),
        3600..=7199 => write!(o, "About an hour"),
        7200..=172_799 => write!(o, "{} hours", s / 3600),
        172_800..=1_209_599 => write!(o, "{} days", s / 86400),
        1_209_600..=5_183_999 => write!(o, "{} weeks", s / 604_800),
        5_184_000..=63_071_999 => write!(o, "{} months", s / 2_592_000),
        _ => write!(o, "{} years", s / 31_536_000),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;

    /// docker's `Ellipsis`, the tests' reference for [`cut`].
    fn truncate(s: &str, n: usize) -> String {
        if s.chars().count() <= n {
            s.to_string()
        } else {
            format!("{}…", s.chars().take(n - 1).collect::<String>())
        }
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(Duration::from_secs(0)), "Less than a second");
        assert_eq!(human_duration(Duration::from_secs(5)), "5 seconds");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 minutes");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600)), "3 hours");
    }

    #[test]
    fn sizes_and_truncation() {
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(1536), "1.5KiB");
        assert_eq!(human_bytes(256 << 20), "256MiB");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }

    /// The table's row as docker pads and cuts it: `format!`'s `{:<width}` columns,
    /// counted in characters.
    #[test]
    fn table_rows_are_docker_s() {
        let cfg = crate::config::RawOptions {
            rootfs: Some("/a/rootfs/with/a/long/path/☃".into()),
            args: vec!["sh".into(), "-c".into(), "echo ☃☃☃ and more words".into()],
            ..Default::default()
        }
        .into_config(&crate::config::HostFacts::detect())
        .unwrap();
        let now = SystemTime::now();
        let mut rec = Record::new(&"c".repeat(64), "x", &cfg, log_file::format_time(now));
        rec.state.set_running(1, log_file::format_time(now));
        for no_trunc in [false, true] {
            let row = Row::of(&rec);
            let c = format!("{} {}", rec.path, rec.args.join(" "));
            let (id, image, command) = if no_trunc {
                (rec.id.clone(), rec.config.image.clone(), format!("\"{c}\""))
            } else {
                (
                    rec.id[..12].to_string(),
                    truncate(&rec.config.image, 22),
                    format!("\"{}\"", truncate(&c, 20)),
                )
            };
            let want = format!(
                "{:<14}{:<24}{:<24}{:<26}{:<32}{}",
                id, image, command, "Less than a second ago", "Up Less than a second", "x"
            );
            assert_eq!(table_row(&row, now, no_trunc), want);
        }
        assert_eq!(command(&Row::of(&rec), false).chars().count(), 22);
        // Quoted as Go's strconv.Quote (docker's ps), after the cut.
        rec.path = "sh".into();
        rec.args = vec!["-c".into(), "echo \"a\\b\"\n\u{1}".into()];
        assert_eq!(
            command(&Row::of(&rec), true),
            r#""sh -c echo \"a\\b\"\n\x01""#
        );
        rec.args = vec!["-c".into(), "echo \"hello from a long line\"".into()];
        assert_eq!(command(&Row::of(&rec), false), r#""sh -c echo \"hello f…""#);
    }

    #[test]
    fn statuses_as_docker_words_them() {
        let cfg = crate::config::RawOptions {
            rootfs: Some("/r".into()),
            args: vec!["true".into()],
            ..Default::default()
        }
        .into_config(&crate::config::HostFacts::detect())
        .unwrap();
        let now = SystemTime::now();
        let mut rec = Record::new(&"a".repeat(64), "n", &cfg, log_file::format_time(now));
        assert_eq!(human_status(&Row::of(&rec), now), "Created");
        rec.state.set_running(1, log_file::format_time(now));
        rec.state.set_paused(true);
        assert_eq!(
            human_status(&Row::of(&rec), now),
            "Up Less than a second (Paused)"
        );
        rec.state.set_exited(3, log_file::format_time(now));
        assert_eq!(
            human_status(&Row::of(&rec), now),
            "Exited (3) Less than a second ago"
        );
        rec.state.status = Status::Dead;
        assert_eq!(human_status(&Row::of(&rec), now), "Dead");
    }
}
