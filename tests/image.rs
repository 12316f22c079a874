//! Images against the real runtime and kernel, as root: load (OCI layout archive and
//! directory, docker-archive), run by name with the image's config merged as docker does,
//! one set of lower dirs shared by many containers, no mount left by rm, a failed create
//! or --rm, save read back by skopeo, import, rmi and prune, and hostile archives refused
//! with nothing left in the store.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{image, stderr, stdout, Bounded, Env};

fn busybox_oci() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| image("busybox-oci.tar", &[])).clone()
}

fn mounts_under(base: &Path) -> Vec<String> {
    let b = base.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| m.starts_with(&b))
        .collect()
}

/// The overlay options of a container's rootfs mount, which is in the mount namespace of
/// its monitor (and container) only: the host's mount table has no line for it.
fn overlay_options(env: &Env, id: &str) -> String {
    let target = env.data_root.join("containers").join(id).join("rootfs");
    let t = target.display().to_string();
    let at = |table: &str| {
        table
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(t.as_str()))
            .and_then(|l| l.split(" - ").nth(1))
            .map(|s| s.to_string())
    };
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert_eq!(
        at(&host),
        None,
        "the overlay of {id} is in the host's mount table"
    );
    let monitor = env.inspect(id)["Ocishim"]["MonitorPid"].as_i64().unwrap();
    let own = std::fs::read_to_string(format!("/proc/{monitor}/mountinfo")).unwrap();
    at(&own).unwrap_or_else(|| panic!("no overlay mounted at {t} for its monitor"))
}

fn load(env: &Env, path: &Path) -> String {
    env.ok(&["load", "-i", path.to_str().unwrap()])
}

#[test]
fn load_an_oci_archive_and_run_it_by_name() {
    let env = Env::new();
    // A fresh installation: no image, and no error for asking.
    assert_eq!(env.ok(&["images", "-q"]), "");
    assert_eq!(env.ok(&["image", "prune"]), "Total reclaimed space: 0B");
    assert_eq!(load(&env, &busybox_oci()), "Loaded image: busybox:latest");
    let images = env.ok(&["images"]);
    assert!(
        images.lines().nth(1).unwrap().starts_with("busybox"),
        "{images}"
    );
    let o = env.ocishim(&["run", "--rm", "busybox", "echo", "hello from an image"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "hello from an image");
    // The record in docker's shape: Config.Image as given, Image the ID.
    let id = env.ok(&["run", "-d", "busybox", "sleep", "100"]);
    let v = env.inspect(&id);
    assert_eq!(v["Config"]["Image"], "busybox");
    let image_id = env.ok(&["image", "inspect", "busybox"]);
    let image_id: serde_json::Value = serde_json::from_str(&image_id).unwrap();
    assert_eq!(v["Image"], image_id[0]["Id"]);
    assert!(env.ok(&["ps"]).contains(" busybox "));
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id, &[]);
    assert!(mounts_under(&env.base).is_empty());
    env.assert_empty();
}

#[test]
fn the_image_config_merges_as_docker_does() {
    let env = Env::new();
    let img = image(
        "web-oci.tar",
        &[
            "--name",
            "web:1",
            "--env",
            "A=image",
            "--workdir",
            "/home/user",
            "--user",
            "user",
            "--entrypoint",
            r#"["/bin/sh","-c"]"#,
            "--cmd",
            r#"["echo $A $(pwd) $(id -u)"]"#,
        ],
    );
    assert_eq!(load(&env, &img), "Loaded image: web:1");
    let run = |extra: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(extra);
        let o = env.ocishim(&a);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        stdout(&o).trim().to_string()
    };
    // No command: the image's Entrypoint + Cmd, Env, WorkingDir and User.
    assert_eq!(run(&["web:1"]), "image /home/user 1000");
    // The user's env, workdir and user win.
    assert_eq!(
        run(&["-e", "A=user", "-w", "/", "-u", "0", "web:1"]),
        "user / 0"
    );
    // A command replaces the image's Cmd and keeps its Entrypoint.
    assert_eq!(run(&["web:1", "echo replaced"]), "replaced");
    // --entrypoint drops the image's Cmd too.
    assert_eq!(run(&["--entrypoint", "echo", "web:1", "over"]), "over");
    env.assert_empty();
}

#[test]
fn ten_containers_share_one_set_of_lower_dirs_and_rm_unmounts() {
    let env = Env::new();
    load(&env, &busybox_oci());
    let ids: Vec<String> = (0..10)
        .map(|_| env.ok(&["run", "-d", "--network", "none", "busybox", "sleep", "100"]))
        .collect();
    let lowers: Vec<String> = ids
        .iter()
        .map(|id| {
            let o = overlay_options(&env, id);
            o.split(',')
                .find(|p| p.starts_with("lowerdir="))
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(lowers.iter().all(|l| *l == lowers[0]), "{lowers:?}");
    let layers = std::fs::read_dir(env.data_root.join("image/layers"))
        .unwrap()
        .count();
    assert_eq!(layers, 1);
    // Each container writes to its own upper dir (its root seen from the host through
    // its init: the overlay is mounted in its own mount namespace only).
    env.ok(&["run", "--rm", "busybox", "sh", "-c", "test ! -e /mine"]);
    let pid = env.inspect(&ids[0])["State"]["Pid"].as_i64().unwrap();
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("echo x > /proc/{pid}/root/mine"))
        .bounded_status();
    assert!(o.success());
    assert!(env
        .data_root
        .join("containers")
        .join(&ids[0])
        .join("upper/mine")
        .exists());
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids.iter().map(String::as_str));
    env.ok(&rm);
    for id in &ids {
        env.assert_gone(id, &[]);
    }
    assert!(
        mounts_under(&env.base).is_empty(),
        "{:?}",
        mounts_under(&env.base)
    );
    env.assert_empty();
}

#[test]
fn failed_creates_and_rm_leave_no_mount() {
    let env = Env::new();
    load(&env, &busybox_oci());
    // The command is not in the image: 127, the record stays, the overlay does not.
    let o = env.ocishim(&["run", "-d", "busybox", "nosuchcommand"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert_eq!(id.len(), 64);
    assert!(mounts_under(&env.base).is_empty());
    let dir = env.data_root.join("containers").join(&id);
    for d in ["rootfs", "upper", "work"] {
        assert!(!dir.join(d).exists(), "{d} left by a failed create");
    }
    env.ok(&["rm", &id]);
    env.assert_gone(&id, &[]);
    // --rm: nothing at all once the container exits.
    let o = env.ocishim(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3));
    // --read-only: the image's tree cannot be written.
    let o = env.ocishim(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert_ne!(o.status.code(), Some(0));
    // No such image: docker's words, 125, nothing made (no pull: tests reach no
    // registry but their own on loopback).
    let o = env.ocishim(&["run", "--rm", "--pull", "never", "nosuch:tag"]);
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(
        stderr(&o).trim(),
        "ocishim: Unable to find image 'nosuch:tag' locally"
    );
    let o = env.ocishim(&["run", "--rm", "--pull", "never", "nosuch"]);
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(
        stderr(&o).trim(),
        "ocishim: Unable to find image 'nosuch:latest' locally"
    );
    let o = env.ocishim(&["run", "--rm", "--pull", "sometimes", "busybox"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("--pull"), "{}", stderr(&o));
    // (`--pull always` reaches a registry: tests/registry.rs, on loopback.)
    env.ok(&["run", "--rm", "--pull", "never", "busybox", "true"]);
    // No command in the image or on the command line.
    let bare = image("bare-oci.tar", &["--name", "bare", "--cmd", "[]"]);
    load(&env, &bare);
    let o = env.ocishim(&["run", "--rm", "bare"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("No command specified"),
        "{}",
        stderr(&o)
    );
    assert!(mounts_under(&env.base).is_empty());
    env.assert_empty();
}

#[test]
fn docker_archive_and_oci_dir_load_the_same_image() {
    let env = Env::new();
    let docker = image("busybox-docker.tar", &["--format", "docker-archive"]);
    let dir = image("busybox-oci-dir", &["--format", "oci-dir"]);
    assert_eq!(load(&env, &docker), "Loaded image: busybox:latest");
    assert_eq!(load(&env, &dir), "Loaded image: busybox:latest");
    assert_eq!(load(&env, &busybox_oci()), "Loaded image: busybox:latest");
    assert_eq!(env.ok(&["images", "-q"]).lines().count(), 1);
    // Standard input works too.
    let o = env
        .cmd(&["load"])
        .stdin(std::fs::File::open(&docker).unwrap())
        .bounded();
    assert_eq!(stdout(&o).trim(), "Loaded image: busybox:latest");
    env.ok(&["run", "--rm", "busybox", "true"]);
    env.assert_empty();
}

#[test]
fn save_is_read_back_by_skopeo_and_by_load() {
    let env = Env::new();
    load(&env, &busybox_oci());
    env.ok(&["tag", "busybox", "localhost:5000/team/bb:1"]);
    let out = env.base.join("saved.tar");
    env.ok(&[
        "save",
        "-o",
        out.to_str().unwrap(),
        "busybox",
        "localhost:5000/team/bb:1",
    ]);
    let o = Command::new("skopeo")
        .args([
            "inspect",
            &format!("docker-archive:{}:busybox:latest", out.display()),
        ])
        .bounded();
    assert!(o.status.success(), "skopeo: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "inspect", "busybox"])).unwrap();
    assert_eq!(v["Layers"], inspect[0]["RootFS"]["Layers"]);
    // A second installation loads it back with both names and the same ID.
    let other = Env::new();
    let loaded = load(&other, &out);
    assert_eq!(
        loaded,
        "Loaded image: busybox:latest\nLoaded image: localhost:5000/team/bb:1"
    );
    let again: serde_json::Value =
        serde_json::from_str(&other.ok(&["image", "inspect", "localhost:5000/team/bb:1"])).unwrap();
    assert_eq!(again[0]["Id"], inspect[0]["Id"]);
}

#[test]
fn import_rmi_and_prune() {
    let env = Env::new();
    load(&env, &busybox_oci());
    // import: a plain rootfs tarball; no command of its own.
    let tarball = env.base.join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(common::rootfs())
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .bounded_status();
    assert!(st.success());
    let id = env.ok(&["import", tarball.to_str().unwrap(), "imported:v1"]);
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    env.ok(&["run", "--rm", "imported:v1", "/bin/true"]);
    // rmi: refused while a container uses the image, then untag + delete + layers freed.
    let c = env.ok(&["create", "busybox", "true"]);
    let o = env.ocishim(&["rmi", "busybox"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("must force"), "{}", stderr(&o));
    // A second name goes without -f.
    env.ok(&["tag", "busybox", "bb2"]);
    assert_eq!(env.ok(&["rmi", "bb2"]), "Untagged: bb2:latest");
    env.ok(&["rm", &c]);
    let out = env.ok(&["rmi", "busybox"]);
    assert!(
        out.starts_with("Untagged: busybox:latest\nDeleted: sha256:"),
        "{out}"
    );
    assert_eq!(env.ok(&["images", "-q"]).lines().count(), 1);
    // prune -a: every image no container uses; the store is empty after.
    let out = env.ok(&["image", "prune", "-a"]);
    assert!(out.contains(&format!("deleted: {id}")), "{out}");
    assert_eq!(env.ok(&["images", "-q"]), "");
    for d in ["layers", "l"] {
        let n = std::fs::read_dir(env.data_root.join("image").join(d))
            .unwrap()
            .count();
        assert_eq!(n, 0, "{d} left after prune");
    }
    env.assert_empty();
}

#[test]
fn a_corrupted_layer_is_refused_and_leaves_no_image() {
    let env = Env::new();
    // An OCI layout dir with one byte of its layer blob changed.
    let src = image("busybox-oci-dir", &["--format", "oci-dir"]);
    let dir = env.base.join("corrupt");
    let st = Command::new("cp")
        .arg("-a")
        .arg(&src)
        .arg(&dir)
        .bounded_status();
    assert!(st.success());
    let blobs = dir.join("blobs/sha256");
    let layer = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut data = std::fs::read(&layer).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&layer, data).unwrap();
    let o = env.ocishim(&["load", "-i", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(125));
    let hex = layer.file_name().unwrap().to_str().unwrap();
    assert!(
        stderr(&o).contains(hex),
        "the error names the blob: {}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert_eq!(env.ok(&["images", "-q"]), "");
    let store = env.data_root.join("image");
    for d in ["layers", "tmp", "images"] {
        let n = std::fs::read_dir(store.join(d))
            .map(|r| r.count())
            .unwrap_or(0);
        assert_eq!(n, 0, "{d} not empty after a refused load");
    }
    assert!(!store.join("blobs/sha256").join(hex).exists());
    // A tar that is neither format.
    let junk = env.base.join("junk.tar");
    std::fs::write(&junk, vec![0u8; 2048]).unwrap();
    let o = env.ocishim(&["load", "-i", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("neither a docker-archive"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn parallel_loads_of_one_image_unpack_it_once() {
    let env = Env::new();
    let archive = busybox_oci();
    let children: Vec<_> = (0..6)
        .map(|_| {
            env.cmd(&["load", "-i", archive.to_str().unwrap()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o).trim(), "Loaded image: busybox:latest");
    }
    let store = env.data_root.join("image");
    assert_eq!(std::fs::read_dir(store.join("layers")).unwrap().count(), 1);
    assert_eq!(std::fs::read_dir(store.join("images")).unwrap().count(), 1);
    assert_eq!(std::fs::read_dir(store.join("tmp")).unwrap().count(), 0);
    env.ok(&["run", "--rm", "busybox", "true"]);
}

#[test]
fn an_image_of_a_hundred_and_twenty_layers_runs() {
    let env = Env::new();
    // 120 layers: the busybox tree, then one file each; the last whites out /layers/1.
    let many = image("many-oci.tar", &["--name", "many:1", "--layers", "120"]);
    assert_eq!(load(&env, &many), "Loaded image: many:1");
    let layers = std::fs::read_dir(env.data_root.join("image/layers"))
        .unwrap()
        .count();
    assert_eq!(layers, 120);
    let o = env.ocishim(&[
        "run",
        "--rm",
        "--network",
        "none",
        "many:1",
        "sh",
        "-c",
        "cat /layers/119 /layers/2; ls /layers | wc -l; test ! -e /layers/1 && echo gone",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).split_whitespace().collect::<Vec<_>>(),
        ["119", "2", "118", "gone"]
    );
    assert!(mounts_under(&env.base).is_empty());
    env.assert_empty();
}

#[test]
fn images_that_would_redirect_the_runtimes_mounts_are_refused() {
    let env = Env::new();
    for (name, link) in [
        ("proc", "proc=/tmp"),
        ("dev", "dev=/"),
        ("pts", "dev/pts=/tmp"),
    ] {
        let img = image(
            &format!("hostile-{name}.tar"),
            &["--name", &format!("hostile-{name}"), "--symlink", link],
        );
        load(&env, &img);
        let o = env.ocishim(&["run", "--rm", &format!("hostile-{name}"), "true"]);
        assert_eq!(o.status.code(), Some(125), "{name}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("is a symbolic link in the image"),
            "{}",
            stderr(&o)
        );
    }
    // A working directory under /proc (a leaked fd's /proc/self/fd/N), from the image or -w.
    let img = image(
        "procwd.tar",
        &["--name", "procwd", "--workdir", "/proc/self/fd/7"],
    );
    load(&env, &img);
    for args in [
        vec!["run", "--rm", "procwd", "true"],
        vec!["run", "--rm", "-w", "/proc/1/../self/cwd", "procwd", "true"],
    ] {
        let o = env.ocishim(&args);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", stderr(&o));
    }
    let o = env.ocishim(&["run", "--rm", "procwd", "true"]);
    assert!(
        stderr(&o).contains("is under /proc: refused"),
        "{}",
        stderr(&o)
    );
    assert!(mounts_under(&env.base).is_empty());
    env.assert_empty();
}
