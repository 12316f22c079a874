//! The runtime's start error text → what dockerd records (State.ExitCode, State.Error) and
//! what the docker CLI exits with. One pure, table-tested place.

/// The hint dockerd appends to "not a directory" errors.
pub const ENOTDIR_HINT: &str = "Are you trying to mount a directory onto a file (or vice-versa)? Check if the specified host path exists and is the expected type";

/// What a failed create/start means, as dockerd and the docker CLI report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFailure {
    /// State.ExitCode in the record (dockerd's translateContainerdStartErr; never 0).
    pub exit_code: i32,
    /// State.Error and the CLI's message.
    pub message: String,
    /// The CLI's exit status for run/create/start (125, 126 or 127).
    pub cli_status: i32,
}

fn has(text: &str, needle: &str) -> bool {
    text.to_ascii_lowercase().contains(needle)
}

fn is_not_found(text: &str) -> bool {
    has(text, "executable file not found")
        || has(text, "no such file or directory")
        || has(text, "system cannot find the file specified")
}

/// Translate the runtime's error text. `cmd` is the container's command (argv[0]): dockerd
/// counts a not-found error as 127 only when it names the command (so a missing bind-mount
/// source, which also says "no such file or directory", stays 128).
pub fn translate(text: &str, cmd: &str) -> StartFailure {
    let mut message = text.trim().to_string();
    let mut exit_code = 0;
    // dockerd: the checks run in order and a later match overrides an earlier one.
    if !cmd.is_empty() && has(&message, &cmd.to_ascii_lowercase()) && is_not_found(&message) {
        exit_code = 127;
    }
    if has(&message, "permission denied") {
        exit_code = 126;
    }
    if has(&message, "is a directory") {
        if !has(&message, "permission denied") {
            message.push_str(": permission denied");
        }
        exit_code = 126;
    }
    if has(&message, "not a directory") {
        message.push_str(": ");
        message.push_str(ENOTDIR_HINT);
        exit_code = 127;
    }
    if exit_code == 0 {
        exit_code = 128;
    }
    let cli_status = cli_status(&message);
    StartFailure {
        exit_code,
        message,
        cli_status,
    }
}

/// The docker CLI's exit status for a failed `run`/`start`: 127 when not found, 126 when
/// not executable, 125 for everything else.
pub fn cli_status(message: &str) -> i32 {
    if is_not_found(message) {
        127
    } else if has(message, "permission denied") || has(message, "is a directory") {
        126
    } else {
        125
    }
}

/// Exit code for a process status as the shell and docker report it: the code, or 128+signal.
pub fn from_wait_status(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        128
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts from real runc 1.1 and crun 1.8 runs (see tests/core.rs for the live checks).
    #[test]
    fn table() {
        let rows: &[(&str, &str, i32, i32, &str)] = &[
            (
                "runc create failed: unable to start container process: exec: \"nosuchcmd\": executable file not found in $PATH",
                "nosuchcmd",
                127,
                127,
                "",
            ),
            (
                "runc create failed: unable to start container process: exec: \"/bin/nosuch\": stat /bin/nosuch: no such file or directory",
                "/bin/nosuch",
                127,
                127,
                "",
            ),
            (
                "runc create failed: unable to start container process: exec: \"/etc/passwd\": permission denied",
                "/etc/passwd",
                126,
                126,
                "",
            ),
            (
                "runc create failed: unable to start container process: exec: \"/etc\": is a directory",
                "/etc",
                126,
                126,
                ": permission denied",
            ),
            (
                "runc create failed: unable to start container process: error during container init: error mounting \"/tmp/f\" to rootfs at \"/etc\": mount /tmp/f:/etc (via /proc/self/fd/7), flags: 0x5000: not a directory",
                "sh",
                127,
                125,
                ENOTDIR_HINT,
            ),
            (
                "runc create failed: unable to start container process: error during container init: error mounting \"/nope\" to rootfs at \"/x\": stat /nope: no such file or directory",
                "sh",
                128,
                127,
                "",
            ),
            (
                "executable file `nosuchcmd` not found in $PATH: No such file or directory",
                "nosuchcmd",
                127,
                127,
                "",
            ),
            (
                "open executable: Permission denied",
                "/etc/passwd",
                126,
                126,
                "",
            ),
            (
                "runc create failed: unable to start container process: error during container init: something else broke",
                "sh",
                128,
                125,
                "",
            ),
            ("", "sh", 128, 125, ""),
        ];
        for (text, cmd, code, cli, suffix) in rows {
            let f = translate(text, cmd);
            assert_eq!(f.exit_code, *code, "exit code for {text:?}");
            assert_eq!(f.cli_status, *cli, "cli status for {text:?}");
            assert!(
                f.message.ends_with(suffix),
                "{:?} should end with {suffix:?}",
                f.message
            );
            assert!(f.message.starts_with(text.trim()));
            assert_ne!(f.exit_code, 0);
        }
    }

    #[test]
    fn wait_status() {
        assert_eq!(from_wait_status(3 << 8), 3);
        assert_eq!(from_wait_status(0), 0);
        assert_eq!(from_wait_status(9), 137);
        assert_eq!(from_wait_status(15), 143);
    }
}
