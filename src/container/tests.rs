//! Create's steps and their undo, driven without root: the store in a temp dir, cgroups
//! in a temp tree that imitates a v1 host, and a stand-in runtime (a shell script) whose
//! create fails the way runc's does. The monitor is launched for real.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::cgroup::{CgroupFs, Mount, Version};
use crate::config::{ContainerConfig, HostFacts, RawOptions};
use crate::image::store::ImageStore;
use crate::record::Status;
use crate::store::StoreError;

/// The fake v1 hierarchies. (No cpuset: its copied cpuset.cpus/mems would be regular
/// files in a temp tree, where a real cgroupfs has virtual ones that rmdir ignores.)
const CONTROLLERS: [&str; 4] = ["cpu,cpuacct", "memory", "pids", "freezer"];

struct Fixture {
    dir: tempfile::TempDir,
    ctx: Context,
    parent: String,
}

impl Fixture {
    /// `stray`: the runtime's create leaves a file in the container's cgroup directories,
    /// so removing them fails (as a cgroup whose tasks do not exit would).
    fn new(stray: bool) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let cg_root = base.join("cgroup");
        let mounts = CONTROLLERS
            .iter()
            .map(|c| {
                let point = cg_root.join(c);
                fs::create_dir_all(&point).unwrap();
                Mount {
                    version: Version::V1,
                    point,
                    options: format!("rw,{c}"),
                }
            })
            .collect();
        let cgroups: &'static CgroupFs =
            Box::leak(Box::new(CgroupFs::new(&cg_root, Version::V1, mounts)));
        let parent = format!("ocishim-test-{}", &crate::store::new_id()[..8]);
        let stray = if stray {
            format!(
                r#"for d in {}/*/{parent}/*/; do : > "$d/stray"; done"#,
                cg_root.display()
            )
        } else {
            String::new()
        };
        let calls = base.join("calls").display().to_string();
        let runtime = base.join("runc");
        fs::write(
            &runtime,
            format!(
                r#"#!/bin/sh
log=""; cmd=""; detach=""
while [ $# -gt 0 ]; do
  case "$1" in
    --log) log="$2"; shift 2 ;;
    --root|--log-format|--bundle|--pid-file) shift 2 ;;
    --detach) detach=" --detach"; shift ;;
    *) [ -z "$cmd" ] && cmd="$1"; shift ;;
  esac
done
echo "$cmd$detach" >> {calls}
case "$cmd" in
  create|run)
    {stray}
    echo '{{"level":"error","msg":"runc create failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH"}}' >> "$log"
    exit 1 ;;
  delete) exit 0 ;;
  *) echo '{{"level":"error","msg":"container does not exist"}}' >&2; exit 1 ;;
esac
"#
            ),
        )
        .unwrap();
        fs::set_permissions(&runtime, fs::Permissions::from_mode(0o755)).unwrap();
        let rootfs = base.join("rootfs");
        fs::create_dir_all(rootfs.join("etc")).unwrap();
        let (root, data_root) = (base.join("run"), base.join("lib"));
        let ctx = Context {
            networks: Networks::new(
                &root,
                &data_root,
                "ostest0",
                "10.219.0.0/16".parse().unwrap(),
            ),
            store: Store::new(&root, &data_root),
            runtime: runtime.display().to_string(),
            runtime_root: Some(base.join("rt")),
            log_level: None,
            cgroups,
            images: ImageStore::new(data_root.join("image")),
            settings: None,
        };
        Fixture { dir, ctx, parent }
    }

    fn config(&self, name: &str, extra: impl FnOnce(&mut RawOptions)) -> ContainerConfig {
        let mut raw = RawOptions {
            rootfs: Some(self.dir.path().join("rootfs")),
            name: Some(name.into()),
            network: Some("none".into()),
            cgroup_parent: Some(self.parent.clone()),
            args: vec!["nosuch".into()],
            ..Default::default()
        };
        extra(&mut raw);
        raw.into_config(&HostFacts::detect()).unwrap()
    }

    /// The container and parent cgroup directories left in the fake hierarchies.
    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        CONTROLLERS
            .iter()
            .map(|c| self.dir.path().join("cgroup").join(c).join(&self.parent))
            .filter(|p| p.exists())
            .collect()
    }

    fn container_dirs(&self) -> Vec<String> {
        entries(&self.ctx.store.containers_dir())
    }

    fn names(&self) -> Vec<String> {
        entries(&self.ctx.store.names_dir())
    }

    fn parent_markers(&self) -> usize {
        let d = self.ctx.store.root().join("cgroup-parents");
        fs::read_dir(d).map(|rd| rd.count()).unwrap_or(0)
    }
}

/// The names in `dir`, sorted (none when it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

#[test]
fn a_failed_runtime_create_keeps_the_record_and_undoes_the_rest() {
    let f = Fixture::new(false);
    let err = create(&f.ctx, f.config("web", |_| {}), CreateOpts::default()).unwrap_err();
    let Error::StartFailed {
        id: Some(id),
        message,
        cli_status,
    } = err
    else {
        panic!("not a start failure: {err}");
    };
    // docker's codes: the command was not found.
    assert_eq!(cli_status, 127);
    assert!(message.contains("executable file not found"), "{message}");
    let rec = f.ctx.store.read(&id).unwrap();
    assert_eq!(rec.state.status, Status::Created);
    assert_eq!(rec.state.exit_code, 127);
    assert_eq!(rec.state.error, message);
    assert_eq!(rec.ocishim.monitor_pid, 0);
    // Undone: bundle, /etc files, runtime log, pid file, cgroup (and the parent made for
    // it, with its marker). Kept: the record, its directory, its name.
    assert_eq!(entries(&f.ctx.store.container_dir(&id)), ["config.v2.json"]);
    assert!(f.cgroup_dirs().is_empty(), "{:?}", f.cgroup_dirs());
    assert_eq!(f.parent_markers(), 0);
    assert_eq!(f.names(), ["web"]);
    assert_eq!(f.ctx.store.resolve("web").unwrap(), id);
    // rm takes the rest.
    assert_eq!(remove::remove(&f.ctx, "web", false).unwrap(), Some(id));
    assert!(f.container_dirs().is_empty() && f.names().is_empty());
}

/// `run` makes one runtime call, `run --detach` (created and started by one runtime
/// process), where `create` makes the runtime's `create`; neither goes on to a `start`
/// after a failure, and the failure reads the same.
#[test]
fn run_creates_and_starts_with_one_runtime_call() {
    let f = Fixture::new(false);
    let calls = f.dir.path().join("calls");
    for (name, want) in [("one", "run --detach"), ("two", "create")] {
        let cfg = f.config(name, |_| {});
        let err = match want {
            "create" => create(&f.ctx, cfg, CreateOpts::default()),
            _ => start::run(&f.ctx, cfg, CreateOpts::default()),
        }
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::StartFailed {
                    cli_status: 127,
                    ..
                }
            ),
            "{err:?}"
        );
        let c = fs::read_to_string(&calls).unwrap();
        assert_eq!(c.lines().next(), Some(want), "{c}");
        assert!(!c.lines().any(|l| l == "start"), "{c}");
        fs::remove_file(&calls).unwrap();
    }
}

#[test]
fn with_rm_a_failed_create_leaves_nothing() {
    let f = Fixture::new(false);
    let cfg = f.config("gone", |r| r.rm = true);
    let err = create(&f.ctx, cfg, CreateOpts::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::StartFailed {
                id: None,
                cli_status: 127,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(f.container_dirs().is_empty());
    assert!(f.names().is_empty());
    assert!(f.cgroup_dirs().is_empty());
    assert_eq!(f.parent_markers(), 0);
}

#[test]
fn a_refused_limit_undoes_cgroup_and_name_before_any_record() {
    let f = Fixture::new(false);
    // The temp tree has no pids.max in the new cgroup: the write is refused.
    let cfg = f.config("limited", |r| r.pids_limit = Some("64".into()));
    let err = create(&f.ctx, cfg, CreateOpts::default()).unwrap_err();
    assert!(matches!(err, Error::Cgroup(_)), "{err:?}");
    assert!(f.container_dirs().is_empty());
    assert!(f.names().is_empty());
    assert!(f.cgroup_dirs().is_empty(), "{:?}", f.cgroup_dirs());
    assert_eq!(f.parent_markers(), 0);
}

#[test]
fn a_name_in_use_makes_nothing() {
    let f = Fixture::new(false);
    let first = create(&f.ctx, f.config("twin", |_| {}), CreateOpts::default()).unwrap_err();
    assert!(matches!(first, Error::StartFailed { id: Some(_), .. }));
    let err = create(&f.ctx, f.config("twin", |_| {}), CreateOpts::default()).unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::NameInUse { .. })),
        "{err:?}"
    );
    assert_eq!(f.container_dirs().len(), 1);
    assert!(f.cgroup_dirs().is_empty());
}

#[test]
fn an_undo_that_fails_is_kept_in_the_record() {
    let f = Fixture::new(true);
    let err = create(&f.ctx, f.config("stuck", |_| {}), CreateOpts::default()).unwrap_err();
    let Error::StartFailed { id: Some(id), .. } = err else {
        panic!("{err:?}");
    };
    let rec = f.ctx.store.read(&id).unwrap();
    assert!(
        rec.state.error.contains("executable file not found")
            && rec.state.error.contains("(cleanup: undo cgroup: "),
        "{}",
        rec.state.error
    );
    // The other undos still ran.
    assert_eq!(entries(&f.ctx.store.container_dir(&id)), ["config.v2.json"]);
}
