//! `push` and `pull` options against Debian's `docker-registry`
//! (distribution 2.8) on 127.0.0.1: `--dry-run` says what would move and
//! moves nothing; `--limit-rate` holds the transfer to its rate.

use crate::registry::Registry;
use crate::util::{Store, bytes, have_tool};

#[test]
fn dry_runs_say_what_would_move_and_move_nothing() {
    if !have_tool("docker-registry") {
        return;
    }
    let s = Store::new();
    s.add(
        "disks:1",
        &[
            ("a.img", &bytes(300 << 10, 1)),
            ("b.img", &bytes(200 << 10, 2)),
        ],
    );
    let reg = Registry::start(&s);
    let dest = format!("{}/vms/disks:1", reg.host);
    let plan = s.json(&["push", "disks:1", &dest, "--plain-http", "--dry-run"]);
    assert_eq!(plan["dryRun"], true, "{plan}");
    // Two disks and the config, none there yet.
    assert_eq!(plan["blobs"], 3, "{plan}");
    assert_eq!(plan["blobsSkipped"], 0, "{plan}");
    let first_bytes = plan["bytes"].as_u64().unwrap();
    assert!(first_bytes >= 500 << 10, "{plan}");
    let human = s.ok(&["push", "disks:1", &dest, "--plain-http", "--dry-run"]);
    assert!(
        human.starts_with("Would push disks:1") && human.contains("3 blobs to send"),
        "{human}"
    );
    let nothing = Store::empty();
    let err = nothing.fails(2, &["pull", &dest, "--plain-http", "--dry-run"]);
    assert!(err.contains("404"), "the dry run pushed nothing: {err}");

    s.ok(&["push", "disks:1", &dest, "--plain-http"]);
    let again = s.json(&["push", "disks:1", &dest, "--plain-http", "--dry-run"]);
    assert_eq!(
        (&again["blobs"], &again["blobsSkipped"]),
        (&0.into(), &3.into())
    );

    let back = Store::empty();
    let plan = back.json(&["pull", &dest, "--plain-http", "--dry-run"]);
    assert_eq!(plan["blobs"], 3, "{plan}");
    assert_eq!(plan["bytes"], first_bytes, "{plan}");
    assert_eq!(plan["digest"], s.json(&["inspect", "disks:1"])["digest"]);
    let blobs = std::fs::read_dir(back.layout.join("blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(blobs, 0, "the dry run stored nothing");
    assert!(
        back.index()["manifests"]
            .as_array()
            .is_none_or(|m| m.is_empty()),
        "the dry run tagged nothing"
    );
}

#[test]
fn limit_rate_holds_push_and_pull_to_the_rate() {
    if !have_tool("docker-registry") {
        return;
    }
    let s = Store::new();
    s.add("disk:1", &[("disk.img", &bytes(3 << 20, 3))]);
    let reg = Registry::start(&s);
    let dest = format!("{}/vms/disk:1", reg.host);
    // 3 MiB at 2 MiB/s: at least 1.5 s less one 100 ms burst.
    let out = s.json(&[
        "push",
        "disk:1",
        &dest,
        "--plain-http",
        "--limit-rate",
        "2MiB/s",
        "--chunk-size",
        "1MiB",
    ]);
    let secs = out["seconds"].as_f64().unwrap();
    assert!(secs >= 1.35, "pushed 3 MiB in {secs} s at 2 MiB/s");
    let back = Store::empty();
    let out = back.json(&["pull", &dest, "--plain-http", "--limit-rate", "2MiB"]);
    let secs = out["seconds"].as_f64().unwrap();
    assert!(secs >= 1.35, "pulled 3 MiB in {secs} s at 2 MiB/s");
    back.ok(&["verify"]);
    let err = s.fails(2, &["push", "disk:1", &dest, "--limit-rate", "0"]);
    assert!(err.contains("more than 0"), "{err}");
}

#[test]
fn a_blob_damaged_here_fails_its_push_whole_or_in_chunks_and_says_to_verify() {
    if !have_tool("docker-registry") {
        return;
    }
    let s = Store::new();
    let digest = s.add("disk:1", &[("disk.img", &bytes(1 << 20, 4))]);
    let reg = Registry::start(&s);
    // The layer is the largest blob: flip one byte of it, size unchanged.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.blob(&digest)).unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let path = s.blob(&layer);
    let mut data = std::fs::read(&path).unwrap();
    data[1000] ^= 1;
    std::fs::write(&path, data).unwrap();
    for (repo, chunk) in [("whole", "64MiB"), ("chunked", "256KiB")] {
        let dest = format!("{}/{repo}/disk:1", reg.host);
        let err = s.fails(
            2,
            &[
                "push",
                "disk:1",
                &dest,
                "--plain-http",
                "--chunk-size",
                chunk,
            ],
        );
        assert!(
            err.contains(&layer) && err.contains("run `epoch-store verify`"),
            "{repo}: {err}"
        );
        // Nothing refers to it there: the tag was never put.
        let back = Store::empty();
        let out = back.fails(2, &["pull", &dest, "--plain-http"]);
        assert!(out.contains("404"), "{repo}: {out}");
    }
}

#[test]
fn one_pull_takes_several_sources_each_tagged_as_its_repository() {
    if !have_tool("docker-registry") {
        return;
    }
    let s = Store::new();
    s.add("a:1", &[("a.img", &bytes(10 << 10, 5))]);
    s.add("b:2", &[("b.img", &bytes(10 << 10, 6))]);
    let reg = Registry::start(&s);
    s.ok(&[
        "push",
        "--all",
        &format!("{}/site", reg.host),
        "--plain-http",
    ]);
    let (a, b) = (
        format!("{}/site/a:1", reg.host),
        format!("{}/site/b:2", reg.host),
    );
    let back = Store::empty();
    let out = back.json(&["pull", &a, &b, "--plain-http"]);
    let rows = out["pulled"].as_array().expect("a row per source");
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[1]["ref"], "site/b:2", "{out}");
    let refs: Vec<String> = back
        .json(&["ls"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ref"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        refs.contains(&"site/a:1".into()) && refs.contains(&"site/b:2".into()),
        "{refs:?}"
    );
    back.ok(&["verify"]);
    let err = back.fails(2, &["pull", &a, &b, "--plain-http", "--ref", "x:1"]);
    assert!(err.contains("one SRC"), "{err}");
}

#[test]
fn a_later_push_to_another_repository_mounts_what_an_earlier_run_sent() {
    if !have_tool("docker-registry") {
        return;
    }
    let s = Store::new();
    s.add(
        "disks:1",
        &[
            ("a.img", &bytes(200 << 10, 7)),
            ("b.img", &bytes(100 << 10, 8)),
        ],
    );
    let reg = Registry::start(&s);
    let first = s.json(&[
        "push",
        "disks:1",
        &format!("{}/one/disks:1", reg.host),
        "--plain-http",
    ]);
    assert_eq!(first["blobs"], 3, "{first}");
    let second = s.json(&[
        "push",
        "disks:1",
        &format!("{}/two/disks:1", reg.host),
        "--plain-http",
    ]);
    assert_eq!(
        (&second["blobs"], &second["blobsMounted"]),
        (&0.into(), &3.into()),
        "{second}"
    );
    let back = Store::empty();
    back.ok(&["pull", &format!("{}/two/disks:1", reg.host), "--plain-http"]);
    back.ok(&["verify"]);
}
