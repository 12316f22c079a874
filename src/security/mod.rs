//! Security settings of a container beyond capabilities: seccomp profiles, user
//! namespaces (`--userns auto`).

pub mod seccomp;
pub mod userns;

/// Why `--security-opt OPT` (an `apparmor=`/`label=` option other than the no-ops
/// `apparmor=unconfined` and `label=disable`) is refused: ocishim applies no AppArmor
/// profile or SELinux label, and says whether the host has the LSM at all.
pub fn lsm_refusal(opt: &str) -> Option<String> {
    let (lsm, present) = if opt.starts_with("apparmor") {
        // What libapparmor's aa_is_enabled reads.
        let on = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y");
        ("AppArmor", on)
    } else if opt.starts_with("label") {
        // selinuxfs, mounted where the kernel has SELinux enabled.
        let on = std::path::Path::new("/sys/fs/selinux/enforce").exists();
        ("SELinux", on)
    } else {
        return None;
    };
    let noop = if lsm == "AppArmor" {
        "apparmor=unconfined"
    } else {
        "label=disable"
    };
    Some(if present {
        format!("ocishim applies no {lsm} profile or label yet: only {noop} is accepted")
    } else {
        format!(
            "this host has no {lsm} (the kernel runs without that LSM): only {noop} is accepted"
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn lsm_options_are_refused_with_the_lsm_named() {
        for (opt, lsm) in [
            ("apparmor=docker-default", "AppArmor"),
            ("apparmor:x", "AppArmor"),
            ("label=type:svirt_t", "SELinux"),
            ("label:level:s0", "SELinux"),
        ] {
            let why = super::lsm_refusal(opt).unwrap();
            assert!(why.contains(lsm), "{opt}: {why}");
        }
        assert_eq!(super::lsm_refusal("no-new-privileges"), None);
    }
}
