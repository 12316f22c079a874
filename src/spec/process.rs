//! The spec's `process`: argv, env, user, capabilities and rlimits.

use std::collections::HashSet;

use oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilities, LinuxCapabilitiesBuilder, PosixRlimit,
    PosixRlimitBuilder, PosixRlimitType, Process, ProcessBuilder, User, UserBuilder,
};

use super::{ResolvedUser, SpecError, SpecInput};
use crate::config::{effective_caps, merge_env, ContainerConfig, DEFAULT_PATH};

/// The process: PATH, HOSTNAME then the config's env; no terminal; cwd / unless -w.
pub(super) fn process(inp: &SpecInput) -> Result<Process, SpecError> {
    let cfg = inp.cfg;
    let env = merge_env(&[
        &[DEFAULT_PATH.to_string()],
        &[format!("HOSTNAME={}", inp.hostname)],
        &cfg.env,
    ]);
    let capabilities = capabilities(cfg, &inp.bounding)?;
    let user = user(&inp.user)?;
    let rlimits = rlimits(cfg)?;
    let mut process = ProcessBuilder::default()
        .terminal(false)
        .user(user)
        .args(cfg.argv())
        .env(env)
        .cwd(cfg.workdir.clone().unwrap_or_else(|| "/".into()))
        .capabilities(capabilities)
        .no_new_privileges(cfg.no_new_privileges)
        .oom_score_adj(cfg.oom_score_adj)
        .build()?;
    process.set_rlimits((!rlimits.is_empty()).then_some(rlimits));
    process.set_console_size(None);
    process.set_apparmor_profile(None);
    process.set_selinux_label(None);
    process.set_scheduler(None);
    process.set_io_priority(None);
    process.set_command_line(None);
    process.set_exec_cpu_affinity(None);
    Ok(process)
}

/// The effective capabilities in the bounding, effective and permitted sets; none
/// inheritable or ambient (docker's, not oci-spec's default).
fn capabilities(
    cfg: &ContainerConfig,
    bounding: &[String],
) -> Result<LinuxCapabilities, SpecError> {
    let capset = caps(&effective_caps(cfg, bounding))?;
    Ok(LinuxCapabilitiesBuilder::default()
        .bounding(capset.clone())
        .effective(capset.clone())
        .permitted(capset)
        .inheritable(Capabilities::new())
        .ambient(Capabilities::new())
        .build()?)
}

fn caps(names: &[String]) -> Result<Capabilities, SpecError> {
    names
        .iter()
        .map(|n| {
            serde_json::from_value::<Capability>(serde_json::Value::String(n.clone()))
                .map_err(|_| SpecError::Capability(n.clone()))
        })
        .collect::<Result<HashSet<_>, _>>()
}

/// uid, gid and the supplementary groups (omitted when there are none).
fn user(u: &ResolvedUser) -> Result<User, SpecError> {
    let mut user = UserBuilder::default().uid(u.uid).gid(u.gid).build()?;
    user.set_additional_gids((!u.additional_gids.is_empty()).then(|| u.additional_gids.clone()));
    user.set_umask(None);
    user.set_username(None);
    Ok(user)
}

/// The --ulimit values, in the order given; -1 is unlimited.
fn rlimits(cfg: &ContainerConfig) -> Result<Vec<PosixRlimit>, SpecError> {
    Ok(cfg
        .ulimits
        .iter()
        .map(|u| {
            let v = |x: i64| if x < 0 { u64::MAX } else { x as u64 };
            PosixRlimitBuilder::default()
                .typ(rlimit_type(&u.name))
                .soft(v(u.soft))
                .hard(v(u.hard))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?)
}

fn rlimit_type(name: &str) -> PosixRlimitType {
    match name {
        "as" => PosixRlimitType::RlimitAs,
        "core" => PosixRlimitType::RlimitCore,
        "cpu" => PosixRlimitType::RlimitCpu,
        "data" => PosixRlimitType::RlimitData,
        "fsize" => PosixRlimitType::RlimitFsize,
        "locks" => PosixRlimitType::RlimitLocks,
        "memlock" => PosixRlimitType::RlimitMemlock,
        "msgqueue" => PosixRlimitType::RlimitMsgqueue,
        "nice" => PosixRlimitType::RlimitNice,
        "nofile" => PosixRlimitType::RlimitNofile,
        "nproc" => PosixRlimitType::RlimitNproc,
        "rss" => PosixRlimitType::RlimitRss,
        "rtprio" => PosixRlimitType::RlimitRtprio,
        "rttime" => PosixRlimitType::RlimitRttime,
        "sigpending" => PosixRlimitType::RlimitSigpending,
        _ => PosixRlimitType::RlimitStack,
    }
}
