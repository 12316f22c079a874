//! The resource options (`--memory*`, `--cpu*`, `--cpuset-*`, `--pids-limit`), for `run`
//! and `update`.

use super::parse::{parse_bytes, parse_cpuset, parse_int, parse_nano_cpus};
use super::{invalid, ConfigError, HostFacts, RawOptions, Resources, MIN_MEMORY};

impl RawOptions {
    pub(super) fn resources(&self, host: &HostFacts) -> Result<Resources, ConfigError> {
        self.resources_over(&Resources::default(), host)
    }

    /// The resources given on the command line over `base` (for `update`: fields not
    /// given keep their value), validated as docker validates them.
    pub fn resources_over(
        &self,
        base: &Resources,
        host: &HostFacts,
    ) -> Result<Resources, ConfigError> {
        let bytes =
            |flag: &'static str, v: &Option<String>, old: i64| -> Result<i64, ConfigError> {
                match v {
                    None => Ok(old),
                    Some(s) => parse_bytes(s).map_err(|why| invalid(flag, s, why)),
                }
            };
        let memory = bytes("--memory", &self.memory, base.memory)?;
        let memory_swap = match self.memory_swap.as_deref() {
            Some("-1") => -1,
            // docker update --memory alone keeps the memory+swap limit it had.
            None if self.memory.is_some() && base.memory > 0 => base.effective_swap().unwrap_or(0),
            _ => bytes("--memory-swap", &self.memory_swap, base.memory_swap)?,
        };
        let memory_reservation = bytes(
            "--memory-reservation",
            &self.memory_reservation,
            base.memory_reservation,
        )?;
        if memory > 0 && memory < MIN_MEMORY {
            return Err(ConfigError::Invalid(
                "Minimum memory limit allowed is 6MB".into(),
            ));
        }
        if memory_swap > 0 && memory == 0 {
            return Err(ConfigError::Invalid(
                "You should always set the Memory limit when using Memoryswap limit, see usage"
                    .into(),
            ));
        }
        if memory_swap > 0 && memory_swap < memory {
            let msg = if self.memory_swap.is_none() {
                "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"
            } else {
                "Minimum memoryswap limit should be larger than memory limit, see usage"
            };
            return Err(ConfigError::Invalid(msg.into()));
        }
        if memory_reservation > 0 && memory_reservation < MIN_MEMORY {
            return Err(ConfigError::Invalid(
                "Minimum memory reservation allowed is 6MB".into(),
            ));
        }
        if memory > 0 && memory_reservation > 0 && memory < memory_reservation {
            return Err(ConfigError::Invalid(
                "Minimum memory limit can not be less than memory reservation limit, see usage"
                    .into(),
            ));
        }

        let cpu_shares = match &self.cpu_shares {
            None => base.cpu_shares,
            Some(v) => {
                let n = parse_int("--cpu-shares", v)?;
                if n < 0 {
                    return Err(invalid("--cpu-shares", v, "must not be negative"));
                }
                n
            }
        };
        let nano_cpus = match &self.cpus {
            None => base.nano_cpus,
            Some(v) => {
                let n = parse_nano_cpus(v).map_err(|why| invalid("--cpus", v, why))?;
                let max = host.ncpu as i64 * 1_000_000_000;
                if n < 0 || n > max || (n > 0 && n < 10_000_000) {
                    return Err(ConfigError::Invalid(format!(
                        "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available",
                        n = host.ncpu
                    )));
                }
                n
            }
        };
        let cpu_period = match &self.cpu_period {
            None => base.cpu_period,
            Some(v) => parse_int("--cpu-period", v)?,
        };
        let cpu_quota = match &self.cpu_quota {
            None => base.cpu_quota,
            Some(v) => parse_int("--cpu-quota", v)?,
        };
        if nano_cpus > 0 && cpu_period > 0 {
            return Err(ConfigError::Invalid(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
            ));
        }
        if nano_cpus > 0 && cpu_quota > 0 {
            return Err(ConfigError::Invalid(
                "Conflicting options: Nano CPUs and CPU Quota cannot both be set".into(),
            ));
        }
        if cpu_period != 0 && !(1000..=1_000_000).contains(&cpu_period) {
            return Err(ConfigError::Invalid(
                "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1 second (i.e. 1000000)".into(),
            ));
        }
        if cpu_quota > 0 && cpu_quota < 1000 {
            return Err(ConfigError::Invalid(
                "CPU cfs quota can not be less than 1ms (i.e. 1000)".into(),
            ));
        }
        if cpu_quota < -1 {
            return Err(invalid(
                "--cpu-quota",
                &cpu_quota.to_string(),
                "must be -1 or positive",
            ));
        }
        let check_set =
            |flag: &'static str, v: &Option<String>, old: &str, avail: &str, what: &str| {
                let Some(v) = v else {
                    return Ok(old.to_string());
                };
                let want = parse_cpuset(v).ok_or_else(|| {
                    ConfigError::Invalid(format!("Invalid value {v} for cpuset {what}"))
                })?;
                let have = parse_cpuset(avail).unwrap_or_default();
                if want.iter().any(|c| !have.contains(c)) {
                    return Err(ConfigError::Invalid(format!(
                        "Requested {} are not available - requested {v}, available: {avail}",
                        if flag == "--cpuset-cpus" {
                            "CPUs"
                        } else {
                            "memory nodes"
                        }
                    )));
                }
                Ok(v.trim().to_string())
            };
        let cpuset_cpus = check_set(
            "--cpuset-cpus",
            &self.cpuset_cpus,
            &base.cpuset_cpus,
            &host.cpus_online,
            "cpus",
        )?;
        let cpuset_mems = check_set(
            "--cpuset-mems",
            &self.cpuset_mems,
            &base.cpuset_mems,
            &host.mems_online,
            "mems",
        )?;
        let pids_limit = match &self.pids_limit {
            None => base.pids_limit,
            Some(v) => Some(parse_int("--pids-limit", v)?),
        };
        Ok(Resources {
            memory,
            memory_swap,
            memory_reservation,
            cpu_shares,
            nano_cpus,
            cpu_period,
            cpu_quota,
            cpuset_cpus,
            cpuset_mems,
            pids_limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fixtures::{host, raw};

    #[test]
    fn cpus_to_cfs() {
        let cfg = raw(&["sh"]);
        let mut r = cfg;
        r.cpus = Some("0.5".into());
        let c = r.into_config(&host()).unwrap();
        assert_eq!(c.resources.cfs(), (Some(50_000), Some(100_000)));
    }

    #[test]
    fn bad_cpus_and_conflicts() {
        for (cpus, period, quota, want) in [
            (Some("-1"), None, None, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
            (Some("3"), None, None, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
            (Some("1"), Some("100000"), None, "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
            (Some("1"), None, Some("50000"), "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
            (None, Some("999"), None, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1 second (i.e. 1000000)"),
            (None, None, Some("999"), "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
        ] {
            let mut r = raw(&["sh"]);
            r.cpus = cpus.map(Into::into);
            r.cpu_period = period.map(Into::into);
            r.cpu_quota = quota.map(Into::into);
            let e = r.into_config(&host()).unwrap_err();
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn memory_swap_semantics() {
        let mk = |m: Option<&str>, s: Option<&str>| {
            let mut r = raw(&["sh"]);
            r.memory = m.map(Into::into);
            r.memory_swap = s.map(Into::into);
            r.into_config(&host())
        };
        let c = mk(Some("256m"), None).unwrap();
        assert_eq!(c.resources.memory, 256 << 20);
        assert_eq!(c.resources.effective_swap(), Some(512 << 20));
        let c = mk(Some("256m"), Some("256m")).unwrap();
        assert_eq!(c.resources.effective_swap(), Some(256 << 20));
        let c = mk(Some("256m"), Some("-1")).unwrap();
        assert_eq!(c.resources.effective_swap(), Some(-1));
        let c = mk(None, None).unwrap();
        assert_eq!(c.resources.effective_swap(), None);
        assert_eq!(
            mk(Some("256m"), Some("128m")).unwrap_err().to_string(),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        assert_eq!(
            mk(None, Some("128m")).unwrap_err().to_string(),
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        );
        assert_eq!(
            mk(Some("4m"), None).unwrap_err().to_string(),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            mk(Some("12q"), None).unwrap_err().to_string(),
            "invalid value \"12q\" for --memory: invalid size: '12q'"
        );
        assert_eq!(
            mk(Some("1000"), None).unwrap_err().to_string(),
            "Minimum memory limit allowed is 6MB",
            "a bare number is bytes"
        );
    }

    #[test]
    fn update_keeps_what_is_not_given() {
        let base = Resources {
            memory: 64 << 20,
            nano_cpus: 500_000_000,
            pids_limit: Some(10),
            ..Default::default()
        };
        let upd = RawOptions {
            memory: Some("96m".into()),
            ..Default::default()
        };
        // memory alone: memory+swap stays at its old 2x128m... here 2x64m = 128m >= 96m
        let r = upd.resources_over(&base, &host()).unwrap();
        assert_eq!(
            (r.memory, r.memory_swap, r.nano_cpus, r.pids_limit),
            (96 << 20, 128 << 20, 500_000_000, Some(10))
        );
        let upd = RawOptions {
            memory: Some("256m".into()),
            ..Default::default()
        };
        assert_eq!(
            upd.resources_over(&base, &host()).unwrap_err().to_string(),
            "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"
        );
        let upd = RawOptions {
            memory: Some("256m".into()),
            memory_swap: Some("512m".into()),
            pids_limit: Some("20".into()),
            ..Default::default()
        };
        let r = upd.resources_over(&base, &host()).unwrap();
        assert_eq!((r.memory_swap, r.pids_limit), (512 << 20, Some(20)));
    }
}
