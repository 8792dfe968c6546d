//! Pushes and pulls killed midway, against Debian's `docker-registry`
//! (distribution 2.8) on 127.0.0.1 behind a proxy of ours that counts the
//! bytes each way: the next run goes on where the registry's upload, or
//! the partial blob, stands; every blob verifies; and what is sent again
//! is bounded.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::registry::{Registry, forget_registry_blobs};
use crate::util::{Store, bytes, have_tool};

/// A proxy to a registry that passes one whole request per connection
/// (it asks the registry to close after each) while fewer than `budget`
/// bytes have gone up; after that it answers 503 to every request without
/// passing it on (no request is ever cut halfway). Counts the bytes each
/// way.
struct GatedProxy {
    /// `127.0.0.1:PORT`.
    host: String,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    budget: Arc<AtomicU64>,
}

impl GatedProxy {
    fn start(upstream: &str, budget: u64) -> GatedProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = GatedProxy {
            host: listener.local_addr().unwrap().to_string(),
            up: Arc::default(),
            down: Arc::default(),
            refused: Arc::default(),
            budget: Arc::new(AtomicU64::new(budget)),
        };
        let (up, down, refused, budget) = (
            p.up.clone(),
            p.down.clone(),
            p.refused.clone(),
            p.budget.clone(),
        );
        let upstream = upstream.to_string();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let (up, down, refused, budget) =
                    (up.clone(), down.clone(), refused.clone(), budget.clone());
                let upstream = upstream.clone();
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, &up, &down, &refused, &budget);
                });
            }
        });
        p
    }

    /// Lets everything through from now on.
    fn open(&self) {
        self.budget.store(u64::MAX, Ordering::SeqCst);
    }
}

/// One request of `client`: passed on to `upstream` with `Connection:
/// close` and its answer passed back, or refused with 503.
fn serve(
    mut client: TcpStream,
    upstream: &str,
    up: &AtomicU64,
    down: &AtomicU64,
    refused: &AtomicU64,
    budget: &AtomicU64,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let length: u64 = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    if up.load(Ordering::SeqCst) >= budget.load(Ordering::SeqCst) {
        std::io::copy(&mut (&mut client).take(length), &mut std::io::sink())?;
        refused.fetch_add(1, Ordering::SeqCst);
        client.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Ok(());
    }
    let mut server = TcpStream::connect(upstream)?;
    let head = text.replacen("\r\n", "\r\nConnection: close\r\n", 1);
    server.write_all(head.as_bytes())?;
    let sent = std::io::copy(&mut (&mut client).take(length), &mut server)?;
    up.fetch_add(head.len() as u64 + sent, Ordering::SeqCst);
    let mut buf = [0u8; 65536];
    loop {
        let n = server.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        client.write_all(&buf[..n])?;
        down.fetch_add(n as u64, Ordering::SeqCst);
    }
}

/// `counter` once it has stopped moving for 200 ms (the proxy's threads
/// may still be passing what a killed client will never read).
fn settled(counter: &AtomicU64) -> u64 {
    let mut last = counter.load(Ordering::SeqCst);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = counter.load(Ordering::SeqCst);
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Waits for `cond`, failing after 30 s.
fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The names of the files in `dir` that start with `prefix`.
fn files_starting(dir: &std::path::Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_push_killed_between_chunks_goes_on_from_the_registrys_upload_on_the_next_run() {
    if !have_tool("docker-registry") {
        return;
    }
    let s = Store::new();
    let disk = bytes(6 << 20, 7);
    s.add("disk:1", &[("disk.img", &disk)]);
    let reg = Registry::start(&s);
    let proxy = GatedProxy::start(&reg.host, 5 << 19);
    let dest = format!("{}/vms/disk:1", proxy.host);
    let args = [
        "push",
        "disk:1",
        &dest,
        "--plain-http",
        "--jobs",
        "1",
        "--chunk-size",
        "512KiB",
    ];
    let mut child = s
        .cmd(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Once the proxy refuses, no chunk is in flight: kill the push there.
    wait_for("the proxy to refuse a request", || {
        proxy.refused.load(Ordering::SeqCst) > 0
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let tmp = s.layout.join(".epoch-store/tmp");
    assert_eq!(
        files_starting(&tmp, "upload-").len(),
        1,
        "the chunked upload's state is kept"
    );
    s.ok(&["verify"]);
    proxy.open();
    let before = proxy.up.load(Ordering::SeqCst);
    let out = s.json(&args);
    let resumed = out["resumedBytes"].as_u64().unwrap();
    // The budget let 2.5 MiB up: four or five 512 KiB chunks stand.
    assert!(
        resumed >= 2 << 20 && resumed.is_multiple_of(512 << 10),
        "{out}"
    );
    let sent = proxy.up.load(Ordering::SeqCst) - before;
    assert!(
        sent < disk.len() as u64 - resumed + (64 << 10),
        "{sent} bytes went up on the second run, {resumed} resumed: {out}"
    );
    assert!(
        files_starting(&tmp, "upload-").is_empty(),
        "the state goes once the blob is up"
    );
    // What the registry holds is the disk, byte for byte: the same
    // manifest, every blob verified.
    let back = Store::empty();
    let pulled = back.json(&["pull", &format!("{}/vms/disk:1", reg.host), "--plain-http"]);
    assert_eq!(pulled["digest"], s.json(&["inspect", "disk:1"])["digest"]);
    back.ok(&["verify"]);
}

/// The bytes of the files in `dir`.
fn walkdir_sizes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.metadata().map_or(0, |m| m.len()))
                .sum()
        })
        .unwrap_or(0)
}

/// A small deterministic generator for the kill times (reproducible).
fn next(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

/// Three 2 MiB disks: what the kill trials move.
fn three_disks(s: &Store) -> Vec<Vec<u8>> {
    let disks: Vec<Vec<u8>> = (0..3).map(|i| bytes(2 << 20, 100 + i)).collect();
    s.add(
        "disks:1",
        &[
            ("a.img", &disks[0]),
            ("b.img", &disks[1]),
            ("c.img", &disks[2]),
        ],
    );
    disks
}

/// Spawns `args` on `s` and SIGKILLs it after `ms` milliseconds (if it
/// has not finished by then).
fn kill_after(s: &Store, args: &[&str], ms: u64) {
    let mut child = s
        .cmd(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    let _ = child.kill();
    child.wait().unwrap();
}

#[test]
fn pushes_killed_at_random_points_finish_on_the_next_run_with_every_blob_whole() {
    if !have_tool("docker-registry") {
        return;
    }
    let s = Store::new();
    let disks = three_disks(&s);
    let total: u64 = disks.iter().map(|d| d.len() as u64).sum();
    let reg = Registry::start(&s);
    let proxy = GatedProxy::start(&reg.host, u64::MAX);
    let mut seed = 12;
    let mut worst = 0;
    for trial in 0..20 {
        let dest = format!("{}/kill/t{trial}:1", proxy.host);
        let push = [
            "push",
            "disks:1",
            &dest,
            "--plain-http",
            "--chunk-size",
            "512KiB",
        ];
        // Each trial sends its blobs (no mount from the trial before).
        forget_registry_blobs(&s);
        let before = settled(&proxy.up);
        let mut limited = push.to_vec();
        limited.extend(["--limit-rate", "8MiB"]);
        kill_after(&s, &limited, 20 + next(&mut seed) % 700);
        s.ok(&["verify"]);
        s.ok(&push);
        let sent = proxy.up.load(Ordering::SeqCst) - before;
        // distribution drops an upload whose PATCH was cut, so each blob in
        // flight at the kill may go up again whole, and no more.
        let resent = sent.saturating_sub(total);
        worst = worst.max(resent);
        assert!(
            resent <= 3 * (2 << 20) + (128 << 10),
            "trial {trial}: {resent} bytes sent again"
        );
        let back = Store::empty();
        back.ok(&[
            "pull",
            &format!("{}/kill/t{trial}:1", reg.host),
            "--plain-http",
        ]);
        back.ok(&["verify"]);
    }
    eprintln!("push kill trials: at most {worst} bytes sent again");
}

#[test]
fn pulls_killed_at_random_points_go_on_from_what_they_wrote() {
    if !have_tool("docker-registry") {
        return;
    }
    let s = Store::new();
    let disks = three_disks(&s);
    let total: u64 = disks.iter().map(|d| d.len() as u64).sum();
    let reg = Registry::start(&s);
    s.ok(&[
        "push",
        "disks:1",
        &format!("{}/kill/disks:1", reg.host),
        "--plain-http",
    ]);
    let proxy = GatedProxy::start(&reg.host, u64::MAX);
    let src = format!("{}/kill/disks:1", proxy.host);
    let digest = s.json(&["inspect", "disks:1"])["digest"].clone();
    let mut seed = 34;
    let mut worst = 0;
    for trial in 0..20 {
        let back = Store::empty();
        kill_after(
            &back,
            &["pull", &src, "--plain-http", "--limit-rate", "8MiB"],
            20 + next(&mut seed) % 700,
        );
        // What the killed pull wrote: partial blobs, and whole ones.
        let tmp = back.layout.join(".epoch-store/tmp");
        let kept: u64 = files_starting(&tmp, "partial-")
            .iter()
            .map(|n| std::fs::metadata(tmp.join(n)).unwrap().len())
            .sum();
        let whole: u64 = walkdir_sizes(&back.layout.join("blobs/sha256"));
        if back.layout.join("index.json").exists() {
            back.ok(&["verify"]);
        }
        let before = settled(&proxy.down);
        let out = back.json(&["pull", &src, "--plain-http"]);
        let fetched = proxy.down.load(Ordering::SeqCst) - before;
        assert_eq!(
            out["resumedBytes"].as_u64(),
            Some(kept),
            "trial {trial}: {out}"
        );
        // Nothing the killed pull had written comes again (what was on its
        // way in the sockets' buffers does); the rest is the documents and
        // the headers.
        let again = (fetched + kept + whole).saturating_sub(total);
        worst = worst.max(again);
        assert!(
            again <= 64 << 10,
            "trial {trial}: {fetched} bytes fetched, {kept} kept in partial blobs, {whole} in whole ones: {out}"
        );
        back.ok(&["verify"]);
        assert_eq!(out["digest"], digest, "trial {trial}");
    }
    eprintln!("pull kill trials: at most {worst} bytes fetched again");
}

#[test]
fn a_full_disk_mid_pull_fails_naming_it_tags_nothing_and_the_rerun_completes() {
    if !have_tool("docker-registry") || !have_tool("strace") {
        return;
    }
    let s = Store::new();
    three_disks(&s);
    let reg = Registry::start(&s);
    let src = format!("{}/vms/disks:1", reg.host);
    s.ok(&["push", "disks:1", &src, "--plain-http"]);
    for when in [2, 5, 9] {
        let back = Store::empty();
        // Sockets are written with send(2); write(2) is the files (and
        // stderr): the `when`th file write fails with ENOSPC.
        let out = std::process::Command::new("strace")
            .args(["-f", "-o", "/dev/null", "-e", "trace=write", "-e"])
            .arg(format!("inject=write:error=ENOSPC:when={when}"))
            .arg(crate::util::bin())
            .arg("--layout")
            .arg(&back.layout)
            .args(["pull", &src, "--plain-http", "--jobs", "1"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "write {when}: {err}");
        assert!(
            err.contains("No space left on device"),
            "write {when}: {err}"
        );
        if back.layout.join("index.json").exists() {
            assert!(
                back.index()["manifests"]
                    .as_array()
                    .is_none_or(|m| m.is_empty()),
                "write {when}: nothing tagged"
            );
            back.ok(&["verify"]);
        }
        let again = back.json(&["pull", &src, "--plain-http"]);
        assert_eq!(again["digest"], s.json(&["inspect", "disks:1"])["digest"]);
        back.ok(&["verify"]);
    }
}
