//! The image store's file helpers: checked copies, JSON reads, renames from `tmp/`.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{io_err, ImageStoreError};
use crate::image::digest::{Digest, HashingReader};

/// The digests named by a directory's 64-hex entries.
pub(super) fn list_hex(dir: &Path) -> Result<Vec<Digest>, ImageStoreError> {
    let entries = fs::read_dir(dir).map_err(io_err("reading", dir))?;
    Ok(entries
        .flatten()
        .filter_map(|e| Digest::from_hex(e.file_name().to_str()?).ok())
        .collect())
}

/// Copy `r` to a new file `tmp`; its digest and size, checked against `want`.
pub(super) fn copy_checked(
    tmp: &Path,
    r: &mut dyn Read,
    want: Option<&Digest>,
    limit: Option<u64>,
) -> Result<(Digest, u64), ImageStoreError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(io_err("creating", tmp))?;
    let mut hr = HashingReader::new(r, limit);
    if let Err(e) = io::copy(&mut hr, &mut f) {
        return Err(match (want, limit) {
            (Some(d), Some(limit)) if hr.over_limit() => ImageStoreError::TooLarge {
                digest: d.clone(),
                limit,
            },
            // io::copy does not say which side failed: most likely the stream.
            _ => ImageStoreError::Read {
                digest: want.map_or_else(|| "(unknown digest)".into(), Digest::to_string),
                source: e,
            },
        });
    }
    f.sync_all().map_err(io_err("writing", tmp))?;
    let (got, size) = hr.finish();
    let Some(want) = want else {
        return Ok((got, size));
    };
    let err = if let Some(s) = limit.filter(|&s| s != size) {
        ImageStoreError::SizeMismatch {
            digest: want.clone(),
            got: size,
            want: s,
        }
    } else if got != *want {
        ImageStoreError::DigestMismatch {
            expected: want.clone(),
            got,
        }
    } else {
        return Ok((got, size));
    };
    Err(err)
}

/// A JSON file's content; None when there is no such file.
pub(super) fn read_json<T: serde::de::DeserializeOwned>(
    p: &Path,
) -> Result<Option<T>, ImageStoreError> {
    match fs::read(p) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|source| ImageStoreError::Corrupt {
                path: p.into(),
                source,
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("reading", p)(e)),
    }
}

/// Rename `tmp` to `dest`; on failure remove `tmp`.
pub(super) fn rename_or_remove(tmp: &Path, dest: &Path) -> Result<(), ImageStoreError> {
    fs::rename(tmp, dest).map_err(|e| {
        remove_any(tmp);
        io_err("renaming into", dest)(e)
    })
}

/// Create `path` (0600) with `data`, synced.
pub(super) fn write_synced(path: &Path, data: &[u8]) -> Result<(), ImageStoreError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("creating", path))?;
    let res = f.write_all(data).and_then(|()| f.sync_all());
    res.map_err(|e| {
        let _ = fs::remove_file(path);
        io_err("writing", path)(e)
    })
}

/// Remove a file, link or directory tree, ignoring errors.
pub(super) fn remove_any(p: &Path) {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            let _ = fs::remove_dir_all(p);
        }
        Ok(_) => {
            let _ = fs::remove_file(p);
        }
        Err(_) => {}
    }
}
