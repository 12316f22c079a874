//! The per-container overlay (image::rootfs) on the real kernel, as root: many layers,
//! the topmost wins, overlay whiteouts and opaque directories hide lower entries, the
//! container's writes land in its upper dir only, and removal leaves no mount and no dir.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ocishim::image::rootfs::{self, Overlay};

fn require_root() {
    assert_eq!(
        nix::unistd::geteuid().as_raw(),
        0,
        "the rootfs tests must run as root (they mount overlayfs)"
    );
}

/// `n` layers under `base/layers/<i>`, each with its own file and `shared` saying which
/// layer it comes from; short names `l/<i>` as the image store makes them.
fn layers(base: &Path, n: usize) -> Vec<String> {
    fs::create_dir_all(base.join("l")).unwrap();
    let mut names = Vec::new();
    for i in 0..n {
        let d = base.join(format!("layers/{i:064x}/diff"));
        fs::create_dir_all(d.join("etc")).unwrap();
        fs::write(d.join(format!("etc/layer-{i}")), "x").unwrap();
        fs::write(d.join("shared"), format!("{i}")).unwrap();
        let short = format!("l/{i:016x}");
        std::os::unix::fs::symlink(format!("../layers/{i:064x}/diff"), base.join(&short)).unwrap();
        names.push(short);
    }
    names.reverse(); // topmost first
    names
}

#[test]
fn a_hundred_and_twenty_layers_merge_topmost_first_and_leave_nothing() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("image");
    let lowers = layers(&base, 120);
    let c = tmp.path().join("container");
    fs::create_dir_all(&c).unwrap();
    let (upper, work, target) = (c.join("upper"), c.join("work"), c.join("rootfs"));
    let o = Overlay {
        base: &base,
        lowers: &lowers,
        upper: &upper,
        work: &work,
        target: &target,
        volatile: true,
        idmap: None,
    };
    rootfs::mount(&o).unwrap();
    assert!(rootfs::is_mounted(&target));
    assert_eq!(fs::read_to_string(target.join("shared")).unwrap(), "119");
    assert!(target.join("etc/layer-0").exists() && target.join("etc/layer-119").exists());
    // The container's writes land in its upper dir, never in a layer.
    fs::write(target.join("shared"), "mine").unwrap();
    fs::write(target.join("new"), "n").unwrap();
    assert_eq!(fs::read_to_string(upper.join("shared")).unwrap(), "mine");
    let top = base.join(format!("layers/{:064x}/diff/shared", 119));
    assert_eq!(fs::read_to_string(top).unwrap(), "119");
    rootfs::remove(&target, &upper, &work).unwrap();
    assert!(!rootfs::is_mounted(&target));
    assert!(!target.exists() && !upper.exists() && !work.exists());
    // Removing again is fine.
    rootfs::remove(&target, &upper, &work).unwrap();
}

#[test]
fn whiteouts_and_opaque_dirs_hide_lower_entries() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("image");
    let lowers = layers(&base, 2);
    // Layer 1 (the top) whites out layer 0's etc/layer-0 and makes `opq` opaque.
    let low = base.join(format!("layers/{:064x}/diff", 0));
    let top = base.join(format!("layers/{:064x}/diff", 1));
    fs::create_dir_all(low.join("opq")).unwrap();
    fs::write(low.join("opq/old"), "o").unwrap();
    fs::create_dir_all(top.join("opq")).unwrap();
    fs::write(top.join("opq/new"), "n").unwrap();
    rustix::fs::setxattr(
        top.join("opq").as_path(),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    nix::sys::stat::mknod(
        &top.join("etc/layer-0"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        nix::sys::stat::makedev(0, 0),
    )
    .unwrap();
    let c = tmp.path().join("c");
    fs::create_dir_all(&c).unwrap();
    let (upper, work, target) = (c.join("upper"), c.join("work"), c.join("rootfs"));
    let o = Overlay {
        base: &base,
        lowers: &lowers,
        upper: &upper,
        work: &work,
        target: &target,
        volatile: false,
        idmap: None,
    };
    rootfs::mount(&o).unwrap();
    assert!(!target.join("etc/layer-0").exists());
    assert!(target.join("etc/layer-1").exists());
    assert!(target.join("opq/new").exists() && !target.join("opq/old").exists());
    assert_eq!(
        fs::metadata(&work).unwrap().permissions().mode() & 0o777,
        0o700
    );
    rootfs::remove(&target, &upper, &work).unwrap();
    assert!(!rootfs::is_mounted(&target));
}

#[test]
fn a_missing_lower_fails_and_mounts_nothing() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("image");
    fs::create_dir_all(&base).unwrap();
    let lowers = vec!["l/0000000000000000".to_string()];
    let c = tmp.path().join("c");
    fs::create_dir_all(&c).unwrap();
    let (upper, work, target) = (c.join("upper"), c.join("work"), c.join("rootfs"));
    let o = Overlay {
        base: &base,
        lowers: &lowers,
        upper: &upper,
        work: &work,
        target: &target,
        volatile: true,
        idmap: None,
    };
    let err = rootfs::mount(&o).unwrap_err();
    assert!(err.to_string().contains("overlay mount on"), "{err}");
    assert!(!rootfs::is_mounted(&target));
    rootfs::remove(&target, &upper, &work).unwrap();
    assert!(!c.join("upper").exists());
}
