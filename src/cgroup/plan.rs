//! The limits plan: which cgroup files to write for a `Resources`, on v1 and v2, and
//! whether what the kernel reads back is what was written.

use super::{CgroupError, Version, PAGE};
use crate::config::{parse_cpuset, Resources};

/// One file to write in the container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub controller: &'static str,
    pub file: &'static str,
    pub value: String,
}

pub(super) fn w(controller: &'static str, file: &'static str, value: impl ToString) -> Write {
    Write {
        controller,
        file,
        value: value.to_string(),
    }
}

/// docker/runc's cpu.shares → cpu.weight conversion.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

/// The files to write for `r`, in a safe order. `swap` says whether the kernel accounts
/// swap; without it an explicit swap limit is an error and the implied one is dropped.
pub fn plan(r: &Resources, v: Version, swap: bool) -> Result<Vec<Write>, CgroupError> {
    let mut out = Vec::new();
    let total = r.effective_swap();
    let swap_file = match v {
        Version::V1 => "memory.memsw.limit_in_bytes",
        Version::V2 => "memory.swap.max",
    };
    let explicit_swap = r.memory_swap > 0;
    if !swap && explicit_swap {
        return Err(CgroupError::NoSwapAccounting {
            file: swap_file.into(),
        });
    }
    match v {
        Version::V1 => {
            if r.memory > 0 {
                out.push(w("memory", "memory.limit_in_bytes", r.memory));
            }
            if swap {
                if let Some(t) = total {
                    out.push(w("memory", "memory.memsw.limit_in_bytes", t));
                }
            }
            if r.memory_reservation > 0 {
                out.push(w(
                    "memory",
                    "memory.soft_limit_in_bytes",
                    r.memory_reservation,
                ));
            }
            if r.cpu_shares > 0 {
                out.push(w("cpu", "cpu.shares", r.cpu_shares));
            }
            let (quota, period) = r.cfs();
            if let Some(p) = period {
                out.push(w("cpu", "cpu.cfs_period_us", p));
            }
            if let Some(q) = quota {
                out.push(w("cpu", "cpu.cfs_quota_us", q));
            }
        }
        Version::V2 => {
            if r.memory > 0 {
                out.push(w("memory", "memory.max", r.memory));
            }
            if swap {
                match total {
                    Some(-1) => out.push(w("memory", "memory.swap.max", "max")),
                    Some(t) if r.memory > 0 => {
                        out.push(w("memory", "memory.swap.max", (t - r.memory).max(0)))
                    }
                    _ => {}
                }
            }
            if r.memory_reservation > 0 {
                out.push(w("memory", "memory.low", r.memory_reservation));
            }
            if r.cpu_shares > 0 {
                out.push(w(
                    "cpu",
                    "cpu.weight",
                    shares_to_weight(r.cpu_shares as u64),
                ));
            }
            let (quota, period) = r.cfs();
            if quota.is_some() || period.is_some() {
                let q = match quota {
                    Some(q) if q > 0 => q.to_string(),
                    _ => "max".into(),
                };
                out.push(w(
                    "cpu",
                    "cpu.max",
                    format!("{q} {}", period.unwrap_or(100_000)),
                ));
            }
        }
    }
    if !r.cpuset_cpus.is_empty() {
        out.push(w("cpuset", "cpuset.cpus", &r.cpuset_cpus));
    }
    if !r.cpuset_mems.is_empty() {
        out.push(w("cpuset", "cpuset.mems", &r.cpuset_mems));
    }
    if let Some(p) = r.pids_limit {
        out.push(w(
            "pids",
            "pids.max",
            if p > 0 { p.to_string() } else { "max".into() },
        ));
    }
    Ok(out)
}

/// Whether what the kernel reads back is what was written (page rounding of byte values,
/// "max" for unlimited, cpuset list normalization, cpu.shares clamping).
pub fn reads_back_as(file: &str, written: &str, got: &str) -> bool {
    let got = got.trim();
    if got == written {
        return true;
    }
    match file {
        "cpuset.cpus" | "cpuset.mems" => parse_cpuset(written) == parse_cpuset(got),
        "cpu.shares" => {
            let w: u64 = written.parse().unwrap_or(0);
            got.parse::<u64>().ok() == Some(w.clamp(2, 262_144))
        }
        "cpu.cfs_quota_us" => written == "-1" && got == "-1",
        _ => {
            let unlimited = |s: &str| {
                s == "max"
                    || s == "-1"
                    || s.parse::<i64>()
                        .map(|n| n >= i64::MAX - PAGE)
                        .unwrap_or(false)
            };
            if unlimited(written) {
                return unlimited(got);
            }
            match (written.parse::<i64>(), got.parse::<i64>()) {
                (Ok(w), Ok(g)) => g == w / PAGE * PAGE,
                _ => false,
            }
        }
    }
}
