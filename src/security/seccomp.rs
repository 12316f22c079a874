//! Docker-format seccomp profiles (`--security-opt seccomp=FILE`) turned into the spec's
//! `linux.seccomp` for one container, with docker's rules:
//! - `architectures` (a flat list) or `archMap` (not both): from the map, the entry of this
//!   host's architecture and its sub-architectures (x86_64: x86 and x32);
//! - a rule (`names`, or the older `name`) is kept unless its `includes` or `excludes` say
//!   otherwise: `includes.arches` must name this host's architecture (Go's names: amd64),
//!   `includes.caps` must all be in the container's capabilities, `includes.minKernel` must
//!   be at most the running kernel; `excludes` drops the rule on any match (an arch named,
//!   any cap held, a kernel at least `minKernel`);
//! - actions, operators, architectures and flags are the OCI names (`SCMP_ACT_ERRNO`,
//!   `SCMP_CMP_MASKED_EQ`, ...), read into `oci-spec`'s types: an unknown one is an error.
//!
//! A profile is read and checked when the container's options are (125, nothing made) and
//! kept as text in the container's config, as docker keeps it in `HostConfig.SecurityOpt`.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscallBuilder,
};
use serde::Deserialize;

/// Docker's default profile (`scripts/gen-seccomp-default` from moby's
/// `profiles/seccomp/default.json`; see `src/security/SECCOMP-SOURCE.md`).
pub const DEFAULT_PROFILE: &str = include_str!("seccomp_default.json");

/// A profile file larger than this is not a profile.
const MAX_SIZE: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp profile {file}: {why}")]
    Profile { file: String, why: String },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Profile {
    default_action: LinuxSeccompAction,
    default_errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "list")]
    architectures: Vec<Arch>,
    #[serde(default, deserialize_with = "list")]
    arch_map: Vec<ArchMap>,
    #[serde(default, deserialize_with = "list")]
    syscalls: Vec<Rule>,
    #[serde(default, deserialize_with = "list")]
    flags: Vec<LinuxSeccompFilterFlag>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default)]
    listener_metadata: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ArchMap {
    architecture: Arch,
    #[serde(default, deserialize_with = "list")]
    sub_architectures: Vec<Arch>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Rule {
    #[serde(default, deserialize_with = "list")]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "list")]
    args: Vec<Arg>,
    #[serde(default, deserialize_with = "or_default")]
    includes: Filter,
    #[serde(default, deserialize_with = "or_default")]
    excludes: Filter,
    #[serde(default)]
    comment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Arg {
    index: usize,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: LinuxSeccompOperator,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Filter {
    #[serde(default, deserialize_with = "list")]
    arches: Vec<String>,
    #[serde(default, deserialize_with = "list")]
    caps: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// A list that may be given as `null` (docker's own profiles do), read as empty.
fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// A struct that may be given as `null`, read as its default.
fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// What a profile is evaluated against besides the container's capabilities.
#[derive(Debug, Clone)]
pub struct Host {
    /// Go's name of this architecture (`amd64`), as profiles' `arches` use.
    pub arch: &'static str,
    /// Its seccomp architecture.
    pub seccomp_arch: Arch,
    /// The running kernel's (major, minor).
    pub kernel: (u32, u32),
}

impl Host {
    pub fn detect() -> Host {
        let arch = crate::sys::go_arch();
        let seccomp_arch = match arch {
            "amd64" => Arch::ScmpArchX86_64,
            "arm64" => Arch::ScmpArchAarch64,
            "386" => Arch::ScmpArchX86,
            "arm" => Arch::ScmpArchArm,
            "ppc64le" => Arch::ScmpArchPpc64le,
            "s390x" => Arch::ScmpArchS390x,
            "riscv64" => Arch::ScmpArchRiscv64,
            _ => Arch::ScmpArchNative,
        };
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        Host {
            arch,
            seccomp_arch,
            kernel: parse_kernel(&release).unwrap_or((0, 0)),
        }
    }
}

/// `6.1.0-13-amd64` → (6, 1)
fn parse_kernel(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// Read and check the profile at `path` (whole: a later change of the file does not
/// change the container); returns its text.
pub fn read_profile(path: &str) -> Result<String, SeccompError> {
    let fail = |why: String| SeccompError::Profile {
        file: path.into(),
        why,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    if meta.len() > MAX_SIZE {
        return Err(fail(format!("larger than {MAX_SIZE} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    parse(&text).map_err(fail)?;
    Ok(text)
}

/// The profile's JSON, checked beyond its types.
fn parse(text: &str) -> Result<Profile, String> {
    let p: Profile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if !p.architectures.is_empty() && !p.arch_map.is_empty() {
        return Err("both architectures and archMap given".into());
    }
    for (i, r) in p.syscalls.iter().enumerate() {
        if r.names.is_empty() && r.name.as_deref().unwrap_or("").is_empty() {
            return Err(format!("syscalls[{i}]: no names"));
        }
        if r.names
            .iter()
            .any(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            return Err(format!("syscalls[{i}]: a name is not a syscall name"));
        }
        if let Some(a) = r.args.iter().find(|a| a.index > 5) {
            return Err(format!(
                "syscalls[{i}]: argument index {} (0 to 5)",
                a.index
            ));
        }
        for f in [&r.includes, &r.excludes] {
            if let Some(k) = &f.min_kernel {
                parse_kernel(k).ok_or_else(|| format!("syscalls[{i}]: minKernel {k:?}"))?;
            }
        }
    }
    Ok(p)
}

/// `a.b` at most the running kernel?
fn kernel_at_least(host: &Host, min: &str) -> bool {
    parse_kernel(min).is_some_and(|m| host.kernel >= m)
}

/// Is the rule for this container (docker's includes/excludes)?
fn applies(r: &Rule, caps: &[String], host: &Host) -> bool {
    let i = &r.includes;
    if !i.arches.is_empty() && !i.arches.iter().any(|a| a == host.arch) {
        return false;
    }
    if !i.caps.iter().all(|c| caps.contains(c)) {
        return false;
    }
    if i.min_kernel
        .as_deref()
        .is_some_and(|k| !kernel_at_least(host, k))
    {
        return false;
    }
    let e = &r.excludes;
    if e.arches.iter().any(|a| a == host.arch) || e.caps.iter().any(|c| caps.contains(c)) {
        return false;
    }
    if e.min_kernel
        .as_deref()
        .is_some_and(|k| kernel_at_least(host, k))
    {
        return false;
    }
    true
}

/// The spec's seccomp section of the profile `text` for a container with `caps`.
pub fn to_spec(text: &str, caps: &[String], host: &Host) -> Result<LinuxSeccomp, SeccompError> {
    let fail = |why: String| SeccompError::Profile {
        file: "(recorded)".into(),
        why,
    };
    let p = parse(text).map_err(fail)?;
    let mut arches = p.architectures.clone();
    for m in &p.arch_map {
        if m.architecture == host.seccomp_arch {
            arches.push(m.architecture);
            arches.extend(m.sub_architectures.iter().copied());
        }
    }
    let mut syscalls = Vec::new();
    for r in p.syscalls.iter().filter(|r| applies(r, caps, host)) {
        let mut names = r.names.clone();
        names.extend(r.name.iter().cloned());
        let args = r
            .args
            .iter()
            .map(|a| {
                LinuxSeccompArgBuilder::default()
                    .index(a.index)
                    .value(a.value)
                    .value_two(a.value_two)
                    .op(a.op)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(e.to_string()))?;
        let mut b = LinuxSyscallBuilder::default().names(names).action(r.action);
        if let Some(e) = r.errno_ret {
            b = b.errno_ret(e);
        }
        if !args.is_empty() {
            b = b.args(args);
        }
        let _ = &r.comment;
        syscalls.push(b.build().map_err(|e| fail(e.to_string()))?);
    }
    let mut b = LinuxSeccompBuilder::default()
        .default_action(p.default_action)
        .syscalls(syscalls);
    if !arches.is_empty() {
        b = b.architectures(arches);
    }
    if let Some(e) = p.default_errno_ret {
        b = b.default_errno_ret(e);
    }
    if !p.flags.is_empty() {
        b = b.flags(p.flags.clone());
    }
    if let Some(l) = &p.listener_path {
        b = b.listener_path(l);
    }
    if let Some(m) = &p.listener_metadata {
        b = b.listener_metadata(m.clone());
    }
    b.build().map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host {
            arch: "amd64",
            seccomp_arch: Arch::ScmpArchX86_64,
            kernel: (5, 4),
        }
    }

    const PROFILE: &str = r#"{
      "defaultAction": "SCMP_ACT_ERRNO",
      "defaultErrnoRet": 1,
      "archMap": [
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
      ],
      "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["mount", "unshare"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
         "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
        {"names": ["sync_file_range2"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["ppc64le"]}},
        {"names": ["new_in_6_2"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "6.2"}},
        {"names": ["old_before_4_8"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "4.8"}},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
      ]
    }"#;

    fn names(s: &LinuxSeccomp) -> Vec<String> {
        s.syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .flat_map(|r| r.names().clone())
            .collect()
    }

    #[test]
    fn rules_follow_caps_arches_and_kernel_as_docker_s() {
        let plain = to_spec(PROFILE, &["CAP_CHOWN".into()], &host()).unwrap();
        assert_eq!(
            names(&plain),
            [
                "read",
                "write",
                "personality",
                "clone",
                "arch_prctl",
                "clone3"
            ]
        );
        assert_eq!(
            plain.architectures().as_ref().unwrap(),
            &[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        assert_eq!(plain.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(plain.default_errno_ret(), Some(1));
        let clone3 = plain.syscalls().as_ref().unwrap().last().unwrap();
        assert_eq!(clone3.errno_ret(), Some(38));
        let admin = to_spec(PROFILE, &["CAP_SYS_ADMIN".into()], &host()).unwrap();
        assert_eq!(
            names(&admin),
            [
                "read",
                "write",
                "personality",
                "mount",
                "unshare",
                "arch_prctl"
            ]
        );
        let new = Host {
            kernel: (6, 18),
            ..host()
        };
        let n = names(&to_spec(PROFILE, &[], &new).unwrap());
        assert!(n.contains(&"new_in_6_2".to_string()));
        assert!(!n.contains(&"old_before_4_8".to_string()));
        let old = Host {
            kernel: (4, 4),
            ..host()
        };
        assert!(names(&to_spec(PROFILE, &[], &old).unwrap()).contains(&"old_before_4_8".into()));
    }

    #[test]
    fn bad_profiles_say_what_is_wrong() {
        for (text, want) in [
            (r#"{"defaultAction": "SCMP_ACT_MAYBE"}"#, "unknown variant"),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_NOPE"}]}"#,
                "unknown variant",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}"#,
                "no names",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
                "argument index",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_ABOUT"}]}]}"#,
                "unknown variant",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"], "archMap": [{"architecture": "SCMP_ARCH_X86"}]}"#,
                "both",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}"#,
                "unknown variant",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "new"}}]}"#,
                "minKernel",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscals": []}"#,
                "unknown field",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a b"], "action": "SCMP_ACT_ALLOW"}]}"#,
                "not a syscall name",
            ),
            ("[1, 2", "line 1"),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "archMap": null, "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": null, "includes": null}, {"names": null}]}"#,
                "missing field `action`",
            ),
            ("", "EOF"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn docker_s_default_profile_as_docker_evaluates_it() {
        let defaults: Vec<String> = crate::config::DEFAULT_CAPS
            .iter()
            .map(|c| format!("CAP_{c}"))
            .collect();
        let s = to_spec(DEFAULT_PROFILE, &defaults, &host()).unwrap();
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(1));
        assert_eq!(
            s.architectures().as_ref().unwrap(),
            &[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        let n = names(&s);
        let has = |x: &str| n.iter().any(|m| m == x);
        for allowed in [
            "read",
            "execve",
            "clone",
            "arch_prctl",
            "modify_ldt",
            "personality",
            "socket",
        ] {
            assert!(has(allowed), "{allowed} missing");
        }
        // The CAP_SYS_ADMIN group, module loading, ptrace-like calls without their caps.
        for refused in [
            "mount",
            "unshare",
            "setns",
            "sethostname",
            "init_module",
            "kcmp",
            "bpf",
            "reboot",
        ] {
            assert!(!has(refused), "{refused} allowed without its capability");
        }
        // clone only without namespace flags; clone3 answered ENOSYS (glibc falls back).
        let rules = s.syscalls().as_ref().unwrap();
        let clone = rules
            .iter()
            .find(|r| r.names().contains(&"clone".into()))
            .unwrap();
        let arg = &clone.args().as_ref().unwrap()[0];
        assert_eq!(
            (arg.index(), arg.value(), arg.op()),
            (0, 2114060288, LinuxSeccompOperator::ScmpCmpMaskedEq)
        );
        let clone3 = rules
            .iter()
            .find(|r| r.names().contains(&"clone3".into()))
            .unwrap();
        assert_eq!(
            (clone3.action(), clone3.errno_ret()),
            (LinuxSeccompAction::ScmpActErrno, Some(38))
        );
        // With CAP_SYS_ADMIN: the group, and clone/clone3 unconditionally.
        let mut admin = defaults.clone();
        admin.push("CAP_SYS_ADMIN".into());
        let s = to_spec(DEFAULT_PROFILE, &admin, &host()).unwrap();
        let n = names(&s);
        for allowed in ["mount", "unshare", "setns", "sethostname", "clone3"] {
            assert!(
                n.iter().any(|m| m == allowed),
                "{allowed} refused with CAP_SYS_ADMIN"
            );
        }
        let rules = s.syscalls().as_ref().unwrap();
        assert!(rules
            .iter()
            .filter(|r| r.names().contains(&"clone".into()))
            .all(|r| r.args().is_none()));
        // ptrace and process_vm_* from kernel 4.8 on.
        let old = Host {
            kernel: (4, 4),
            ..host()
        };
        let s = to_spec(DEFAULT_PROFILE, &defaults, &old).unwrap();
        assert!(!names(&s).contains(&"ptrace".into()));
        assert!(
            names(&to_spec(DEFAULT_PROFILE, &defaults, &host()).unwrap())
                .contains(&"ptrace".into())
        );
    }

    #[test]
    fn kernels_parse() {
        assert_eq!(parse_kernel("6.1.0-13-amd64"), Some((6, 1)));
        assert_eq!(parse_kernel("6.18.44-fc-v1272"), Some((6, 18)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel("x"), None);
    }
}
