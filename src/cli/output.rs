//! What the CLI prints: `ps`'s table and JSON lines, `stats`' samples, docker's human
//! durations, sizes and statuses.

use std::io::Write;
use std::time::{Duration, SystemTime};

use super::filters::PsFilter;
use super::template::Template;
use crate::container::{self, Context};
use crate::error::Error;
use crate::log_file;
use crate::record::{Record, Status};

pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

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
    let recs = container::list(ctx, all || filter.implies_all(), names)?;
    let recs: Vec<_> = recs.into_iter().filter(|r| filter.matches(r)).collect();
    if quiet {
        for r in &recs {
            let _ = writeln!(out, "{}", shown_id(&r.id, no_trunc));
        }
        return Ok(0);
    }
    let command = |r: &Record| {
        let c = std::iter::once(r.path.as_str())
            .chain(r.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        if no_trunc {
            format!("\"{c}\"")
        } else {
            format!("\"{}\"", truncate(&c, 20))
        }
    };
    // docker's "RunningFor"/CREATED column: "5 minutes ago".
    let ago = |time: &str| {
        log_file::parse_time(time)
            .map(|t| {
                format!(
                    "{} ago",
                    human_duration(now.duration_since(t).unwrap_or_default())
                )
            })
            .unwrap_or_default()
    };
    if !matches!(format, Format::Table) {
        for r in &recs {
            let created = ago(&r.created);
            let v = serde_json::json!({
                "ID": shown_id(&r.id, no_trunc),
                "Image": r.config.image,
                "Command": command(r),
                "CreatedAt": r.created,
                "RunningFor": created,
                "Status": human_status(r, now),
                "State": r.state.docker_status(),
                "Names": r.short_name(),
                "Labels": r.config.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                "Networks": r.host_config.network_mode,
                "Pid": r.state.pid,
                "ExitCode": r.state.exit_code,
            });
            let _ = writeln!(out, "{}", format.line(&v)?);
        }
        return Ok(0);
    }
    let _ = writeln!(
        out,
        "{:<14}{:<24}{:<24}{:<26}{:<32}NAMES",
        "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS"
    );
    let rows = |recs: &[Box<Record>]| {
        use std::fmt::Write as _;
        let mut text = String::with_capacity(recs.len() * 160);
        for r in recs {
            // The image as given (docker's `ps` shows Config.Image).
            let image = if no_trunc {
                r.config.image.clone()
            } else {
                truncate(&r.config.image, 22)
            };
            let _ = writeln!(
                text,
                "{:<14}{:<24}{:<24}{:<26}{:<32}{}",
                shown_id(&r.id, no_trunc),
                image,
                command(r),
                ago(&r.created),
                human_status(r, now),
                r.short_name()
            );
        }
        text
    };
    // A long listing is formatted in two halves at once (a thousand rows take a few ms).
    let half = if recs.len() > 256 {
        recs.len().div_ceil(2)
    } else {
        recs.len()
    };
    let texts: Vec<String> = std::thread::scope(|s| {
        let parts: Vec<_> = recs.chunks(half.max(1)).collect();
        let later: Vec<_> = parts[1.min(parts.len())..]
            .iter()
            .map(|p| s.spawn(|| rows(p)))
            .collect();
        let mut texts = vec![parts.first().map_or_else(String::new, |p| rows(p))];
        texts.extend(later.into_iter().map(|h| h.join().unwrap_or_default()));
        texts
    });
    for t in &texts {
        let _ = out.write_all(t.as_bytes());
    }
    // The process ends right after: freeing a thousand records one by one is wasted work.
    std::mem::forget(recs);
    Ok(0)
}

/// A container ID as `ps` shows it: whole with `--no-trunc`, else its first 12 characters.
fn shown_id(id: &str, no_trunc: bool) -> &str {
    if no_trunc {
        id
    } else {
        &id[..12]
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
pub fn human_status(rec: &Record, now: SystemTime) -> String {
    let ago = |t: &str| {
        log_file::parse_time(t).map(|t| human_duration(now.duration_since(t).unwrap_or_default()))
    };
    match rec.state.status {
        Status::Running | Status::Paused => {
            let up = ago(&rec.state.started_at).unwrap_or_default();
            let mut s = format!("Up {up}");
            if rec.state.paused {
                s.push_str(" (Paused)");
            }
            if rec.ocishim.monitor_gone {
                s.push_str(" (monitor gone)");
            }
            s
        }
        Status::Exited => format!(
            "Exited ({}) {} ago",
            rec.state.exit_code,
            ago(&rec.state.finished_at).unwrap_or_default()
        ),
        Status::Created => "Created".into(),
        other => {
            let mut c = other.as_str().to_string();
            if let Some(f) = c.get_mut(0..1) {
                f.make_ascii_uppercase();
            }
            c
        }
    }
}

/// docker's HumanDuration.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        172_800..=1_209_599 => format!("{} days", s / 86400),
        1_209_600..=5_183_999 => format!("{} weeks", s / 604_800),
        5_184_000..=63_071_999 => format!("{} months", s / 2_592_000),
        _ => format!("{} years", s / 31_536_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(human_status(&rec, now), "Created");
        rec.state.set_running(1, log_file::format_time(now));
        rec.state.set_paused(true);
        assert_eq!(human_status(&rec, now), "Up Less than a second (Paused)");
        rec.state.set_exited(3, log_file::format_time(now));
        assert_eq!(human_status(&rec, now), "Exited (3) Less than a second ago");
        rec.state.status = Status::Dead;
        assert_eq!(human_status(&rec, now), "Dead");
    }
}
