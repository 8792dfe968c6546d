//! zstd chunks checked by the Go zstd code cocoon-common uses
//! (klauspost/compress v1.18.6, through `tests/oracle`): its decoder, with
//! cocoon-common's per-chunk output cap, reads every chunk we write, and we
//! read snapshots whose chunks its encoder wrote, including the frames under
//! 256 bytes that it writes without a content size.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::util::{Store, bytes, skip};
use serde_json::{Value, json};

/// `oracle-go` as `.ci/run` builds it, or `None` (a skip; a failure in CI).
fn oracle_go() -> Option<PathBuf> {
    let tools = std::env::var_os("EPOCH_STORE_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/epoch-store/tools")
        });
    let bin = tools.join("bin/oracle-go");
    if bin.is_file() {
        Some(bin)
    } else {
        skip(&format!(
            "{} is not built (.ci/go-peers.sh builds it from tests/oracle)",
            bin.display()
        ));
        None
    }
}

/// Runs `oracle-go ARGS` with `input` on stdin; stdout, or the error.
fn go(bin: &PathBuf, args: &[&str], input: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// cocoon-common's cap on one chunk's decoded size (`pullencoded.go:rawChunkStride`).
fn raw_chunk_stride(size: u64, n: usize) -> u64 {
    if n <= 1 || size == 0 {
        return size;
    }
    (size - 1) / (n as u64 - 1) + 1
}

fn doc(s: &Store, digest: &str) -> Value {
    serde_json::from_slice(&std::fs::read(s.blob(digest)).unwrap()).unwrap()
}

/// A snapshot directory whose compressed files end in chunks of 16 and 100
/// bytes at 1 MiB chunks.
fn snapshot_dir(s: &Store) -> PathBuf {
    let dir = s.path("snap");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("memory-ranges"), bytes((2 << 20) + 16, 1)).unwrap();
    let text: Vec<u8> = b"epoch-store chunk text "
        .iter()
        .cycle()
        .take((3 << 20) + 100)
        .copied()
        .collect();
    std::fs::write(dir.join("disk.raw"), text).unwrap();
    std::fs::write(
        dir.join("config.json"),
        br#"{"cpus":{"boot_vcpus":1},"memory":{"size":536870912}}"#,
    )
    .unwrap();
    dir
}

#[test]
fn go_zstd_decodes_every_chunk_we_write_within_cocoon_commons_cap() {
    let Some(bin) = oracle_go() else { return };
    let s = Store::new();
    let dir = snapshot_dir(&s);
    for level in ["zstd:1", "zstd:3", "zstd:19"] {
        let r = format!("vm:{}", level.replace(':', "-"));
        let d = dir.to_str().unwrap();
        s.ok(&[
            "pack",
            "snapshot",
            d,
            "--ref",
            &r,
            "--chunk-size",
            "1MiB",
            "--compress",
            level,
        ]);
        let m: Value = serde_json::from_str(&s.ok(&["cat", &r])).unwrap();
        let cfg = doc(&s, m["config"]["digest"].as_str().unwrap());
        for (name, f) in cfg["files"].as_object().unwrap() {
            let Some(chunks) = f["chunks"].as_array().filter(|c| !c.is_empty()) else {
                continue;
            };
            let cap = raw_chunk_stride(f["size"].as_u64().unwrap(), chunks.len());
            let mut whole = vec![];
            for c in chunks {
                let blob = std::fs::read(s.blob(c.as_str().unwrap())).unwrap();
                let cap_arg = cap.to_string();
                let out = go(&bin, &["zstd-decode-all", &cap_arg], &blob)
                    .unwrap_or_else(|e| panic!("{level} {name}: Go's DecodeAll: {e}"));
                whole.extend(out);
            }
            assert!(
                whole == std::fs::read(dir.join(name)).unwrap(),
                "{level} {name}: Go decodes the chunks to the file"
            );
        }
    }
}

/// Re-encodes every zstd chunk of `r` with Go's EncodeAll, as cocoon-common's
/// pusher does, and tags the result `new`: same decoded bytes, Go's frames.
fn go_encoded_copy(s: &Store, bin: &PathBuf, r: &str, new: &str) -> Vec<Value> {
    let mut m: Value = serde_json::from_str(&s.ok(&["cat", r])).unwrap();
    let cfg_digest = m["config"]["digest"].as_str().unwrap().to_string();
    let mut cfg_text = String::from_utf8(std::fs::read(s.blob(&cfg_digest)).unwrap()).unwrap();
    let mut infos = vec![];
    for l in m["layers"].as_array_mut().unwrap() {
        if !l["mediaType"].as_str().unwrap().ends_with("+zstd") {
            continue;
        }
        let old = l["digest"].as_str().unwrap().to_string();
        let plain = go(
            bin,
            &["zstd-decode-stream"],
            &std::fs::read(s.blob(&old)).unwrap(),
        )
        .unwrap();
        let frame = go(bin, &["zstd-encode-all", "3"], &plain).unwrap();
        let info: Value =
            serde_json::from_slice(&go(bin, &["zstd-frame-info"], &frame).unwrap()).unwrap();
        infos.push(json!({"decoded": plain.len(), "frame": info}));
        let digest = s.put_raw(&frame);
        cfg_text = cfg_text.replace(&old, &digest);
        l["digest"] = json!(digest);
        l["size"] = json!(frame.len());
    }
    let cfg_digest = s.put_raw(cfg_text.as_bytes());
    m["config"]["digest"] = json!(cfg_digest);
    m["config"]["size"] = json!(cfg_text.len());
    let raw = serde_json::to_vec(&m).unwrap();
    let d = s.put_raw(&raw);
    let mut e = crate::util::desc(crate::util::OCI_MANIFEST, &d, raw.len());
    e["annotations"] = json!({"org.opencontainers.image.ref.name": new});
    let mut idx = s.index();
    idx["manifests"].as_array_mut().unwrap().push(e);
    s.set_index(&idx);
    infos
}

#[test]
fn chunks_gos_encoder_wrote_unpack_and_export_including_frames_without_a_content_size() {
    let Some(bin) = oracle_go() else { return };
    let s = Store::new();
    let dir = snapshot_dir(&s);
    let d = dir.to_str().unwrap();
    s.ok(&[
        "pack",
        "snapshot",
        d,
        "--ref",
        "vm:ours",
        "--chunk-size",
        "1MiB",
        "--compress",
        "zstd",
    ]);
    let infos = go_encoded_copy(&s, &bin, "vm:ours", "vm:go");
    // The case this test is about: Go leaves the content size out under 256 bytes.
    let small: Vec<&Value> = infos
        .iter()
        .filter(|i| i["decoded"].as_u64() < Some(256))
        .collect();
    assert_eq!(small.len(), 2, "two short last chunks: {infos:?}");
    for i in &small {
        assert_eq!(i["frame"]["hasContentSize"], false, "{i}");
    }
    let v = s.json(&["verify"]);
    assert_eq!(v["problems"], json!([]), "{v}");
    let out = s.path("out");
    s.ok(&["unpack", "vm:go", out.to_str().unwrap()]);
    for name in ["memory-ranges", "disk.raw", "config.json"] {
        assert!(
            std::fs::read(out.join(name)).unwrap() == std::fs::read(dir.join(name)).unwrap(),
            "{name} unpacked from Go's frames"
        );
    }
    let tar = s.cmd(&["export-tar", "vm:go"]).output().unwrap();
    assert!(
        tar.status.success(),
        "export-tar: {}",
        String::from_utf8_lossy(&tar.stderr)
    );
    let ls = s.json(&["ls"]);
    let row = ls
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ref"] == "vm:go")
        .unwrap();
    let logical: u64 = ["memory-ranges", "disk.raw", "config.json"]
        .iter()
        .map(|n| std::fs::metadata(dir.join(n)).unwrap().len())
        .sum();
    assert_eq!(row["logicalSize"], logical, "{row}");
}
