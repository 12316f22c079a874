//! What create checks and resolves before anything exists: the rootfs, the user (from
//! the rootfs's /etc/passwd and /etc/group), devices, bind sources; and the names derived
//! from the config and the ID (hostname, cgroup path). Bad input fails here, with 125.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::config::{ContainerConfig, NetworkMode};
use crate::error::Error;
use crate::spec::{self, ResolvedDevice};

/// What `prepare` resolved: the user (from the rootfs's /etc/passwd and /etc/group) and the
/// devices.
pub struct Prepared {
    pub user: spec::ResolvedUser,
    pub devices: Vec<ResolvedDevice>,
}

fn device_from_host(host: &Path, container: &str, perms: &str) -> Result<ResolvedDevice, Error> {
    let md = fs::metadata(host).map_err(|e| Error::Device {
        path: host.to_path_buf(),
        why: e.to_string(),
    })?;
    let ft = md.file_type();
    let typ = if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else {
        return Err(Error::Device {
            path: host.to_path_buf(),
            why: "not a device node".into(),
        });
    };
    let rdev = md.rdev();
    Ok(ResolvedDevice {
        path: container.to_string(),
        typ,
        major: libc::major(rdev) as i64,
        minor: libc::minor(rdev) as i64,
        file_mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        permissions: perms.to_string(),
    })
}

/// Every device node under /dev, for --privileged (docker gives them all).
fn host_devices() -> Vec<ResolvedDevice> {
    fn walk(dir: &Path, out: &mut Vec<ResolvedDevice>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name();
            if matches!(
                name.to_str(),
                Some(
                    "pts"
                        | "shm"
                        | "fd"
                        | "mqueue"
                        | ".lxc"
                        | ".lxd-mounts"
                        | ".udev"
                        | "console"
                        | "ptmx"
                )
            ) {
                continue;
            }
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                walk(&p, out);
            } else if ft.is_char_device() || ft.is_block_device() {
                let s = p.to_string_lossy().to_string();
                if let Ok(d) = device_from_host(&p, &s, "rwm") {
                    out.push(d);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/dev"), &mut out);
    out
}

/// Check what can be checked before anything exists. `layers`: an image's unpacked layers,
/// topmost first (its overlay is not mounted yet); empty for a --rootfs directory or a
/// mounted overlay.
pub fn prepare(cfg: &ContainerConfig, layers: &[PathBuf]) -> Result<Prepared, Error> {
    // An image's layers before its overlay is mounted; the tree itself after (start of
    // an exited container, update).
    let read = |p: &str| {
        if !layers.is_empty() {
            read_from_layers(layers, p)
        } else {
            fs::read_to_string(cfg.rootfs.join(p)).unwrap_or_default()
        }
    };
    if !layers.is_empty() {
        refuse_hostile_image(cfg, layers)?;
    }
    if layers.is_empty() {
        match fs::metadata(&cfg.rootfs) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Rootfs {
                    path: cfg.rootfs.clone(),
                    why: "not a directory".into(),
                })
            }
            Err(e) => {
                return Err(Error::Rootfs {
                    path: cfg.rootfs.clone(),
                    why: e.to_string(),
                })
            }
        }
    }
    let user = spec::resolve_user(cfg.user.as_deref(), &read("etc/passwd"), &read("etc/group"))?;
    let mut devices = Vec::new();
    for d in &cfg.devices {
        devices.push(device_from_host(&d.host, &d.container, &d.permissions)?);
    }
    if cfg.privileged {
        devices.extend(host_devices());
    }
    for b in &cfg.binds {
        if !b.source.exists() {
            return Err(Error::BindSourceMissing(b.source.clone()));
        }
    }
    Ok(Prepared { user, devices })
}

/// A file of an image's merged tree, read from its unpacked layers (topmost first) before
/// anything is mounted: the first layer that has the name decides ([`layer_entry`]). A
/// whiteout there (a character device 0/0), a symlink or anything but a regular file reads
/// as empty (a link is not followed: it could lead out of the layer).
pub fn read_from_layers(layers: &[PathBuf], name: &str) -> String {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let Some((path, kind)) = layer_entry(layers, name) else {
        return String::new();
    };
    let mut text = String::new();
    if kind.is_file() {
        let opened = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path);
        if let Ok(f) = opened {
            // /etc/passwd and /etc/group: a few KiB; never more than 1 MiB read.
            let _ = f.take(1 << 20).read_to_string(&mut text);
        }
    }
    text
}

/// Where the runtime mounts the kernel's filesystems: a symlink there in an image could
/// send those mounts elsewhere. Parents come before their children.
const MOUNT_POINTS: [&str; 6] = ["proc", "sys", "dev", "dev/pts", "dev/shm", "dev/mqueue"];

/// What an image's merged tree has at `name` (a relative path) and where, read from its
/// layers (topmost first) without following any link, parents included: the first layer
/// that has the name decides; a parent that is not a directory there ends the search.
fn layer_entry(layers: &[PathBuf], name: &str) -> Option<(PathBuf, fs::FileType)> {
    'layers: for l in layers {
        let mut p = l.clone();
        let comps: Vec<&str> = name.split('/').collect();
        for (i, c) in comps.iter().enumerate() {
            p.push(c);
            match fs::symlink_metadata(&p) {
                Err(_) => continue 'layers,
                Ok(md) if i + 1 == comps.len() || !md.is_dir() => return Some((p, md.file_type())),
                Ok(_) => {}
            }
        }
    }
    None
}

/// Refuse an image that would turn the runtime's own mounts or the process's working
/// directory against the host: /proc, /sys or /dev (and its pts, shm, mqueue) as
/// symlinks, and a working directory under /proc (a leaked fd's /proc/self/fd/N).
fn refuse_hostile_image(cfg: &ContainerConfig, layers: &[PathBuf]) -> Result<(), Error> {
    for m in MOUNT_POINTS {
        if layer_entry(layers, m).is_some_and(|(_, t)| t.is_symlink()) {
            return Err(Error::Rootfs {
                path: PathBuf::from(&cfg.image),
                why: format!("/{m} is a symbolic link in the image: refused"),
            });
        }
    }
    if let Some(w) = &cfg.workdir {
        let clean = crate::config::clean_path(w);
        if clean == "/proc" || clean.starts_with("/proc/") {
            return Err(Error::Rootfs {
                path: PathBuf::from(&cfg.image),
                why: format!("working directory {w:?} is under /proc: refused"),
            });
        }
    }
    Ok(())
}

/// The hostname a container gets.
pub fn hostname_for(cfg: &ContainerConfig, id: &str) -> String {
    if let Some(h) = &cfg.hostname {
        return h.clone();
    }
    if cfg.network == NetworkMode::Host {
        if let Ok(h) = nix::unistd::gethostname() {
            return h.to_string_lossy().into_owned();
        }
    }
    id[..12].to_string()
}

pub fn cgroups_path(cfg: &ContainerConfig, id: &str) -> String {
    format!("/{}/{id}", cfg.cgroup_parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_read_topmost_first_without_following_links() {
        let d = tempfile::tempdir().unwrap();
        let (top, low, host) = (
            d.path().join("top"),
            d.path().join("low"),
            d.path().join("host"),
        );
        for p in [low.join("etc"), top.join("bin"), host.clone()] {
            fs::create_dir_all(p).unwrap();
        }
        fs::write(low.join("etc/passwd"), "root:x:0:0::/:/bin/sh\n").unwrap();
        fs::write(host.join("passwd"), "host:x:0:0::/:/bin/sh\n").unwrap();
        let layers = [top.clone(), low.clone()];
        // The top layer lacks etc/: the lower one's file.
        assert_eq!(
            read_from_layers(&layers, "etc/passwd"),
            "root:x:0:0::/:/bin/sh\n"
        );
        // The top layer's etc is a link out of the layers: never followed.
        std::os::unix::fs::symlink(&host, top.join("etc")).unwrap();
        assert_eq!(read_from_layers(&layers, "etc/passwd"), "");
        assert!(layer_entry(&layers, "etc").is_some_and(|(_, t)| t.is_symlink()));
        assert!(layer_entry(&layers, "nothing").is_none());
    }
}
