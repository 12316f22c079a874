use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use super::*;

fn store() -> (tempfile::TempDir, ImageStore) {
    let t = tempfile::tempdir().unwrap();
    let s = ImageStore::new(t.path().join("image"));
    s.init().unwrap();
    (t, s)
}

fn tmp_entries(s: &ImageStore) -> Vec<String> {
    fs::read_dir(s.root().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// A digest with a chosen start (IDs need not be real hashes here).
fn id(prefix: &str) -> Digest {
    Digest::from_hex(&format!("{prefix}{}", "0".repeat(64 - prefix.len()))).unwrap()
}

fn record(id: Digest, tags: &[&str], layers: &[&Digest], blobs: &[&Digest]) -> ImageRecord {
    ImageRecord {
        config: id.clone(),
        id,
        manifest: None,
        layers: layers
            .iter()
            .map(|c| LayerRef {
                diff_id: (*c).clone(),
                chain_id: (*c).clone(),
                size: 1,
            })
            .collect(),
        repo_tags: tags.iter().map(|t| t.to_string()).collect(),
        repo_digests: vec![],
        created: "2024-01-01T00:00:00Z".into(),
        size: 0,
        blobs: blobs.iter().map(|b| (*b).clone()).collect(),
    }
}

/// A reader that counts, in a shared counter, the readers that were read at all.
struct Counting<'a> {
    data: &'a [u8],
    started: bool,
    readers: Arc<AtomicUsize>,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.started {
            self.started = true;
            self.readers.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
        }
        self.data.read(buf)
    }
}

#[test]
fn init_sets_modes_and_is_idempotent() {
    let (_t, s) = store();
    fs::set_permissions(s.root().join("layers"), fs::Permissions::from_mode(0o755)).unwrap();
    s.init().unwrap();
    assert_eq!(mode(s.root()), 0o711);
    for d in [
        "blobs",
        "blobs/sha256",
        "layers",
        "l",
        "images",
        "locks",
        "tmp",
    ] {
        assert_eq!(mode(&s.root().join(d)), 0o700, "{d}");
    }
}

#[test]
fn init_removes_tmp_entries_of_dead_writers() {
    let (_t, s) = store();
    let tmp = s.root().join("tmp");
    // Above any pid_max: no such process.
    fs::create_dir(tmp.join("2000000000-dead")).unwrap();
    fs::write(tmp.join("2000000000-dead/f"), b"x").unwrap();
    fs::write(tmp.join("junk"), b"x").unwrap();
    let mine = format!("{}-live", std::process::id());
    fs::write(tmp.join(&mine), b"x").unwrap();
    s.init().unwrap();
    assert_eq!(tmp_entries(&s), vec![mine]);
}

#[test]
fn put_blob_verifies_digest_and_size() {
    let (_t, s) = store();
    let data = b"hello blob";
    let d = Digest::of(data);
    let got = s
        .put_blob(&mut &data[..], Some((&d, Some(data.len() as u64))))
        .unwrap();
    assert_eq!(got, (d.clone(), data.len() as u64));
    assert!(s.has_blob(&d));
    assert_eq!(fs::read(s.blob_path(&d)).unwrap(), data);
    assert_eq!(s.read_blob(&d, MANIFEST_MAX).unwrap(), data);
    assert!(tmp_entries(&s).is_empty());

    // Without an expected digest: computed.
    let (d2, n) = s.put_blob(&mut &b"other"[..], None).unwrap();
    assert_eq!((d2.clone(), n), (Digest::of(b"other"), 5));
    assert!(s.has_blob(&d2));
    // Present already: nothing is read.
    let readers = Arc::new(AtomicUsize::new(0));
    let mut r = Counting {
        data: b"other",
        started: false,
        readers: readers.clone(),
    };
    assert_eq!(s.put_blob(&mut r, Some((&d2, Some(5)))).unwrap().1, 5);
    assert_eq!(readers.load(Ordering::SeqCst), 0);
    assert!(tmp_entries(&s).is_empty());
}

#[test]
fn put_blob_mismatch_leaves_nothing() {
    let (_t, s) = store();
    let want = Digest::of(b"expected");
    let err = s
        .put_blob(&mut &b"something else"[..], Some((&want, None)))
        .unwrap_err();
    assert!(
        matches!(&err, ImageStoreError::DigestMismatch { expected, .. } if *expected == want),
        "{err}"
    );
    assert!(err.to_string().contains(want.as_str()));
    assert!(!s.has_blob(&want));
    assert!(!s.has_blob(&Digest::of(b"something else")));
    assert!(tmp_entries(&s).is_empty());
}

#[test]
fn put_blob_size_is_capped() {
    let (_t, s) = store();
    let data = b"0123456789";
    let d = Digest::of(data);
    // Longer than the descriptor says: cut off and refused.
    let err = s.put_blob(&mut &data[..], Some((&d, Some(4)))).unwrap_err();
    assert!(
        matches!(err, ImageStoreError::TooLarge { limit: 4, .. }),
        "{err}"
    );
    // Shorter: refused.
    let err = s
        .put_blob(&mut &data[..], Some((&d, Some(11))))
        .unwrap_err();
    assert!(
        matches!(
            err,
            ImageStoreError::SizeMismatch {
                got: 10,
                want: 11,
                ..
            }
        ),
        "{err}"
    );
    assert!(!s.has_blob(&d));
    assert!(tmp_entries(&s).is_empty());
    // Present, but the descriptor's size is wrong: refused.
    s.put_blob(&mut &data[..], Some((&d, Some(10)))).unwrap();
    assert!(s.put_blob(&mut &data[..], Some((&d, Some(9)))).is_err());
}

#[test]
fn concurrent_put_blob_writes_once() {
    let (_t, s) = store();
    let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    let d = Digest::of(&data);
    let readers = Arc::new(AtomicUsize::new(0));
    let barrier = Barrier::new(8);
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                sc.spawn(|| {
                    let mut r = Counting {
                        data: &data,
                        started: false,
                        readers: readers.clone(),
                    };
                    barrier.wait();
                    s.put_blob(&mut r, Some((&d, Some(data.len() as u64))))
                        .unwrap()
                })
            })
            .collect();
        for h in hs {
            assert_eq!(h.join().unwrap(), (d.clone(), data.len() as u64));
        }
    });
    assert_eq!(readers.load(Ordering::SeqCst), 1);
    assert_eq!(s.read_blob(&d, 1 << 20).unwrap(), data);
    assert!(tmp_entries(&s).is_empty());

    // Unknown digest: each writer hashes its copy, one lands.
    std::thread::scope(|sc| {
        for _ in 0..8 {
            sc.spawn(|| {
                barrier.wait();
                assert_eq!(
                    s.put_blob(&mut &b"dup"[..], None).unwrap().0,
                    Digest::of(b"dup")
                );
            });
        }
    });
    assert!(s.has_blob(&Digest::of(b"dup")));
    assert!(tmp_entries(&s).is_empty());
}

#[test]
fn read_blob_refuses_oversize_corrupt_and_missing() {
    let (_t, s) = store();
    let data = b"{\"schemaVersion\":2}";
    let (d, _) = s.put_blob(&mut &data[..], None).unwrap();
    assert!(matches!(
        s.read_blob(&d, 5),
        Err(ImageStoreError::TooLarge { limit: 5, .. })
    ));
    let mut bytes = fs::read(s.blob_path(&d)).unwrap();
    bytes[3] ^= 1;
    fs::write(s.blob_path(&d), &bytes).unwrap();
    assert!(matches!(
        s.read_blob(&d, MANIFEST_MAX),
        Err(ImageStoreError::DigestMismatch { .. })
    ));
    assert!(matches!(
        s.read_blob(&Digest::of(b"nope"), MANIFEST_MAX),
        Err(ImageStoreError::BlobNotFound(_))
    ));
}

#[test]
fn ensure_layer_fills_once_across_threads() {
    let (_t, s) = store();
    let diff = Digest::of(b"diff");
    let chain = Digest::of(b"chain");
    let fills = AtomicUsize::new(0);
    let barrier = Barrier::new(8);
    let dirs: Vec<PathBuf> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                sc.spawn(|| {
                    barrier.wait();
                    s.ensure_layer(&diff, &chain, &mut |dir| {
                        fills.fetch_add(1, Ordering::SeqCst);
                        assert_eq!(fs::read_dir(dir).unwrap().count(), 0);
                        assert!(dir.starts_with(s.root().join("tmp")));
                        std::thread::sleep(Duration::from_millis(50));
                        fs::write(dir.join("hello"), b"world").unwrap();
                        Ok(5)
                    })
                    .unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(fills.load(Ordering::SeqCst), 1);
    assert!(dirs.iter().all(|d| *d == s.layer_dir(&chain)));
    assert_eq!(
        fs::read(s.layer_dir(&chain).join("hello")).unwrap(),
        b"world"
    );
    let info = s.layer_info(&chain).unwrap();
    assert_eq!(
        (info.diff_id, info.chain_id.clone(), info.size),
        (diff, chain.clone(), 5)
    );
    let json = fs::read_to_string(s.layer_dir(&chain).with_file_name("layer.json")).unwrap();
    assert!(
        json.contains("\"DiffID\"") && json.contains("\"ChainID\"") && json.contains("\"Size\":5")
    );
    // The short link resolves to the diff dir, relative to the root.
    let short = ImageStore::short_name(&chain);
    assert_eq!(short, format!("l/{}", &chain.hex()[..16]));
    assert_eq!(
        fs::canonicalize(s.root().join(&short)).unwrap(),
        fs::canonicalize(s.layer_dir(&chain)).unwrap()
    );
    assert!(fs::read_link(s.root().join(&short)).unwrap().is_relative());
    assert!(tmp_entries(&s).is_empty());
}

#[test]
fn failed_fill_leaves_nothing_and_is_retried() {
    let (_t, s) = store();
    let chain = Digest::of(b"c");
    let err = s
        .ensure_layer(&chain, &chain, &mut |dir| {
            fs::create_dir(dir.join("half")).unwrap();
            fs::write(dir.join("half/file"), b"x").unwrap();
            Err(ImageStoreError::Fill {
                chain_id: chain.clone(),
                source: "truncated tar".into(),
            })
        })
        .unwrap_err();
    assert!(err.to_string().contains("truncated tar"), "{err}");
    assert!(!s.layer_dir(&chain).exists());
    assert!(!s.root().join("layers").join(chain.hex()).exists());
    assert!(fs::symlink_metadata(s.root().join(ImageStore::short_name(&chain))).is_err());
    assert!(tmp_entries(&s).is_empty());
    let mut calls = 0;
    let dir = s
        .ensure_layer(&chain, &chain, &mut |_| {
            calls += 1;
            Ok(0)
        })
        .unwrap();
    assert_eq!(calls, 1);
    assert!(dir.is_dir());
}

#[test]
fn records_lookup_by_ref_id_and_prefix() {
    let (_t, s) = store();
    let a = id("aa11");
    let b = id("aa22");
    s.put_image(&record(a.clone(), &["busybox:latest"], &[], &[]))
        .unwrap();
    s.put_image(&record(b.clone(), &["quay.io/x/y:1"], &[], &[]))
        .unwrap();
    let look = |q: &str| s.lookup(q).map(|r| r.id);
    for q in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        "index.docker.io/library/busybox",
        a.as_str(),
        a.hex(),
        "aa1",
        "sha256:aa11",
    ] {
        assert_eq!(look(q).unwrap(), a, "{q}");
    }
    assert_eq!(look("quay.io/x/y:1").unwrap(), b);
    assert_eq!(look("aa2").unwrap(), b);
    assert!(matches!(look("aa"), Err(ImageStoreError::Ambiguous(_))));
    assert!(matches!(look("a"), Err(ImageStoreError::Ambiguous(_))));
    for q in ["busybox:1", "ff", "quay.io/x/y", "Nope!", ""] {
        assert!(matches!(look(q), Err(ImageStoreError::NotFound(_))), "{q}");
    }
    let rec = s.lookup("busybox").unwrap();
    assert_eq!(rec.repo_tags, vec!["docker.io/library/busybox:latest"]);
    assert_eq!(s.images().unwrap().len(), 2);
    // The record on disk: PascalCase.
    let raw =
        fs::read_to_string(s.root().join("images").join(format!("{}.json", a.hex()))).unwrap();
    assert!(
        raw.contains("\"Id\"") && raw.contains("\"RepoTags\""),
        "{raw}"
    );
    let repos = fs::read_to_string(s.root().join("repositories.json")).unwrap();
    assert!(repos.contains("\"Refs\""), "{repos}");
}

#[test]
fn images_are_listed_newest_first() {
    let (_t, s) = store();
    for (i, created) in [
        "2024-01-01T00:00:00Z",
        "2025-01-01T00:00:00Z",
        "2023-01-01T00:00:00Z",
    ]
    .iter()
    .enumerate()
    {
        let mut r = record(id(&format!("{i}")), &[], &[], &[]);
        r.created = created.to_string();
        s.put_image(&r).unwrap();
    }
    let order: Vec<String> = s.images().unwrap().into_iter().map(|r| r.created).collect();
    assert_eq!(
        order,
        [
            "2025-01-01T00:00:00Z",
            "2024-01-01T00:00:00Z",
            "2023-01-01T00:00:00Z"
        ]
    );
}

#[test]
fn tag_moves_between_images_and_untag() {
    let (_t, s) = store();
    let a = id("a");
    let b = id("b");
    s.put_image(&record(a.clone(), &["app:1"], &[], &[]))
        .unwrap();
    s.put_image(&record(b.clone(), &[], &[], &[])).unwrap();
    s.tag("app", &a).unwrap();
    assert_eq!(
        s.image(&a).unwrap().repo_tags,
        vec!["docker.io/library/app:1", "docker.io/library/app:latest"]
    );
    s.tag("docker.io/library/app:latest", &b).unwrap();
    assert_eq!(
        s.image(&a).unwrap().repo_tags,
        vec!["docker.io/library/app:1"]
    );
    assert_eq!(
        s.image(&b).unwrap().repo_tags,
        vec!["docker.io/library/app:latest"]
    );
    // Both records on disk were rewritten, not only the reads.
    assert_eq!(
        s.read_record(&a).unwrap().repo_tags,
        vec!["docker.io/library/app:1"]
    );
    assert_eq!(s.read_record(&b).unwrap().repo_tags.len(), 1);
    assert_eq!(s.lookup("app").unwrap().id, b);
    // A record put again with a tag takes it over too.
    s.put_image(&record(a.clone(), &["app:latest"], &[], &[]))
        .unwrap();
    assert_eq!(s.lookup("app:latest").unwrap().id, a);
    assert!(s.image(&b).unwrap().repo_tags.is_empty());
    assert_eq!(s.image(&a).unwrap().repo_tags.len(), 2);

    assert_eq!(s.untag("app:1").unwrap(), Some(a.clone()));
    assert_eq!(s.untag("app:1").unwrap(), None);
    assert_eq!(
        s.image(&a).unwrap().repo_tags,
        vec!["docker.io/library/app:latest"]
    );
    assert!(matches!(
        s.lookup("app:1"),
        Err(ImageStoreError::NotFound(_))
    ));
    assert!(matches!(
        s.tag("app:2", &id("c")),
        Err(ImageStoreError::NotFound(_))
    ));
    assert!(matches!(
        s.tag("Bad:ref", &a),
        Err(ImageStoreError::Reference { .. })
    ));
    // Digest references go to RepoDigests.
    let d = Digest::of(b"manifest");
    s.tag(&format!("app@{d}"), &a).unwrap();
    assert_eq!(
        s.image(&a).unwrap().repo_digests,
        vec![format!("docker.io/library/app@{d}")]
    );
}

#[test]
fn remove_and_prune_keep_what_others_share() {
    let (_t, s) = store();
    let blob = |b: &[u8]| s.put_blob(&mut &b[..], None).unwrap().0;
    let (cfg_a, cfg_b) = (blob(b"config a"), blob(b"config b"));
    let (man_a, man_b) = (blob(b"manifest a"), blob(b"manifest b"));
    let (l1, l2, l3) = (blob(b"layer 1"), blob(b"layer 2"), blob(b"layer 3"));
    let orphan = blob(b"nobody's");
    for l in [&l1, &l2, &l3] {
        s.ensure_layer(l, l, &mut |_| Ok(0)).unwrap();
    }
    let mut a = record(cfg_a.clone(), &["a"], &[&l1, &l2], &[&l1, &l2]);
    a.manifest = Some(man_a.clone());
    let mut b = record(cfg_b.clone(), &["b"], &[&l1, &l3], &[&l1, &l3]);
    b.manifest = Some(man_b.clone());
    s.put_image(&a).unwrap();
    s.put_image(&b).unwrap();

    // Everything in use but the orphan.
    assert_eq!(s.prune_unused().unwrap(), vec![format!("blob {orphan}")]);

    s.remove_image(&cfg_a).unwrap();
    assert!(matches!(s.lookup("a"), Err(ImageStoreError::NotFound(_))));
    assert!(matches!(
        s.remove_image(&cfg_a),
        Err(ImageStoreError::NotFound(_))
    ));
    // Blobs and layers stay until the prune.
    assert!(s.has_blob(&cfg_a) && s.layer_dir(&l2).is_dir());
    let mut removed = s.prune_unused().unwrap();
    removed.sort();
    let mut want = vec![
        format!("layer {l2}"),
        format!("blob {cfg_a}"),
        format!("blob {man_a}"),
        format!("blob {l2}"),
    ];
    want.sort();
    assert_eq!(removed, want);
    assert!(!s.layer_dir(&l2).exists());
    assert!(fs::symlink_metadata(s.root().join(ImageStore::short_name(&l2))).is_err());
    for d in [&cfg_b, &man_b, &l1, &l3] {
        assert!(s.has_blob(d), "{d}");
    }
    for l in [&l1, &l3] {
        assert!(s.layer_dir(l).is_dir());
        assert!(s.root().join(ImageStore::short_name(l)).is_dir());
    }
    assert_eq!(s.lookup("b").unwrap().id, cfg_b);
    assert!(s.prune_unused().unwrap().is_empty());
    assert!(tmp_entries(&s).is_empty());
}

#[test]
fn a_store_never_made_lists_no_image() {
    let d = tempfile::tempdir().unwrap();
    let s = ImageStore::new(d.path().join("image"));
    assert!(s.images().unwrap().is_empty());
    assert!(matches!(
        s.lookup("busybox"),
        Err(ImageStoreError::NotFound(_))
    ));
}

#[test]
fn prune_waits_for_users_of_the_store() {
    let (_d, s) = store();
    let s = Arc::new(s);
    let using = s.use_lock().unwrap();
    // Shared: a second user gets in at once.
    drop(s.use_lock().unwrap());
    let done = Arc::new(AtomicUsize::new(0));
    let t = {
        let (s, done) = (s.clone(), done.clone());
        std::thread::spawn(move || {
            s.prune_unused().unwrap();
            done.store(1, Ordering::SeqCst);
        })
    };
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(
        done.load(Ordering::SeqCst),
        0,
        "prune ran while the store was in use"
    );
    drop(using);
    t.join().unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 1);
}
