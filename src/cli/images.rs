//! The image commands' output, as docker prints it.

use std::io::Write;
use std::time::SystemTime;

use super::native::{
    ImageCmd, ImagesArgs, ImportArgs, LoadArgs, LoginArgs, PullArgs, RmiArgs, SaveArgs, TagArgs,
};
use super::output::{human_duration, Format};
use crate::container::{images, Context};
use crate::error::Error;
use crate::image::archive::Loaded;
use crate::image::progress;
use crate::image::reference::Reference;
use crate::image::store::ImageRecord;
use crate::log_file;

/// docker's HumanSize: decimal units, 3 significant digits ("4.26MB").
pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", units[i])
}

/// (repository, tag) rows of an image: one per tag, or `<none>` `<none>`.
fn rows(img: &ImageRecord) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = img
        .repo_tags
        .iter()
        .filter_map(|t| Reference::parse(t).ok())
        .map(|r| {
            (
                r.familiar_name(),
                r.tag.clone().unwrap_or_else(|| "<none>".into()),
            )
        })
        .collect();
    if v.is_empty() {
        v.push(("<none>".into(), "<none>".into()));
    }
    v
}

fn images_table(ctx: &Context, out: &mut dyn Write, a: &ImagesArgs) -> Result<i32, Error> {
    let format = Format::parse(a.format.as_deref())?;
    let want = a.reference.as_deref().map(|r| {
        let has_tag = r.rsplit('/').next().is_some_and(|last| last.contains(':'));
        Reference::parse(r).map(|p| (p.familiar_name(), has_tag.then(|| p.tag.clone()).flatten()))
    });
    let want = match want {
        Some(Ok(w)) => Some(w),
        Some(Err(_)) => return Ok(0),
        None => None,
    };
    let now = SystemTime::now();
    let id_of = |img: &ImageRecord| {
        if a.no_trunc {
            img.id.to_string()
        } else {
            img.id.hex()[..12].to_string()
        }
    };
    let mut seen = std::collections::HashSet::new();
    let table = matches!(format, Format::Table);
    if table && !a.quiet {
        let _ = writeln!(
            out,
            "{:<40}{:<12}{:<16}{:<18}SIZE",
            "REPOSITORY", "TAG", "IMAGE ID", "CREATED"
        );
    }
    for img in images::list(ctx)? {
        let created = log_file::parse_time(&img.created)
            .map(|t| {
                format!(
                    "{} ago",
                    human_duration(now.duration_since(t).unwrap_or_default())
                )
            })
            .unwrap_or_else(|| "N/A".into());
        for (repo, tag) in rows(&img) {
            if let Some((name, t)) = &want {
                if *name != repo || t.as_ref().is_some_and(|t| *t != tag) {
                    continue;
                }
            }
            if a.quiet {
                if seen.insert(img.id.clone()) {
                    let _ = writeln!(out, "{}", id_of(&img));
                }
            } else if !table {
                let v = serde_json::json!({
                    "Containers": "N/A",
                    "CreatedAt": img.created,
                    "CreatedSince": created,
                    "Digest": "<none>",
                    "ID": id_of(&img),
                    "Repository": repo,
                    "SharedSize": "N/A",
                    "Size": human_size(img.size),
                    "Tag": tag,
                    "UniqueSize": "N/A",
                    "VirtualSize": human_size(img.size),
                });
                let _ = writeln!(out, "{}", format.line(&v)?);
            } else {
                let _ = writeln!(
                    out,
                    "{repo:<40}{tag:<12}{:<16}{created:<18}{}",
                    id_of(&img),
                    human_size(img.size)
                );
            }
        }
    }
    Ok(0)
}

fn print_loaded(out: &mut dyn Write, loaded: &[Loaded], quiet: bool) {
    for l in loaded {
        let line = match l {
            Loaded::Tagged(r) => format!("Loaded image: {r}"),
            Loaded::Id(id) => format!("Loaded image ID: {id}"),
        };
        if !quiet || matches!(l, Loaded::Tagged(_)) {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// Run an image command.
pub fn run(ctx: &Context, out: &mut dyn Write, cmd: ImageCmd) -> Result<i32, Error> {
    match cmd {
        ImageCmd::Ls(a) => images_table(ctx, out, &a),
        ImageCmd::Inspect {
            images: queries,
            format,
        } => super::output::inspect_all(out, &queries, format.as_deref(), |q| {
            images::inspect(ctx, q)
        }),
        ImageCmd::Rm(RmiArgs {
            force,
            images: queries,
        }) => {
            let mut first_err = None;
            for q in &queries {
                match images::remove(ctx, q, force) {
                    Ok(lines) => {
                        for l in lines {
                            let _ = writeln!(out, "{l}");
                        }
                    }
                    Err(e) => {
                        let _ = out.flush();
                        eprintln!("ocishim: {e}");
                        first_err.get_or_insert(e);
                    }
                }
            }
            first_err.map_or(Ok(0), |_| Err(Error::Reported))
        }
        ImageCmd::Prune { all, .. } => {
            let (deleted, bytes) = images::prune(ctx, all)?;
            if !deleted.is_empty() {
                let _ = writeln!(out, "Deleted Images:");
                for d in &deleted {
                    let _ = writeln!(out, "deleted: {d}");
                }
                let _ = writeln!(out);
            }
            let _ = writeln!(out, "Total reclaimed space: {}", human_size(bytes));
            Ok(0)
        }
        ImageCmd::Load(LoadArgs { input, quiet }) => {
            let loaded = images::load(ctx, input.as_deref())?;
            print_loaded(out, &loaded, quiet);
            Ok(0)
        }
        ImageCmd::Save(SaveArgs {
            output,
            images: queries,
        }) => {
            match output {
                Some(p) => {
                    let tmp = p.with_extension(format!("tmp{}", std::process::id()));
                    let mut f = std::fs::File::create(&tmp)
                        .map_err(crate::error::io_err(format!("creating {}", tmp.display())))?;
                    let saved = images::save(ctx, &queries, &mut f).and_then(|()| {
                        std::fs::rename(&tmp, &p)
                            .map_err(crate::error::io_err(format!("writing {}", p.display())))
                    });
                    if saved.is_err() {
                        let _ = std::fs::remove_file(&tmp);
                    }
                    saved?;
                }
                None => {
                    use std::io::IsTerminal;
                    if std::io::stdout().is_terminal() {
                        return Err(Error::Usage(
                            "cowardly refusing to save to a terminal. Use the -o flag or redirect"
                                .into(),
                        ));
                    }
                    images::save(ctx, &queries, out)?;
                }
            }
            Ok(0)
        }
        ImageCmd::Import(ImportArgs { file, reference }) => {
            let id = if file == "-" {
                images::import(ctx, &mut std::io::stdin().lock(), reference.as_deref())?
            } else {
                let mut f = std::fs::File::open(&file)
                    .map_err(crate::error::io_err(format!("opening {file}")))?;
                images::import(ctx, &mut f, reference.as_deref())?
            };
            let _ = writeln!(out, "{id}");
            Ok(0)
        }
        ImageCmd::Tag(TagArgs { source, target }) => {
            images::tag(ctx, &source, &target)?;
            Ok(0)
        }
        // (dispatched by `execute` before stdout is locked: see `pull`)
        ImageCmd::Pull(_) => unreachable!("pull is dispatched before stdout is locked"),
    }
}

/// `pull`: the progress, docker's closing lines, then the full reference (alone with -q).
/// `out` must not hold stdout's lock: the progress is drawn from other threads.
pub fn pull(ctx: &Context, out: &mut dyn Write, a: PullArgs) -> Result<i32, Error> {
    let PullArgs {
        quiet,
        platform,
        reference,
    } = a;
    let _ = out.flush();
    let progress = progress::for_output(quiet, progress::Sink::Stdout);
    let pulled = images::pull(ctx, &reference, platform.as_deref(), &*progress)?;
    for line in images::pull_status(&pulled, &reference) {
        progress.line(&line);
    }
    drop(progress);
    let full = Reference::parse(&reference).map(|r| r.to_string());
    let _ = writeln!(out, "{}", full.unwrap_or(reference));
    Ok(0)
}

/// `login`: the credentials checked against the registry, then stored as docker does.
pub fn login(ctx: &Context, out: &mut dyn Write, a: LoginArgs) -> Result<i32, Error> {
    let server = a.server.as_deref().unwrap_or("docker.io");
    let user = a
        .username
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| Error::Usage("login: a username is required (-u)".into()))?;
    let password = match (a.password, a.password_stdin) {
        (Some(_), true) => {
            return Err(Error::Usage(
                "login: --password and --password-stdin are mutually exclusive".into(),
            ))
        }
        (Some(p), false) => p,
        (None, true) => {
            let mut p = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut p).map_err(
                crate::error::io_err("reading the password from standard input"),
            )?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => {
            return Err(Error::Usage(
                "login: a password is required (-p or --password-stdin)".into(),
            ))
        }
    };
    if password.is_empty() {
        return Err(Error::Usage("login: the password is empty".into()));
    }
    images::login(ctx, server, &user, &password)?;
    let _ = writeln!(out, "Login Succeeded");
    Ok(0)
}

/// `logout`: the registry's stored credentials removed.
pub fn logout(out: &mut dyn Write, server: Option<&str>) -> Result<i32, Error> {
    let (host, shown) = images::logout(server.unwrap_or("docker.io"))?;
    match shown {
        true => writeln!(out, "Removing login credentials for {host}"),
        false => writeln!(out, "Not logged in to {host}"),
    }
    .ok();
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_prints_them() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(2_140_160), "2.14MB");
        assert_eq!(human_size(301_000_000), "301MB");
        assert_eq!(human_size(12_500), "12.5kB");
    }
}
