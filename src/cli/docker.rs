//! docker's command line: `ocishim docker ARGS` or a symlink named `docker`. The
//! subcommands and their flags are ocishim's own (`native::Command`, which spells them as
//! docker does: `run -d --memory 256m --name N IMAGE`, `inspect --format T ID`, `ps
//! --filter`, `logs --since`, `version`, `info`), so every docker command runs the very
//! operation the native one does; this module owns only what differs: docker's global
//! flags, the commands docker does not have, and where ocishim's own globals come from
//! (the `OCISHIM_*` environment variables and their defaults, as a symlink cannot take
//! flags).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use super::native::{Cli, Command};

#[derive(Debug, Parser)]
#[command(
    name = "docker",
    about = "docker's command line over ocishim (no daemon)",
    disable_version_flag = true,
    arg_required_else_help = true
)]
struct DockerCli {
    /// Enable debug output (ocishim's diagnostics on stderr).
    #[arg(short = 'D', long)]
    debug: bool,
    /// Diagnostics level: debug, info, warn, error, fatal.
    #[arg(short = 'l', long = "log-level")]
    log_level: Option<String>,
    /// Location of the client config files (config.json with registry credentials).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Refused: ocishim has no daemon to connect to.
    #[arg(short = 'H', long)]
    host: Vec<String>,
    /// Only "default" (ocishim has no daemon contexts).
    #[arg(short = 'c', long)]
    context: Option<String>,
    /// Print version information and quit.
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

fn usage(text: String) -> clap::Error {
    DockerCli::command().error(ErrorKind::InvalidValue, text)
}

/// docker's argv (without the program name) as a [`Cli`] whose global settings are
/// `base`'s.
pub fn parse(base: Cli, args: Vec<OsString>) -> Result<Cli, clap::Error> {
    let argv = std::iter::once(OsString::from("docker")).chain(args);
    let d = DockerCli::try_parse_from(argv)?;
    if !d.host.is_empty() {
        return Err(usage(format!(
            "-H {}: ocishim has no daemon to connect to; it runs the containers itself",
            d.host.join(",")
        )));
    }
    if let Some(c) = d.context.as_deref().filter(|c| *c != "default") {
        return Err(usage(format!(
            "context {c:?}: ocishim has only the \"default\" context"
        )));
    }
    if let Some(dir) = &d.config {
        // Read by the registry client for credentials; set before any thread starts.
        std::env::set_var("DOCKER_CONFIG", dir);
    }
    let command = match (d.command, d.version) {
        (_, true) => Command::Version {
            format: Some("Docker version {{.Client.Version}}, build ocishim".into()),
        },
        (Some(Command::Spec(_)), _) => {
            return Err(usage("docker: 'spec' is not a docker command".into()))
        }
        (Some(Command::Gc { .. }), _) => {
            return Err(usage("docker: 'gc' is not a docker command".into()))
        }
        (Some(Command::Docker { .. }), _) => {
            return Err(usage("docker: 'docker' is not a docker command".into()))
        }
        (Some(c), false) => c,
        (None, false) => {
            return Err(DockerCli::command().error(
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand,
                "a command is required",
            ))
        }
    };
    let log_level = match (d.debug, d.log_level) {
        (true, _) => Some("debug".to_string()),
        (false, Some(l)) if l == "fatal" || l == "panic" => Some("error".to_string()),
        (false, Some(l)) => Some(l),
        (false, None) => base.log_level.clone(),
    };
    Ok(Cli {
        command,
        log_level,
        ..base
    })
}

/// Whether the program was invoked under the name `docker` (a symlink).
pub fn invoked_as_docker(argv: &[OsString]) -> bool {
    argv.first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == "docker")
}

/// argv of a `docker` symlink: ocishim's globals from the environment and defaults.
pub fn parse_symlink(argv: &[OsString]) -> Result<Cli, clap::Error> {
    let base = Cli::try_parse_from(["ocishim", "version"])?;
    parse(base, argv.iter().skip(1).cloned().collect())
}

/// `ocishim [GLOBALS] docker ARGS`: the docker argv with the globals given.
pub fn from_native(mut cli: Cli) -> Result<Cli, clap::Error> {
    match &mut cli.command {
        Command::Docker { args } => {
            let args = std::mem::take(args);
            parse(cli, args)
        }
        _ => Ok(cli),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn base() -> Cli {
        Cli::try_parse_from(["ocishim", "--data-root", "/d", "version"]).unwrap()
    }

    #[test]
    fn the_invokers_argv_parses_as_the_native_command() {
        let run = parse(
            base(),
            os(&[
                "run",
                "-d",
                "--cpu-shares",
                "128",
                "--memory",
                "256m",
                "--memory-swap",
                "256m",
                "--network",
                "bridge",
                "-e",
                "__OW_API_HOST=https://h",
                "--dns-option",
                "ndots:2",
                "--name",
                "wsk00_12_guest_hello",
                "--cpus",
                "0.25",
                "--cap-drop",
                "NET_RAW",
                "--cap-drop",
                "NET_ADMIN",
                "--ulimit",
                "nofile=1024:1024",
                "--pids-limit",
                "1024",
                "--log-driver",
                "json-file",
                "openwhisk/action-nodejs-v20",
            ]),
        )
        .unwrap();
        assert_eq!(run.data_root, PathBuf::from("/d"));
        let Command::Run(a) = run.command else {
            panic!("{run:?}")
        };
        assert!(a.detach);
        assert_eq!(a.name.as_deref(), Some("wsk00_12_guest_hello"));
        assert_eq!(a.args, ["openwhisk/action-nodejs-v20"]);
        assert_eq!(a.cap_drop, ["NET_RAW", "NET_ADMIN"]);

        let ins = parse(
            base(),
            os(&["inspect", "abc", "--format", "{{.State.OOMKilled}}"]),
        )
        .unwrap();
        assert!(matches!(
            ins.command,
            Command::Inspect { ref format, ref containers, .. }
                if format.as_deref() == Some("{{.State.OOMKilled}}") && containers == &["abc"]
        ));
        let ps = parse(
            base(),
            os(&[
                "ps",
                "--quiet",
                "--no-trunc",
                "--all",
                "--filter",
                "name=wsk00_",
            ]),
        )
        .unwrap();
        assert!(
            matches!(ps.command, Command::Ps { quiet: true, all: true, no_trunc: true, ref filter, .. } if filter == &["name=wsk00_"])
        );
        let logs = parse(
            base(),
            os(&[
                "logs",
                "abc",
                "--since",
                "1",
                "--until",
                "2",
                "--timestamps",
            ]),
        )
        .unwrap();
        assert!(
            matches!(logs.command, Command::Logs(ref l) if l.timestamps && l.since.as_deref() == Some("1"))
        );
        let v = parse(
            base(),
            os(&["-D", "version", "--format", "{{.Client.Version}}"]),
        )
        .unwrap();
        assert_eq!(v.log_level.as_deref(), Some("debug"));
    }

    #[test]
    fn refuses_what_docker_has_not_or_ocishim_cannot() {
        for bad in [
            &["-H", "tcp://x:2375", "ps"][..],
            &["--context", "prod", "ps"],
            &["spec", "--rootfs", "/r", "true"],
            &["docker", "ps"],
            &["run", "--no-such-flag", "img"],
            &["frobnicate"],
        ] {
            let e = parse(base(), os(bad)).unwrap_err();
            assert_ne!(e.kind(), ErrorKind::DisplayHelp, "{bad:?}");
        }
    }

    #[test]
    fn a_symlink_named_docker_is_recognised() {
        assert!(invoked_as_docker(&os(&["/usr/bin/docker", "ps"])));
        assert!(invoked_as_docker(&os(&["docker"])));
        assert!(!invoked_as_docker(&os(&["/usr/bin/ocishim", "docker"])));
    }
}
