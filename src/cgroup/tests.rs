//! The limits plan and read-back rules (pure).

use super::*;
use crate::config::Resources;

fn res(f: impl FnOnce(&mut Resources)) -> Resources {
    let mut r = Resources::default();
    f(&mut r);
    r
}

fn files(ws: &[Write]) -> Vec<(&str, &str)> {
    ws.iter().map(|w| (w.file, w.value.as_str())).collect()
}

#[test]
fn v1_and_v2_translation_table() {
    let m = 256i64 << 20;
    let r = res(|r| {
        r.memory = m;
        r.memory_swap = 2 * m;
        r.memory_reservation = 128 << 20;
        r.cpu_shares = 512;
        r.nano_cpus = 500_000_000;
        r.cpuset_cpus = "0".into();
        r.pids_limit = Some(64);
    });
    assert_eq!(
        files(&plan(&r, Version::V1, true).unwrap()),
        vec![
            ("memory.limit_in_bytes", "268435456"),
            ("memory.memsw.limit_in_bytes", "536870912"),
            ("memory.soft_limit_in_bytes", "134217728"),
            ("cpu.shares", "512"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_quota_us", "50000"),
            ("cpuset.cpus", "0"),
            ("pids.max", "64"),
        ]
    );
    assert_eq!(
        files(&plan(&r, Version::V2, true).unwrap()),
        vec![
            ("memory.max", "268435456"),
            ("memory.swap.max", "268435456"),
            ("memory.low", "134217728"),
            ("cpu.weight", "20"),
            ("cpu.max", "50000 100000"),
            ("cpuset.cpus", "0"),
            ("pids.max", "64"),
        ]
    );
}

#[test]
fn swap_rules() {
    let m = 64i64 << 20;
    // equal: no swap
    let r = res(|r| {
        r.memory = m;
        r.memory_swap = m;
    });
    assert!(files(&plan(&r, Version::V2, true).unwrap()).contains(&("memory.swap.max", "0")));
    assert!(files(&plan(&r, Version::V1, true).unwrap())
        .contains(&("memory.memsw.limit_in_bytes", "67108864")));
    // -1: unlimited
    let r = res(|r| {
        r.memory = m;
        r.memory_swap = -1;
    });
    assert!(files(&plan(&r, Version::V2, true).unwrap()).contains(&("memory.swap.max", "max")));
    assert!(files(&plan(&r, Version::V1, true).unwrap())
        .contains(&("memory.memsw.limit_in_bytes", "-1")));
    // --memory alone: 2x on v1, swap = memory on v2
    let r = res(|r| r.memory = m);
    assert!(files(&plan(&r, Version::V1, true).unwrap())
        .contains(&("memory.memsw.limit_in_bytes", "134217728")));
    assert!(files(&plan(&r, Version::V2, true).unwrap()).contains(&("memory.swap.max", "67108864")));
    // no swap accounting: --memory alone works, an explicit swap limit is an error
    assert_eq!(
        files(&plan(&r, Version::V1, false).unwrap()),
        vec![("memory.limit_in_bytes", "67108864")]
    );
    let r = res(|r| {
        r.memory = m;
        r.memory_swap = 2 * m;
    });
    assert!(matches!(
        plan(&r, Version::V1, false),
        Err(CgroupError::NoSwapAccounting { .. })
    ));
    let r = res(|r| {
        r.memory = m;
        r.memory_swap = -1;
    });
    assert!(plan(&r, Version::V1, false).is_ok());
}

#[test]
fn weights_and_cpu_max() {
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262_144), 10_000);
    let r = res(|r| {
        r.cpu_quota = 20_000;
        r.cpu_period = 50_000;
    });
    assert!(files(&plan(&r, Version::V2, true).unwrap()).contains(&("cpu.max", "20000 50000")));
    let r = res(|r| r.cpu_period = 50_000);
    assert!(files(&plan(&r, Version::V2, true).unwrap()).contains(&("cpu.max", "max 50000")));
    let r = res(|r| r.pids_limit = Some(-1));
    assert_eq!(
        files(&plan(&r, Version::V1, true).unwrap()),
        vec![("pids.max", "max")]
    );
}

#[test]
fn read_back_normalization() {
    assert!(reads_back_as(
        "memory.limit_in_bytes",
        "268435456",
        "268435456\n"
    ));
    assert!(reads_back_as("memory.limit_in_bytes", "10000", "8192"));
    assert!(!reads_back_as(
        "memory.limit_in_bytes",
        "268435456",
        "9223372036854771712"
    ));
    assert!(reads_back_as(
        "memory.memsw.limit_in_bytes",
        "-1",
        "9223372036854771712"
    ));
    assert!(reads_back_as("memory.swap.max", "max", "max"));
    assert!(reads_back_as("cpuset.cpus", "0,1", "0-1"));
    assert!(!reads_back_as("cpuset.cpus", "0,1", "0"));
    assert!(reads_back_as("cpu.shares", "1", "2"));
    assert!(reads_back_as("cpu.max", "50000 100000", "50000 100000"));
    assert!(reads_back_as("pids.max", "max", "max"));
    assert!(!reads_back_as("pids.max", "64", "max"));
}
