//! Image archives: `load` of a docker-archive (`docker save`: `manifest.json`, a config
//! and a tar per layer) or an OCI image layout (as a tar, or a directory); `save` as a
//! docker-archive that docker and skopeo read back.
//!
//! A tar stream has no index and `docker save` puts `manifest.json` last, so `load` first
//! copies the archive's regular files into a private directory of the store's (names
//! checked: no absolute paths, no `..`; symlinks, which older docker-archives use for
//! repeated layers, are kept as a name map and resolved inside the archive only), then
//! reads the layout from there. Every blob is verified against its digest (and size) as
//! it enters the store; every layer's uncompressed digest is checked against the
//! config's `rootfs.diff_ids` while it is unpacked. A failure leaves no image.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use serde::{Deserialize, Serialize};

use super::compress::Compression;
use super::digest::{chain_ids, Digest, HashingReader};
use super::reference::Reference;
use super::store::{ImageRecord, ImageStore, ImageStoreError};
use super::unpack;

/// The most a manifest, index or config may weigh.
const MAX_JSON: u64 = 4 << 20;
/// How many symlinks a name in an archive may go through.
const MAX_LINKS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Store(#[from] ImageStoreError),
    #[error("archive entry {0:?}: not a relative path inside the archive")]
    BadName(String),
    #[error("archive: {0}")]
    Format(String),
    #[error("archive: reading {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("layer {blob}: {source}")]
    Unpack {
        blob: String,
        #[source]
        source: unpack::UnpackError,
    },
    #[error("layer {blob}: its content is {got}, the image config says {want}")]
    DiffIdMismatch {
        blob: String,
        got: Digest,
        want: Digest,
    },
    #[error("layer {blob}: media type {media_type} is not supported")]
    MediaType { blob: String, media_type: String },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> ArchiveError {
    let what = what.into();
    move |source| ArchiveError::Io { what, source }
}

fn format(why: impl Into<String>) -> ArchiveError {
    ArchiveError::Format(why.into())
}

/// An archive's name as a clean relative path (`./` dropped); None for `..`, absolute
/// paths and empty names.
fn clean(name: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// The files of an archive, copied into a private directory, with its symlinks.
struct Unpacked {
    dir: PathBuf,
    links: HashMap<PathBuf, PathBuf>,
}

impl Unpacked {
    /// The file behind `name`, following the archive's own symlinks inside it.
    fn path(&self, name: &str) -> Result<PathBuf, ArchiveError> {
        let mut p = clean(name).ok_or_else(|| ArchiveError::BadName(name.into()))?;
        for _ in 0..MAX_LINKS {
            let Some(target) = self.links.get(&p) else {
                return Ok(self.dir.join(p));
            };
            let base = p.parent().unwrap_or(Path::new(""));
            let joined = base.join(target).display().to_string();
            p = normalize(&joined).ok_or_else(|| ArchiveError::BadName(name.into()))?;
        }
        Err(ArchiveError::BadName(name.into()))
    }

    fn open(&self, name: &str) -> Result<File, ArchiveError> {
        let p = self.path(name)?;
        File::open(&p).map_err(io_err(format!("{name} in the archive")))
    }

    fn read_json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, ArchiveError> {
        let mut data = Vec::new();
        self.open(name)?
            .take(MAX_JSON + 1)
            .read_to_end(&mut data)
            .map_err(io_err(name))?;
        if data.len() as u64 > MAX_JSON {
            return Err(format(format!("{name} is over {MAX_JSON} bytes")));
        }
        serde_json::from_slice(&data).map_err(|e| format(format!("{name}: {e}")))
    }
}

/// `a/b/../c` → `a/c`; None when it climbs out.
fn normalize(p: &str) -> Option<PathBuf> {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    (!parts.is_empty()).then(|| parts.iter().collect())
}

/// Copy an archive's regular files and directories into `dir` (a fresh private one).
fn copy_out(input: &mut dyn Read, dir: &Path) -> Result<Unpacked, ArchiveError> {
    let mut ar = tar::Archive::new(input);
    let mut links = HashMap::new();
    for e in ar.entries().map_err(io_err("the archive"))? {
        let mut e = e.map_err(io_err("the archive"))?;
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let Some(name) = clean(&raw) else {
            if raw.trim_start_matches("./").is_empty() {
                continue; // the archive's root
            }
            return Err(ArchiveError::BadName(raw));
        };
        match e.header().entry_type() {
            tar::EntryType::Directory => {
                fs::create_dir_all(dir.join(&name)).map_err(io_err(raw))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let p = dir.join(&name);
                if let Some(parent) = p.parent() {
                    fs::create_dir_all(parent).map_err(io_err(raw.clone()))?;
                }
                let mut f = File::create(&p).map_err(io_err(raw.clone()))?;
                io::copy(&mut e, &mut f).map_err(io_err(raw))?;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = e
                    .link_name()
                    .map_err(io_err(raw.clone()))?
                    .ok_or_else(|| ArchiveError::BadName(raw.clone()))?;
                // A hard link names its target from the archive's root, a symlink from
                // its own directory: store both as relative to the link's directory.
                let target = if e.header().entry_type() == tar::EntryType::Link {
                    let depth = name.components().count() - 1;
                    let mut up = PathBuf::new();
                    for _ in 0..depth {
                        up.push("..");
                    }
                    up.join(target)
                } else {
                    target.into_owned()
                };
                links.insert(name, target);
            }
            _ => {} // other entries are no part of an image layout
        }
    }
    Ok(Unpacked {
        dir: dir.to_path_buf(),
        links,
    })
}

/// docker-archive's manifest.json entries.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// What a loaded image is called: its references, or none (then docker prints its ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    Tagged(String),
    Id(Digest),
}

/// A private temp dir in the store's `tmp/` (0700; removed on drop), named after this
/// process as the store's own temp entries are (`<pid>-…`), so that another process's
/// `clean_tmp` leaves it alone while this one lives.
fn temp_dir(store: &ImageStore, prefix: &str) -> Result<tempfile::TempDir, ArchiveError> {
    tempfile::Builder::new()
        .prefix(&format!("{}-{prefix}", std::process::id()))
        .tempdir_in(store.root().join("tmp"))
        .map_err(io_err("a temp dir in the image store"))
}

/// `load`: read an archive (docker-archive or OCI layout tar) into the store. Returns
/// what was loaded, for docker's `Loaded image: NAME:TAG` / `Loaded image ID: ...`.
pub fn load(store: &ImageStore, input: &mut dyn Read) -> Result<Vec<Loaded>, ArchiveError> {
    let tmp = temp_dir(store, "load-")?;
    copy_out(input, tmp.path()).and_then(|u| load_unpacked(store, &u))
}

/// `load` of an OCI image layout directory.
pub fn load_dir(store: &ImageStore, dir: &Path) -> Result<Vec<Loaded>, ArchiveError> {
    let u = Unpacked {
        dir: dir.to_path_buf(),
        links: HashMap::new(),
    };
    load_unpacked(store, &u)
}

fn load_unpacked(store: &ImageStore, u: &Unpacked) -> Result<Vec<Loaded>, ArchiveError> {
    if u.dir.join("index.json").is_file() && u.dir.join("oci-layout").is_file() {
        load_oci(store, u)
    } else if u.path("manifest.json")?.is_file() {
        load_docker(store, u)
    } else {
        Err(format(
            "neither a docker-archive (manifest.json) nor an OCI image layout (oci-layout, index.json)",
        ))
    }
}

fn load_docker(store: &ImageStore, u: &Unpacked) -> Result<Vec<Loaded>, ArchiveError> {
    let entries: Vec<DockerEntry> = u.read_json("manifest.json")?;
    let mut loaded = Vec::new();
    for e in entries {
        let (config, _) = store.put_blob(&mut u.open(&e.config)?, None)?;
        let layers = e
            .layers
            .iter()
            .map(|l| Ok((u.open(l)?, None, l.clone())))
            .collect::<Result<Vec<_>, ArchiveError>>()?;
        let tags = e.repo_tags.unwrap_or_default();
        let img = add_image(store, &config, None, layers)?;
        loaded.extend(tag_all(store, &img, &tags)?);
    }
    Ok(loaded)
}

/// The platform an image is picked for: this host's.
fn host_platform(p: Option<&oci_spec::image::Platform>) -> bool {
    p.is_none_or(|p| {
        p.os().to_string() == "linux"
            && p.architecture().to_string() == std::env::consts::ARCH.replace("x86_64", "amd64")
    })
}

fn load_oci(store: &ImageStore, u: &Unpacked) -> Result<Vec<Loaded>, ArchiveError> {
    let index: ImageIndex = u.read_json("index.json")?;
    let mut loaded = Vec::new();
    for m in index.manifests() {
        let mut desc = m.clone();
        // An index inside (a multi-platform image): this host's manifest.
        for _ in 0..4 {
            if *desc.media_type() != MediaType::ImageIndex {
                break;
            }
            let inner: ImageIndex = u.read_json(&blob_name(desc.digest())?)?;
            desc = inner
                .manifests()
                .iter()
                .find(|d| host_platform(d.platform().as_ref()))
                .cloned()
                .ok_or_else(|| {
                    format(format!(
                        "index {}: no manifest for this platform",
                        desc.digest()
                    ))
                })?;
        }
        let mdigest = Digest::parse(desc.digest().as_ref()).map_err(|e| format(e.to_string()))?;
        let (stored, _) = store.put_blob(
            &mut u.open(&blob_name(desc.digest())?)?,
            Some((&mdigest, Some(desc.size()))),
        )?;
        let manifest: ImageManifest = serde_json::from_slice(&store.read_blob(&stored, MAX_JSON)?)
            .map_err(|e| format(format!("manifest {stored}: {e}")))?;
        let cdesc = manifest.config();
        let cdigest = Digest::parse(cdesc.digest().as_ref()).map_err(|e| format(e.to_string()))?;
        let (config, _) = store.put_blob(
            &mut u.open(&blob_name(cdesc.digest())?)?,
            Some((&cdigest, Some(cdesc.size()))),
        )?;
        let mut layers = Vec::new();
        for l in manifest.layers() {
            let d = Digest::parse(l.digest().as_ref()).map_err(|e| format(e.to_string()))?;
            let media = l.media_type().to_string();
            layers.push((u.open(&blob_name(l.digest())?)?, Some((d, l.size())), media));
        }
        let img = add_image(store, &config, Some(stored), layers)?;
        // containerd's full name; else ref.name when it is a full reference (the spec
        // also lets it be a bare tag, which names no repository: the image stays unnamed).
        let annotations = desc.annotations().clone().unwrap_or_default();
        let names: Vec<String> = annotations
            .get("io.containerd.image.name")
            .or_else(|| {
                annotations
                    .get("org.opencontainers.image.ref.name")
                    .filter(|n| n.contains('/') || n.contains(':'))
            })
            .cloned()
            .into_iter()
            .collect();
        loaded.extend(tag_all(store, &img, &names)?);
    }
    Ok(loaded)
}

/// `blobs/sha256/<hex>` of a descriptor's digest, refusing digests unsafe as paths.
fn blob_name(d: &oci_spec::image::Digest) -> Result<String, ArchiveError> {
    let d = Digest::parse(d.as_ref()).map_err(|e| format(e.to_string()))?;
    Ok(format!("blobs/sha256/{}", d.hex()))
}

fn tag_all(
    store: &ImageStore,
    img: &ImageRecord,
    names: &[String],
) -> Result<Vec<Loaded>, ArchiveError> {
    if names.is_empty() {
        return Ok(vec![Loaded::Id(img.id.clone())]);
    }
    let mut out = Vec::new();
    for n in names {
        let r = Reference::parse(n).map_err(|e| format(format!("image name {n:?}: {e}")))?;
        store.tag(&r.to_string(), &img.id)?;
        out.push(Loaded::Tagged(r.familiar()));
    }
    Ok(out)
}

/// A layer blob's decompressed stream, by media type (or, without one, by its first bytes).
fn decompressed<'a>(
    mut f: BufReader<File>,
    media: Option<&str>,
    blob: &str,
) -> Result<Box<dyn Read + Send + 'a>, ArchiveError> {
    let c = match media {
        Some(m) => Compression::from_media_type(m).ok_or_else(|| ArchiveError::MediaType {
            blob: blob.into(),
            media_type: m.into(),
        })?,
        None => {
            use std::io::BufRead;
            Compression::sniff(f.fill_buf().map_err(io_err(blob))?)
        }
    };
    c.decoder(f).map_err(io_err(blob))
}

/// Store an image: its layers' blobs (verified), each layer unpacked once with its
/// uncompressed digest checked against the config's diff_ids, then the image record.
#[allow(clippy::type_complexity)]
fn add_image(
    store: &ImageStore,
    config: &Digest,
    manifest: Option<Digest>,
    layers: Vec<(File, Option<(Digest, u64)>, String)>,
) -> Result<ImageRecord, ArchiveError> {
    let cfg: ImageConfiguration = serde_json::from_slice(&store.read_blob(config, MAX_JSON)?)
        .map_err(|e| format(format!("config {config}: {e}")))?;
    let diff_ids = cfg
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| Digest::parse(d).map_err(|e| format(format!("config {config}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    if diff_ids.len() != layers.len() {
        return Err(format(format!(
            "config {config} lists {} layers, the manifest {}",
            diff_ids.len(),
            layers.len()
        )));
    }
    let chains = chain_ids(&diff_ids);
    let mut refs = Vec::new();
    let mut blobs = Vec::new();
    for (((mut file, expected, media), diff_id), chain_id) in
        layers.into_iter().zip(&diff_ids).zip(&chains)
    {
        let (blob, _) = store.put_blob(&mut file, expected.as_ref().map(|(d, s)| (d, Some(*s))))?;
        let name = blob.to_string();
        let media = expected.is_some().then_some(media);
        let fail = |e: ArchiveError| ImageStoreError::Fill {
            chain_id: chain_id.clone(),
            source: Box::new(e),
        };
        let mut fill = |dir: &Path| -> Result<u64, ImageStoreError> {
            let f = File::open(store.blob_path(&blob))
                .map_err(io_err(name.clone()))
                .map_err(fail)?;
            let stream = decompressed(BufReader::new(f), media.as_deref(), &name).map_err(fail)?;
            let mut hashing = HashingReader::new(stream, None);
            let stats = unpack::unpack(&mut hashing, dir).map_err(|source| {
                fail(ArchiveError::Unpack {
                    blob: name.clone(),
                    source,
                })
            })?;
            // The tar's end blocks and any padding count towards the digest too.
            io::copy(&mut hashing, &mut io::sink())
                .map_err(io_err(name.clone()))
                .map_err(fail)?;
            let (got, _) = hashing.finish();
            if &got != diff_id {
                return Err(fail(ArchiveError::DiffIdMismatch {
                    blob: name.clone(),
                    got,
                    want: diff_id.clone(),
                }));
            }
            Ok(stats.bytes)
        };
        store.ensure_layer(diff_id, chain_id, &mut fill)?;
        refs.push(store.layer_info(chain_id)?);
        blobs.push(blob);
    }
    let size = refs.iter().map(|l| l.size).sum();
    let img = ImageRecord {
        id: config.clone(),
        manifest,
        config: config.clone(),
        layers: refs,
        repo_tags: Vec::new(),
        repo_digests: Vec::new(),
        created: cfg.created().clone().unwrap_or_default(),
        size,
        blobs,
    };
    let img = match store.image(&img.id) {
        Ok(existing) => existing,
        Err(_) => {
            store.put_image(&img)?;
            img
        }
    };
    Ok(img)
}

/// `import`: a plain rootfs tarball (gzip or not) as an image of one layer, with an
/// empty config (no command: give one at `run`).
pub fn import(store: &ImageStore, input: &mut dyn Read) -> Result<ImageRecord, ArchiveError> {
    let (blob, _) = store.put_blob(input, None)?;
    // The layer's uncompressed digest first (the image config names it), then the layer.
    let f = File::open(store.blob_path(&blob)).map_err(io_err(blob.to_string()))?;
    let mut hashing =
        HashingReader::new(decompressed(BufReader::new(f), None, blob.as_str())?, None);
    io::copy(&mut hashing, &mut io::sink()).map_err(io_err(blob.to_string()))?;
    let (diff_id, _) = hashing.finish();
    let config = serde_json::json!({
        "architecture": std::env::consts::ARCH.replace("x86_64", "amd64"),
        "os": "linux",
        "created": crate::log_file::format_time(std::time::SystemTime::now()),
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        "history": [{"created_by": "ocishim import", "comment": "Imported from tarball"}],
    });
    let data = serde_json::to_vec(&config).expect("config serializes");
    let (config, _) = store.put_blob(&mut data.as_slice(), None)?;
    let f = File::open(store.blob_path(&blob)).map_err(io_err(blob.to_string()))?;
    add_image(store, &config, None, vec![(f, None, String::new())])
}

/// `save`: the images as one docker-archive: `<config hex>.json`, `<diff id hex>/layer.tar`
/// (uncompressed), `manifest.json` with each image's tags.
pub fn save(
    store: &ImageStore,
    images: &[(ImageRecord, Vec<String>)],
    out: &mut dyn Write,
) -> Result<(), ArchiveError> {
    let mut b = tar::Builder::new(out);
    let mut manifest = Vec::new();
    let mut written = std::collections::HashSet::new();
    let add = |b: &mut tar::Builder<&mut dyn Write>, name: &str, r: &mut dyn Read, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, r)
            .map_err(io_err(format!("writing {name}")))
    };
    for (img, tags) in images {
        let cname = format!("{}.json", img.config.hex());
        if written.insert(cname.clone()) {
            let data = store.read_blob(&img.config, MAX_JSON)?;
            add(&mut b, &cname, &mut data.as_slice(), data.len() as u64)?;
        }
        let mut layers = Vec::new();
        for (i, l) in img.layers.iter().enumerate() {
            let lname = format!("{}/layer.tar", l.diff_id.hex());
            if written.insert(lname.clone()) {
                // The layer tar as the config's diff_id names it: the blob, decompressed.
                let blob = img
                    .blobs
                    .get(i)
                    .filter(|_| img.blobs.len() == img.layers.len())
                    .cloned()
                    .ok_or_else(|| {
                        format(format!("image {}: its layer blobs are not known", img.id))
                    })?;
                let tmp = temp_dir(store, "save-")?;
                let plain = tmp.path().join("layer.tar");
                {
                    let f = BufReader::new(
                        File::open(store.blob_path(&blob)).map_err(io_err(blob.to_string()))?,
                    );
                    let mut r = decompressed(f, None, &blob.to_string())?;
                    let mut w = File::create(&plain).map_err(io_err("a temp file"))?;
                    io::copy(&mut r, &mut w).map_err(io_err(blob.to_string()))?;
                }
                let size = fs::metadata(&plain).map_err(io_err("a temp file"))?.len();
                add(
                    &mut b,
                    &lname,
                    &mut File::open(&plain).map_err(io_err("a temp file"))?,
                    size,
                )?;
            }
            layers.push(lname);
        }
        manifest.push(DockerEntry {
            config: cname,
            repo_tags: Some(tags.clone()),
            layers,
        });
    }
    let data = serde_json::to_vec(&manifest).expect("manifest serializes");
    add(
        &mut b,
        "manifest.json",
        &mut data.as_slice(),
        data.len() as u64,
    )?;
    b.into_inner()
        .map_err(io_err("finishing the archive"))?
        .flush()
        .map_err(io_err("writing the archive"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_archive() {
        assert_eq!(
            clean("./manifest.json"),
            Some(PathBuf::from("manifest.json"))
        );
        assert_eq!(clean("a/./b"), Some(PathBuf::from("a/b")));
        assert_eq!(clean("../x"), None);
        assert_eq!(clean("/etc/passwd"), None);
        assert_eq!(clean("a/../../x"), None);
        assert_eq!(clean("./"), None);
        assert_eq!(normalize("a/b/../c"), Some(PathBuf::from("a/c")));
        assert_eq!(normalize("a/../../c"), None);
        let u = Unpacked {
            dir: PathBuf::from("/d"),
            links: [
                (
                    PathBuf::from("b/layer.tar"),
                    PathBuf::from("../a/layer.tar"),
                ),
                (PathBuf::from("loop"), PathBuf::from("loop")),
                (PathBuf::from("out"), PathBuf::from("../../etc/passwd")),
            ]
            .into(),
        };
        assert_eq!(
            u.path("b/layer.tar").unwrap(),
            PathBuf::from("/d/a/layer.tar")
        );
        assert!(u.path("loop").is_err());
        assert!(u.path("out").is_err());
        assert!(u.path("../x").is_err());
    }
}
