//! `push` and `pull` against Debian's `docker-registry` (distribution
//! 2.8) on 127.0.0.1, started and stopped by each test; skopeo reads what
//! we push and pushes what we pull.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::platforms::image;
use crate::util::{OCI_INDEX, Store, have_tool, sh};

/// distribution 2.8 serving a directory on 127.0.0.1 (plain HTTP, no
/// auth); killed when dropped, also when the test panics.
pub(crate) struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) host: String,
    /// Its storage directory.
    data: std::path::PathBuf,
}

impl Registry {
    pub(crate) fn start(st: &Store) -> Registry {
        Registry::start_with(st, "")
    }

    /// With Basic auth: `user` and `password` in an htpasswd file (bcrypt).
    fn start_basic(st: &Store, user: &str, password: &str) -> Registry {
        let htpasswd = sh(Command::new("htpasswd").args(["-Bbn", user, password]));
        let path = st.file("htpasswd", htpasswd.as_bytes());
        let auth = format!(
            "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
            path.display()
        );
        Registry::start_with(st, &auth)
    }

    /// `extra` is more of the config (YAML at the top level).
    pub(crate) fn start_with(st: &Store, extra: &str) -> Registry {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let data = st.path("registry-data");
        let config = st.file(
            "registry.yml",
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n{extra}",
                data.display()
            )
            .as_bytes(),
        );
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run docker-registry serve");
        let reg = Registry { child, host, data };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&reg.host).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {}",
                reg.host
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Forgets which blobs the registries have (the hint of cross-run mounts),
/// so that the next push of `st` sends its blobs again.
pub(crate) fn forget_registry_blobs(st: &Store) {
    let Ok(dir) = std::fs::read_dir(st.layout.join(".epoch-store")) else {
        return;
    };
    for e in dir {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("registry-blobs-")
        {
            std::fs::remove_file(p).unwrap();
        }
    }
}

/// Runs `cmd` with `input` and a newline on its stdin; its output.
fn with_stdin(cmd: &mut Command, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails before reading stdin closes it: that is its answer.
    let _ = writeln!(child.stdin.take().unwrap(), "{input}");
    child.wait_with_output().unwrap()
}

/// A layout holding a snapshot (`snap:1`), an index of three platforms
/// (`multi:1`) and a files artifact (`files:1`).
pub(crate) fn fixture() -> (Store, std::path::PathBuf) {
    let s = Store::new();
    let dir = s.path("vm");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("memory-ranges"), crate::util::bytes(3 << 20, 1)).unwrap();
    std::fs::write(dir.join("state.json"), b"{\"vm\":1}").unwrap();
    s.ok(&[
        "pack",
        "snapshot",
        dir.to_str().unwrap(),
        "--ref",
        "snap:1",
        "--chunk-size",
        "1MiB",
        "--no-ch-config",
    ]);
    let entries: Vec<Value> = [
        ("linux", "amd64", ""),
        ("linux", "arm64", "v8"),
        ("linux", "arm", "v7"),
    ]
    .iter()
    .map(|(os, arch, v)| image(&s, os, arch, v))
    .collect();
    let index = serde_json::to_vec(
        &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
    )
    .unwrap();
    let d = s.put_raw(&index);
    let mut idx = s.index();
    let mut e = crate::util::desc(OCI_INDEX, &d, index.len());
    e["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "multi:1"});
    idx["manifests"].as_array_mut().unwrap().push(e);
    s.set_index(&idx);
    let notes = s.file("notes.md", b"# runbook\n");
    s.ok(&["add", "--ref", "files:1", notes.to_str().unwrap()]);
    (s, dir)
}

#[test]
fn what_we_push_skopeo_reads_byte_for_byte_and_we_pull_back_whole() {
    if !have_tool("docker-registry") || !have_tool("skopeo") {
        return;
    }
    let (s, vm) = fixture();
    let reg = Registry::start(&s);
    for (r, repo) in [
        ("snap:1", "vms/snap"),
        ("multi:1", "images/multi"),
        ("files:1", "misc/files"),
    ] {
        let digest = s.json(&["inspect", r])["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let dest = format!("{}/{repo}", reg.host);
        let out = s.json(&["push", r, &dest, "--plain-http"]);
        assert_eq!(out["digest"], digest.as_str(), "{r}");
        assert!(out["blobs"].as_u64().unwrap() > 0, "{r}: {out}");
        // skopeo sees our manifest's bytes under the tag from the ref.
        let raw = sh(Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{dest}:1"),
        ]));
        assert_eq!(
            crate::util::sha256(raw.as_bytes()),
            digest,
            "{r}: skopeo reads our bytes"
        );
        // Again: every blob is there already.
        let again = s.json(&["push", r, &dest, "--plain-http"]);
        assert_eq!(
            (again["blobs"].as_u64(), again["bytes"].as_u64()),
            (Some(0), Some(0)),
            "{r}: {again}"
        );
        // Pulled into a new layout: the same digest, verified.
        let back = Store::empty();
        let pulled = back.json(&["pull", &format!("{dest}:1"), "--plain-http", "--ref", r]);
        assert_eq!(pulled["digest"], digest.as_str(), "{r}");
        back.ok(&["verify"]);
        let ours = crate::util::independent_check(&s.layout, &[&digest], r);
        let theirs = crate::util::independent_check(&back.layout, &[&digest], r);
        assert_eq!(
            ours.reachable, theirs.reachable,
            "{r}: every blob came back"
        );
        if r == "snap:1" {
            let out = back.path("restored");
            back.ok(&["unpack", r, out.to_str().unwrap()]);
            let files = |d: &std::path::Path| -> Vec<(std::ffi::OsString, String)> {
                crate::util::snapshot_dir(d)
                    .into_iter()
                    .map(|(p, b)| (p.file_name().unwrap().to_owned(), crate::util::sha256(&b)))
                    .collect()
            };
            assert_eq!(
                files(&out),
                files(&vm),
                "the snapshot unpacks to the original files"
            );
        }
    }
}

#[test]
fn what_skopeo_pushes_we_pull_and_verify() {
    if !have_tool("docker-registry") || !have_tool("skopeo") || !have_tool("umoci") {
        return;
    }
    let s = Store::empty();
    let dir = s.layout.to_str().unwrap().to_string();
    sh(Command::new("umoci").args(["init", "--layout", &dir]));
    sh(Command::new("umoci").args(["new", "--image", &format!("{dir}:base")]));
    let hello = s.file("hello", b"#!/bin/sh\necho hi\n");
    sh(Command::new("umoci")
        .args(["insert", "--rootless", "--image", &format!("{dir}:base")])
        .arg(&hello)
        .arg("/hello"));
    let reg = Registry::start(&s);
    let dest = format!("docker://{}/lib/hello:v2", reg.host);
    sh(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{dir}:base"),
        &dest,
    ]));
    let back = Store::empty();
    let out = back.json(&[
        "pull",
        &format!("{}/lib/hello:v2", reg.host),
        "--plain-http",
    ]);
    assert_eq!(out["ref"], "lib/hello:v2");
    back.ok(&["verify"]);
    let raw = sh(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &dest]));
    assert_eq!(
        out["digest"].as_str().unwrap(),
        crate::util::sha256(raw.as_bytes())
    );
    let ls = back.json(&["ls"]);
    assert_eq!(ls[0]["kind"], "container-image", "{ls}");
}

#[test]
fn bad_pulls_fail_naming_the_cause_and_tag_nothing() {
    if !have_tool("docker-registry") {
        return;
    }
    let (s, _) = fixture();
    let reg = Registry::start(&s);
    s.ok(&[
        "push",
        "files:1",
        &format!("{}/misc/files:1", reg.host),
        "--plain-http",
    ]);
    let back = Store::new();
    let before = std::fs::read(back.layout.join("index.json")).unwrap();

    let err = back.fails(
        2,
        &[
            "pull",
            &format!("{}/misc/files:nope", reg.host),
            "--plain-http",
        ],
    );
    assert!(err.contains("404") && err.contains(&reg.host), "{err}");
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = back.fails(
        2,
        &["pull", &format!("127.0.0.1:{closed}/x/y:1"), "--plain-http"],
    );
    assert!(err.contains(&format!("127.0.0.1:{closed}")), "{err}");
    let err = back.fails(2, &["pull", "127.0.0.1/UPPER:1", "--plain-http"]);
    assert!(err.contains("UPPER"), "{err}");

    // The registry's copy of the file's blob is damaged: nothing of it is
    // published here, and nothing is tagged.
    let files = s.json(&["inspect", "files:1"]);
    let layer = files["layers"][0]["digest"].as_str().unwrap();
    let hex = &layer[7..];
    let data = reg.data.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();
    let err = back.fails(
        2,
        &[
            "pull",
            &format!("{}/misc/files:1", reg.host),
            "--plain-http",
        ],
    );
    assert!(err.contains(hex), "{err}");
    assert!(
        !back.blob(layer).exists(),
        "the damaged blob is not published"
    );
    assert_eq!(
        std::fs::read(back.layout.join("index.json")).unwrap(),
        before,
        "nothing tagged"
    );
    back.ok(&["verify"]);
}

#[test]
fn basic_auth_with_password_stdin_and_refusals_that_never_show_the_password() {
    if !have_tool("docker-registry") || !have_tool("htpasswd") {
        return;
    }
    let (s, _) = fixture();
    let reg = Registry::start_basic(&s, "alice", "s3cret-pw");
    let dest = format!("{}/misc/files:1", reg.host);
    let with = |password: &str, args: &[&str]| {
        let mut cmd = s.cmd(args);
        cmd.args(["--plain-http", "--username", "alice", "--password-stdin"]);
        with_stdin(&mut cmd, password)
    };
    let out = with("s3cret-pw", &["push", "files:1", &dest]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wrong = with("not-it-pw", &["push", "files:1", &dest]);
    assert_eq!(wrong.status.code(), Some(2));
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        err.contains("401") && err.contains("\"alice\"") && !err.contains("not-it-pw"),
        "{err}"
    );
    let err = s.fails(2, &["pull", &dest, "--plain-http", "--ref", "again:1"]);
    assert!(
        err.contains("401") && err.contains("no credentials") && err.contains("--password-stdin"),
        "{err}"
    );
    let back = Store::empty();
    let mut cmd = back.cmd(&[
        "pull",
        &dest,
        "--plain-http",
        "--username",
        "alice",
        "--password-stdin",
    ]);
    let out = with_stdin(&mut cmd, "s3cret-pw");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    back.ok(&["verify"]);
}

/// A TCP proxy to `upstream` on 127.0.0.1 that cuts each of its first
/// `cuts` connections once it has passed `budget` bytes one way (back to
/// the client, or with `upstream_way` on to the registry).
struct CuttingProxy {
    /// `127.0.0.1:PORT`.
    host: String,
    cut: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CuttingProxy {
    fn start(upstream: &str, budget: usize, cuts: usize) -> CuttingProxy {
        CuttingProxy::start_way(upstream, budget, cuts, false)
    }

    fn start_way(upstream: &str, budget: usize, cuts: usize, upstream_way: bool) -> CuttingProxy {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (upstream, counter) = (upstream.to_string(), cut.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    return;
                };
                let done = counter.clone();
                let (c_read, s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (s_read, c_write) = (server, client);
                let (plain, cutting) = if upstream_way {
                    ((s_read, c_write), (c_read, s_write))
                } else {
                    ((c_read, s_write), (s_read, c_write))
                };
                let (mut p_read, mut p_write) = plain;
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut p_read, &mut p_write);
                    let _ = p_write.shutdown(std::net::Shutdown::Write);
                });
                let (mut s_read, mut c_write) = cutting;
                std::thread::spawn(move || {
                    let mut sent = 0;
                    let mut buf = [0u8; 16384];
                    // Cut at `budget` while fewer than `cuts` connections
                    // have been cut.
                    let mut cut_this = done.load(Ordering::SeqCst) < cuts;
                    loop {
                        let n = match s_read.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let n = if cut_this { n.min(budget - sent) } else { n };
                        if c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sent += n;
                        if cut_this && sent >= budget {
                            if done.fetch_add(1, Ordering::SeqCst) < cuts {
                                break;
                            }
                            done.fetch_sub(1, Ordering::SeqCst);
                            cut_this = false;
                        }
                    }
                    let _ = c_write.shutdown(std::net::Shutdown::Both);
                    let _ = s_read.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        CuttingProxy { host, cut }
    }
}

#[test]
fn a_pull_whose_connections_are_cut_resumes_each_blob_at_the_byte() {
    if !have_tool("docker-registry") {
        return;
    }
    let (s, vm) = fixture();
    let reg = Registry::start(&s);
    s.ok(&[
        "push",
        "snap:1",
        &format!("{}/vms/snap:1", reg.host),
        "--plain-http",
    ]);
    let proxy = CuttingProxy::start(&reg.host, 400 << 10, 4);
    let back = Store::empty();
    let out = back.json(&[
        "pull",
        &format!("{}/vms/snap:1", proxy.host),
        "--plain-http",
        "--jobs",
        "1",
    ]);
    let cuts = proxy.cut.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(cuts, 4, "the proxy cut four connections");
    assert!(out["retries"].as_u64().unwrap() >= 3, "{out}");
    assert!(out["resumedBytes"].as_u64().unwrap() > 0, "{out}");
    back.ok(&["verify"]);
    let restored = back.path("restored");
    back.ok(&["unpack", "vms/snap:1", restored.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(restored.join("memory-ranges")).unwrap(),
        std::fs::read(vm.join("memory-ranges")).unwrap()
    );
}

#[test]
fn a_chunked_push_whose_connections_are_cut_completes_resending_at_most_a_blob_per_cut() {
    if !have_tool("docker-registry") {
        return;
    }
    let (s, _) = fixture();
    let reg = Registry::start(&s);
    let proxy = CuttingProxy::start_way(&reg.host, 600 << 10, 3, true);
    let dest = format!("{}/vms/snap:1", proxy.host);
    let out = s.json(&[
        "push",
        "snap:1",
        &dest,
        "--plain-http",
        "--jobs",
        "1",
        "--chunk-size",
        "256KiB",
    ]);
    assert_eq!(proxy.cut.load(std::sync::atomic::Ordering::SeqCst), 3);
    let retries = out["retries"].as_u64().unwrap();
    assert!(retries >= 3, "{out}");
    // distribution 2.8 loses an upload whose PATCH is cut (the offset in
    // its signed `_state` no longer matches), so that blob starts again:
    // at most one blob (the snapshot's 1 MiB chunks) per retry.
    assert!(
        out["resentBytes"].as_u64().unwrap() <= retries * (1 << 20),
        "{out}"
    );
    // The registry has the snapshot whole: pulled straight from it, it verifies.
    let back = Store::empty();
    let pulled = back.json(&["pull", &format!("{}/vms/snap:1", reg.host), "--plain-http"]);
    assert_eq!(pulled["digest"], s.json(&["inspect", "snap:1"])["digest"]);
    back.ok(&["verify"]);
}

#[test]
fn push_all_loads_every_ref_under_a_prefix_mounting_blobs_it_sent_already() {
    if !have_tool("docker-registry") || !have_tool("skopeo") {
        return;
    }
    let (s, _) = fixture();
    s.ok(&["tag", "snap:1", "copy/snap:2"]);
    let reg = Registry::start(&s);
    let out = s.json(&[
        "push",
        "--all",
        &format!("{}/mirror", reg.host),
        "--plain-http",
    ]);
    let pushed = out["pushed"].as_array().unwrap();
    let to: Vec<&str> = pushed.iter().map(|p| p["to"].as_str().unwrap()).collect();
    for want in [
        "mirror/snap:1",
        "mirror/multi:1",
        "mirror/files:1",
        "mirror/copy/snap:2",
    ] {
        assert!(to.iter().any(|t| t.ends_with(want)), "{want} in {to:?}");
    }
    let mounted: u64 = pushed
        .iter()
        .map(|p| p["blobsMounted"].as_u64().unwrap())
        .sum();
    let snap_blobs = pushed.iter().find(|p| p["ref"] == "snap:1").unwrap()["blobs"]
        .as_u64()
        .unwrap();
    assert_eq!(
        mounted, snap_blobs,
        "the second copy of the snapshot is mounted, not sent: {out}"
    );
    for (r, repo) in [
        ("snap:1", "mirror/snap:1"),
        ("copy/snap:2", "mirror/copy/snap:2"),
        ("multi:1", "mirror/multi:1"),
    ] {
        let raw = sh(Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/{repo}", reg.host),
        ]));
        assert_eq!(
            crate::util::sha256(raw.as_bytes()),
            s.json(&["inspect", r])["digest"].as_str().unwrap(),
            "{r}"
        );
    }
    let back = Store::empty();
    back.ok(&[
        "pull",
        &format!("{}/mirror/copy/snap:2", reg.host),
        "--plain-http",
    ]);
    back.ok(&["verify"]);

    s.ok(&["tag", "snap:1", "Upper:1"]);
    let err = s.fails(2, &["push", "--all", &reg.host, "--plain-http"]);
    assert!(
        err.contains("Upper:1") && err.contains("epoch-store tag"),
        "{err}"
    );
}

#[test]
fn pull_platform_fetches_only_the_chosen_images_under_an_index_of_them() {
    if !have_tool("docker-registry") || !have_tool("oci-image-tool") {
        return;
    }
    let (s, _) = fixture();
    let reg = Registry::start(&s);
    s.ok(&[
        "push",
        "multi:1",
        &format!("{}/images/multi:1", reg.host),
        "--plain-http",
    ]);
    let back = Store::empty();
    let src = format!("{}/images/multi:1", reg.host);
    let out = back.json(&[
        "pull",
        &src,
        "--plain-http",
        "--platform",
        "linux/arm64",
        "--ref",
        "multi:1",
    ]);
    // The arm64 image: its manifest, config and layer; nothing else.
    assert_eq!(
        (out["documents"].as_u64(), out["blobs"].as_u64()),
        (Some(2), Some(2)),
        "{out}"
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(back.blob(out["digest"].as_str().unwrap())).unwrap())
            .unwrap();
    let archs: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["arm64"]);
    back.ok(&["verify"]);
    sh(Command::new("oci-image-tool")
        .args(["validate", "--type", "image", "--ref", "name=multi:1"])
        .arg(&back.layout));
    let before = std::fs::read(back.layout.join("index.json")).unwrap();
    let err = back.fails(
        2,
        &[
            "pull",
            &src,
            "--plain-http",
            "--platform",
            "linux/s390x",
            "--ref",
            "other:1",
        ],
    );
    assert!(
        err.contains("linux/s390x") && err.contains("linux/arm64"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(back.layout.join("index.json")).unwrap(),
        before,
        "nothing tagged"
    );
}

#[test]
fn login_keeps_credentials_where_docker_does_and_helpers_are_asked() {
    use std::os::unix::fs::PermissionsExt;
    if !have_tool("docker-registry") || !have_tool("htpasswd") {
        return;
    }
    let (s, _) = fixture();
    let reg = Registry::start_basic(&s, "carol", "pw-of-carol");
    let docker = s.path("docker-config");
    let bin = s.path("helpers");
    std::fs::create_dir_all(&bin).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let run = |args: &[&str], stdin: &str| {
        let mut cmd = s.cmd(args);
        cmd.env("DOCKER_CONFIG", &docker)
            .env("PATH", &path)
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR");
        with_stdin(&mut cmd, stdin)
    };
    let dest = format!("{}/misc/files:1", reg.host);
    let bad = run(
        &[
            "login",
            &reg.host,
            "--plain-http",
            "--username",
            "carol",
            "--password-stdin",
        ],
        "wrong",
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        !docker.join("config.json").exists(),
        "a refused login writes nothing"
    );
    let ok = run(
        &[
            "login",
            &reg.host,
            "--plain-http",
            "--username",
            "carol",
            "--password-stdin",
        ],
        "pw-of-carol",
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let config = docker.join("config.json");
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let pushed = run(&["push", "files:1", &dest, "--plain-http"], "");
    assert!(
        pushed.status.success(),
        "credentials from config.json: {}",
        String::from_utf8_lossy(&pushed.stderr)
    );

    // A credential helper named for the host wins over `auths`.
    let helper = bin.join("docker-credential-epochtest");
    std::fs::write(&helper, format!("#!/bin/sh\nread host\n[ \"$host\" = \"{}\" ] || {{ echo 'credentials not found'; exit 1; }}\necho '{{\"Username\":\"carol\",\"Secret\":\"wrong-from-helper\"}}'\n", reg.host)).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut v: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    v["credHelpers"] = serde_json::json!({ reg.host.clone(): "epochtest" });
    std::fs::write(&config, serde_json::to_vec(&v).unwrap()).unwrap();
    let refused = run(&["pull", &dest, "--plain-http", "--ref", "x:1"], "");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("docker-credential-epochtest") && !err.contains("wrong-from-helper"),
        "{err}"
    );
    v.as_object_mut().unwrap().remove("credHelpers");
    std::fs::write(&config, serde_json::to_vec(&v).unwrap()).unwrap();

    let out = run(&["logout", &reg.host], "");
    assert!(out.status.success());
    let refused = run(&["push", "files:1", &dest, "--plain-http"], "");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no credentials"));
}

/// A test CA, a server certificate for 127.0.0.1 and a client certificate,
/// made with openssl in `dir`; returns (ca, server cert, server key,
/// client cert, client key).
fn test_pki(dir: &std::path::Path) -> [std::path::PathBuf; 5] {
    std::fs::create_dir_all(dir).unwrap();
    let p = |n: &str| dir.join(n);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    sh(Command::new("openssl")
        .args(["req", "-x509"])
        .args(ec)
        .args(["-days", "2", "-subj", "/CN=epoch-test-ca", "-keyout"])
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.crt")));
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(
            p(&format!("{name}.ext")),
            format!("basicConstraints=CA:FALSE\n{ext}"),
        )
        .unwrap();
        sh(Command::new("openssl")
            .arg("req")
            .args(ec)
            .args(["-subj", &format!("/CN={name}"), "-keyout"])
            .arg(p(&format!("{name}.key")))
            .arg("-out")
            .arg(p(&format!("{name}.csr"))));
        sh(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial", "-in"])
            .arg(p(&format!("{name}.csr")))
            .arg("-CA")
            .arg(p("ca.crt"))
            .arg("-CAkey")
            .arg(p("ca.key"))
            .arg("-out")
            .arg(p(&format!("{name}.crt")))
            .arg("-extfile")
            .arg(p(&format!("{name}.ext"))));
    }
    [
        p("ca.crt"),
        p("server.crt"),
        p("server.key"),
        p("client.crt"),
        p("client.key"),
    ]
}

#[test]
fn tls_with_a_test_ca_and_client_certificates() {
    if !have_tool("docker-registry") || !have_tool("openssl") {
        return;
    }
    let (s, _) = fixture();
    let [ca, crt, key, client_crt, client_key] = test_pki(&s.path("pki"));
    let tls = format!(
        "  tls:\n    certificate: {}\n    key: {}\n    clientcas:\n      - {}\n",
        crt.display(),
        key.display(),
        ca.display()
    );
    let reg = Registry::start_with(&s, &tls);
    let dest = format!("{}/misc/files:1", reg.host);
    let (ca, cc, ck) = (
        ca.to_str().unwrap(),
        client_crt.to_str().unwrap(),
        client_key.to_str().unwrap(),
    );
    // The system's roots do not know the test CA.
    let err = s.fails(2, &["push", "files:1", &dest, "--cert", cc, "--key", ck]);
    assert!(
        err.contains(&reg.host)
            && err.to_lowercase().contains("certificate")
            && err.contains("--ca-cert FILE"),
        "{err}"
    );
    // The registry wants a client certificate.
    let err = s.fails(2, &["push", "files:1", &dest, "--ca-cert", ca]);
    assert!(err.contains(&reg.host), "{err}");
    s.ok(&[
        "push",
        "files:1",
        &dest,
        "--ca-cert",
        ca,
        "--cert",
        cc,
        "--key",
        ck,
    ]);
    // --ca-cert adds to the system's roots, as docker's certs.d does: with
    // the test CA as the system's bundle, another CA given leaves it
    // trusted.
    let other = s.path("pki/other.crt");
    sh(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=other-ca", "-keyout"])
        .arg(s.path("pki/other.key"))
        .arg("-out")
        .arg(&other));
    for extra in [&[][..], &["--ca-cert", other.to_str().unwrap()][..]] {
        let out = s
            .cmd(&["push", "files:1", &dest, "--cert", cc, "--key", ck])
            .args(extra)
            .env("SSL_CERT_FILE", ca)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let back = Store::empty();
    let out = back.run(&["pull", &dest, "--insecure", "--cert", cc, "--key", ck]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--insecure"),
        "the warning is said"
    );
    back.ok(&["verify"]);
    let err = s.fails(
        2,
        &[
            "push",
            "files:1",
            &dest,
            "--ca-cert",
            cc.replace("client.crt", "client.key").as_str(),
        ],
    );
    assert!(
        err.contains("client.key") && err.contains("no PEM certificate"),
        "{err}"
    );
}

/// A token server for distribution's `auth.token` (on 127.0.0.1, a thread
/// of the test): it grants the scope asked for, as an RS256 JWT whose
/// `x5c` certificate the registry's `rootcertbundle` holds, signed with
/// openssl; when `password` is set, only to Basic credentials `user` with it.
struct TokenServer {
    realm: String,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// When each token was asked for.
    asked: std::sync::Arc<std::sync::Mutex<Vec<Instant>>>,
}

impl TokenServer {
    /// Tokens for `user` that expire `exp_in` seconds after they are made
    /// (distribution allows 60 s of leeway past `exp`).
    fn start(
        dir: &std::path::Path,
        user: &'static str,
        password: &'static str,
        exp_in: i64,
    ) -> (TokenServer, std::path::PathBuf) {
        use base64::Engine as _;
        use std::io::{BufRead, Write};
        std::fs::create_dir_all(dir).unwrap();
        let (key, cert) = (dir.join("token.key"), dir.join("token.crt"));
        sh(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=token-signer",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        let der = sh(Command::new("sh").arg("-c").arg(format!(
            "openssl x509 -in {} -outform DER | base64 -w0",
            cert.display()
        )));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = requests.clone();
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let when = asked.clone();
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        std::thread::spawn(move || {
            let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                when.lock().unwrap().push(Instant::now());
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut auth = String::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h
                        .strip_prefix("authorization: ")
                        .or(h.strip_prefix("Authorization: "))
                    {
                        auth = v.trim().to_string();
                    }
                }
                if auth != want {
                    let _ = stream.write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    continue;
                }
                let query = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .split_once('?')
                    .map_or("", |(_, q)| q)
                    .to_string();
                let decode = |v: &str| {
                    v.replace("%3A", ":")
                        .replace("%2F", "/")
                        .replace("%2C", ",")
                };
                let mut access = Vec::new();
                for kv in query.split('&') {
                    if let Some(scope) = kv.strip_prefix("scope=") {
                        let scope = decode(scope);
                        let parts: Vec<&str> = scope.splitn(3, ':').collect();
                        if parts.len() == 3 {
                            access.push(serde_json::json!({"type": parts[0], "name": parts[1], "actions": parts[2].split(',').collect::<Vec<_>>()}));
                        }
                    }
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [der.trim()]});
                let claims = serde_json::json!({"iss": "epoch-test-issuer", "sub": user, "aud": "epoch-test-registry",
                    "exp": now as i64 + exp_in, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", access.len()), "access": access});
                let signing = format!(
                    "{}.{}",
                    b64(header.to_string().as_bytes()),
                    b64(claims.to_string().as_bytes())
                );
                let input = dir_file(&key, &signing);
                let sig = Command::new("openssl")
                    .args(["dgst", "-sha256", "-sign"])
                    .arg(&key)
                    .arg(&input)
                    .output()
                    .unwrap()
                    .stdout;
                let body =
                    serde_json::json!({"token": format!("{signing}.{}", b64(&sig))}).to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (
            TokenServer {
                realm,
                requests,
                asked,
            },
            cert,
        )
    }
}

/// Writes `text` beside `key` for openssl to sign; returns its path.
fn dir_file(key: &std::path::Path, text: &str) -> std::path::PathBuf {
    let p = key.with_extension(format!("in{}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn the_bearer_token_flow_gets_tokens_for_pull_and_push_scopes() {
    if !have_tool("docker-registry") || !have_tool("openssl") {
        return;
    }
    let (s, _) = fixture();
    let (tokens, cert) = TokenServer::start(&s.path("token"), "dave", "pw-of-dave", 300);
    let auth = format!(
        "auth:\n  token:\n    realm: {}\n    service: epoch-test-registry\n    issuer: epoch-test-issuer\n    rootcertbundle: {}\n",
        tokens.realm,
        cert.display()
    );
    let reg = Registry::start_with(&s, &auth);
    let dest = format!("{}/misc/files:1", reg.host);
    let with_password = |st: &Store, args: &[&str], pw: &str| {
        let mut cmd = st.cmd(args);
        cmd.args(["--plain-http", "--username", "dave", "--password-stdin"]);
        with_stdin(&mut cmd, pw)
    };
    let out = with_password(&s, &["push", "files:1", &dest], "pw-of-dave");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        tokens.requests.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "a token was fetched"
    );
    let back = Store::empty();
    let out = with_password(&back, &["pull", &dest], "pw-of-dave");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    back.ok(&["verify"]);
    let out = with_password(&back, &["pull", &dest, "--ref", "x:1"], "wrong");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"dave\"") && !err.contains("wrong"), "{err}");
}

#[test]
fn tokens_that_expire_in_the_middle_of_a_transfer_are_fetched_again() {
    if !have_tool("docker-registry") || !have_tool("openssl") {
        return;
    }
    let s = Store::new();
    let disk = |seed| crate::util::bytes(1 << 20, seed);
    s.add(
        "disk:1",
        &[
            ("a.img", &disk(9)),
            ("b.img", &disk(10)),
            ("c.img", &disk(11)),
        ],
    );
    // Past distribution's 60 s of leeway 1 to 2 s after they are made.
    let (tokens, cert) = TokenServer::start(&s.path("token"), "erin", "pw-of-erin", -58);
    let auth = format!(
        "auth:\n  token:\n    realm: {}\n    service: epoch-test-registry\n    issuer: epoch-test-issuer\n    rootcertbundle: {}\n",
        tokens.realm,
        cert.display()
    );
    let reg = Registry::start_with(&s, &auth);
    let dest = format!("{}/vms/disk:1", reg.host);
    let login = ["--plain-http", "--username", "erin", "--password-stdin"];
    // 3 MiB in 256 KiB PATCHes at 1 MiB/s (and pulled one blob at a time):
    // three seconds, three tokens' lives.
    let mut cmd = s.cmd(&["--json", "push", "disk:1", &dest, "--limit-rate", "1MiB"]);
    cmd.args(login).args(["--chunk-size", "256KiB"]);
    let out = with_stdin(&mut cmd, "pw-of-erin");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Tokens were asked for again a second or more into the push.
    let late = |t: &TokenServer| {
        let asked = t.asked.lock().unwrap();
        let first = asked[0];
        asked
            .iter()
            .filter(|a| a.duration_since(first) > Duration::from_secs(1))
            .count()
    };
    assert!(
        late(&tokens) >= 1,
        "no token was fetched again during the push"
    );
    let back = Store::empty();
    let mut cmd = back.cmd(&[
        "--json",
        "pull",
        &dest,
        "--limit-rate",
        "1MiB",
        "--jobs",
        "1",
    ]);
    cmd.args(login);
    tokens.asked.lock().unwrap().clear();
    let out = with_stdin(&mut cmd, "pw-of-erin");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        late(&tokens) >= 1,
        "no token was fetched again during the pull"
    );
    back.ok(&["verify"]);
}

/// A TCP proxy to `upstream` that passes `budget` bytes back on each
/// connection, then holds it open sending nothing (a transfer that hangs).
fn stalling_proxy(upstream: &str, budget: usize) -> String {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let upstream = upstream.to_string();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let (Ok(client), Ok(server)) = (client, std::net::TcpStream::connect(&upstream)) else {
                return;
            };
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut s_write);
            });
            let (mut s_read, mut c_write) = (server, client);
            std::thread::spawn(move || {
                let mut sent = 0;
                let mut buf = [0u8; 16384];
                while sent < budget {
                    let n = match s_read.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n.min(budget - sent),
                    };
                    if c_write.write_all(&buf[..n]).is_err() {
                        return;
                    }
                    sent += n;
                }
                std::thread::sleep(Duration::from_secs(600));
            });
        }
    });
    host
}

#[test]
fn a_pull_killed_midway_goes_on_from_its_partial_blob_on_the_next_run() {
    if !have_tool("docker-registry") {
        return;
    }
    let (s, vm) = fixture();
    let reg = Registry::start(&s);
    s.ok(&[
        "push",
        "snap:1",
        &format!("{}/vms/snap:1", reg.host),
        "--plain-http",
    ]);
    let proxy = stalling_proxy(&reg.host, 700 << 10);
    let back = Store::empty();
    let mut child = back
        .cmd(&[
            "pull",
            &format!("{proxy}/vms/snap:1"),
            "--plain-http",
            "--jobs",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for a partial blob to hold over half a MiB (only a 1 MiB chunk
    // can: the small blobs come whole), then kill the pull.
    let tmp = back.layout.join(".epoch-store/tmp");
    let deadline = Instant::now() + Duration::from_secs(30);
    let partial = loop {
        let found = std::fs::read_dir(&tmp).ok().and_then(|d| {
            d.filter_map(Result::ok).find(|e| {
                e.file_name().to_string_lossy().starts_with("partial-")
                    && e.metadata().map(|m| m.len() > 512 << 10).unwrap_or(false)
            })
        });
        if let Some(e) = found {
            break e.path();
        }
        assert!(Instant::now() < deadline, "no partial blob appeared");
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = std::fs::metadata(&partial).unwrap().len();
    assert!(kept > 0 && kept < 1 << 20, "{kept} bytes kept");
    back.ok(&["verify"]);
    let out = back.json(&["pull", &format!("{}/vms/snap:1", reg.host), "--plain-http"]);
    assert_eq!(out["resumedBlobs"].as_u64(), Some(1), "{out}");
    assert!(out["resumedBytes"].as_u64().unwrap() >= kept, "{out}");
    assert!(!partial.exists(), "the partial blob was published");
    back.ok(&["verify"]);
    let restored = back.path("restored");
    back.ok(&["unpack", "vms/snap:1", restored.to_str().unwrap()]);
    assert!(
        std::fs::read(restored.join("memory-ranges")).unwrap()
            == std::fs::read(vm.join("memory-ranges")).unwrap()
    );
}

#[test]
fn inspect_reads_a_registrys_index_and_artifacts_without_pulling() {
    if !have_tool("docker-registry") {
        return;
    }
    let (s, _) = fixture();
    let reg = Registry::start(&s);
    s.ok(&[
        "push",
        "multi:1",
        &format!("{}/images/multi:1", reg.host),
        "--plain-http",
    ]);
    s.ok(&[
        "push",
        "files:1",
        &format!("{}/misc/files:1", reg.host),
        "--plain-http",
    ]);
    let nowhere = Store::empty();
    let before = crate::util::snapshot_dir(&nowhere.layout);
    let multi = format!("docker://{}/images/multi:1", reg.host);
    let out = nowhere.json(&["inspect", &multi, "--plain-http"]);
    assert_eq!(out["digest"], s.json(&["inspect", "multi:1"])["digest"]);
    let platforms: Vec<&str> = out["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["platform"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]);
    let arm = nowhere.json(&[
        "inspect",
        &multi,
        "--plain-http",
        "--platform",
        "linux/arm64",
    ]);
    assert_eq!(arm["images"].as_array().unwrap().len(), 1);
    assert_eq!(arm["images"][0]["platform"], "linux/arm64/v8");
    let files = nowhere.json(&[
        "inspect",
        &format!("docker://{}/misc/files:1", reg.host),
        "--plain-http",
    ]);
    assert_eq!(files["layers"][0]["title"], "notes.md", "{files}");
    let err = nowhere.fails(
        2,
        &[
            "inspect",
            &multi,
            "--plain-http",
            "--platform",
            "linux/s390x",
        ],
    );
    assert!(
        err.contains("linux/s390x") && err.contains("linux/arm64"),
        "{err}"
    );
    assert_eq!(
        crate::util::snapshot_dir(&nowhere.layout),
        before,
        "nothing was written"
    );
}
