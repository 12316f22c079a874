//! `gc`: reclaim what an abandoned create, a lost record or a killed monitor left.
//!
//! Safe beside other ocishim processes: create writes a container's record before it
//! makes anything else of it, and rm removes the record last, so a cgroup, namespace,
//! veth, address, id range, runtime state, mount or monitor whose ID has no record (looked
//! up when the thing is found, not from an earlier listing) belongs to no live create or
//! container. Only a name and a container directory can exist without a record, for the
//! moment between a create's name reservation and its record: they are reclaimed once the
//! creating process is gone (when that is not recorded, once older than [`ORPHAN_GRACE`]).
//! A create whose process is alive is never touched.

use std::path::{Path, PathBuf};

use super::{now, refresh, remove, Context};
use crate::error::Error;
use crate::record::Record;
use crate::runtime::Runtime;
use crate::store::ORPHAN_GRACE;
use crate::sys::failpoint;

/// What gc reclaimed (or with `dry_run` would reclaim), one line each.
pub fn gc(ctx: &Context, dry_run: bool) -> Result<Vec<String>, Error> {
    let mut done = Vec::new();
    // `f` says whether it reclaimed anything: what vanished meanwhile (a removal that was
    // under way) is no line.
    let mut act = |line: String, f: &mut dyn FnMut() -> Result<bool, Error>| {
        if dry_run {
            done.push(line);
            return;
        }
        match f() {
            Ok(true) => done.push(line),
            Ok(false) => {}
            Err(e) => tracing::warn!("gc: {line}: {e}"),
        }
    };
    let has_record = |id: &str| ctx.store.record_path(id).exists();

    // Records: abandoned creates go entirely; running containers whose processes are all
    // gone (a killed monitor, a reboot) are recorded as exited.
    let mut parents: Vec<String> = vec![crate::config::DEFAULT_CGROUP_PARENT.into()];
    let mut runtimes: Vec<(String, Option<PathBuf>)> =
        vec![(ctx.runtime.clone(), ctx.runtime_root.clone())];
    for id in ctx.store.ids()? {
        let Ok(raw) = ctx.store.read(&id) else {
            continue;
        };
        note_scope(&raw, &mut parents, &mut runtimes);
        let rec = refresh(ctx, raw.clone(), false);
        if let Some(c) = rec.ocishim.creator.filter(|c| !c.alive()) {
            act(format!("abandoned create {id}"), &mut || {
                // The record read before the creator was seen gone may be older than the
                // creator's last write (a create that finished meanwhile): read it again
                // now that the creator can write nothing more.
                let now = ctx.store.read(&id)?;
                if now.ocishim.creator != Some(c) {
                    return Ok(false);
                }
                Ok(remove(ctx, &id, true)?.is_some())
            });
        } else if raw.state.status.is_running() && !rec.state.status.is_running() {
            act(format!("exited {id}: {}", rec.state.error), &mut || {
                record_exit(ctx, &raw)
            });
        }
    }
    failpoint("gc::records");

    // Runtime states of ocishim's containers (their bundle under the data root) whose
    // record is gone: killed and deleted, which ends their processes.
    let containers = ctx.store.containers_dir();
    for (name, root) in runtimes {
        let Ok(rt) = Runtime::new(&name, root) else {
            continue;
        };
        for st in rt.list().unwrap_or_default() {
            let ours = Path::new(&st.bundle).starts_with(&containers)
                || Path::new(&st.bundle).starts_with(ctx.store.bundles_dir());
            if ours && !has_record(&st.id) {
                let line = format!("runtime state {} ({})", st.id, rt.name());
                act(line, &mut || {
                    // A removal under way may have deleted it before its record.
                    if rt.state_opt(&st.id)?.is_none() {
                        return Ok(false);
                    }
                    crate::teardown::runtime_state(&rt, &st.id)?;
                    Ok(true)
                });
            }
        }
    }
    failpoint("gc::runtime");

    // Monitors whose record is gone.
    for (pid, start_time, id) in crate::monitor::list(ctx.store.root()) {
        if !has_record(&id) {
            act(format!("monitor {pid} of {id}"), &mut || {
                if !crate::store::process_alive(pid, start_time) {
                    return Ok(false);
                }
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                crate::teardown::monitor(pid, start_time)?;
                Ok(true)
            });
        }
    }

    // Cgroups under ocishim's parents in every hierarchy.
    for parent in markers(ctx).into_iter().chain(parents) {
        for id in cgroup_children(ctx, &parent) {
            if !has_record(&id) {
                let path = format!("/{parent}/{id}");
                act(format!("cgroup {path}"), &mut || {
                    let there = ctx
                        .cgroups
                        .all_mounts()
                        .iter()
                        .any(|m| m.join(path.trim_start_matches('/')).is_dir());
                    if there {
                        crate::teardown::cgroup(&ctx.store, ctx.cgroups, &path)?;
                    }
                    Ok(there)
                });
            }
        }
    }
    failpoint("gc::cgroups");

    // Mounts under a container directory whose record is gone, then such directories,
    // removals killed half-way, and names.
    for (target, id) in mounts_under(&containers) {
        if !has_record(&id) {
            act(format!("mount {}", target.display()), &mut || {
                nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH)
                    .map(|_| true)
                    .map_err(|e| Error::Usage(format!("unmounting {}: {e}", target.display())))
            });
        }
    }
    for id in ctx.store.dirs_without_record(ORPHAN_GRACE) {
        act(format!("directory of {id}"), &mut || {
            remove_dir(&ctx.store.container_dir(&id))
        });
    }
    for id in ctx.store.bundles_without_record() {
        act(format!("bundle of {id}"), &mut || {
            remove_dir(&ctx.store.bundle_dir(&id))
        });
    }
    for dir in ctx.store.removals_left() {
        let line = format!("{} (a removal killed half-way)", dir.display());
        act(line, &mut || remove_dir(&dir));
    }
    for (name, owner) in ctx.store.names_without_record() {
        act(format!("name {name} of {owner}"), &mut || {
            Ok(ctx.store.release_orphan_name(&name)?)
        });
    }
    failpoint("gc::files");

    // Addresses, namespaces and veths.
    let ids = ctx.store.ids()?;
    let alive = |owner: &str| owner_has_record(ctx, &ids, owner);
    let network = ctx.networks.prune_containers(&alive, !dry_run)?;

    // Id ranges (`--userns auto`).
    let ranges = crate::security::userns::Ranges::new(ctx.store.root());
    for (base, owner) in ranges.allocations().unwrap_or_default() {
        if !has_record(&owner) {
            act(format!("id range {base} of {owner}"), &mut || {
                let err = |e: crate::security::userns::UsernsError| Error::Usage(e.to_string());
                let held = ranges.allocations().map_err(err)?;
                if !held.iter().any(|(_, o)| *o == owner) {
                    return Ok(false);
                }
                ranges.release(&owner).map(|_| true).map_err(err)
            });
        }
    }
    done.extend(network);
    Ok(done)
}

/// Whether the owner of a network resource has a record, looked up now: a container ID
/// (addresses, namespaces), or the first 11 characters of one (veths), matched against
/// `ids` and, when none matches, against the IDs there are now (a container created since
/// `ids` were listed).
pub fn owner_has_record(ctx: &Context, ids: &[String], owner: &str) -> bool {
    let has = |id: &str| ctx.store.record_path(id).exists();
    if owner.len() == 64 {
        return has(owner);
    }
    let found = |ids: &[String]| ids.iter().any(|id| id.starts_with(owner) && has(id));
    found(ids) || found(&ctx.store.ids().unwrap_or_default())
}

/// Remove a directory tree; false when it was gone already.
fn remove_dir(d: &Path) -> Result<bool, Error> {
    match std::fs::remove_dir_all(d) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(crate::error::io_err(format!("removing {}", d.display()))(e)),
    }
}

/// Where a record says its container's cgroup parent and runtime are.
fn note_scope(
    rec: &Record,
    parents: &mut Vec<String>,
    runtimes: &mut Vec<(String, Option<PathBuf>)>,
) {
    if let Some((parent, _)) = rec.ocishim.cgroups_path.trim_matches('/').rsplit_once('/') {
        if !parents.iter().any(|p| p == parent) {
            parents.push(parent.to_string());
        }
    }
    let rt = (
        rec.ocishim.runtime.clone(),
        rec.ocishim.runtime_root.as_ref().map(PathBuf::from),
    );
    if !rt.0.is_empty() && !runtimes.contains(&rt) {
        runtimes.push(rt);
    }
}

/// A running container whose monitor and processes are gone, recorded as exited (255:
/// its status is unknown), with its runtime state deleted. False when its monitor
/// recorded the exit meanwhile.
fn record_exit(ctx: &Context, raw: &Record) -> Result<bool, Error> {
    if let Ok(rt) = ctx.runtime_for(raw) {
        // A monitor that is still there may delete it at the same time: fine if gone.
        if let Err(e) = rt.delete_if_exists(&raw.id, true) {
            if rt.state_opt(&raw.id).ok().flatten().is_some() {
                return Err(e.into());
            }
        }
    }
    let rebooted = super::rebooted(&raw.ocishim.boot_id);
    let mut changed = false;
    ctx.store.update(&raw.id, |r| {
        if !r.state.status.is_running() {
            return;
        }
        changed = true;
        r.state.set_exited(255, now());
        r.ocishim.monitor_gone = true;
        r.ocishim.runtime_deleted = true;
        if r.state.error.is_empty() {
            r.state.error = if rebooted {
                "the host rebooted".into()
            } else {
                "the monitor is gone: exit status unknown".into()
            };
        }
    })?;
    Ok(changed)
}

/// The cgroup parents ocishim made (their markers under --root).
fn markers(ctx: &Context) -> Vec<String> {
    let dir = ctx.store.root().join("cgroup-parents");
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n = e.file_name().into_string().ok()?;
                    Some(n.strip_prefix("cgparent-")?.replace('%', "/"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Container IDs with a cgroup directory under `parent` in any hierarchy.
fn cgroup_children(ctx: &Context, parent: &str) -> Vec<String> {
    let mut ids: Vec<String> = ctx
        .cgroups
        .all_mounts()
        .iter()
        .filter_map(|m| std::fs::read_dir(m.join(parent)).ok())
        .flat_map(|rd| rd.flatten())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_id(n))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Mount points under `containers` (`<containers>/<id>/...`), deepest first, with the ID.
fn mounts_under(containers: &Path) -> Vec<(PathBuf, String)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<(PathBuf, String)> = info
        .lines()
        .filter_map(|l| {
            let target = PathBuf::from(unescape(l.split(' ').nth(4)?));
            let rest = target.strip_prefix(containers).ok()?;
            let id = rest.components().next()?.as_os_str().to_str()?.to_string();
            is_id(&id).then_some((target, id))
        })
        .collect();
    found.sort_by_key(|(t, _)| std::cmp::Reverse(t.components().count()));
    found
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape("/a\\040b/c"), "/a b/c");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/end\\04"), "/end\\04");
    }
}
