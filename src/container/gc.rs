//! `gc`: reclaim what an abandoned create, a lost record or a killed monitor left.
//!
//! Safe beside other ocishim processes: create writes a container's record before it
//! makes anything else of it, and rm removes the record last, so a cgroup, namespace,
//! veth, address, id range, runtime state, mount, lock or monitor whose ID has no record
//! (looked up when the thing is found, not from an earlier listing) belongs to no live
//! create or container. Only a name and a container directory can exist without a record,
//! for the moment between a create's name reservation and its record: they are reclaimed
//! once the creating process is gone (when that is not recorded, once older than
//! [`ORPHAN_GRACE`]). A create whose process is alive is never touched.
//!
//! What has no record is all listed before any of it is reclaimed, and reclaimed in an
//! order that undoes create's (the processes first, the id range last). Reclaiming one
//! thing can take others of the same container with it (killing its processes ends its
//! monitor and its namespace, whose veth goes too; the runtime's delete removes its
//! cgroup): those are reclaimed by this gc all the same, and have their line. So `gc`
//! prints the lines its `--dry-run` printed, unless something changed in between.

use std::path::{Path, PathBuf};

use super::{now, refresh, remove, Context};
use crate::error::Error;
use crate::record::Record;
use crate::runtime::Runtime;
use crate::store::ORPHAN_GRACE;
use crate::sys::failpoint;

/// One thing without a record, found by gc: the container it belongs to (empty when
/// unknown; a veth's is the ID's first 11 characters), its line, and how to reclaim it,
/// which says whether there was anything to reclaim.
struct Lost<'a> {
    id: String,
    line: String,
    reclaim: Box<dyn FnMut() -> Result<bool, Error> + 'a>,
}

impl<'a> Lost<'a> {
    fn new(
        id: impl Into<String>,
        line: String,
        reclaim: impl FnMut() -> Result<bool, Error> + 'a,
    ) -> Lost<'a> {
        Lost {
            id: id.into(),
            line,
            reclaim: Box::new(reclaim),
        }
    }
}

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

    // Then what has no record, listed whole, in four stages (a failpoint after each).
    let stages = lost(ctx, &parents, &runtimes)?;
    if dry_run {
        done.extend(stages.into_iter().flatten().map(|l| l.line));
        return Ok(done);
    }
    // Containers some of whose things this gc reclaimed: what of theirs is found gone
    // went with those.
    let mut acted: Vec<String> = Vec::new();
    let same =
        |a: &str, b: &str| !a.is_empty() && !b.is_empty() && (a.starts_with(b) || b.starts_with(a));
    let points = [
        Some("gc::runtime"),
        Some("gc::cgroups"),
        Some("gc::files"),
        None,
    ];
    for (stage, point) in stages.into_iter().zip(points) {
        for mut l in stage {
            match (l.reclaim)() {
                Ok(true) => {
                    acted.push(l.id);
                    done.push(l.line);
                }
                Ok(false) if acted.iter().any(|a| same(a, &l.id)) => done.push(l.line),
                Ok(false) => {}
                Err(e) => tracing::warn!("gc: {}: {e}", l.line),
            }
        }
        if let Some(point) = point {
            failpoint(point);
        }
    }
    Ok(done)
}

/// Everything without a record, in the order gc reclaims it: runtime states (their
/// processes); monitors and cgroups; mounts, container directories, bundles, removals
/// killed half-way, locks and names; addresses, namespaces, veths and id ranges.
fn lost<'a>(
    ctx: &'a Context,
    parents: &[String],
    runtimes: &[(String, Option<PathBuf>)],
) -> Result<[Vec<Lost<'a>>; 4], Error> {
    let store = &ctx.store;
    let has_record = move |id: &str| store.record_path(id).exists();
    let (mut procs, mut cgroups, mut files, mut network) = (vec![], vec![], vec![], vec![]);

    // Runtime states of ocishim's containers (their bundle under the data root or
    // --root) whose record is gone: killed and deleted, which ends their processes.
    let containers = store.containers_dir();
    let mut states = Vec::new();
    for (name, root) in runtimes {
        let Ok(rt) = Runtime::new(name, root.clone()) else {
            continue;
        };
        for st in rt.list().unwrap_or_default() {
            let bundle = Path::new(&st.bundle);
            let ours = bundle.starts_with(&containers) || bundle.starts_with(store.bundles_dir());
            if ours && !has_record(&st.id) {
                states.push(st.id.clone());
                let line = format!("runtime state {} ({})", st.id, rt.name());
                let (rt, id) = (rt.clone(), st.id);
                procs.push(Lost::new(id.clone(), line, move || {
                    // A removal under way may have deleted it before its record.
                    if rt.state_opt(&id)?.is_none() {
                        return Ok(false);
                    }
                    crate::teardown::runtime_state(&rt, &id)?;
                    Ok(true)
                }));
            }
        }
    }

    // Monitors whose record is gone.
    let monitors: Vec<_> = crate::monitor::list(store.root())
        .into_iter()
        .filter(|(_, _, id)| !has_record(id))
        .collect();
    for (pid, start_time, id) in monitors.iter().cloned() {
        cgroups.push(Lost::new(
            id.clone(),
            format!("monitor {pid} of {id}"),
            move || {
                if !crate::store::process_alive(pid, start_time) {
                    return Ok(false);
                }
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                crate::teardown::monitor(pid, start_time)?;
                Ok(true)
            },
        ));
    }

    // Cgroups under ocishim's parents in every hierarchy, of containers of this
    // installation: a parent may be shared with another (`--root`), whose containers'
    // cgroups have no record here. So a cgroup is this installation's only when something
    // else of its container is here too (its directory, bundle, lock, runtime state or
    // monitor); a cgroup without any of those is left alone.
    let ours = |id: &str| {
        store.container_dir(id).exists()
            || store.bundle_dir(id).exists()
            || store.locks_dir().join(id).exists()
            || states.iter().any(|s| s == id)
            || monitors.iter().any(|(_, _, m)| m == id)
    };
    let mut all_parents = markers(ctx);
    for p in parents {
        if !all_parents.contains(p) {
            all_parents.push(p.clone());
        }
    }
    for parent in all_parents {
        for id in cgroup_children(ctx, &parent) {
            if has_record(&id) || !ours(&id) {
                continue;
            }
            let path = format!("/{parent}/{id}");
            cgroups.push(Lost::new(id, format!("cgroup {path}"), move || {
                let there = ctx
                    .cgroups
                    .all_mounts()
                    .iter()
                    .any(|m| m.join(path.trim_start_matches('/')).is_dir());
                if there {
                    crate::teardown::cgroup(store, ctx.cgroups, &path)?;
                }
                Ok(there)
            }));
        }
    }

    // Mounts under a container directory whose record is gone, then such directories,
    // bundles, removals killed half-way, locks and names.
    for (target, id) in mounts_under(&containers) {
        if !has_record(&id) {
            let line = format!("mount {}", target.display());
            files.push(Lost::new(id, line, move || {
                nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH)
                    .map(|_| true)
                    .map_err(|e| Error::Usage(format!("unmounting {}: {e}", target.display())))
            }));
        }
    }
    let dirs = store.dirs_without_record(ORPHAN_GRACE);
    for id in &dirs {
        let dir = store.container_dir(id);
        files.push(Lost::new(
            id.clone(),
            format!("directory of {id}"),
            move || remove_unmounted_dir(&dir),
        ));
    }
    let bundles = store.bundles_without_record();
    for id in &bundles {
        let dir = store.bundle_dir(id);
        files.push(Lost::new(
            id.clone(),
            format!("bundle of {id}"),
            move || remove_dir(&dir),
        ));
    }
    for dir in store.removals_left() {
        let line = format!("{} (a removal killed half-way)", dir.display());
        files.push(Lost::new("", line, move || remove_unmounted_dir(&dir)));
    }
    // A container's lock (made by its first locked update) goes with its record; one
    // without is reclaimed with the rest of its container, or alone once older than the
    // grace (a removal lets go of it just after its record).
    for id in locks_without_record(ctx) {
        let with_rest = states.contains(&id)
            || monitors.iter().any(|(_, _, m)| *m == id)
            || dirs.contains(&id)
            || bundles.contains(&id);
        let path = store.locks_dir().join(&id);
        if !with_rest && !crate::store::older_than(&path, ORPHAN_GRACE) {
            continue;
        }
        files.push(Lost::new(id.clone(), format!("lock of {id}"), move || {
            if has_record(&id) {
                return Ok(false);
            }
            match std::fs::remove_file(&path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(crate::error::io_err(format!("removing {}", path.display()))(e)),
            }
        }));
    }
    for (name, owner) in store.names_without_record() {
        files.push(Lost::new(
            owner.clone(),
            format!("name {name} of {owner}"),
            move || Ok(store.release_orphan_name(&name)?),
        ));
    }

    // Addresses, namespaces and veths.
    let ids = store.ids()?;
    let alive = |owner: &str| owner_has_record(ctx, &ids, owner);
    for o in ctx.networks.orphans(&alive, false)? {
        network.push(Lost::new(o.owner().to_string(), o.line(), move || {
            Ok(ctx.networks.reclaim(&o)?)
        }));
    }

    // Id ranges (`--userns auto`), last: a mount made with one is gone by now.
    let ranges = crate::security::userns::Ranges::new(store.root());
    for (base, owner) in ranges.allocations().unwrap_or_default() {
        if has_record(&owner) {
            continue;
        }
        let line = format!("id range {base} of {owner}");
        let ranges = crate::security::userns::Ranges::new(store.root());
        network.push(Lost::new(owner.clone(), line, move || {
            let err = |e: crate::security::userns::UsernsError| Error::Usage(e.to_string());
            let held = ranges.allocations().map_err(err)?;
            if !held.iter().any(|(_, o)| *o == owner) {
                return Ok(false);
            }
            ranges.release(&owner).map(|_| true).map_err(err)
        }));
    }
    Ok([procs, cgroups, files, network])
}

/// IDs with a lock file under `<root>/locks` and no record.
fn locks_without_record(ctx: &Context) -> Vec<String> {
    std::fs::read_dir(ctx.store.locks_dir())
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| is_id(n) && !ctx.store.record_path(n).exists())
                .collect()
        })
        .unwrap_or_default()
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

/// [`remove_dir`] of a directory with nothing mounted under it (a mount that could not be
/// taken away: removing would reach into it, into a `--rootfs` directory say).
fn remove_unmounted_dir(d: &Path) -> Result<bool, Error> {
    if let Some(m) = mount_points().into_iter().find(|m| m.starts_with(d)) {
        return Err(Error::Usage(format!(
            "not removing {}: {} is mounted",
            d.display(),
            m.display()
        )));
    }
    remove_dir(d)
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
    let mut found: Vec<(PathBuf, String)> = mount_points()
        .into_iter()
        .filter_map(|target| {
            let rest = target.strip_prefix(containers).ok()?;
            let id = rest.components().next()?.as_os_str().to_str()?.to_string();
            is_id(&id).then_some((target, id))
        })
        .collect();
    found.sort_by_key(|(t, _)| std::cmp::Reverse(t.components().count()));
    found
}

/// This process's mount points.
fn mount_points() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| Some(PathBuf::from(unescape(l.split(' ').nth(4)?))))
        .collect()
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
