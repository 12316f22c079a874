//! Unit tests of the store (temp directories, real files).

use super::*;

#[test]
fn stat_lines_give_state_and_start_time() {
    let line = "4242 (a (b) c) Z 1 4242 4242 0 -1 4194560 75 0 0 0 0 0 0 0 20 0 1 0 \
                3005540 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
    assert_eq!(parse_stat(line), Some((b'Z', 3005540)));
    assert_eq!(parse_stat("12 (x) S 1"), None);
    assert_eq!(parse_stat("garbage"), None);
    let me = std::process::id() as i32;
    let start = process_start_time(me).unwrap();
    assert!(process_alive(me, start));
    assert!(!process_alive(me, start + 1));
}

#[test]
fn stat_lines_give_the_parent_of_a_live_process() {
    let line = |state: &str| {
        format!("4242 (a (b) c) {state} 77 4242 4242 0 -1 4194560 75 0 0 0 0 0 0 0 20 0 1 0 1 0")
    };
    assert_eq!(parse_parent(&line("S")), Some(77));
    assert_eq!(parse_parent(&line("R")), Some(77));
    assert_eq!(parse_parent(&line("Z")), None);
    assert_eq!(parse_parent("garbage"), None);
    let me = std::process::id() as i32;
    assert_eq!(process_parent(me), Some(nix::unistd::getppid().as_raw()));
}
use crate::config::{ContainerConfig, HostFacts, RawOptions};

fn tmp_store() -> (Store, PathBuf) {
    let base = std::env::temp_dir().join(format!("ocishim-store-{}", new_id()));
    let s = Store::new(base.join("run"), base.join("lib"));
    s.init().unwrap();
    (s, base)
}

fn cfg() -> ContainerConfig {
    RawOptions {
        rootfs: Some("/tmp/r".into()),
        args: vec!["true".into()],
        ..Default::default()
    }
    .into_config(&HostFacts::detect())
    .unwrap()
}

#[test]
fn ids_are_64_hex() {
    let a = new_id();
    assert_eq!(a.len(), 64);
    assert!(a
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_ne!(a, new_id());
}

#[test]
fn a_record_written_into_the_reserve() {
    let (s, base) = tmp_store();
    let id = new_id();
    fs::create_dir_all(s.container_dir(&id)).unwrap();
    let mut rec = Record::new(&id, "r", &cfg(), "t".into());
    s.write(&rec).unwrap();
    let spare = s.reserve_path(&id);
    // Too small a spare: refused as a full disk would be, the record unchanged.
    fs::write(&spare, [0u8; 16]).unwrap();
    rec.state.set_exited(3, "f".into());
    let e = s.write_into(&rec, &spare).unwrap_err();
    assert!(
        matches!(&e, StoreError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC)),
        "{e}"
    );
    assert_eq!(s.read(&id).unwrap().state.exit_code, 0);
    fs::write(&spare, vec![0u8; 64 * 1024]).unwrap();
    s.write_into(&rec, &spare).unwrap();
    assert_eq!(s.read(&id).unwrap(), rec, "no zeros left after the record");
    assert!(!spare.exists(), "the spare became the record");
    fs::remove_dir_all(base).unwrap();
}

#[test]
fn records_names_and_lookup() {
    let (s, base) = tmp_store();
    let c = cfg();
    let mut ids = Vec::new();
    for (i, name) in ["web", "db"].iter().enumerate() {
        let id = format!("{:x}{}", i + 10, &new_id()[1..]);
        s.reserve_name(name, &id).unwrap();
        fs::create_dir_all(s.container_dir(&id)).unwrap();
        s.write(&Record::new(&id, name, &c, format!("2026-01-0{i}")))
            .unwrap();
        ids.push(id);
    }
    // The brief view reads the fields pause and resume need from a full record.
    let mut rec = s.read(&ids[0]).unwrap();
    rec.state.set_running(42, "now".into());
    rec.state.set_paused(true);
    rec.ocishim.monitor_pid = 7;
    rec.ocishim.monitor_start_time = 99;
    rec.ocishim.runtime_root = Some("/rt".into());
    s.write(&rec).unwrap();
    let b: crate::record::Brief = s.read_as(&ids[0]).unwrap();
    assert_eq!(
        (b.id.as_str(), b.state.status.as_str()),
        (ids[0].as_str(), "paused")
    );
    assert!(b.state.paused);
    assert_eq!(
        (b.ocishim.monitor_pid, b.ocishim.monitor_start_time),
        (7, 99)
    );
    assert_eq!(b.ocishim.runtime, rec.ocishim.runtime);
    assert_eq!(b.ocishim.runtime_root.as_deref(), Some("/rt"));
    assert_eq!(b.ocishim.cgroups_path, rec.ocishim.cgroups_path);
    assert_eq!(s.resolve("web").unwrap(), ids[0]);
    assert_eq!(s.resolve("/db").unwrap(), ids[1]);
    assert_eq!(s.resolve(&ids[1]).unwrap(), ids[1]);
    assert_eq!(s.resolve(&ids[0][..5]).unwrap(), ids[0]);
    assert!(matches!(s.resolve("nosuch"), Err(StoreError::NotFound(_))));
    assert!(matches!(
        s.reserve_name("web", "x"),
        Err(StoreError::NameInUse { .. })
    ));
    // Ambiguous prefix: both IDs start with a hex digit... make one share a prefix.
    let twin = format!("{}{}", &ids[0][..4], &new_id()[4..]);
    fs::create_dir_all(s.container_dir(&twin)).unwrap();
    s.write(&Record::new(&twin, "twin", &c, "x".into()))
        .unwrap();
    assert!(matches!(
        s.resolve(&ids[0][..4]),
        Err(StoreError::Ambiguous(_))
    ));
    let rec = s
        .update(&ids[0], |r| r.state.set_exited(3, "t".into()))
        .unwrap();
    assert_eq!(s.read(&ids[0]).unwrap().state.exit_code, 3);
    s.remove(&rec).unwrap();
    assert!(matches!(s.resolve("web"), Err(StoreError::NotFound(_))));
    s.reserve_name("web", "new").unwrap();
    assert_eq!(s.list().unwrap().len(), 2);
    fs::remove_dir_all(base).unwrap();
}

#[test]
fn lock_is_exclusive_until_dropped() {
    let (s, base) = tmp_store();
    let try_lock = || {
        let f = File::open(s.lock_path("x")).unwrap();
        Flock::lock(f, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| e)
    };
    let held = s.lock("x").unwrap();
    assert_eq!(try_lock().unwrap_err(), Errno::EWOULDBLOCK);
    drop(held);
    drop(try_lock().unwrap());
    fs::remove_dir_all(base).unwrap();
}

#[test]
fn names_listing_and_the_listed_view() {
    let (s, base) = tmp_store();
    let c = cfg();
    // 300 names (the threaded path), every third without a record yet.
    let mut recorded = Vec::new();
    for i in 0..300 {
        let id = new_id();
        let name = format!("wsk{i:03}");
        s.reserve_name(&name, &id).unwrap();
        if i % 3 != 0 {
            fs::create_dir_all(s.container_dir(&id)).unwrap();
            s.write(&Record::new(&id, &name, &c, "2026-01-01".into()))
                .unwrap();
            recorded.push(id);
        }
    }
    s.reserve_name("other", &new_id()).unwrap();
    // A name file of an older ocishim: the ID as a regular file's content.
    let old = new_id();
    fs::write(s.names_dir().join("wsk-old"), &old).unwrap();
    fs::create_dir_all(s.container_dir(&old)).unwrap();
    s.write(&Record::new(&old, "wsk-old", &c, "2026-01-01".into()))
        .unwrap();
    recorded.push(old.clone());
    assert_eq!(s.resolve("wsk-old").unwrap(), old);
    let wsk = |n: &str| n.starts_with("wsk");
    let mut got = s.ids_named(&wsk, true).unwrap();
    got.sort();
    recorded.sort();
    assert_eq!(got, recorded);
    assert_eq!(s.ids_named(&wsk, false).unwrap().len(), 301);
    // The listed view carries what ps shows and refresh reads, the same as the record.
    let full = s.read(&recorded[0]).unwrap();
    let listed = Record::listed(&fs::read(s.record_path(&recorded[0])).unwrap()).unwrap();
    assert_eq!(
        (
            &listed.id,
            &listed.name,
            &listed.created,
            &listed.path,
            &listed.args
        ),
        (&full.id, &full.name, &full.created, &full.path, &full.args)
    );
    assert_eq!(listed.state, full.state);
    assert_eq!(listed.config.image, full.config.image);
    assert_eq!(
        listed.host_config.network_mode,
        full.host_config.network_mode
    );
    assert_eq!(listed.ocishim.cgroups_path, full.ocishim.cgroups_path);
    assert!(listed.ocishim.stored_config.is_none() && full.ocishim.config().is_some());
    let _ = fs::remove_dir_all(base);
}

#[test]
fn the_alive_lock_is_held_while_its_holder_keeps_it() {
    let (s, base) = tmp_store();
    let id = new_id();
    fs::create_dir_all(s.bundle_dir(&id)).unwrap();
    assert_eq!(s.alive_lock_held(&id), None);
    let held = s.hold_alive(&id).unwrap();
    assert_eq!(s.alive_lock_held(&id), Some(true));
    drop(held);
    assert_eq!(s.alive_lock_held(&id), Some(false));
    let _ = fs::remove_dir_all(base);
}

/// A name entry as a create by `by` would have reserved it for `id`.
fn name_by(s: &Store, name: &str, id: &str, by: crate::record::Creator) {
    let target = format!("{id} {} {}", by.pid, by.start_time);
    std::os::unix::fs::symlink(target, s.names_dir().join(name)).unwrap();
}

/// A process that is gone: this one's PID with another start time.
fn gone() -> crate::record::Creator {
    let me = crate::record::Creator::this_process();
    crate::record::Creator {
        start_time: me.start_time + 1,
        ..me
    }
}

#[test]
fn a_name_whose_create_is_under_way_is_in_use() {
    let (s, base) = tmp_store();
    let (a, b) = (new_id(), new_id());
    // Reserved by this process (alive), no record yet: the create is between its name and
    // its record, and the name is its own.
    s.reserve_name("busy", &a).unwrap();
    match s.reserve_name("busy", &b) {
        Err(StoreError::NameInUse { id, .. }) => assert_eq!(id, a),
        other => panic!("expected the name in use, got {other:?}"),
    }
    assert_eq!(s.names_without_record(), vec![]);
    assert!(!s.release_orphan_name("busy").unwrap());
    fs::remove_dir_all(base).unwrap();
}

#[test]
fn a_name_left_by_a_killed_create_is_taken_over_with_its_directory() {
    let (s, base) = tmp_store();
    let (a, b) = (new_id(), new_id());
    // Killed between its directory and its record (a temp file of the record's write).
    name_by(&s, "ghost", &a, gone());
    fs::create_dir_all(s.container_dir(&a)).unwrap();
    fs::write(s.container_dir(&a).join("config.v2.tmp7"), "{").unwrap();
    assert_eq!(s.names_without_record(), vec![("ghost".into(), a.clone())]);
    s.reserve_name("ghost", &b).unwrap();
    assert!(
        !s.container_dir(&a).exists(),
        "the killed create's directory stays"
    );
    assert_eq!(
        name_owner(&read_name(&s.names_dir().join("ghost")).unwrap()).0,
        b
    );
    // A recorded container's name is never an orphan, whoever reserved it.
    let c = new_id();
    name_by(&s, "kept", &c, gone());
    fs::create_dir_all(s.container_dir(&c)).unwrap();
    s.write(&Record::new(&c, "kept", &cfg(), "x".into()))
        .unwrap();
    assert!(!s.release_orphan_name("kept").unwrap());
    assert!(matches!(
        s.reserve_name("kept", &b),
        Err(StoreError::NameInUse { .. })
    ));
    fs::remove_dir_all(base).unwrap();
}

#[test]
fn an_orphan_name_with_a_garbage_owner_removes_no_directory() {
    let (s, base) = tmp_store();
    let a = new_id();
    fs::create_dir_all(s.container_dir(&a)).unwrap();
    s.write(&Record::new(&a, "a", &cfg(), "x".into())).unwrap();
    for (name, owner) in [("g1", "x"), ("g2", ".."), ("g3", "../names")] {
        name_by(&s, name, owner, gone());
        assert!(s.release_orphan_name(name).unwrap(), "{name}");
    }
    assert!(s.containers_dir().is_dir() && s.names_dir().is_dir());
    assert!(s.record_path(&a).exists());
    fs::remove_dir_all(base).unwrap();
}

#[test]
fn generated_names_vary() {
    let id = new_id();
    assert_ne!(generated_name(&id, 0), generated_name(&id, 1));
    assert!(crate::config::validate_name(&generated_name(&id, 3)).is_ok());
}

#[test]
fn own_start_time() {
    let me = std::process::id() as i32;
    let t = process_start_time(me).unwrap();
    assert!(process_alive(me, t));
    assert!(!process_alive(me, t + 1));
}

/// Whether the name entry exists (a symlink to no file: `exists` would follow it).
fn has_name(s: &Store, name: &str) -> bool {
    fs::symlink_metadata(s.names_dir().join(name)).is_ok()
}

#[test]
fn names_left_by_killed_creates_are_listed_and_removed_by_id_or_name() {
    let (s, base) = tmp_store();
    let (a, b, live) = (new_id(), new_id(), new_id());
    // Killed before its directory (a), and between its directory and its record (b).
    name_by(&s, "wsk_a", &a, gone());
    name_by(&s, "wsk_b", &b, gone());
    fs::create_dir_all(s.container_dir(&b)).unwrap();
    // Under way: reserved by this process, which lives.
    s.reserve_name("wsk_live", &live).unwrap();
    let wsk = |n: &str| n.starts_with("wsk");
    let mut got = s.ids_named(&wsk, true).unwrap();
    got.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(got, want, "the orphans listed, the create under way not");
    assert_eq!(
        s.remove_unrecorded(&a).unwrap(),
        Unrecorded::Removed(a.clone())
    );
    assert_eq!(
        s.remove_unrecorded("wsk_b").unwrap(),
        Unrecorded::Removed(b.clone())
    );
    assert!(!s.container_dir(&b).exists());
    for q in [live.as_str(), "wsk_live"] {
        assert_eq!(
            s.remove_unrecorded(q).unwrap(),
            Unrecorded::Creating {
                id: live.clone(),
                pid: std::process::id() as i32
            }
        );
    }
    assert!(has_name(&s, "wsk_live"));
    // Again: nothing left of them.
    assert_eq!(s.remove_unrecorded(&a).unwrap(), Unrecorded::Nothing);
    assert_eq!(s.remove_unrecorded("wsk_b").unwrap(), Unrecorded::Nothing);
    assert_eq!(s.remove_unrecorded("nope").unwrap(), Unrecorded::Nothing);
    assert_eq!(s.remove_unrecorded("..").unwrap(), Unrecorded::Nothing);
    assert_eq!(s.ids_named(&wsk, true).unwrap(), Vec::<String>::new());
    fs::remove_dir_all(base).unwrap();
}

#[test]
fn a_removal_killed_after_its_rename_is_finished_by_id_or_name() {
    let (s, base) = tmp_store();
    let c = cfg();
    let (a, b, live) = (new_id(), new_id(), new_id());
    let trash = |id: &str, by: crate::record::Creator| {
        let d = s
            .containers_dir()
            .join(format!("{REMOVING}{id}.{}.{}", by.pid, by.start_time));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("config.v2.json"), "{}").unwrap();
        d
    };
    // Killed after the rename, before the name's release (a), and after it (b).
    name_by(&s, "wsk_a", &a, gone());
    let ta = trash(&a, gone());
    let tb = trash(&b, gone());
    fs::create_dir_all(s.bundle_dir(&b)).unwrap();
    // Under way: the removing process lives; its name is not an orphan yet.
    name_by(&s, "wsk_live", &live, gone());
    let tl = trash(&live, crate::record::Creator::this_process());
    let wsk = |n: &str| n.starts_with("wsk");
    assert_eq!(s.ids_named(&wsk, true).unwrap(), vec![a.clone()]);
    assert_eq!(s.names_without_record(), vec![("wsk_a".into(), a.clone())]);
    assert_eq!(
        s.remove_unrecorded("wsk_a").unwrap(),
        Unrecorded::Removed(a.clone())
    );
    assert!(!ta.exists() && !has_name(&s, "wsk_a"));
    assert_eq!(
        s.remove_unrecorded(&b).unwrap(),
        Unrecorded::Removed(b.clone())
    );
    assert!(!tb.exists() && !s.bundle_dir(&b).exists());
    assert!(!s.release_orphan_name("wsk_live").unwrap());
    assert!(tl.exists());
    // And a real removal: nothing of it left.
    fs::create_dir_all(s.container_dir(&a)).unwrap();
    s.reserve_name("wsk_a", &a).unwrap();
    let rec = Record::new(&a, "wsk_a", &c, "x".into());
    s.write(&rec).unwrap();
    s.remove(&rec).unwrap();
    assert!(!s.container_dir(&a).exists() && !has_name(&s, "wsk_a"));
    assert!(s.removals_of(&a).is_empty());
    fs::remove_dir_all(base).unwrap();
}
