//! Image operations for the CLI: load, save, import, list, inspect, tag, remove, prune,
//! and the image a new container runs. They sit here, beside the containers, because
//! removal and pruning must know which images containers use.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;

use super::Context;
use crate::config::{apply_image, ContainerConfig, PullPolicy};
use crate::error::Error;
use crate::image::archive::{self, Loaded};
use crate::image::digest::Digest;
use crate::image::progress::{self, Progress};
use crate::image::pull::{Platform, Pulled};
use crate::image::reference::Reference;
use crate::image::registry;
use crate::image::store::{ImageRecord, ImageStore, ImageStoreError, MANIFEST_MAX};
use crate::image::ImageError;
use crate::settings::Settings;
use crate::store::Lock;

/// The image a container runs, resolved before anything of the container exists.
pub struct RunImage {
    pub record: ImageRecord,
    /// Its unpacked layers, topmost first.
    pub layers: Vec<PathBuf>,
    /// Their short names relative to the store's root (the overlay's lowers), topmost first.
    pub lowers: Vec<String>,
}

/// The store's directories, made on first use.
fn store(ctx: &Context) -> Result<&ImageStore, Error> {
    ctx.images.init().map_err(ImageError::from)?;
    Ok(&ctx.images)
}

/// The store's use lock (shared), for a create from an image. A store that does not exist
/// yet is made first: a parallel create may be making it for its pull this moment, and
/// this create's own pull would make it anyway.
pub fn use_lock(ctx: &Context) -> Result<Lock, Error> {
    match ctx.images.use_lock() {
        Err(ImageStoreError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            store(ctx)?.use_lock()
        }
        r => r,
    }
    .map_err(|e| ImageError::from(e).into())
}

/// The image named `query` (a reference, an ID or a unique ID prefix).
pub fn lookup(ctx: &Context, query: &str) -> Result<ImageRecord, Error> {
    Ok(ctx.images.lookup(query).map_err(ImageError::from)?)
}

/// docker's spelling of a reference in messages: `busybox:latest`.
fn familiar(query: &str) -> String {
    Reference::parse(query)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| query.to_string())
}

/// The image config of `img`.
pub fn image_config(ctx: &Context, img: &ImageRecord) -> Result<ImageConfiguration, Error> {
    let data = ctx
        .images
        .read_blob(&img.config, MANIFEST_MAX)
        .map_err(ImageError::from)?;
    serde_json::from_slice(&data)
        .map_err(|e| ImageError::Config(img.config.to_string(), e.to_string()).into())
}

/// `pull`: REF from its registry into the store, under the store's use lock. Registry
/// settings come from the settings file (`--config`, or the default one).
pub fn pull(
    ctx: &Context,
    reference: &str,
    platform: Option<&str>,
    progress: &dyn Progress,
) -> Result<Pulled, Error> {
    let r = Reference::parse(reference)
        .map_err(|e| ImageError::BadReference(reference.into(), e.to_string()))?;
    let platform = match platform {
        Some(p) => Platform::parse(p).map_err(ImageError::Platform)?,
        None => Platform::host(),
    };
    let settings = Settings::load(ctx.settings.as_deref())?;
    let store = store(ctx)?;
    let _using = store.use_lock().map_err(ImageError::from)?;
    let pulled = crate::image::pull::pull(store, &settings.registry(), &r, &platform, progress)
        .map_err(|source| ImageError::Pull {
            reference: r.to_string(),
            source,
        })?;
    Ok(pulled)
}

/// A registry as `login`/`logout` name it: `host[:port]`, without scheme or path; Docker
/// Hub's names all as `docker.io`.
fn registry_host(server: &str) -> Result<String, Error> {
    let s = server.trim();
    let s = s.split_once("://").map_or(s, |(_, rest)| rest);
    let host = s.split('/').next().unwrap_or("").to_ascii_lowercase();
    if host.is_empty() || host.contains(['@', ' ', '?', '#']) {
        return Err(Error::Usage(format!("invalid registry {server:?}")));
    }
    Ok(match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        _ => host,
    })
}

/// `login`: check the credentials against the registry, then store them.
pub fn login(ctx: &Context, server: &str, user: &str, password: &str) -> Result<(), Error> {
    let host = registry_host(server)?;
    let settings = Settings::load(ctx.settings.as_deref())?;
    registry::check_login(&settings.registry(), &host, user, password).map_err(|source| {
        ImageError::Login {
            host: host.clone(),
            source,
        }
    })?;
    registry::auth::store_login(&host, user, password).map_err(ImageError::from)?;
    Ok(())
}

/// `logout`: the host as shown, and whether there were credentials to remove.
pub fn logout(server: &str) -> Result<(String, bool), Error> {
    let host = registry_host(server)?;
    let removed = registry::auth::remove_login(&host).map_err(ImageError::from)?;
    Ok((registry::auth::config_key(&host), removed))
}

/// docker's closing lines of a pull.
pub fn pull_status(p: &Pulled, reference: &str) -> [String; 2] {
    let status = if p.up_to_date {
        "Image is up to date for"
    } else {
        "Downloaded newer image for"
    };
    [
        format!("Digest: {}", p.digest),
        format!("Status: {status} {}", familiar(reference)),
    ]
}

/// The image `cfg.image` names, pulled as `--pull` says: `never` only looks in the store;
/// `missing` pulls when the store lacks it (docker's "Unable to find image ... locally",
/// then the pull's lines, on stderr); `always` pulls, and when that fails falls back to
/// the stored image for a tag other than `latest` (OpenWhisk's rule: a pinned tag may
/// run offline, `latest` must be fresh).
fn resolve_for_run(ctx: &Context, cfg: &ContainerConfig) -> Result<ImageRecord, Error> {
    let local = || {
        lookup(ctx, &cfg.image).map_err(|e| match e {
            Error::Image(ImageError::Store(ImageStoreError::NotFound(_))) => {
                ImageError::NotFound(familiar(&cfg.image)).into()
            }
            e => e,
        })
    };
    let from_registry = |r: &Reference| -> Result<ImageRecord, Error> {
        let progress = progress::for_output(false, progress::Sink::Stderr);
        let p = pull(ctx, &r.to_string(), cfg.platform.as_deref(), &*progress)?;
        for line in pull_status(&p, &cfg.image) {
            progress.line(&line);
        }
        Ok(p.record)
    };
    let reference = Reference::parse(&cfg.image).ok();
    match (cfg.pull, reference) {
        (PullPolicy::Never, _) | (_, None) => local(),
        (PullPolicy::Missing, Some(r)) => match local() {
            Err(Error::Image(ImageError::NotFound(name))) => {
                eprintln!("Unable to find image '{name}' locally");
                from_registry(&r)
            }
            found => found,
        },
        (PullPolicy::Always, Some(r)) => match from_registry(&r) {
            Ok(rec) => Ok(rec),
            Err(e) if r.digest.is_none() && r.tag.as_deref() != Some("latest") => match local() {
                Ok(rec) => {
                    eprintln!(
                        "ocishim: pulling {}: {e}; using the local image",
                        familiar(&cfg.image)
                    );
                    Ok(rec)
                }
                Err(_) => Err(e),
            },
            Err(e) => Err(e),
        },
    }
}

/// Resolve the image of a container made from IMAGE and merge its config into `cfg`.
pub fn for_run(
    ctx: &Context,
    cfg: &mut ContainerConfig,
    entrypoint_given: bool,
) -> Result<RunImage, Error> {
    let record = resolve_for_run(ctx, cfg)?;
    let config = image_config(ctx, &record)?;
    apply_image(cfg, &config, entrypoint_given)?;
    cfg.image_id = Some(record.id.to_string());
    Ok(run_image(ctx, record))
}

/// The image a container was made from (by the ID its config recorded).
pub fn image_of(ctx: &Context, cfg: &ContainerConfig) -> Result<RunImage, Error> {
    let id = cfg.image_id.as_deref().unwrap_or(&cfg.image);
    let record = ctx.images.lookup(id).map_err(ImageError::from)?;
    Ok(run_image(ctx, record))
}

fn run_image(ctx: &Context, record: ImageRecord) -> RunImage {
    let layers = record
        .layers
        .iter()
        .rev()
        .map(|l| ctx.images.layer_dir(&l.chain_id))
        .collect();
    let lowers = record
        .layers
        .iter()
        .rev()
        .map(|l| ImageStore::short_name(&l.chain_id))
        .collect();
    RunImage {
        record,
        layers,
        lowers,
    }
}

/// `load` from a file, a directory (an OCI layout) or standard input.
pub fn load(ctx: &Context, input: Option<&Path>) -> Result<Vec<Loaded>, Error> {
    let store = store(ctx)?;
    let _using = store.use_lock().map_err(ImageError::from)?;
    let loaded = match input {
        Some(p) if p.is_dir() => archive::load_dir(store, p),
        Some(p) => {
            let mut f = std::fs::File::open(p)
                .map_err(crate::error::io_err(format!("opening {}", p.display())))?;
            archive::load(store, &mut f)
        }
        None => archive::load(store, &mut std::io::stdin().lock()),
    };
    Ok(loaded.map_err(ImageError::from)?)
}

/// `save`: the images (by name or ID) as one docker-archive.
pub fn save(ctx: &Context, queries: &[String], out: &mut dyn Write) -> Result<(), Error> {
    let mut images = Vec::new();
    for q in queries {
        let img = lookup(ctx, q)?;
        // A name saves that name; an ID saves every tag the image has.
        let tags = match Reference::parse(q) {
            Ok(r) if img.repo_tags.contains(&r.to_string()) => vec![r.familiar()],
            _ => img
                .repo_tags
                .iter()
                .filter_map(|t| Reference::parse(t).ok().map(|r| r.familiar()))
                .collect(),
        };
        images.push((img, tags));
    }
    archive::save(&ctx.images, &images, out).map_err(ImageError::from)?;
    Ok(())
}

/// `import`: a plain rootfs tarball as an image of one layer; returns its ID.
pub fn import(
    ctx: &Context,
    input: &mut dyn Read,
    reference: Option<&str>,
) -> Result<Digest, Error> {
    let store = store(ctx)?;
    let _using = store.use_lock().map_err(ImageError::from)?;
    let img = archive::import(store, input).map_err(ImageError::from)?;
    if let Some(r) = reference {
        tag_id(ctx, &img.id, r)?;
    }
    Ok(img.id)
}

fn tag_id(ctx: &Context, id: &Digest, target: &str) -> Result<(), Error> {
    let r = Reference::parse(target)
        .map_err(|e| ImageError::BadReference(target.into(), e.to_string()))?;
    if r.digest.is_some() {
        return Err(ImageError::BadReference(
            target.into(),
            "refusing to create a tag with a digest reference".into(),
        )
        .into());
    }
    ctx.images
        .tag(&r.to_string(), id)
        .map_err(ImageError::from)?;
    Ok(())
}

/// `tag SOURCE TARGET`.
pub fn tag(ctx: &Context, source: &str, target: &str) -> Result<(), Error> {
    let img = lookup(ctx, source)?;
    tag_id(ctx, &img.id, target)
}

/// Every image, newest first.
pub fn list(ctx: &Context) -> Result<Vec<ImageRecord>, Error> {
    Ok(ctx.images.images().map_err(ImageError::from)?)
}

/// `image inspect`: docker's shape.
pub fn inspect(ctx: &Context, query: &str) -> Result<serde_json::Value, Error> {
    let img = lookup(ctx, query)?;
    let config = image_config(ctx, &img)?;
    let c = serde_json::to_value(&config).unwrap_or_default();
    let familiar = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|t| {
                Reference::parse(t)
                    .map(|r| r.familiar())
                    .unwrap_or_else(|_| t.clone())
            })
            .collect()
    };
    Ok(serde_json::json!({
        "Id": img.id.to_string(),
        "RepoTags": familiar(&img.repo_tags),
        "RepoDigests": familiar(&img.repo_digests),
        "Parent": "",
        "Comment": "",
        "Created": img.created,
        "Config": c.get("config").cloned().unwrap_or(serde_json::Value::Null),
        "Architecture": c.get("architecture").cloned().unwrap_or_default(),
        "Os": c.get("os").cloned().unwrap_or_default(),
        "Size": img.size,
        "RootFS": {
            "Type": "layers",
            "Layers": img.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>(),
        },
    }))
}

/// The IDs of the images containers use (any state: a stopped container can start again).
fn in_use(ctx: &Context) -> Result<Vec<(String, String)>, Error> {
    Ok(ctx
        .store
        .list()?
        .into_iter()
        .filter_map(|r| {
            let id = r.ocishim.config()?.image_id?;
            Some((id, r.id))
        })
        .collect())
}

/// `rmi`: a name is untagged, and the image deleted once it has no name left; an ID
/// deletes the image (with -f also when it has several names). An image a container uses
/// is refused unless -f; with -f it is only untagged (its layers stay for the container).
/// Returns docker's lines (`Untagged: ...`, `Deleted: ...`).
pub fn remove(ctx: &Context, query: &str, force: bool) -> Result<Vec<String>, Error> {
    let img = lookup(ctx, query)?;
    let users: Vec<String> = in_use(ctx)?
        .into_iter()
        .filter(|(id, _)| *id == img.id.to_string())
        .map(|(_, c)| c)
        .collect();
    let by_name = Reference::parse(query)
        .map(|r| img.repo_tags.contains(&r.to_string()))
        .unwrap_or(false);
    // A name of several only goes: the image stays, in use or not.
    let last_name = !by_name || img.repo_tags.len() <= 1;
    if !users.is_empty() && !force && last_name {
        return Err(ImageError::InUse {
            reference: familiar(query),
            container: users[0][..12].to_string(),
            image: img.id.hex()[..12].to_string(),
        }
        .into());
    }
    if !by_name && img.repo_tags.len() > 1 && !force {
        return Err(ImageError::ManyNames(img.id.hex()[..12].to_string()).into());
    }
    let mut lines = Vec::new();
    let untag: Vec<String> = if by_name {
        vec![Reference::parse(query).expect("parsed above").to_string()]
    } else {
        img.repo_tags.clone()
    };
    for t in &untag {
        ctx.images.untag(t).map_err(ImageError::from)?;
        lines.push(format!("Untagged: {}", familiar(t)));
    }
    let left = ctx.images.image(&img.id).map_err(ImageError::from)?;
    if left.repo_tags.is_empty() && users.is_empty() {
        ctx.images.remove_image(&img.id).map_err(ImageError::from)?;
        lines.push(format!("Deleted: {}", img.id));
        for r in ctx.images.prune_unused().map_err(ImageError::from)? {
            tracing::debug!("removed {r}");
        }
    }
    Ok(lines)
}

/// `image prune`: images no container uses, untagged ones only unless `all`. Returns
/// the IDs deleted and the bytes reclaimed.
pub fn prune(ctx: &Context, all: bool) -> Result<(Vec<String>, u64), Error> {
    let used: HashSet<String> = in_use(ctx)?.into_iter().map(|(id, _)| id).collect();
    let mut deleted = Vec::new();
    let mut bytes = 0;
    for img in list(ctx)? {
        if used.contains(&img.id.to_string()) || (!all && !img.repo_tags.is_empty()) {
            continue;
        }
        for t in &img.repo_tags {
            ctx.images.untag(t).map_err(ImageError::from)?;
        }
        ctx.images.remove_image(&img.id).map_err(ImageError::from)?;
        bytes += img.size;
        deleted.push(img.id.to_string());
    }
    if !deleted.is_empty() {
        for r in ctx.images.prune_unused().map_err(ImageError::from)? {
            tracing::debug!("removed {r}");
        }
    }
    Ok((deleted, bytes))
}
