//! `version` and `info`: docker's objects (the fields schedulers read), printed as docker
//! prints them, as JSON, or through a `--format` template.

use std::io::Write;

use serde_json::{json, Value};

use super::output::Format;
use crate::container::{self, Context};
use crate::error::Error;
use crate::runtime::Runtime;

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Engine API version whose objects ocishim's output follows (docker 20.10's).
const API_VERSION: &str = "1.41";

/// `--format json` is docker's shorthand for `{{json .}}`.
fn format_of(f: Option<&str>) -> Result<Option<Format>, Error> {
    match f {
        None => Ok(None),
        Some("json") => Ok(Some(Format::Json)),
        Some(t) => Format::parse(Some(t)).map(Some),
    }
}

fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The first line of `RUNTIME --version`'s version ("1.1.5"), or "" when it cannot run.
fn runtime_version(rt: &Runtime) -> String {
    std::process::Command::new(rt.path())
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let first = text.lines().next()?.to_string();
            Some(first.rsplit(' ').next().unwrap_or(&first).to_string())
        })
        .unwrap_or_default()
}

/// The `version` object: {Client, Server}, as docker's CLI builds it.
fn version_object(ctx: &Context, with_server: bool) -> Value {
    let arch = crate::sys::go_arch();
    let client = json!({
        "Platform": { "Name": "ocishim" },
        "Version": VERSION,
        "ApiVersion": API_VERSION,
        "DefaultAPIVersion": API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": arch,
        "BuildTime": "",
        "Context": "default",
        "Experimental": true,
    });
    if !with_server {
        return json!({ "Client": client });
    }
    let kernel = kernel_release();
    let mut components = vec![json!({
        "Name": "Engine",
        "Version": VERSION,
        "Details": { "ApiVersion": API_VERSION, "Os": "linux", "Arch": arch, "KernelVersion": kernel },
    })];
    if let Ok(rt) = Runtime::new(&ctx.runtime, None) {
        components.push(json!({
            "Name": ctx.runtime,
            "Version": runtime_version(&rt),
            "Details": { "Path": rt.path().display().to_string() },
        }));
    }
    json!({
        "Client": client,
        "Server": {
            "Platform": { "Name": "ocishim (no daemon)" },
            "Components": components,
            "Version": VERSION,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": "1.12",
            "Os": "linux",
            "Arch": arch,
            "KernelVersion": kernel,
        },
    })
}

/// `version [--format F]`.
pub fn version(ctx: &Context, out: &mut dyn Write, format: Option<&str>) -> Result<i32, Error> {
    // The runtime is asked for its version only when the output may show the server
    // part (the invoker's `{{.Client.Version}}` does not).
    let with_server = format.is_none_or(|f| f.contains("Server") || !f.contains(".Client"));
    let format = format_of(format)?;
    let v = version_object(ctx, with_server);
    if let Some(f) = format {
        let _ = writeln!(out, "{}", f.line(&v)?);
        return Ok(0);
    }
    let c = &v["Client"];
    let s = &v["Server"];
    let _ = writeln!(out, "Client: ocishim");
    let _ = writeln!(
        out,
        " Version:           {}",
        c["Version"].as_str().unwrap_or("")
    );
    let _ = writeln!(out, " API version:       {API_VERSION}");
    let _ = writeln!(out, " OS/Arch:           linux/{}", crate::sys::go_arch());
    let _ = writeln!(out, " Context:           default");
    let _ = writeln!(out);
    let _ = writeln!(out, "Server: ocishim (no daemon)");
    for comp in s["Components"].as_array().into_iter().flatten() {
        let _ = writeln!(out, " {}:", comp["Name"].as_str().unwrap_or(""));
        let _ = writeln!(
            out,
            "  Version:          {}",
            comp["Version"].as_str().unwrap_or("")
        );
        if let Some(p) = comp["Details"]["Path"].as_str() {
            let _ = writeln!(out, "  Path:             {p}");
        }
        if let Some(k) = comp["Details"]["KernelVersion"].as_str() {
            let _ = writeln!(out, "  Kernel Version:   {k}");
        }
    }
    Ok(0)
}

fn os_release() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The `info` object: the fields of docker's that a scheduler or operator reads.
fn info_object(ctx: &Context) -> Result<Value, Error> {
    let states = container::list(ctx, true, None, &|r| {
        Some((r.state.status.is_running(), r.state.paused))
    })?;
    let running = states.iter().filter(|(up, paused)| *up && !paused).count();
    let paused = states.iter().filter(|(_, paused)| *paused).count();
    let images = container::images::list(ctx).map_or(0, |v| v.len());
    let mut runtimes = serde_json::Map::new();
    for name in ["runc", "crun"] {
        if let Ok(rt) = Runtime::new(name, None) {
            runtimes.insert(
                name.into(),
                json!({ "path": rt.path().display().to_string() }),
            );
        }
    }
    if !runtimes.contains_key(&ctx.runtime) {
        if let Ok(rt) = Runtime::new(&ctx.runtime, None) {
            runtimes.insert(
                ctx.runtime.clone(),
                json!({ "path": rt.path().display().to_string() }),
            );
        }
    }
    let uts = nix::sys::utsname::uname().ok();
    let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uts.as_ref()
            .map(|u| f(u).to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let data_root = std::path::absolute(ctx.store.data_root())
        .unwrap_or_else(|_| ctx.store.data_root().to_path_buf());
    let cgroup_version = match ctx.cgroups.version() {
        crate::cgroup::Version::V1 => "1",
        crate::cgroup::Version::V2 => "2",
    };
    Ok(json!({
        "ID": "",
        "Containers": states.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": states.len() - running - paused,
        "Images": images,
        "Driver": "overlayfs",
        "DriverStatus": [],
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version,
        "KernelVersion": field(|u| u.release()),
        "OperatingSystem": os_release(),
        "OSType": "linux",
        "Architecture": field(|u| u.machine()),
        "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "MemTotal": mem_total(),
        "DockerRootDir": data_root.display().to_string(),
        "Name": field(|u| u.nodename()),
        "ServerVersion": VERSION,
        "Runtimes": runtimes,
        "DefaultRuntime": ctx.runtime,
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "IndexServerAddress": "https://index.docker.io/v1/",
        "Warnings": null,
    }))
}

/// `info [--format F]`.
pub fn info(ctx: &Context, out: &mut dyn Write, format: Option<&str>) -> Result<i32, Error> {
    let format = format_of(format)?;
    let v = info_object(ctx)?;
    if let Some(f) = format {
        let _ = writeln!(out, "{}", f.line(&v)?);
        return Ok(0);
    }
    let s = |k: &str| match &v[k] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let _ = writeln!(out, "Client:\n Context:    default\n");
    let _ = writeln!(out, "Server:");
    let _ = writeln!(out, " Containers: {}", s("Containers"));
    let _ = writeln!(out, "  Running: {}", s("ContainersRunning"));
    let _ = writeln!(out, "  Paused: {}", s("ContainersPaused"));
    let _ = writeln!(out, "  Stopped: {}", s("ContainersStopped"));
    let _ = writeln!(out, " Images: {}", s("Images"));
    let _ = writeln!(out, " Server Version: {VERSION} (ocishim, no daemon)");
    let _ = writeln!(out, " Storage Driver: {}", s("Driver"));
    let _ = writeln!(out, " Logging Driver: json-file");
    let _ = writeln!(out, " Cgroup Driver: cgroupfs");
    let _ = writeln!(out, " Cgroup Version: {}", s("CgroupVersion"));
    let names: Vec<&String> = v["Runtimes"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .collect();
    let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    let _ = writeln!(out, " Runtimes: {}", names.join(" "));
    let _ = writeln!(out, " Default Runtime: {}", s("DefaultRuntime"));
    let _ = writeln!(out, " Security Options:\n  seccomp\n   Profile: builtin");
    let _ = writeln!(out, " Kernel Version: {}", s("KernelVersion"));
    let _ = writeln!(out, " Operating System: {}", s("OperatingSystem"));
    let _ = writeln!(out, " OSType: linux");
    let _ = writeln!(out, " Architecture: {}", s("Architecture"));
    let _ = writeln!(out, " CPUs: {}", s("NCPU"));
    let _ = writeln!(
        out,
        " Total Memory: {}",
        super::output::human_bytes(v["MemTotal"].as_u64().unwrap_or(0))
    );
    let _ = writeln!(out, " Name: {}", s("Name"));
    let _ = writeln!(out, " Docker Root Dir: {}", s("DockerRootDir"));
    Ok(0)
}
