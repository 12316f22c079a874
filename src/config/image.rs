//! An image's config merged into a container's, as docker does: the image's Env under
//! the user's (the user's win, docker's PATH first), Entrypoint and Cmd unless overridden
//! (`--entrypoint` drops the image's Cmd; a CMD given replaces the image's), WorkingDir,
//! User, Labels under the user's; StopSignal and ExposedPorts are recorded.

use oci_spec::image::ImageConfiguration;

use super::{merge_env, ConfigError, ContainerConfig, DEFAULT_PATH};

/// Merge `img` into `cfg` (made from an IMAGE argument: its env holds the user's own
/// entries only). Fails with docker's "No command specified" when neither gives one.
pub fn apply_image(
    cfg: &mut ContainerConfig,
    img: &ImageConfiguration,
    entrypoint_given: bool,
) -> Result<(), ConfigError> {
    let c = img.config().clone().unwrap_or_default();
    let image_env = c.env().clone().unwrap_or_default();
    cfg.env = merge_env(&[&[DEFAULT_PATH.to_string()], &image_env, &cfg.env]);
    if !entrypoint_given {
        cfg.entrypoint = c.entrypoint().clone().unwrap_or_default();
        if cfg.cmd.is_empty() {
            cfg.cmd = c.cmd().clone().unwrap_or_default();
        }
    }
    if cfg.entrypoint.is_empty() && cfg.cmd.is_empty() {
        return Err(ConfigError::Invalid("No command specified".into()));
    }
    if cfg.workdir.as_deref().unwrap_or("").is_empty() {
        cfg.workdir = c.working_dir().clone().filter(|w| !w.is_empty());
    }
    if cfg.user.as_deref().unwrap_or("").is_empty() {
        cfg.user = c.user().clone().filter(|u| !u.is_empty());
    }
    if let Some(labels) = c.labels() {
        for (k, v) in labels {
            cfg.labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    cfg.stop_signal = c.stop_signal().clone();
    cfg.exposed_ports = c.exposed_ports().clone().unwrap_or_default();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HostFacts, RawOptions};

    fn image(json: &str) -> ImageConfiguration {
        serde_json::from_str(json).unwrap()
    }

    const IMG: &str = r#"{"architecture":"amd64","os":"linux",
        "config":{"Env":["PATH=/opt/bin:/bin","LANG=C.UTF-8","A=image"],
                  "Entrypoint":["/entry"],"Cmd":["serve","--port","80"],
                  "WorkingDir":"/app","User":"app","Labels":{"l":"image","m":"image"},
                  "StopSignal":"SIGQUIT","ExposedPorts":{"80/tcp":{}}},
        "rootfs":{"type":"layers","diff_ids":[]}}"#;

    fn cfg(f: impl FnOnce(&mut RawOptions)) -> ContainerConfig {
        let mut raw = RawOptions {
            args: vec!["busybox".into()],
            ..Default::default()
        };
        f(&mut raw);
        raw.into_config(&HostFacts::detect()).unwrap()
    }

    #[test]
    fn the_image_fills_what_the_user_left_out() {
        let mut c = cfg(|r| {
            r.env = vec!["A=user".into()];
            r.label = vec!["l=user".into()];
        });
        assert!(c.from_image && c.image == "busybox" && c.cmd.is_empty());
        apply_image(&mut c, &image(IMG), false).unwrap();
        assert_eq!(c.env, ["PATH=/opt/bin:/bin", "LANG=C.UTF-8", "A=user"]);
        assert_eq!(c.argv(), ["/entry", "serve", "--port", "80"]);
        assert_eq!(c.workdir.as_deref(), Some("/app"));
        assert_eq!(c.user.as_deref(), Some("app"));
        assert_eq!(c.labels["l"], "user");
        assert_eq!(c.labels["m"], "image");
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(c.exposed_ports, ["80/tcp"]);
    }

    #[test]
    fn the_user_overrides_cmd_entrypoint_workdir_and_user() {
        let mut c = cfg(|r| {
            r.args.extend(["echo".into(), "hi".into()]);
            r.workdir = Some("/w".into());
            r.user = Some("0".into());
        });
        apply_image(&mut c, &image(IMG), false).unwrap();
        assert_eq!(c.argv(), ["/entry", "echo", "hi"]);
        assert_eq!(
            (c.workdir.as_deref(), c.user.as_deref()),
            (Some("/w"), Some("0"))
        );
        // --entrypoint drops the image's Cmd as well.
        let mut c = cfg(|r| r.entrypoint = Some("/bin/sh".into()));
        apply_image(&mut c, &image(IMG), true).unwrap();
        assert_eq!(c.argv(), ["/bin/sh"]);
        // No PATH in the image: docker's default.
        let mut c = cfg(|r| r.args.push("true".into()));
        let bare =
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        apply_image(&mut c, &image(bare), false).unwrap();
        assert_eq!(c.env, [DEFAULT_PATH]);
        assert_eq!(c.argv(), ["true"]);
    }

    #[test]
    fn no_command_anywhere_is_refused() {
        let mut c = cfg(|_| {});
        let bare =
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        assert_eq!(
            apply_image(&mut c, &image(bare), false)
                .unwrap_err()
                .to_string(),
            "No command specified"
        );
    }
}
