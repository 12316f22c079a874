//! The content-addressed image store, under `<data-root>/image`:
//!
//! ```text
//! blobs/sha256/<hex>              manifests, configs, layer blobs as fetched
//! layers/<chain-hex>/diff/        a layer unpacked once, shared read-only
//! layers/<chain-hex>/layer.json   {"DiffID", "ChainID", "Size"}
//! l/<16 hex of chain>             symlink -> ../layers/<chain-hex>/diff (overlay lowers)
//! images/<id-hex>.json            an ImageRecord (id = the config's digest)
//! repositories.json               {"Refs": {"docker.io/library/busybox:latest": "sha256:<id>"}}
//! locks/{store,blob-<hex>,layer-<hex>}   flock files
//! tmp/<pid>-<random>              private work files and dirs
//! ```
//!
//! The root is 0711 and everything under it 0700 (CVE-2021-41091: other host users must
//! not reach the layers). Blobs, layers and records appear by rename from `tmp/`, complete
//! or not at all; `init` removes `tmp/` entries whose writer (the pid in the name) is gone.
//! `repositories.json` is authoritative for tags: records read back get their `RepoTags`
//! and `RepoDigests` from it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::digest::{Digest, HashingReader};
use super::reference::Reference;
use crate::store::{new_id, Lock};
use fsutil::{copy_checked, list_hex, read_json, remove_any, rename_or_remove, write_synced};

#[path = "store_fs.rs"]
mod fsutil;

/// The most a manifest or config read may be.
pub const MANIFEST_MAX: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ImageStoreError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("blob {digest}: reading: {source}")]
    Read { digest: String, source: io::Error },
    #[error("blob {expected}: digest mismatch, got {got}")]
    DigestMismatch { expected: Digest, got: Digest },
    #[error("blob {digest}: {got} bytes, expected {want}")]
    SizeMismatch { digest: Digest, got: u64, want: u64 },
    #[error("blob {digest}: more than {limit} bytes")]
    TooLarge { digest: Digest, limit: u64 },
    #[error("blob {0}: not in the image store")]
    BlobNotFound(Digest),
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("multiple images found with provided prefix: {0}")]
    Ambiguous(String),
    #[error("{}: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("reference {reference:?}: {source}")]
    Reference {
        reference: String,
        source: super::reference::ReferenceError,
    },
    /// A layer fill's own failure (unpacking is the caller's).
    #[error("layer {chain_id}: {source}")]
    Fill {
        chain_id: Digest,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ImageStoreError {
    let path = path.to_path_buf();
    move |source| ImageStoreError::Io { what, path, source }
}

/// One image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ImageRecord {
    /// The config's digest (docker's image ID).
    pub id: Digest,
    pub manifest: Option<Digest>,
    pub config: Digest,
    /// Bottom first.
    pub layers: Vec<LayerRef>,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// The config's `created` (RFC 3339).
    pub created: String,
    /// Bytes unpacked, all layers.
    pub size: u64,
    /// Other blobs the image keeps (its layer blobs), for `prune_unused`.
    #[serde(default)]
    pub blobs: Vec<Digest>,
}

/// A layer of an image; also `layers/<chain>/layer.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerRef {
    #[serde(rename = "DiffID")]
    pub diff_id: Digest,
    #[serde(rename = "ChainID")]
    pub chain_id: Digest,
    /// Bytes unpacked.
    #[serde(rename = "Size")]
    pub size: u64,
}

/// A blob being written in the store's `tmp/` (see [`ImageStore::tmp_blob`]).
pub struct TmpBlob {
    file: Option<File>,
    path: PathBuf,
}

impl io::Write for TmpBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().expect("open").write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("open").flush()
    }
}

impl Drop for TmpBlob {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Repositories {
    #[serde(rename = "Refs")]
    refs: BTreeMap<String, Digest>,
}

/// The key a reference is kept under: the full form, `name@digest` when digested.
fn ref_key(reference: &str) -> Result<String, ImageStoreError> {
    let r = Reference::parse(reference).map_err(|source| ImageStoreError::Reference {
        reference: reference.into(),
        source,
    })?;
    Ok(match &r.digest {
        Some(d) => format!("{}@{d}", r.name()),
        None => r.to_string(),
    })
}

#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
}

impl ImageStore {
    pub fn new(root: impl Into<PathBuf>) -> ImageStore {
        ImageStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Create the directories with their modes (idempotent; modes are reset) and remove
    /// what crashed writers left in `tmp/`.
    pub fn init(&self) -> Result<(), ImageStoreError> {
        let dirs = [
            (self.root.clone(), 0o711),
            (self.root.join("blobs"), 0o700),
            (self.root.join("blobs/sha256"), 0o700),
            (self.root.join("layers"), 0o700),
            (self.root.join("l"), 0o700),
            (self.root.join("images"), 0o700),
            (self.root.join("locks"), 0o700),
            (self.tmp_dir(), 0o700),
        ];
        for (d, mode) in dirs {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(&d)
                .map_err(io_err("creating", &d))?;
            fs::set_permissions(&d, fs::Permissions::from_mode(mode))
                .map_err(io_err("chmod", &d))?;
        }
        self.clean_tmp()
    }

    /// Remove `tmp/` entries whose writer is gone: entries are named `<pid>-<random>`, and
    /// one whose pid has no `/proc/<pid>` is left over from a crash. (A reused pid keeps
    /// an entry until that process is gone too.)
    pub fn clean_tmp(&self) -> Result<(), ImageStoreError> {
        let tmp = self.tmp_dir();
        let entries = fs::read_dir(&tmp).map_err(io_err("reading", &tmp))?;
        for e in entries.flatten() {
            let name = e.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.split('-').next()?.parse::<u32>().ok());
            if pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists()) {
                continue;
            }
            remove_any(&e.path());
        }
        Ok(())
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A fresh name in `tmp/`, unique across processes and threads.
    fn tmp_path(&self) -> PathBuf {
        self.tmp_dir()
            .join(format!("{}-{}", std::process::id(), &new_id()[..16]))
    }

    fn lock(&self, name: &str) -> Result<Lock, ImageStoreError> {
        let p = self.root.join("locks").join(name);
        Lock::acquire(&p).map_err(io_err("locking", &p))
    }

    fn store_lock(&self) -> Result<Lock, ImageStoreError> {
        self.lock("store")
    }

    /// Held (shared) by whoever puts layers and blobs in the store before an image record
    /// names them (a load, an import) or uses an image's layers before a container record
    /// names it (a create): `prune_unused` takes it exclusively, so it never removes what
    /// such a command is about to use.
    pub fn use_lock(&self) -> Result<Lock, ImageStoreError> {
        let p = self.root.join("locks").join("use");
        Lock::acquire_shared(&p).map_err(io_err("locking", &p))
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).exists()
    }

    /// Stream `r` into the store as a blob: hashed while written to a temp file in `tmp/`,
    /// checked against `expected` (digest; size when given: a longer stream is cut off and
    /// refused, a shorter one refused), fsynced and renamed into place only when complete.
    /// Under the blob's flock: a second writer of a present blob returns at once, reading
    /// nothing. With `expected` None the digest is computed and returned.
    pub fn put_blob(
        &self,
        r: &mut dyn Read,
        expected: Option<(&Digest, Option<u64>)>,
    ) -> Result<(Digest, u64), ImageStoreError> {
        let Some((want, want_size)) = expected else {
            let (tmp, digest, size) = self.write_tmp_blob(r, None, None)?;
            let _lock = self.lock(&format!("blob-{}", digest.hex()))?;
            return self.commit_blob(&tmp, &digest, size);
        };
        let _lock = self.lock(&format!("blob-{}", want.hex()))?;
        let path = self.blob_path(want);
        if let Ok(m) = fs::metadata(&path) {
            return match want_size {
                Some(s) if s != m.len() => Err(ImageStoreError::SizeMismatch {
                    digest: want.clone(),
                    got: m.len(),
                    want: s,
                }),
                _ => Ok((want.clone(), m.len())),
            };
        }
        let (tmp, digest, size) = self.write_tmp_blob(r, Some(want), want_size)?;
        self.commit_blob(&tmp, &digest, size)
    }

    /// Copy `r` to a new file in `tmp/` (synced), hashing it and checking it against
    /// `want`; the file is removed on error.
    fn write_tmp_blob(
        &self,
        r: &mut dyn Read,
        want: Option<&Digest>,
        limit: Option<u64>,
    ) -> Result<(PathBuf, Digest, u64), ImageStoreError> {
        let tmp = self.tmp_path();
        let res = copy_checked(&tmp, r, want, limit);
        if res.is_err() {
            remove_any(&tmp);
        }
        res.map(|(digest, size)| (tmp, digest, size))
    }

    /// Rename a verified temp blob into place (held: the blob's lock).
    fn commit_blob(
        &self,
        tmp: &Path,
        digest: &Digest,
        size: u64,
    ) -> Result<(Digest, u64), ImageStoreError> {
        let path = self.blob_path(digest);
        if path.exists() {
            let _ = fs::remove_file(tmp);
            return Ok((digest.clone(), size));
        }
        rename_or_remove(tmp, &path)?;
        Ok((digest.clone(), size))
    }

    /// A new private file in `tmp/` for a blob written as it streams by (a pulled layer's
    /// compressed bytes while it is unpacked); removed on drop unless committed.
    pub fn tmp_blob(&self) -> Result<TmpBlob, ImageStoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.tmp_path();
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("creating", &path))?;
        Ok(TmpBlob {
            file: Some(file),
            path,
        })
    }

    /// Move a verified [`TmpBlob`] into place as blob `digest` (under the blob's lock; a
    /// blob already there wins).
    pub fn commit_tmp_blob(
        &self,
        mut blob: TmpBlob,
        digest: &Digest,
        size: u64,
    ) -> Result<(), ImageStoreError> {
        let file = blob
            .file
            .take()
            .expect("an uncommitted temp blob has its file");
        file.sync_all().map_err(io_err("syncing", &blob.path))?;
        drop(file);
        let _lock = self.lock(&format!("blob-{}", digest.hex()))?;
        let path = std::mem::take(&mut blob.path);
        self.commit_blob(&path, digest, size).map(|_| ())
    }

    /// A blob's bytes, re-verified against its digest; refused when over `max` bytes
    /// (manifests and configs: [`MANIFEST_MAX`]).
    pub fn read_blob(&self, d: &Digest, max: u64) -> Result<Vec<u8>, ImageStoreError> {
        let path = self.blob_path(d);
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ImageStoreError::BlobNotFound(d.clone()))
            }
            Err(e) => return Err(io_err("opening", &path)(e)),
        };
        let len = f.metadata().map_err(io_err("stat", &path))?.len();
        let too_large = || ImageStoreError::TooLarge {
            digest: d.clone(),
            limit: max,
        };
        if len > max {
            return Err(too_large());
        }
        let mut hr = HashingReader::new(f, Some(max));
        let mut out = Vec::with_capacity(len as usize);
        if let Err(e) = hr.read_to_end(&mut out) {
            return Err(if hr.over_limit() {
                too_large()
            } else {
                io_err("reading", &path)(e)
            });
        }
        let (got, _) = hr.finish();
        if &got != d {
            return Err(ImageStoreError::DigestMismatch {
                expected: d.clone(),
                got,
            });
        }
        Ok(out)
    }

    fn layer_root(&self, chain_id: &Digest) -> PathBuf {
        self.root.join("layers").join(chain_id.hex())
    }

    /// `layers/<chain-hex>/diff`
    pub fn layer_dir(&self, chain_id: &Digest) -> PathBuf {
        self.layer_root(chain_id).join("diff")
    }

    /// `l/<first 16 hex>`, relative to [`root`](Self::root).
    pub fn short_name(chain_id: &Digest) -> String {
        format!("l/{}", &chain_id.hex()[..16])
    }

    /// A present layer's `layer.json`.
    pub fn layer_info(&self, chain_id: &Digest) -> Result<LayerRef, ImageStoreError> {
        read_json(&self.layer_root(chain_id).join("layer.json"))?
            .ok_or_else(|| ImageStoreError::NotFound(format!("layer {chain_id}")))
    }

    /// The unpacked layer of `chain_id`, made once: under the layer's flock, when absent,
    /// `fill` unpacks into a fresh private empty dir (in `tmp/`) and returns the bytes
    /// unpacked; on Ok the dir moves into place with `layer.json` and the short link, on
    /// Err it is removed. Returns the layer's diff dir.
    pub fn ensure_layer(
        &self,
        diff_id: &Digest,
        chain_id: &Digest,
        fill: &mut dyn FnMut(&Path) -> Result<u64, ImageStoreError>,
    ) -> Result<PathBuf, ImageStoreError> {
        let _lock = self.lock(&format!("layer-{}", chain_id.hex()))?;
        let dest = self.layer_root(chain_id);
        if !dest.exists() {
            let tmp = self.tmp_path();
            let res = self.fill_layer(&tmp, diff_id, chain_id, fill);
            if let Err(e) = res.and_then(|()| rename_or_remove(&tmp, &dest)) {
                remove_any(&tmp);
                return Err(e);
            }
        }
        self.link_layer(chain_id)?;
        Ok(self.layer_dir(chain_id))
    }

    /// `tmp/<x>/{diff/,layer.json}`, `diff` filled by `fill`.
    fn fill_layer(
        &self,
        tmp: &Path,
        diff_id: &Digest,
        chain_id: &Digest,
        fill: &mut dyn FnMut(&Path) -> Result<u64, ImageStoreError>,
    ) -> Result<(), ImageStoreError> {
        let diff = tmp.join("diff");
        for (d, mode) in [(tmp, 0o700), (&diff, 0o755)] {
            let res = fs::DirBuilder::new().mode(mode).create(d);
            res.map_err(io_err("creating", d))?;
        }
        let size = fill(&diff)?;
        let info = LayerRef {
            diff_id: diff_id.clone(),
            chain_id: chain_id.clone(),
            size,
        };
        let json = tmp.join("layer.json");
        let data = serde_json::to_vec(&info).expect("layer.json serialises");
        write_synced(&json, &data)
    }

    /// Make `l/<16 hex>` point at the layer's diff dir (atomically replaced when wrong).
    fn link_layer(&self, chain_id: &Digest) -> Result<(), ImageStoreError> {
        let link = self.root.join(Self::short_name(chain_id));
        let target = Path::new("../layers").join(chain_id.hex()).join("diff");
        if fs::read_link(&link).is_ok_and(|t| t == target) {
            return Ok(());
        }
        let tmp = self.tmp_path();
        std::os::unix::fs::symlink(&target, &tmp).map_err(io_err("linking", &tmp))?;
        rename_or_remove(&tmp, &link)
    }

    fn image_path(&self, id: &Digest) -> PathBuf {
        self.root.join("images").join(format!("{}.json", id.hex()))
    }

    fn repos_path(&self) -> PathBuf {
        self.root.join("repositories.json")
    }

    /// Write `data` to `path` by a synced temp file in `tmp/` and a rename.
    fn write_atomic(&self, path: &Path, data: &[u8]) -> Result<(), ImageStoreError> {
        let tmp = self.tmp_path();
        write_synced(&tmp, data)?;
        rename_or_remove(&tmp, path)
    }

    fn read_repos(&self) -> Result<Repositories, ImageStoreError> {
        Ok(read_json(&self.repos_path())?.unwrap_or_default())
    }

    fn write_repos(&self, repos: &Repositories) -> Result<(), ImageStoreError> {
        let data = serde_json::to_vec_pretty(repos).expect("repositories serialise");
        self.write_atomic(&self.repos_path(), &data)
    }

    /// The record as stored (tags as last written).
    fn read_record(&self, id: &Digest) -> Result<ImageRecord, ImageStoreError> {
        read_json(&self.image_path(id))?.ok_or_else(|| ImageStoreError::NotFound(id.to_string()))
    }

    fn write_record(&self, img: &ImageRecord) -> Result<(), ImageStoreError> {
        let data = serde_json::to_vec_pretty(img).expect("image records serialise");
        self.write_atomic(&self.image_path(&img.id), &data)
    }

    /// Set a record's tags and digests from the repositories.
    fn with_refs(mut img: ImageRecord, repos: &Repositories) -> ImageRecord {
        img.repo_tags.clear();
        img.repo_digests.clear();
        for (r, id) in &repos.refs {
            if *id == img.id {
                if r.contains('@') {
                    img.repo_digests.push(r.clone());
                } else {
                    img.repo_tags.push(r.clone());
                }
            }
        }
        img
    }

    /// Point `key` at `id` in `repos` and rewrite the records whose refs changed.
    fn set_ref(
        &self,
        repos: &mut Repositories,
        key: String,
        id: &Digest,
    ) -> Result<(), ImageStoreError> {
        if let Some(old) = repos.refs.insert(key, id.clone()) {
            if old != *id {
                self.rewrite_refs(&old, repos)?;
            }
        }
        Ok(())
    }

    fn rewrite_refs(&self, id: &Digest, repos: &Repositories) -> Result<(), ImageStoreError> {
        match self.read_record(id) {
            Ok(rec) => self.write_record(&Self::with_refs(rec, repos)),
            Err(ImageStoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Store an image record (atomically, under the store lock); its `repo_tags` and
    /// `repo_digests` are tagged onto it (moving off other images), tags it had stay.
    pub fn put_image(&self, img: &ImageRecord) -> Result<(), ImageStoreError> {
        let _lock = self.store_lock()?;
        let mut repos = self.read_repos()?;
        let keys = img
            .repo_tags
            .iter()
            .chain(&img.repo_digests)
            .map(|r| ref_key(r))
            .collect::<Result<Vec<_>, _>>()?;
        for key in keys {
            self.set_ref(&mut repos, key, &img.id)?;
        }
        self.write_record(&Self::with_refs(img.clone(), &repos))?;
        self.write_repos(&repos)
    }

    /// An image by ID.
    pub fn image(&self, id: &Digest) -> Result<ImageRecord, ImageStoreError> {
        let rec = self.read_record(id)?;
        Ok(Self::with_refs(rec, &self.read_repos()?))
    }

    fn ids(&self) -> Result<Vec<Digest>, ImageStoreError> {
        let dir = self.root.join("images");
        let entries = match fs::read_dir(&dir) {
            // A store nothing was ever loaded into: no images.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            r => r.map_err(io_err("reading", &dir))?,
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(io_err("reading", &dir))?;
            let name = e.file_name();
            let hex = name.to_str().and_then(|n| n.strip_suffix(".json"));
            if let Some(d) = hex.and_then(|h| Digest::from_hex(h).ok()) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// All images, newest first.
    pub fn images(&self) -> Result<Vec<ImageRecord>, ImageStoreError> {
        let repos = self.read_repos()?;
        let mut out = Vec::new();
        for id in self.ids()? {
            match self.read_record(&id) {
                Ok(r) => out.push(Self::with_refs(r, &repos)),
                // Removed since listed.
                Err(ImageStoreError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Point `reference` at image `id`; the tag moves off whatever image had it. The
    /// reference is normalised (`busybox` is `docker.io/library/busybox:latest`).
    pub fn tag(&self, reference: &str, id: &Digest) -> Result<(), ImageStoreError> {
        let key = ref_key(reference)?;
        let _lock = self.store_lock()?;
        let rec = self.read_record(id)?;
        let mut repos = self.read_repos()?;
        self.set_ref(&mut repos, key, id)?;
        self.write_record(&Self::with_refs(rec, &repos))?;
        self.write_repos(&repos)
    }

    /// Remove a tag; returns the image it pointed at.
    pub fn untag(&self, reference: &str) -> Result<Option<Digest>, ImageStoreError> {
        let key = ref_key(reference)?;
        let _lock = self.store_lock()?;
        let mut repos = self.read_repos()?;
        let Some(id) = repos.refs.remove(&key) else {
            return Ok(None);
        };
        self.rewrite_refs(&id, &repos)?;
        self.write_repos(&repos)?;
        Ok(Some(id))
    }

    /// An image by reference (normalised), by ID (`sha256:<hex>` or bare hex), or by a
    /// unique ID prefix.
    pub fn lookup(&self, reference_or_id: &str) -> Result<ImageRecord, ImageStoreError> {
        let s = reference_or_id;
        let repos = self.read_repos()?;
        if let Ok(key) = ref_key(s) {
            if let Some(id) = repos.refs.get(&key) {
                return Ok(Self::with_refs(self.read_record(id)?, &repos));
            }
        }
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        let is_hex = |h: &str| {
            (1..=64).contains(&h.len()) && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        if !is_hex(hex) {
            return Err(ImageStoreError::NotFound(s.into()));
        }
        let mut found = self.ids()?.into_iter().filter(|d| d.hex().starts_with(hex));
        match (found.next(), found.next()) {
            (Some(id), None) => Ok(Self::with_refs(self.read_record(&id)?, &repos)),
            (Some(_), Some(_)) => Err(ImageStoreError::Ambiguous(s.into())),
            (None, _) => Err(ImageStoreError::NotFound(s.into())),
        }
    }

    /// A stored blob that unpacks to the layer `chain_id` (from any image that has it).
    pub fn blob_of_layer(&self, chain_id: &Digest) -> Option<Digest> {
        self.ids().ok()?.into_iter().find_map(|id| {
            let img = self.read_record(&id).ok()?;
            let i = img.layers.iter().position(|l| &l.chain_id == chain_id)?;
            let blob = img
                .blobs
                .get(i)
                .filter(|_| img.blobs.len() == img.layers.len())?;
            self.has_blob(blob).then(|| blob.clone())
        })
    }

    /// Remove an image's record and its references; its blobs and layers stay until
    /// [`prune_unused`](Self::prune_unused).
    pub fn remove_image(&self, id: &Digest) -> Result<(), ImageStoreError> {
        let _lock = self.store_lock()?;
        let p = self.image_path(id);
        if !p.exists() {
            return Err(ImageStoreError::NotFound(id.to_string()));
        }
        let mut repos = self.read_repos()?;
        let before = repos.refs.len();
        repos.refs.retain(|_, v| v != id);
        if repos.refs.len() != before {
            self.write_repos(&repos)?;
        }
        fs::remove_file(&p).map_err(io_err("removing", &p))
    }

    /// Remove the layers (by chain ID) and blobs (manifest, config, `blobs`) no image
    /// needs, and dangling short links. Returns `layer sha256:…` / `blob sha256:…` lines.
    pub fn prune_unused(&self) -> Result<Vec<String>, ImageStoreError> {
        let p = self.root.join("locks").join("use");
        let _users = Lock::acquire(&p).map_err(io_err("locking", &p))?;
        let _lock = self.store_lock()?;
        let mut chains = std::collections::BTreeSet::new();
        let mut blobs = std::collections::BTreeSet::new();
        for id in self.ids()? {
            let img = self.read_record(&id)?;
            chains.extend(img.layers.iter().map(|l| l.chain_id.clone()));
            blobs.extend(img.manifest.iter().cloned());
            blobs.insert(img.config.clone());
            blobs.extend(img.blobs.iter().cloned());
        }
        let mut removed = Vec::new();
        for d in list_hex(&self.root.join("layers"))? {
            if chains.contains(&d) {
                continue;
            }
            let _l = self.lock(&format!("layer-{}", d.hex()))?;
            let src = self.layer_root(&d);
            let tmp = self.tmp_path();
            match fs::rename(&src, &tmp) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("renaming", &src)(e)),
            }
            let _ = fs::remove_file(self.root.join(Self::short_name(&d)));
            remove_any(&tmp);
            removed.push(format!("layer {d}"));
        }
        for d in list_hex(&self.root.join("blobs/sha256"))? {
            if blobs.contains(&d) {
                continue;
            }
            let _l = self.lock(&format!("blob-{}", d.hex()))?;
            let p = self.blob_path(&d);
            match fs::remove_file(&p) {
                Ok(()) => removed.push(format!("blob {d}")),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("removing", &p)(e)),
            }
        }
        // Links whose layer is gone (a crash between a layer's removal and its link's).
        let l = self.root.join("l");
        for e in fs::read_dir(&l).map_err(io_err("reading", &l))?.flatten() {
            if fs::metadata(e.path()).is_err() {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
