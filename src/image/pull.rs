//! `pull`: a reference's manifest (an index resolved to one platform), its config and its
//! layers from a registry into the store.
//!
//! Each layer is streamed once: the registry's body → size cap and digest (the blob's) →
//! a copy into the store's `tmp/` (kept as the blob, for `save`) → decompression → digest
//! (the config's diff_id) → the safe extractor, into a private dir that becomes the layer
//! only when both digests match. Layers go in parallel (`max-concurrent-downloads`), each
//! under its layer lock: parallel pulls of one image fetch each blob once, the others
//! wait and find it there. A failure anywhere leaves no image record and nothing in
//! `tmp/`; layers already complete and verified stay for the next pull (`image prune`
//! reclaims them if none comes).

use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};

use super::compress::Compression;
use super::digest::{chain_ids, Digest, HashingReader};
use super::progress::Progress;
use super::reference::Reference;
use super::registry::{RegistryConfig, RegistryError, Session, MANIFEST_MAX};
use super::store::{ImageRecord, ImageStore, ImageStoreError, LayerRef};
use super::unpack;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The Accept header of manifest requests.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
/// Attempts at one layer's stream (the connection dropping half-way).
const LAYER_ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] ImageStoreError),
    #[error("manifest {reference}: {why}")]
    Manifest { reference: String, why: String },
    #[error("no matching manifest for {0} in the manifest list entries")]
    NoPlatform(String),
    #[error("blob {digest}: {why}")]
    Blob { digest: String, why: String },
    #[error("invalid platform {0:?} (want os/arch[/variant])")]
    BadPlatform(String),
}

type Result<T> = std::result::Result<T, PullError>;

/// An image platform: `linux/amd64`, `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    /// This host's, in Go's names.
    pub fn host() -> Platform {
        let arch = crate::sys::go_arch();
        let variant = (arch == "arm").then_some("v7");
        Platform {
            os: "linux".into(),
            arch: arch.into(),
            variant: variant.map(Into::into),
        }
    }

    /// `os/arch[/variant]`, or `arch` alone (linux).
    pub fn parse(s: &str) -> Result<Platform> {
        let bad = || PullError::BadPlatform(s.into());
        let parts: Vec<&str> = s.split('/').collect();
        let ok =
            |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if parts.iter().any(|p| !ok(p)) {
            return Err(bad());
        }
        let (os, arch, variant) = match parts[..] {
            [a] => ("linux", a, None),
            [o, a] => (o, a, None),
            [o, a, v] => (o, a, Some(v)),
            _ => return Err(bad()),
        };
        let arch = match arch {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        };
        Ok(Platform {
            os: os.to_ascii_lowercase(),
            arch: arch.to_ascii_lowercase(),
            variant: variant.map(str::to_ascii_lowercase),
        })
    }

    /// Does an index entry's platform fit? A variant asked for must match (arm64's
    /// `v8` is its default); none asked for takes any.
    fn accepts(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        if os != self.os || arch != self.arch {
            return false;
        }
        let norm = |v: Option<&str>| match (arch, v) {
            ("arm64", None) => Some("v8".to_string()),
            (_, v) => v.map(str::to_string),
        };
        self.variant.is_none() || norm(variant) == norm(self.variant.as_deref())
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// What a pull did.
pub struct Pulled {
    pub record: ImageRecord,
    /// The digest the reference resolved to (an index's, when it was one): the
    /// `RepoDigests` entry.
    pub digest: Digest,
    /// True when the reference already named this image (docker's "up to date").
    pub up_to_date: bool,
}

/// The manifest kinds a registry may answer with.
enum Fetched {
    Index(Box<ImageIndex>),
    Manifest(Box<ImageManifest>, Vec<u8>),
}

/// Which of the four manifest media types `body` is: its `mediaType`, else the
/// Content-Type, else its shape. Schema 1 and anything else are refused.
fn classify(reference: &str, body: &[u8], content_type: Option<&str>) -> Result<Fetched> {
    let bad = |why: String| PullError::Manifest {
        reference: reference.into(),
        why,
    };
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("malformed: {e}")))?;
    if v.get("schemaVersion").and_then(|s| s.as_u64()) != Some(2) {
        return Err(bad(
            "unsupported schema version (only schema 2 images)".into()
        ));
    }
    let media = v
        .get("mediaType")
        .and_then(|m| m.as_str())
        .or(content_type)
        .unwrap_or(if v.get("manifests").is_some() {
            OCI_INDEX
        } else {
            OCI_MANIFEST
        });
    match media {
        OCI_INDEX | DOCKER_LIST => serde_json::from_slice(body)
            .map(|i| Fetched::Index(Box::new(i)))
            .map_err(|e| bad(format!("malformed index: {e}"))),
        OCI_MANIFEST | DOCKER_MANIFEST => serde_json::from_slice(body)
            .map(|m| Fetched::Manifest(Box::new(m), body.to_vec()))
            .map_err(|e| bad(format!("malformed manifest: {e}"))),
        m => Err(bad(format!("unsupported media type {m:?}"))),
    }
}

/// A manifest by tag or digest; a digest is checked against the bytes. Returns the
/// manifest and the digest of its bytes.
fn fetch_manifest(
    s: &Session,
    r: &Reference,
    by: &str,
    size: Option<u64>,
) -> Result<(Fetched, Digest)> {
    let (body, ct) = s.manifest(by, ACCEPT)?;
    let got = Digest::of(&body);
    let name = format!("{}@{by}", r.name());
    if by.starts_with("sha256:") && got.as_str() != by {
        return Err(PullError::Manifest {
            reference: name,
            why: format!("digest mismatch, got {got}"),
        });
    }
    if size.is_some_and(|n| n != body.len() as u64) {
        return Err(PullError::Manifest {
            reference: name,
            why: format!("{} bytes, the index says {}", body.len(), size.unwrap_or(0)),
        });
    }
    Ok((classify(&name, &body, ct.as_deref())?, got))
}

/// Pull `r` into `store`. The caller holds the store's use lock (shared).
pub fn pull(
    store: &ImageStore,
    cfg: &RegistryConfig,
    r: &Reference,
    platform: &Platform,
    progress: &dyn Progress,
) -> Result<Pulled> {
    let t0 = Instant::now();
    let session = Session::open(cfg, &r.domain, &r.path)?;
    let by = match (&r.digest, &r.tag) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.clone(),
        (None, None) => "latest".into(),
    };
    let (fetched, top) = fetch_manifest(&session, r, &by, None)?;
    progress.start(&by, &r.path);
    let (manifest, bytes, digest) = match fetched {
        Fetched::Manifest(m, b) => (m, b, top.clone()),
        Fetched::Index(idx) => {
            let entry = idx
                .manifests()
                .iter()
                .find(|d| {
                    d.platform().as_ref().is_some_and(|p| {
                        platform.accepts(
                            &p.os().to_string(),
                            &p.architecture().to_string(),
                            p.variant().as_deref(),
                        )
                    })
                })
                .ok_or_else(|| PullError::NoPlatform(platform.to_string()))?;
            let d = entry.digest().to_string();
            Digest::parse(&d).map_err(|e| PullError::Manifest {
                reference: r.to_string(),
                why: format!("index entry: {e}"),
            })?;
            match fetch_manifest(&session, r, &d, Some(entry.size()))? {
                (Fetched::Manifest(m, b), got) => (m, b, got),
                (Fetched::Index(_), _) => {
                    return Err(PullError::Manifest {
                        reference: format!("{}@{d}", r.name()),
                        why: "an index inside an index".into(),
                    })
                }
            }
        }
    };
    tracing::debug!(ms = t0.elapsed().as_millis() as u64, "pull: manifest");
    let config = descriptor_digest(manifest.config().digest().as_ref())?;
    let previous = store.lookup(&r.to_string()).ok().map(|i| i.id);
    // The image is here already: nothing to fetch (its layers are checked below).
    let have = store.image(&config).ok();
    let record = match have {
        Some(rec)
            if rec
                .layers
                .iter()
                .all(|l| store.layer_info(&l.chain_id).is_ok()) =>
        {
            rec
        }
        _ => fetch_image(store, cfg, &session, &manifest, &bytes, &digest, progress)?,
    };
    tracing::debug!(ms = t0.elapsed().as_millis() as u64, "pull: layers");
    // The tag (none when pulled by digest) and the repo digest.
    let mut rec = record;
    rec.repo_digests = vec![format!("{}@{top}", r.name())];
    rec.repo_tags = match (&r.tag, &r.digest) {
        (Some(_), None) => vec![r.to_string()],
        _ => vec![],
    };
    store.put_image(&rec)?;
    let record = store.image(&rec.id)?;
    Ok(Pulled {
        up_to_date: previous.as_ref() == Some(&record.id),
        record,
        digest: top,
    })
}

fn descriptor_digest(d: &str) -> Result<Digest> {
    Digest::parse(d).map_err(|e| PullError::Blob {
        digest: d.into(),
        why: e.to_string(),
    })
}

/// One layer to fetch.
struct Job {
    blob: Digest,
    size: u64,
    compression: Compression,
    diff_id: Digest,
    chain_id: Digest,
    short: String,
}

/// The config and the layers of `manifest`, then the image record (no tags).
fn fetch_image(
    store: &ImageStore,
    cfg: &RegistryConfig,
    session: &Session,
    manifest: &ImageManifest,
    manifest_bytes: &[u8],
    manifest_digest: &Digest,
    progress: &dyn Progress,
) -> Result<ImageRecord> {
    let desc = manifest.config();
    let config = descriptor_digest(desc.digest().as_ref())?;
    if desc.size() > MANIFEST_MAX {
        return Err(PullError::Blob {
            digest: config.to_string(),
            why: format!("config of {} bytes, more than {MANIFEST_MAX}", desc.size()),
        });
    }
    // Fetched only if the store lacks it, under its lock: parallel pulls fetch it once.
    let mut lazy = LazyBlob {
        session,
        digest: &config,
        body: None,
    };
    store.put_blob(&mut lazy, Some((&config, Some(desc.size()))))?;
    let cfg_json: ImageConfiguration =
        serde_json::from_slice(&store.read_blob(&config, MANIFEST_MAX)?).map_err(|e| {
            PullError::Blob {
                digest: config.to_string(),
                why: format!("malformed image config: {e}"),
            }
        })?;
    let diff_ids = cfg_json
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| descriptor_digest(d))
        .collect::<Result<Vec<_>>>()?;
    if diff_ids.len() != manifest.layers().len() {
        return Err(PullError::Blob {
            digest: config.to_string(),
            why: format!(
                "the config lists {} layers, the manifest {}",
                diff_ids.len(),
                manifest.layers().len()
            ),
        });
    }
    let chains = chain_ids(&diff_ids);
    let mut jobs = Vec::new();
    for ((l, diff_id), chain_id) in manifest.layers().iter().zip(&diff_ids).zip(&chains) {
        let blob = descriptor_digest(l.digest().as_ref())?;
        let media = l.media_type().to_string();
        let compression = Compression::from_media_type(&media).ok_or_else(|| PullError::Blob {
            digest: blob.to_string(),
            why: format!("unsupported layer media type {media:?}"),
        })?;
        jobs.push(Job {
            short: blob.hex()[..12].to_string(),
            blob,
            size: l.size(),
            compression,
            diff_id: diff_id.clone(),
            chain_id: chain_id.clone(),
        });
    }
    let mut todo = Vec::new();
    for j in &jobs {
        if store.layer_info(&j.chain_id).is_ok() {
            progress.exists(&j.short);
        } else {
            progress.layer(&j.short, j.size);
            todo.push(j);
        }
    }
    run_jobs(
        store,
        session,
        cfg.max_concurrent_downloads.max(1),
        &todo,
        progress,
    )?;
    store.put_blob(&mut &manifest_bytes[..], Some((manifest_digest, None)))?;
    let mut layers: Vec<LayerRef> = Vec::new();
    for j in &jobs {
        layers.push(store.layer_info(&j.chain_id)?);
    }
    let record = ImageRecord {
        id: config.clone(),
        manifest: Some(manifest_digest.clone()),
        config,
        size: layers.iter().map(|l| l.size).sum(),
        layers,
        repo_tags: vec![],
        repo_digests: vec![],
        created: cfg_json.created().clone().unwrap_or_default(),
        // A layer found in the store may have come with another blob (another
        // compression of the same tar): `save` reads any blob of the layer.
        blobs: jobs
            .iter()
            .map(|j| match store.has_blob(&j.blob) {
                true => j.blob.clone(),
                false => store
                    .blob_of_layer(&j.chain_id)
                    .unwrap_or_else(|| j.blob.clone()),
            })
            .collect(),
    };
    Ok(record)
}

/// Run the layer jobs on `workers` threads; the first error stops the others.
fn run_jobs(
    store: &ImageStore,
    session: &Session,
    workers: usize,
    jobs: &[&Job],
    progress: &dyn Progress,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let stop = Arc::new(AtomicBool::new(false));
    let first_err: Mutex<Option<PullError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers.min(jobs.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= jobs.len() || stop.load(Ordering::SeqCst) {
                    return;
                }
                if let Err(e) = fetch_layer(store, session, jobs[i], progress, &stop) {
                    stop.store(true, Ordering::SeqCst);
                    first_err.lock().unwrap().get_or_insert(e);
                    return;
                }
            });
        }
    });
    match first_err.into_inner().unwrap() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A reader that fetches the blob on its first read (so that `put_blob`, which reads
/// nothing when the blob is present, fetches nothing either).
struct LazyBlob<'a> {
    session: &'a Session,
    digest: &'a Digest,
    body: Option<Box<dyn Read + Send>>,
}

impl Read for LazyBlob<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.body.is_none() {
            let b = self.session.blob(self.digest).map_err(io::Error::other)?;
            self.body = Some(Box::new(b));
        }
        self.body.as_mut().expect("set above").read(buf)
    }
}

/// The network side of a layer stream: notes whether the network failed (worth another
/// attempt) and stops when another layer failed.
struct Net<'a, R> {
    inner: R,
    failed: &'a AtomicBool,
    stop: &'a AtomicBool,
    done: u64,
    last_report: u64,
    short: &'a str,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for Net<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("cancelled: another layer failed"));
        }
        let n = self.inner.read(buf).inspect_err(|_| {
            self.failed.store(true, Ordering::Relaxed);
        })?;
        self.done += n as u64;
        if self.done - self.last_report >= 256 << 10 || n == 0 {
            self.last_report = self.done;
            self.progress.bytes(&self.short.to_string(), self.done);
        }
        Ok(n)
    }
}

/// Adds the time spent in its reads (and so in everything below it) to `ns`.
struct Timed<'a, R> {
    inner: R,
    ns: &'a AtomicU64,
}

impl<R: Read> Read for Timed<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let t = Instant::now();
        let r = self.inner.read(buf);
        self.ns
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        r
    }
}

/// Where a layer's time went: each figure is the time in the reads at one level of the
/// stream, everything below included (`--log-level debug` prints the differences).
#[derive(Default)]
struct Clocks {
    /// The registry's body.
    net: AtomicU64,
    /// + the blob's sha256.
    hashed: AtomicU64,
    /// + the copy into the blob's temp file.
    teed: AtomicU64,
    /// + decompression.
    plain: AtomicU64,
    /// + the diff_id's sha256 (the rest of the layer's time is the extractor's).
    verified: AtomicU64,
}

impl Clocks {
    fn log(&self, layer: &Digest, total: std::time::Duration) {
        let ms = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e6;
        let (n, h, t, p, v) = (
            ms(&self.net),
            ms(&self.hashed),
            ms(&self.teed),
            ms(&self.plain),
            ms(&self.verified),
        );
        let total = total.as_secs_f64() * 1e3;
        let r = |v: f64| v.max(0.0).round() as u64;
        tracing::debug!(
            %layer,
            total_ms = r(total),
            download_ms = r(n),
            verify_ms = r((h - n) + (v - p)),
            store_blob_ms = r(t - h),
            decompress_ms = r(p - t),
            create_files_ms = r(total - v),
            "pull: layer"
        );
    }
}

/// Copies what is read through it into `out` (the blob's temp file).
struct Tee<R, W> {
    inner: R,
    out: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

fn fetch_layer(
    store: &ImageStore,
    session: &Session,
    job: &Job,
    progress: &dyn Progress,
    stop: &AtomicBool,
) -> Result<()> {
    let clocks = Clocks::default();
    let mut fill = |dir: &Path| -> std::result::Result<u64, ImageStoreError> {
        let mut attempt = 1;
        loop {
            let failed = AtomicBool::new(false);
            match stream_layer(store, session, job, progress, stop, &failed, dir, &clocks) {
                Ok(n) => return Ok(n),
                Err(e) if failed.load(Ordering::Relaxed) && attempt < LAYER_ATTEMPTS => {
                    tracing::debug!(layer = %job.blob, error = %e, attempt, "retrying the layer");
                    attempt += 1;
                    empty_dir(dir).map_err(|e| fill_err(job, e))?;
                }
                Err(e) => return Err(fill_err(job, e)),
            }
        }
    };
    let t = Instant::now();
    store.ensure_layer(&job.diff_id, &job.chain_id, &mut fill)?;
    clocks.log(&job.blob, t.elapsed());
    progress.complete(&job.short);
    Ok(())
}

fn fill_err(job: &Job, e: impl std::error::Error + Send + Sync + 'static) -> ImageStoreError {
    ImageStoreError::Fill {
        chain_id: job.chain_id.clone(),
        source: Box::new(e),
    }
}

/// Remove everything inside `dir` (a layer's private fill dir, before another attempt).
fn empty_dir(dir: &Path) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        match std::fs::symlink_metadata(&p)?.is_dir() {
            true => std::fs::remove_dir_all(&p)?,
            false => std::fs::remove_file(&p)?,
        }
    }
    Ok(())
}

/// One attempt at a layer: fetch, verify, unpack into `dir`; the blob is kept.
#[allow(clippy::too_many_arguments)]
fn stream_layer(
    store: &ImageStore,
    session: &Session,
    job: &Job,
    progress: &dyn Progress,
    stop: &AtomicBool,
    failed: &AtomicBool,
    dir: &Path,
    clocks: &Clocks,
) -> Result<u64> {
    let blob_err = |why: String| PullError::Blob {
        digest: job.blob.to_string(),
        why,
    };
    let body = session.blob(&job.blob)?;
    let body = Timed {
        inner: body,
        ns: &clocks.net,
    };
    let net = Net {
        inner: body,
        failed,
        stop,
        done: 0,
        last_report: 0,
        short: &job.short,
        progress,
    };
    // The blob's own digest and its descriptor's size, enforced as it streams.
    let mut compressed = HashingReader::new(net, Some(job.size));
    let mut tmp = store.tmp_blob()?;
    let unpacked = {
        let hashed = Timed {
            inner: &mut compressed,
            ns: &clocks.hashed,
        };
        let tee = Timed {
            inner: Tee {
                inner: hashed,
                out: &mut tmp,
            },
            ns: &clocks.teed,
        };
        let stream = job
            .compression
            .decoder(BufReader::with_capacity(256 << 10, tee))
            .map_err(|e| blob_err(e.to_string()))?;
        let stream = Timed {
            inner: stream,
            ns: &clocks.plain,
        };
        let plain = HashingReader::new(stream, None);
        let mut plain = Timed {
            inner: plain,
            ns: &clocks.verified,
        };
        let res = unpack::unpack(&mut plain, dir);
        // The tar's end blocks and padding count towards the diff_id too.
        let res = res.and_then(|stats| {
            io::copy(&mut plain, &mut io::sink())
                .map(|_| stats)
                .map_err(|source| unpack::UnpackError::Archive {
                    after: "the end".into(),
                    source,
                })
        });
        match res {
            Ok(stats) => Ok((stats, plain.inner.finish().0)),
            Err(e) => Err(e),
        }
    };
    if compressed.over_limit() {
        return Err(blob_err(format!(
            "longer than the {} bytes its descriptor says",
            job.size
        )));
    }
    let (stats, diff) = unpacked.map_err(|e| blob_err(e.to_string()))?;
    // Whatever the compressed stream holds past the end of its data.
    io::copy(
        &mut Tee {
            inner: &mut compressed,
            out: &mut tmp,
        },
        &mut io::sink(),
    )
    .map_err(|e| blob_err(e.to_string()))?;
    if compressed.over_limit() {
        return Err(blob_err(format!(
            "longer than the {} bytes its descriptor says",
            job.size
        )));
    }
    let (got, n) = compressed.finish();
    if n != job.size {
        return Err(blob_err(format!(
            "{n} bytes, its descriptor says {}",
            job.size
        )));
    }
    if got != job.blob {
        return Err(blob_err(format!("digest mismatch, got {got}")));
    }
    if diff != job.diff_id {
        return Err(blob_err(format!(
            "uncompressed digest {diff}, the config's diff_id is {}",
            job.diff_id
        )));
    }
    store.commit_tmp_blob(tmp, &job.blob, n)?;
    Ok(stats.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_match_as_docker_s() {
        let p = Platform::parse("linux/arm64").unwrap();
        assert_eq!(p.to_string(), "linux/arm64");
        assert!(p.accepts("linux", "arm64", Some("v8")));
        assert!(p.accepts("linux", "arm64", None));
        assert!(!p.accepts("linux", "amd64", None));
        let v8 = Platform::parse("linux/arm64/v8").unwrap();
        assert!(v8.accepts("linux", "arm64", None));
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(v7.accepts("linux", "arm", Some("v7")));
        assert!(!v7.accepts("linux", "arm", Some("v6")));
        assert_eq!(Platform::parse("amd64").unwrap().to_string(), "linux/amd64");
        assert_eq!(Platform::parse("linux/x86_64").unwrap().arch, "amd64");
        for bad in ["", "linux/", "a/b/c/d", "linux/amd 64", "../x"] {
            assert!(Platform::parse(bad).is_err(), "{bad:?}");
        }
        if cfg!(target_arch = "x86_64") {
            assert_eq!(Platform::host().to_string(), "linux/amd64");
        }
    }

    #[test]
    fn manifests_are_classified_and_schema_1_refused() {
        let idx = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(matches!(classify("r", idx, None), Ok(Fetched::Index(_))));
        let list = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            classify("r", list, Some(DOCKER_LIST)),
            Ok(Fetched::Index(_))
        ));
        let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}"#;
        assert!(matches!(classify("r", m, None), Ok(Fetched::Manifest(..))));
        let v1 = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        let e = classify("r", v1, None).err().unwrap().to_string();
        assert!(e.contains("schema version"), "{e}");
        let odd = br#"{"schemaVersion":2,"mediaType":"text/html"}"#;
        let e = classify("r", odd, None).err().unwrap().to_string();
        assert!(e.contains("unsupported media type"), "{e}");
        let e = classify("r", b"<html>", None).err().unwrap().to_string();
        assert!(e.contains("malformed"), "{e}");
    }
}
