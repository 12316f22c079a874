//! `ocishim pull`, `run` of an image by name with a pull, `login`/`logout` and the settings
//! file, against a real local registry (Debian's docker-registry, tests/common/registry.rs)
//! that skopeo fills. Every test has its own registry and ocishim installation; the
//! registry's access log tells what was downloaded. Nothing leaves 127.0.0.1 (the test
//! that names a Docker Hub image runs in a network namespace that has only loopback).

mod common;
#[path = "common/registry.rs"]
mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{stderr, stdout, Bounded, Env};
use registry::{busybox_oci, free_port, http_get, image, output_within, Registry};
use serde_json::Value;

/// The longest any one ocishim command may take (a pull of a small image from loopback,
/// or a run): past it the command is killed and the test fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(60);

/// An ocishim command of this env with DOCKER_CONFIG set, run where `reg` is reachable.
fn shim(env: &Env, reg: &Registry, docker_config: &Path, args: &[&str]) -> Command {
    let mut c = env.cmd(args);
    c.env("DOCKER_CONFIG", docker_config);
    reg.wrap(c)
}

/// One test's ocishim installation, registry and docker config directory.
struct Ctx {
    env: Env,
    reg: Registry,
    docker_config: tempfile::TempDir,
}

impl Ctx {
    fn new(reg: Registry) -> Ctx {
        Ctx {
            env: Env::new(),
            reg,
            docker_config: tempfile::tempdir().unwrap(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        shim(&self.env, &self.reg, self.docker_config.path(), args)
    }

    fn out(&self, args: &[&str]) -> Output {
        output_within(&mut self.cmd(args), None, LIMIT)
    }

    /// Run and require success; stdout trimmed.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.out(args);
        assert!(
            o.status.success(),
            "ocishim {args:?} failed ({}): {}\n{}",
            o.status,
            stderr(&o),
            self.reg.logs()
        );
        stdout(&o).trim().to_string()
    }

    /// Run and require docker's failure: 125 and one line on stderr (returned).
    fn fail(&self, args: &[&str]) -> String {
        one_line_125(&self.out(args), args)
    }

    /// "127.0.0.1:PORT/NAME".
    fn r(&self, name: &str) -> String {
        self.reg.reference(name)
    }

    fn config_json(&self) -> PathBuf {
        self.docker_config.path().join("config.json")
    }
}

fn one_line_125(o: &Output, args: &[&str]) -> String {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(125),
        "ocishim {args:?}: want exit 125, got {} (stdout {:?}, stderr {err:?})",
        o.status,
        stdout(o)
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "ocishim {args:?}: want one line on stderr, got {err:?}"
    );
    lines[0].to_string()
}

/// docker's short layer ID: the first 12 hex digits of the blob digest.
fn short(digest: &str) -> &str {
    &digest.trim_start_matches("sha256:")[..12]
}

fn inspect_image(ctx: &Ctx, name: &str) -> Value {
    let out = ctx.ok(&["image", "inspect", name]);
    let v: Value = serde_json::from_str(&out).expect("image inspect prints JSON");
    assert_eq!(v.as_array().map(|a| a.len()), Some(1), "{v}");
    v[0].clone()
}

/// An image whose top layer holds /marker with `text` (the base layer is busybox's).
fn marked(text: &str) -> PathBuf {
    image(&format!("busybox-marker-{text}.tar"), &["--marker", text])
}

/// zstd layers (busybox's, then /marker holding "zstd").
fn zstd_image() -> PathBuf {
    image(
        "busybox-zstd.tar",
        &["--compression", "zstd", "--marker", "zstd"],
    )
}

fn multi_platform() -> PathBuf {
    image(
        "busybox-multi.tar",
        &["--platforms", "linux/amd64,linux/arm64"],
    )
}

// ---------------------------------------------------------------------------------------
// The harness itself (works without ocishim's pull: these pass on their own).

#[test]
fn harness_smoke_plain_registry() {
    let reg = Registry::start();
    assert_eq!(http_get(reg.port, "/v2/"), Some(200));
    let digest = reg.push(&busybox_oci(), "smoke/busybox:latest", &[]);
    let m = reg.manifest("smoke/busybox:latest");
    let (config, layers) = Registry::blobs_of(&m);
    assert_eq!(layers.len(), 1);
    assert!(reg.blob_path(&layers[0]).is_file());
    assert_eq!(reg.manifest(&format!("smoke/busybox@{digest}")), m);
    // The push only HEADs and uploads: no blob GET counted yet.
    assert_eq!(reg.blob_gets(""), 0, "{}", reg.logs());
    assert!(reg.requests().iter().any(|r| r.method == "HEAD"));
    // Each copy into a layout of its own (skopeo skips a blob the layout has).
    let copy = || {
        let out = tempfile::tempdir().unwrap();
        reg.skopeo(&[
            "copy".into(),
            "-q".into(),
            "--src-tls-verify=false".into(),
            format!("docker://{}", reg.reference("smoke/busybox:latest")),
            format!("oci:{}:x", out.path().display()),
        ])
    };
    let o = copy();
    assert!(o.status.success(), "{}", stderr(&o));
    // One line per request: exactly one GET of each blob.
    assert_eq!(reg.blob_gets(&config), 1, "{}", reg.logs());
    assert_eq!(reg.blob_gets(&layers[0]), 1, "{}", reg.logs());
    assert_eq!(reg.blob_gets("smoke/busybox/blobs/"), 2);
    assert_eq!(reg.blob_gets("other/blobs/"), 0);
    assert!(reg.manifest_requests("smoke/busybox") >= 1);

    // The other flavours of push.
    let idx = reg.push(&multi_platform(), "smoke/multi:latest", &["--all"]);
    let index = reg.manifest("smoke/multi:latest");
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");
    assert_eq!(reg.manifest(&format!("smoke/multi@{idx}")), index);
    let amd = reg.image_manifest("smoke/multi", "smoke/multi:latest", "amd64");
    let arm = reg.image_manifest("smoke/multi", "smoke/multi:latest", "arm64");
    assert_ne!(amd, arm);
    let plain = image("busybox-plain.tar", &["--compression", "none"]);
    reg.push(&plain, "smoke/plain:latest", &[]);
    let pm = reg.manifest("smoke/plain:latest");
    assert_eq!(
        pm["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    reg.push(&zstd_image(), "smoke/zstd:latest", &[]);
    assert_eq!(
        reg.manifest("smoke/zstd:latest")["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    reg.push(&busybox_oci(), "smoke/v2s2:latest", &["--format", "v2s2"]);
    assert_eq!(
        reg.manifest("smoke/v2s2:latest")["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );

    // A corrupted blob: same size, and skopeo refuses it.
    let size = std::fs::metadata(reg.blob_path(&layers[0])).unwrap().len();
    reg.corrupt_blob(&layers[0]);
    assert_eq!(
        std::fs::metadata(reg.blob_path(&layers[0])).unwrap().len(),
        size
    );
    let o = copy();
    assert!(!o.status.success(), "skopeo copied a corrupted blob");
    assert!(
        stderr(&o).contains(layers[0].trim_start_matches("sha256:")),
        "{}",
        stderr(&o)
    );

    // A port nothing listens on answers nothing.
    assert_eq!(http_get(free_port(), "/v2/"), None);
    assert_stops(reg, &["docker-registry"]);
}

/// Dropping the registry stops its processes and removes its directory.
fn assert_stops(reg: Registry, comms: &[&str]) {
    let pids = reg.pids();
    let names: Vec<String> = pids
        .iter()
        .map(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .collect();
    for c in comms {
        assert!(names.iter().any(|n| n == c), "no {c} among {names:?}");
    }
    let (dir, port) = (reg.dir.path().to_path_buf(), reg.port);
    drop(reg);
    for p in pids {
        assert!(
            !Path::new(&format!("/proc/{p}")).exists(),
            "process {p} still there"
        );
    }
    assert!(!dir.exists(), "{} left", dir.display());
    assert_eq!(http_get(port, "/v2/"), None);
}

#[test]
fn harness_smoke_token_registry() {
    let reg = Registry::start_token("tokenuser", "s3cret-token");
    assert_eq!(http_get(reg.port, "/v2/"), Some(401));
    let src = format!("oci-archive:{}", busybox_oci().display());
    let dest = format!("docker://{}", reg.reference("tok/busybox:latest"));
    let o = reg.skopeo(&[
        "copy".into(),
        "--dest-tls-verify=false".into(),
        src.clone(),
        dest.clone(),
    ]);
    assert!(!o.status.success(), "pushed without credentials");
    let o = reg.skopeo(&[
        "copy".into(),
        "--dest-tls-verify=false".into(),
        "--dest-creds=tokenuser:wrong".into(),
        src,
        dest.clone(),
    ]);
    assert!(!o.status.success(), "pushed with a wrong password");
    let (ok0, refused0) = reg.token_requests();
    assert_eq!(ok0, 0);
    assert!(refused0 >= 2, "{}", reg.logs());
    reg.push(&busybox_oci(), "tok/busybox:latest", &[]);
    let (config, layers) = Registry::blobs_of(&reg.manifest("tok/busybox:latest"));
    let (ok1, _) = reg.token_requests();
    assert!(ok1 >= 2, "{}", reg.logs());
    let inspect = |creds: Option<&str>| {
        let mut a = vec!["inspect".to_string(), "--tls-verify=false".into()];
        if let Some(c) = creds {
            a.push(format!("--creds={c}"));
        }
        a.push(dest.clone());
        reg.skopeo(&a)
    };
    assert!(inspect(Some("tokenuser:s3cret-token")).status.success());
    let o = inspect(Some("tokenuser:nope"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("unauthorized"), "{}", stderr(&o));
    assert!(!inspect(None).status.success());
    // (skopeo inspect read the config blob.)
    let config_gets = reg.blob_gets(&config);
    let out = tempfile::tempdir().unwrap();
    let o = reg.skopeo(&[
        "copy".into(),
        "-q".into(),
        "--src-tls-verify=false".into(),
        "--src-creds=tokenuser:s3cret-token".into(),
        dest.clone(),
        format!("oci:{}:x", out.path().display()),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // 401s (before the token) are not counted: one GET of each blob.
    assert_eq!(reg.blob_gets(&config), config_gets + 1, "{}", reg.logs());
    assert_eq!(reg.blob_gets(&layers[0]), 1, "{}", reg.logs());
    assert!(reg.token_requests().0 > ok1);
    assert_stops(reg, &["docker-registry", "python3"]);
}

#[test]
fn harness_smoke_htpasswd_registry() {
    let reg = Registry::start_htpasswd("basicuser", "s3cret-basic");
    assert_eq!(http_get(reg.port, "/v2/"), Some(401));
    let dest = format!("docker://{}", reg.reference("basic/busybox:latest"));
    let o = reg.skopeo(&[
        "copy".into(),
        "--dest-tls-verify=false".into(),
        format!("oci-archive:{}", busybox_oci().display()),
        dest.clone(),
    ]);
    assert!(!o.status.success(), "pushed without credentials");
    reg.push(&busybox_oci(), "basic/busybox:latest", &[]);
    let inspect = |creds: Option<&str>| {
        let mut a = vec!["inspect".to_string(), "--tls-verify=false".into()];
        if let Some(c) = creds {
            a.push(format!("--creds={c}"));
        }
        a.push(dest.clone());
        reg.skopeo(&a)
    };
    assert!(inspect(Some("basicuser:s3cret-basic")).status.success());
    assert!(!inspect(Some("basicuser:nope")).status.success());
    assert!(!inspect(None).status.success());
    // The one successful inspect read the config blob; the refused ones read nothing.
    let (config, layers) = Registry::blobs_of(&reg.manifest("basic/busybox:latest"));
    assert_eq!(reg.blob_gets(&config), 1, "{}", reg.logs());
    assert_eq!(reg.blob_gets(&layers[0]), 0);
    assert!(reg
        .requests()
        .iter()
        .any(|r| r.status == 401 && r.path.contains("/manifests/")));
    assert_stops(reg, &["docker-registry"]);
}

#[test]
fn harness_smoke_isolated_registry() {
    let reg = Registry::start_isolated();
    // Not reachable from the host's namespace; only loopback, no route, inside.
    assert_eq!(http_get(reg.port, "/v2/"), None);
    let mut ip = Command::new("ip");
    ip.args(["-4", "route", "show"]);
    let o = reg.wrap(ip).bounded();
    assert!(o.status.success());
    assert_eq!(stdout(&o).trim(), "", "routes in the test namespace");
    reg.push(&busybox_oci(), "library/busybox:latest", &[]);
    assert!(reg.manifest("library/busybox:latest")["layers"].is_array());
    assert!(reg.manifest_requests("library/busybox") >= 1);
    assert_stops(reg, &["docker-registry", "sleep"]);
}

// ---------------------------------------------------------------------------------------
// pull

#[test]
fn pull_prints_docker_lines_stores_the_image_and_pulls_nothing_twice() {
    let ctx = Ctx::new(Registry::start());
    let digest = ctx.reg.push(&busybox_oci(), "busybox:latest", &[]);
    let (config, layers) = Registry::blobs_of(&ctx.reg.manifest("busybox:latest"));
    let r = ctx.r("busybox:latest");

    let out = ctx.ok(&["pull", &r]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "latest: Pulling from busybox", "{out}");
    assert!(
        lines.contains(&format!("{}: Pull complete", short(&layers[0])).as_str()),
        "{out}"
    );
    assert!(
        lines.contains(&format!("Digest: {digest}").as_str()),
        "{out}"
    );
    assert!(
        lines.contains(&format!("Status: Downloaded newer image for {r}").as_str()),
        "{out}"
    );
    assert_eq!(*lines.last().unwrap(), r, "{out}");
    assert_eq!(ctx.reg.blob_gets(&config), 1, "{}", ctx.reg.logs());
    assert_eq!(ctx.reg.blob_gets(&layers[0]), 1, "{}", ctx.reg.logs());

    // Stored: listed, inspected in docker's shape.
    let images = ctx.ok(&["images"]);
    let row = images
        .lines()
        .find(|l| l.starts_with(&ctx.r("busybox")))
        .unwrap_or_else(|| panic!("not listed: {images}"));
    assert_eq!(row.split_whitespace().nth(1), Some("latest"), "{images}");
    let v = inspect_image(&ctx, &r);
    assert_eq!(v["Id"], config.as_str(), "{v}");
    assert_eq!(v["RepoTags"], serde_json::json!([r]), "{v}");
    assert_eq!(
        v["RepoDigests"],
        serde_json::json!([format!("{}@{digest}", ctx.r("busybox"))]),
        "{v}"
    );
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(v["RootFS"]["Layers"].as_array().map(|l| l.len()), Some(1));
    assert!(v["Size"].as_u64().unwrap_or(0) > 0, "{v}");

    // Again: the manifest is asked for, no blob downloaded.
    let manifests = ctx.reg.manifest_requests("busybox");
    let out = ctx.ok(&["pull", &r]);
    assert!(
        out.lines()
            .any(|l| l == format!("Status: Image is up to date for {r}")),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some(r.as_str()));
    assert!(ctx.reg.manifest_requests("busybox") > manifests);
    assert_eq!(ctx.reg.blob_gets(""), 2, "{}", ctx.reg.logs());

    // -q: the reference only.
    assert_eq!(ctx.ok(&["pull", "-q", &r]), r);
    assert_eq!(ctx.reg.blob_gets(""), 2);

    // And it runs by that name, without asking the registry again.
    let before = ctx.reg.requests().len();
    assert_eq!(ctx.ok(&["run", "--rm", &r, "echo", "ok"]), "ok");
    assert_eq!(ctx.reg.requests().len(), before, "{}", ctx.reg.logs());
    ctx.env.assert_empty();
}

#[test]
fn pull_by_digest() {
    let ctx = Ctx::new(Registry::start());
    let digest = ctx.reg.push(&busybox_oci(), "bydigest:v1", &[]);
    let by_digest = ctx.r(&format!("bydigest@{digest}"));
    assert_eq!(ctx.ok(&["pull", "-q", &by_digest]), by_digest);
    assert_eq!(ctx.reg.blob_gets(""), 2, "{}", ctx.reg.logs());
    let v = inspect_image(&ctx, &by_digest);
    assert!(
        v["RepoDigests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == by_digest.as_str()),
        "{v}"
    );
    assert_eq!(ctx.ok(&["run", "--rm", &by_digest, "echo", "ok"]), "ok");
    // Pulled again: up to date, nothing downloaded.
    let out = ctx.ok(&["pull", &by_digest]);
    assert!(out.contains("Status: Image is up to date for"), "{out}");
    assert_eq!(ctx.reg.blob_gets(""), 2);
}

#[test]
fn pull_a_layer_already_in_the_store_is_not_downloaded() {
    let ctx = Ctx::new(Registry::start());
    ctx.reg.push(&busybox_oci(), "base:latest", &[]);
    ctx.reg.push(&marked("already"), "top:latest", &[]);
    let (_, base_layers) = Registry::blobs_of(&ctx.reg.manifest("base:latest"));
    let (top_config, top_layers) = Registry::blobs_of(&ctx.reg.manifest("top:latest"));
    assert_eq!(top_layers.len(), 2);
    assert_eq!(
        top_layers[0], base_layers[0],
        "the images share busybox's layer"
    );
    ctx.ok(&["pull", &ctx.r("base:latest")]);
    let out = ctx.ok(&["pull", &ctx.r("top:latest")]);
    assert!(
        out.lines()
            .any(|l| l == format!("{}: Already exists", short(&top_layers[0]))),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l == format!("{}: Pull complete", short(&top_layers[1]))),
        "{out}"
    );
    assert_eq!(ctx.reg.blob_gets(&base_layers[0]), 1, "{}", ctx.reg.logs());
    assert_eq!(ctx.reg.blob_gets(&top_layers[1]), 1);
    assert_eq!(ctx.reg.blob_gets(&top_config), 1);
    assert_eq!(
        ctx.ok(&["run", "--rm", &ctx.r("top:latest"), "cat", "/marker"]),
        "already"
    );
}

#[test]
fn pull_gzip_zstd_uncompressed_and_docker_v2s2_images_and_run_them() {
    let ctx = Ctx::new(Registry::start());
    ctx.reg.push(&zstd_image(), "zstd:latest", &[]);
    ctx.reg.push(&busybox_oci(), "gzip:latest", &[]);
    let plain = image("busybox-plain.tar", &["--compression", "none"]);
    ctx.reg.push(&plain, "plain:latest", &[]);
    ctx.reg
        .push(&marked("v2s2"), "v2s2:latest", &["--format", "v2s2"]);
    assert_eq!(
        ctx.reg.manifest("plain:latest")["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    assert_eq!(
        ctx.reg.manifest("gzip:latest")["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let v2 = ctx.reg.manifest("v2s2:latest");
    assert_eq!(
        v2["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    for l in v2["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "{v2}"
        );
    }
    for repo in ["gzip", "zstd", "plain", "v2s2"] {
        let r = ctx.r(&format!("{repo}:latest"));
        assert_eq!(ctx.ok(&["pull", "-q", &r]), r);
        assert_eq!(
            ctx.ok(&["run", "--rm", &r, "echo", "ok"]),
            "ok",
            "{repo} image"
        );
        let v = inspect_image(&ctx, &r);
        assert_eq!(v["Architecture"], "amd64", "{repo}: {v}");
    }
    assert_eq!(
        ctx.reg.manifest("zstd:latest")["layers"][1]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    assert_eq!(
        ctx.ok(&["run", "--rm", &ctx.r("zstd:latest"), "cat", "/marker"]),
        "zstd"
    );
    // Each blob was fetched at most once (the same tree in several compressions may be
    // stored once: that is the store's business).
    for repo in ["gzip", "zstd", "plain", "v2s2"] {
        let (config, layers) = Registry::blobs_of(&ctx.reg.manifest(&format!("{repo}:latest")));
        for b in std::iter::once(&config).chain(&layers) {
            assert!(
                ctx.reg.blob_gets(b) <= 1,
                "{repo}: {b} fetched more than once\n{}",
                ctx.reg.logs()
            );
        }
    }
    ctx.env.assert_empty();
}

#[test]
fn pull_picks_the_platform_of_an_index() {
    let ctx = Ctx::new(Registry::start());
    let index = ctx.reg.push(&multi_platform(), "multi:latest", &["--all"]);
    let amd = ctx.reg.image_manifest("multi", "multi:latest", "amd64");
    let arm = ctx.reg.image_manifest("multi", "multi:latest", "arm64");
    let (amd_config, amd_layers) = Registry::blobs_of(&amd);
    let (arm_config, arm_layers) = Registry::blobs_of(&arm);
    let r = ctx.r("multi:latest");

    let out = ctx.ok(&["pull", &r]);
    // docker prints (and records) the digest of the index it pulled by tag.
    assert!(
        out.lines().any(|l| l == format!("Digest: {index}")),
        "{out}"
    );
    let v = inspect_image(&ctx, &r);
    assert_eq!(v["Architecture"], "amd64", "{v}");
    assert_eq!(v["Id"], amd_config.as_str(), "{v}");
    assert_eq!(
        v["RepoDigests"],
        serde_json::json!([format!("{}@{index}", ctx.r("multi"))])
    );
    assert_eq!(
        ctx.ok(&["run", "--rm", &r, "cat", "/platform"]),
        "linux/amd64"
    );
    // Nothing of arm64's was downloaded.
    assert_eq!(ctx.reg.blob_gets(&arm_config), 0, "{}", ctx.reg.logs());
    assert_eq!(ctx.reg.blob_gets(arm_layers.last().unwrap()), 0);
    assert_eq!(ctx.reg.blob_gets(amd_layers.last().unwrap()), 1);

    // --platform linux/arm64 (in a fresh installation): arm64's image.
    let env2 = Env::new();
    let o = output_within(
        &mut shim(
            &env2,
            &ctx.reg,
            ctx.docker_config.path(),
            &["pull", "-q", "--platform", "linux/arm64", &r],
        ),
        None,
        LIMIT,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), r);
    let o = output_within(
        &mut shim(
            &env2,
            &ctx.reg,
            ctx.docker_config.path(),
            &["image", "inspect", &r],
        ),
        None,
        LIMIT,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["Architecture"], "arm64", "{v}");
    assert_eq!(v[0]["Id"], arm_config.as_str(), "{v}");
    assert_eq!(ctx.reg.blob_gets(&arm_config), 1);
    assert_eq!(ctx.reg.blob_gets(arm_layers.last().unwrap()), 1);
}

#[test]
fn pull_errors_are_one_line_and_exit_125() {
    let ctx = Ctx::new(Registry::start());
    ctx.reg.push(&busybox_oci(), "busybox:latest", &[]);

    // A registry that is not there: a quick, clear error.
    let closed = format!("127.0.0.1:{}/busybox:latest", free_port());
    let t = Instant::now();
    let line = ctx.fail(&["pull", &closed]);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    assert!(line.contains("127.0.0.1:"), "{line}");

    // A tag or a repository the registry does not have.
    let line = ctx.fail(&["pull", &ctx.r("busybox:nope")]);
    assert!(
        line.contains("not found") || line.contains("unknown"),
        "{line}"
    );
    let line = ctx.fail(&["pull", &ctx.r("nothere:latest")]);
    assert!(
        line.contains("not found") || line.contains("unknown"),
        "{line}"
    );
    let missing = format!("sha256:{}", "0".repeat(64));
    ctx.fail(&["pull", &ctx.r(&format!("busybox@{missing}"))]);
    assert_eq!(ctx.ok(&["images", "-q"]), "");
    assert_eq!(ctx.reg.blob_gets(""), 0, "{}", ctx.reg.logs());
}

#[test]
fn pull_of_a_corrupted_blob_fails_and_leaves_nothing() {
    let ctx = Ctx::new(Registry::start());
    ctx.reg.push(&busybox_oci(), "corrupt:latest", &[]);
    let (_, layers) = Registry::blobs_of(&ctx.reg.manifest("corrupt:latest"));
    assert_eq!(layers.len(), 1);
    ctx.reg.corrupt_blob(&layers[0]);
    let r = ctx.r("corrupt:latest");
    let line = ctx.fail(&["pull", &r]);
    assert!(
        line.contains(layers[0].trim_start_matches("sha256:")),
        "the error names the blob {}: {line}",
        layers[0]
    );
    assert!(ctx.reg.blob_gets(&layers[0]) >= 1, "{}", ctx.reg.logs());
    assert_eq!(ctx.ok(&["images", "-q"]), "");
    let store = ctx.env.data_root.join("image");
    let entries = |d: &str| -> Vec<String> {
        std::fs::read_dir(store.join(d))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(entries("tmp"), Vec::<String>::new(), "image/tmp not empty");
    assert_eq!(entries("layers"), Vec::<String>::new(), "layers left");
    assert_eq!(
        entries("images"),
        Vec::<String>::new(),
        "image records left"
    );
    // run pulls too, and fails the same way.
    let o = ctx.out(&["run", "--rm", &r, "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert_eq!(ctx.ok(&["images", "-q"]), "");
    ctx.env.assert_empty();
}

#[test]
fn a_blob_longer_than_its_descriptor_is_cut_off() {
    // A hostile registry may stream forever: the descriptor's size is all that is read.
    let ctx = Ctx::new(Registry::start());
    ctx.reg.push(&busybox_oci(), "long:latest", &[]);
    let (_, layers) = Registry::blobs_of(&ctx.reg.manifest("long:latest"));
    let p = ctx.reg.blob_path(&layers[0]);
    let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
    std::io::Write::write_all(&mut f, &vec![0u8; 4 << 20]).unwrap();
    drop(f);
    let line = ctx.fail(&["pull", &ctx.r("long:latest")]);
    assert!(
        line.contains(layers[0].trim_start_matches("sha256:")) && line.contains("longer than"),
        "{line}"
    );
    assert_eq!(ctx.ok(&["images", "-q"]), "");
    let tmp = ctx.env.data_root.join("image/tmp");
    assert_eq!(std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0), 0);
    ctx.env.assert_empty();
}

// ---------------------------------------------------------------------------------------
// run IMAGE with --pull

#[test]
fn run_pulls_a_missing_image_per_the_pull_policy() {
    let ctx = Ctx::new(Registry::start());
    ctx.reg.push(&busybox_oci(), "runpull:latest", &[]);
    let (config, layers) = Registry::blobs_of(&ctx.reg.manifest("runpull:latest"));
    let r = ctx.r("runpull:latest");

    // never: docker's message, 125, nothing asked of the registry.
    let asked = ctx.reg.requests().len();
    let o = ctx.out(&["run", "--rm", "--pull", "never", &r, "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("Unable to find image '{r}' locally")),
        "{}",
        stderr(&o)
    );
    assert_eq!(ctx.reg.requests().len(), asked, "{}", ctx.reg.logs());

    // missing (the default): pulled once, then used.
    let o = ctx.out(&["run", "--rm", &r, "echo", "ok"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "ok", "pull progress goes to stderr");
    assert!(
        stderr(&o).contains(&format!("Unable to find image '{r}' locally")),
        "{}",
        stderr(&o)
    );
    assert!(ctx.ok(&["images", "-q"]).lines().count() == 1);
    let manifests = ctx.reg.manifest_requests("runpull");
    assert!(manifests >= 1);
    assert_eq!(ctx.reg.blob_gets(&config), 1);
    assert_eq!(ctx.reg.blob_gets(&layers[0]), 1);
    assert_eq!(
        ctx.ok(&["run", "--rm", "--pull", "missing", &r, "echo", "ok"]),
        "ok"
    );
    assert_eq!(ctx.reg.manifest_requests("runpull"), manifests);

    // always: the manifest again, no blob again.
    assert_eq!(
        ctx.ok(&["run", "--rm", "--pull", "always", &r, "echo", "ok"]),
        "ok"
    );
    assert!(ctx.reg.manifest_requests("runpull") > manifests);
    assert_eq!(ctx.reg.blob_gets(""), 2, "{}", ctx.reg.logs());

    // never, now that it is there: runs.
    assert_eq!(
        ctx.ok(&["run", "--rm", "--pull", "never", &r, "echo", "ok"]),
        "ok"
    );
    ctx.env.assert_empty();
}

#[test]
fn parallel_runs_of_a_missing_image_download_each_blob_once() {
    let ctx = Ctx::new(Registry::start());
    let layered = image("busybox-3-layers.tar", &["--layers", "3"]);
    ctx.reg.push(&layered, "parallel:latest", &[]);
    let (config, layers) = Registry::blobs_of(&ctx.reg.manifest("parallel:latest"));
    assert_eq!(layers.len(), 3);
    let r = ctx.r("parallel:latest");
    let outputs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|_| s.spawn(|| ctx.out(&["run", "--rm", &r, "true"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, o) in outputs.iter().enumerate() {
        assert!(o.status.success(), "run {i}: {}", stderr(o));
    }
    for b in std::iter::once(&config).chain(&layers) {
        assert_eq!(ctx.reg.blob_gets(b), 1, "{b}\n{}", ctx.reg.logs());
    }
    assert_eq!(ctx.reg.blob_gets(""), 4);
    assert_eq!(ctx.ok(&["images", "-q"]).lines().count(), 1);
    ctx.env.assert_empty();
}

// ---------------------------------------------------------------------------------------
// login, logout, credentials

fn auths(ctx: &Ctx) -> Value {
    let text = std::fs::read_to_string(ctx.config_json()).unwrap_or_else(|_| "{}".into());
    let v: Value = serde_json::from_str(&text).expect("config.json is JSON");
    v["auths"].clone()
}

fn b64(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `login --password-stdin -u USER SERVER` with `password` on stdin.
fn login_stdin(ctx: &Ctx, user: &str, password: &str) -> Output {
    let host = ctx.reg.host();
    let mut c = ctx.cmd(&["login", "--password-stdin", "-u", user, &host]);
    output_within(&mut c, Some(format!("{password}\n").as_bytes()), LIMIT)
}

/// login (wrong password, then right), pull, logout, pull refused: for either auth.
fn login_pull_logout(ctx: &Ctx, user: &str, password: &str) {
    let host = ctx.reg.host();
    ctx.reg.push(&busybox_oci(), "private/busybox:latest", &[]);
    let r = ctx.r("private/busybox:latest");
    // Another registry's entry, which login and logout keep.
    let other = serde_json::json!({"auths": {"127.0.0.9:1": {"auth": b64("x:y")}}});
    std::fs::write(ctx.config_json(), other.to_string()).unwrap();
    let before = std::fs::read(ctx.config_json()).unwrap();

    // Anonymous: refused.
    let line = ctx.fail(&["pull", &r]);
    let l = line.to_lowercase();
    assert!(
        l.contains("unauthorized") || l.contains("authentication"),
        "{line}"
    );

    // A wrong password: 125 (stderr may also carry docker's warning about -p), config.json
    // untouched.
    let o = ctx.out(&["login", "-u", user, "-p", "wrong-password", &host]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(!stdout(&o).contains("Login Succeeded"));
    assert_eq!(std::fs::read(ctx.config_json()).unwrap(), before);

    let out = ctx.ok(&["login", "-u", user, "-p", password, &host]);
    assert_eq!(out.lines().last(), Some("Login Succeeded"), "{out}");
    let a = auths(ctx);
    assert_eq!(
        a[&host]["auth"],
        b64(&format!("{user}:{password}")).as_str(),
        "{a}"
    );
    assert_eq!(a["127.0.0.9:1"]["auth"], b64("x:y").as_str());

    assert_eq!(ctx.ok(&["pull", "-q", &r]), r);
    assert_eq!(ctx.ok(&["run", "--rm", &r, "echo", "ok"]), "ok");

    let out = ctx.ok(&["logout", &host]);
    assert_eq!(out, format!("Removing login credentials for {host}"));
    let a = auths(ctx);
    assert!(a.get(&host).is_none(), "{a}");
    assert_eq!(a["127.0.0.9:1"]["auth"], b64("x:y").as_str());
    let line = ctx.fail(&["pull", &r]);
    let l = line.to_lowercase();
    assert!(
        l.contains("unauthorized") || l.contains("authentication"),
        "{line}"
    );

    // --password-stdin.
    let o = login_stdin(ctx, user, password);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim().lines().last(), Some("Login Succeeded"));
    assert_eq!(
        auths(ctx)[&host]["auth"],
        b64(&format!("{user}:{password}")).as_str()
    );
    assert_eq!(ctx.ok(&["pull", "-q", &r]), r);
    ctx.ok(&["logout", &host]);
}

#[test]
fn login_pull_logout_with_token_auth() {
    let ctx = Ctx::new(Registry::start_token("alice", "token-pass-1"));
    let (before, _) = ctx.reg.token_requests();
    login_pull_logout(&ctx, "alice", "token-pass-1");
    let (after, refused) = ctx.reg.token_requests();
    assert!(after > before, "no token was fetched\n{}", ctx.reg.logs());
    assert!(refused >= 1, "the wrong password reached the token server");
    ctx.env.assert_empty();
}

#[test]
fn login_pull_logout_with_basic_auth() {
    let ctx = Ctx::new(Registry::start_htpasswd("bob", "basic-pass-1"));
    login_pull_logout(&ctx, "bob", "basic-pass-1");
    assert!(
        ctx.reg
            .requests()
            .iter()
            .any(|q| q.path.contains("/manifests/") && q.status == 200),
        "{}",
        ctx.reg.logs()
    );
    ctx.env.assert_empty();
}

// ---------------------------------------------------------------------------------------
// the settings file

#[test]
fn settings_file_registry_mirror_serves_docker_hub_names() {
    // An isolated namespace: if the mirror were not used, Docker Hub is unreachable.
    let ctx = Ctx::new(Registry::start_isolated());
    ctx.reg.push(&busybox_oci(), "library/busybox:latest", &[]);
    let (config, layers) = Registry::blobs_of(&ctx.reg.manifest("library/busybox:latest"));
    let settings = ctx.docker_config.path().join("settings.json");
    std::fs::write(
        &settings,
        serde_json::json!({
            "registry-mirrors": [format!("http://{}", ctx.reg.host())],
            "insecure-registries": [ctx.reg.host()],
            "max-concurrent-downloads": 3,
        })
        .to_string(),
    )
    .unwrap();
    let s = settings.to_str().unwrap();
    let manifests = ctx.reg.manifest_requests("library/busybox");
    let out = ctx.ok(&["--config", s, "pull", "busybox"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("Status: Downloaded newer image for")),
        "{out}"
    );
    assert!(
        ctx.reg.manifest_requests("library/busybox") > manifests,
        "{}",
        ctx.reg.logs()
    );
    assert_eq!(ctx.reg.blob_gets(&config), 1);
    assert_eq!(ctx.reg.blob_gets(&layers[0]), 1);
    let images = ctx.ok(&["images"]);
    let row = images.lines().nth(1).unwrap_or_default();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cols[..2], &["busybox", "latest"], "{images}");
    let v = inspect_image(&ctx, "busybox");
    assert_eq!(v["RepoTags"], serde_json::json!(["busybox:latest"]), "{v}");
    assert_eq!(v["Id"], config.as_str());
    // Up to date on the second pull, through the mirror again.
    let out = ctx.ok(&["--config", s, "pull", "busybox"]);
    assert!(out.contains("Status: Image is up to date for"), "{out}");
    assert_eq!(ctx.reg.blob_gets(""), 2);
}
