//! A parser for the commands a scheduler runs most often and that take one container and
//! nothing else: `pause`, `resume` (`unpause`), `start`. OpenWhisk's invoker pauses and
//! resumes a container around every activation. clap's derive builds the top of the
//! command tree (every subcommand's name, the globals copied into each; the invoked one's
//! flags, the others' deferred) before it looks at argv: about 0.5 ms of CPU per process
//! here, a third of what ocishim adds to a `runc pause`. This parser produces the very
//! `Cli` clap would, or `None` for anything it does not recognise exactly (help, version,
//! unknown or repeated flags, empty values, values that look like flags, more than one
//! argument, non-UTF-8), which then goes to clap: it never accepts what clap would refuse,
//! nor reads anything differently (a unit test holds the two to the same result).

use std::path::PathBuf;

use super::native::{Cli, Command};

/// The value-taking global flags, as `Cli` declares them.
const VALUE_FLAGS: &[&str] = &[
    "root",
    "data-root",
    "runtime",
    "runtime-root",
    "bridge",
    "bridge-subnet",
    "log-level",
    "config",
    "default-cgroup-parent",
];

/// The environment variable each value flag falls back to, as `Cli` declares them.
const ENV: [&str; VALUE_FLAGS.len()] = [
    "OCISHIM_ROOT",
    "OCISHIM_DATA_ROOT",
    "OCISHIM_RUNTIME",
    "OCISHIM_RUNTIME_ROOT",
    "OCISHIM_BRIDGE",
    "OCISHIM_BRIDGE_SUBNET",
    "OCISHIM_LOG_LEVEL",
    "OCISHIM_CONFIG",
    "OCISHIM_CGROUP_PARENT",
];

/// `argv` (with the program name first) as clap would parse it, if it is one of the simple
/// single-container commands; otherwise `None`. docker's spelling of them (`docker pause
/// ID` through a symlink, `ocishim [GLOBALS] docker pause ID`) is taken too, without flags.
pub fn parse(argv: &[std::ffi::OsString]) -> Option<Cli> {
    let mut values: [Option<String>; VALUE_FLAGS.len()] = Default::default();
    let mut enable_nat = false;
    let mut command: Option<&str> = None;
    let mut container: Option<String> = None;
    let mut docker = super::docker::invoked_as_docker(argv);
    let mut it = argv.iter().skip(1).map(|a| a.to_str());
    while let Some(arg) = it.next() {
        let arg = arg?;
        if docker && arg.starts_with('-') {
            return None;
        }
        if let Some(flag) = arg.strip_prefix("--") {
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (flag, None),
            };
            if name == "enable-nat" {
                if inline.is_some() || enable_nat {
                    return None;
                }
                enable_nat = true;
                continue;
            }
            let i = VALUE_FLAGS.iter().position(|f| *f == name)?;
            let value = match inline {
                Some(v) => v,
                None => it.next()??.to_string(),
            };
            if value.is_empty() || value.starts_with('-') || values[i].is_some() {
                return None;
            }
            values[i] = Some(value);
        } else if arg.starts_with('-') {
            return None;
        } else if command.is_none() && !docker && arg == "docker" {
            docker = true;
        } else if command.is_none() {
            command = Some(match arg {
                "pause" | "resume" | "unpause" | "start" => arg,
                _ => return None,
            });
        } else if container.is_none() {
            container = Some(arg.to_string());
        } else {
            return None;
        }
    }
    let container = container?;
    let containers = vec![container];
    let command = match command? {
        "pause" => Command::Pause { containers },
        "start" => Command::Start { containers },
        _ => Command::Resume { containers },
    };
    // A flag's value, else its environment variable's (clap ignores an empty one).
    for (value, var) in values.iter_mut().zip(ENV) {
        if value.is_none() {
            *value = std::env::var(var).ok().filter(|v| !v.is_empty());
        }
    }
    let [root, data_root, runtime, runtime_root, bridge, bridge_subnet, log_level, config, default_cgroup_parent] =
        values;
    Some(Cli {
        root: PathBuf::from(root.as_deref().unwrap_or(super::native::DEFAULT_ROOT)),
        data_root: PathBuf::from(
            data_root
                .as_deref()
                .unwrap_or(super::native::DEFAULT_DATA_ROOT),
        ),
        runtime: runtime.unwrap_or_else(|| super::native::DEFAULT_RUNTIME.to_string()),
        runtime_root: runtime_root.map(PathBuf::from),
        bridge: bridge.unwrap_or_else(|| crate::network::DEFAULT_BRIDGE.to_string()),
        bridge_subnet: bridge_subnet.unwrap_or_else(|| crate::network::DEFAULT_SUBNET.to_string()),
        enable_nat,
        log_level,
        config: config.map(PathBuf::from),
        default_cgroup_parent,
        command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
        std::iter::once("ocishim")
            .chain(args.iter().copied())
            .map(Into::into)
            .collect()
    }

    /// clap's own checks of the whole tree (each deferred subcommand built).
    #[test]
    fn the_command_tree_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let mut cmd = Cli::command();
        cmd.build();
        let run = cmd.find_subcommand("run").expect("run");
        assert!(run.get_arguments().any(|a| a.get_long() == Some("memory")));
        assert_eq!(
            run.get_about().map(|a| a.to_string()).as_deref(),
            Some("Create and start a container")
        );
    }

    #[test]
    fn flags_and_variables_are_clap_s() {
        use clap::CommandFactory;
        let cmd = Cli::command();
        for (flag, var) in VALUE_FLAGS.iter().zip(ENV) {
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_long() == Some(*flag))
                .unwrap_or_else(|| panic!("--{flag} is not a global of Cli"));
            assert_eq!(
                arg.get_env().and_then(|e| e.to_str()),
                Some(var),
                "--{flag}"
            );
        }
    }

    #[test]
    fn reads_what_clap_reads() {
        let cases: &[&[&str]] = &[
            &["pause", "abc"],
            &["resume", "abc"],
            &["unpause", "abc"],
            &["start", "web.1"],
            &["--root", "/r", "--data-root", "/d", "pause", "abc"],
            &["--root=/r", "pause", "abc", "--data-root=/d"],
            &["pause", "--runtime", "crun", "--runtime-root", "/rr", "abc"],
            &["--log-level", "debug", "--enable-nat", "resume", "abc"],
            &["--config", "/etc/s.json", "pause", "abc"],
            &[
                "--bridge",
                "br9",
                "--bridge-subnet",
                "10.9.0.0/16",
                "pause",
                "x",
            ],
        ];
        for case in cases {
            let argv = os(case);
            let fast = parse(&argv).unwrap_or_else(|| panic!("{case:?} not taken"));
            let clap = Cli::try_parse_from(&argv).expect("clap parses it");
            assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "{case:?}");
        }
    }

    #[test]
    fn reads_dockers_spelling_as_the_docker_facade_does() {
        let cases: &[&[&str]] = &[
            &["docker", "pause", "abc"],
            &["docker", "unpause", "abc"],
            &["--root", "/r", "docker", "start", "web"],
        ];
        for case in cases {
            let argv = os(case);
            let fast = parse(&argv).unwrap_or_else(|| panic!("{case:?} not taken"));
            let clap = Cli::try_parse_from(&argv)
                .and_then(crate::cli::docker::from_native)
                .expect("clap parses it");
            assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "{case:?}");
        }
        let link: Vec<std::ffi::OsString> = ["/usr/bin/docker", "unpause", "abc"]
            .iter()
            .map(Into::into)
            .collect();
        let fast = parse(&link).expect("taken");
        let clap = crate::cli::docker::parse_symlink(&link).unwrap();
        assert_eq!(format!("{fast:?}"), format!("{clap:?}"));
        for not_taken in [
            &["docker", "pause", "--root", "/r", "abc"][..],
            &["docker", "docker", "pause", "abc"],
            &["docker", "-D", "pause", "abc"],
        ] {
            assert!(parse(&os(not_taken)).is_none(), "{not_taken:?}");
        }
    }

    #[test]
    fn leaves_everything_else_to_clap() {
        let cases: &[&[&str]] = &[
            &[],
            &["pause"],
            &["pause", "a", "b"],
            &["pause", "--help"],
            &["pause", "-h"],
            &["--version"],
            &["--root", "pause", "abc"],
            &["--root", "", "pause", "abc"],
            &["--root", "/a", "--root", "/b", "pause", "abc"],
            &["--enable-nat=true", "pause", "abc"],
            &["--no-such-flag", "pause", "abc"],
            &["pause", "-x"],
            &["pause", "--", "abc"],
            &["ps"],
            &["rm", "-f", "abc"],
            &["run", "-d", "--rootfs", "/r", "true"],
        ];
        for case in cases {
            assert!(parse(&os(case)).is_none(), "{case:?} taken");
        }
    }
}
