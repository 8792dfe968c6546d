//! push and pull against go-containerregistry's registry (`crane registry
//! serve`), with crane and oras reading what we push and pushing what we
//! pull.

use std::process::Command;

use crate::oras::Registry as CraneRegistry;
use crate::util::{Store, have_tool, sh};

fn fixture() -> Store {
    crate::registry::fixture().0
}

#[test]
fn crane_and_oras_read_what_we_push_to_cranes_registry() {
    if !have_tool("crane") || !have_tool("oras") {
        return;
    }
    let s = fixture();
    let reg = CraneRegistry::start(&s);
    for (r, repo) in [("snap:1", "vms/snap:1"), ("files:1", "misc/files:1")] {
        let digest = s.json(&["inspect", r])["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let dest = format!("{}/{repo}", reg.host);
        s.ok(&["push", r, &dest, "--plain-http"]);
        let by_crane = sh(Command::new("crane")
            .args(["manifest", "--insecure", &dest])
            .env("DOCKER_CONFIG", s.path("peer-home")));
        assert_eq!(
            crate::util::sha256(by_crane.as_bytes()),
            digest,
            "{r}: crane reads our bytes"
        );
        let by_oras = sh(Command::new("oras")
            .args(["manifest", "fetch", "--plain-http", &dest])
            .env("DOCKER_CONFIG", s.path("peer-home")));
        assert_eq!(
            crate::util::sha256(by_oras.as_bytes()),
            digest,
            "{r}: oras reads our bytes"
        );
    }
    let out = s.path("oras-out");
    std::fs::create_dir_all(&out).unwrap();
    sh(Command::new("oras")
        .args([
            "pull",
            "--plain-http",
            &format!("{}/misc/files:1", reg.host),
            "-o",
        ])
        .arg(&out)
        .env("DOCKER_CONFIG", s.path("peer-home")));
    assert_eq!(std::fs::read(out.join("notes.md")).unwrap(), b"# runbook\n");
}

#[test]
fn what_crane_and_oras_push_we_pull_and_verify() {
    if !have_tool("crane") || !have_tool("oras") {
        return;
    }
    let s = fixture();
    let reg = CraneRegistry::start(&s);
    // crane pushes a one-entry layout of ours.
    let one = s.path("one");
    s.ok(&["copy", "snap:1", "--to", one.to_str().unwrap()]);
    let dest = format!("{}/crane/snap:1", reg.host);
    let pushed = sh(Command::new("crane")
        .args(["push", "--insecure"])
        .arg(&one)
        .arg(&dest)
        .env("DOCKER_CONFIG", s.path("peer-home")));
    let back = Store::empty();
    let out = back.json(&["pull", &dest, "--plain-http", "--ref", "snap:1"]);
    assert!(
        pushed.contains(out["digest"].as_str().unwrap()),
        "{pushed} {out}"
    );
    back.ok(&["verify"]);
    // oras pushes a file as an artifact.
    let file = s.file("payload.bin", &crate::util::bytes(300_000, 9));
    let work = file.parent().unwrap().to_path_buf();
    let dest = format!("{}/oras/payload:1", reg.host);
    sh(Command::new("oras")
        .current_dir(&work)
        .args(["push", "--plain-http", &dest, "payload.bin"])
        .env("DOCKER_CONFIG", s.path("peer-home")));
    let out = back.json(&["pull", &dest, "--plain-http", "--ref", "payload:1"]);
    assert_eq!(
        out["blobs"].as_u64(),
        Some(2),
        "the config and the file: {out}"
    );
    back.ok(&["verify"]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(back.blob(out["digest"].as_str().unwrap())).unwrap())
            .unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    assert_eq!(
        std::fs::read(back.blob(layer)).unwrap(),
        crate::util::bytes(300_000, 9)
    );
}
