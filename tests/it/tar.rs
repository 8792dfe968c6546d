//! `import-tar` and `export-tar` against tars we did not write (Python's
//! `tarfile`, as cocoon lays them out) and readers we did not write
//! (Python's `tarfile` applying the COCOON.sparse records, GNU tar).

use std::fs::{self, File};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::{Store, bytes, have_tool, sh};
use serde_json::{Value, json};

/// Writes a cocoon-style tar from a JSON spec: `snapshot.json` first (when
/// `envelope` is not null), then each member. A member with `path` is a
/// file read from disk: its data segments (SEEK_DATA/SEEK_HOLE) back to
/// back, with COCOON.sparse records when it has holes. Otherwise `data_len`
/// bytes of body with the given `pax` records, or a non-file `type`.
const WRITE_TAR: &str = r#"
import io, json, os, sys, tarfile
spec = json.load(open(sys.argv[1]))
def extents(path):
    fd = os.open(path, os.O_RDONLY)
    size, ext, pos = os.fstat(fd).st_size, [], 0
    try:
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            ext.append((start, end - start))
            pos = end
    finally:
        os.close(fd)
    return size, ext
with tarfile.open(sys.argv[2], "w", format=tarfile.PAX_FORMAT) as tf:
    if spec["envelope"] is not None:
        data = json.dumps(spec["envelope"]).encode()
        ti = tarfile.TarInfo("snapshot.json")
        ti.size, ti.mode = len(data), 0o644
        tf.addfile(ti, io.BytesIO(data))
    for m in spec["members"]:
        ti = tarfile.TarInfo(m["name"])
        ti.mode, ti.mtime = m.get("mode", 0o640), 1700000000
        kind = m.get("type", "file")
        if kind == "file":
            if "path" in m:
                size, ext = extents(m["path"])
                with open(m["path"], "rb") as f:
                    body = b"".join(os.pread(f.fileno(), l, o) for o, l in ext)
                ti.mode = os.stat(m["path"]).st_mode & 0o7777
                if len(body) != size:
                    segs = [{"o": o, "l": l} for o, l in ext]
                    ti.pax_headers = {
                        "COCOON.sparse.map": json.dumps(segs, separators=(",", ":")),
                        "COCOON.sparse.size": str(size),
                    }
            else:
                body = bytes(i % 251 for i in range(m.get("data_len", 0)))
                ti.pax_headers = m.get("pax", {})
            ti.size = len(body)
            tf.addfile(ti, io.BytesIO(body))
        else:
            ti.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                       "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE,
                       "dir": tarfile.DIRTYPE, "fifo": tarfile.FIFOTYPE}[kind]
            ti.linkname = m.get("link", "")
            tf.addfile(ti)
"#;

/// Reads a tar (a path, or `-` for stdin) with Python's `tarfile`, rebuilds
/// each file in OUTDIR at its logical size from COCOON.sparse records, and
/// prints what it saw as JSON.
const READ_TAR: &str = r#"
import json, os, sys, tarfile
src, outdir = sys.argv[1], sys.argv[2]
tf = tarfile.open(fileobj=sys.stdin.buffer, mode="r|*") if src == "-" else tarfile.open(src, "r:*")
names, members, envelope = [], [], None
for ti in tf:
    names.append(ti.name)
    f = tf.extractfile(ti)
    if ti.name == "snapshot.json":
        envelope = json.load(f)
        continue
    assert ti.isreg() and "/" not in ti.name, ti.name
    pax = ti.pax_headers
    path = os.path.join(outdir, ti.name)
    with open(path, "wb") as out:
        if "COCOON.sparse.map" in pax:
            out.truncate(int(pax["COCOON.sparse.size"]))
            segs = json.loads(pax["COCOON.sparse.map"]) or []
        else:
            segs = [{"o": 0, "l": ti.size}]
        for s in segs:
            out.seek(s["o"])
            left = s["l"]
            while left:
                b = f.read(min(left, 1 << 20))
                assert b, "short body"
                out.write(b)
                left -= len(b)
        assert f.read(1) == b"", "body longer than its map"
    os.chmod(path, ti.mode)
    members.append({"name": ti.name, "mode": ti.mode, "sparse": "COCOON.sparse.map" in pax})
print(json.dumps({"names": names, "envelope": envelope, "members": members}))
"#;

fn envelope() -> Value {
    json!({"version": 1, "config": {
        "id": "sn-42", "name": "bot", "image": "ghcr.io/x/ubuntu:24.04",
        "hypervisor": "cloud-hypervisor", "cpu": 2, "memory": 1073741824_u64,
        "storage": 10737418240_u64, "nics": 1
    }})
}

/// A snapshot directory: its envelope as `snapshot.json` (so that `pack
/// snapshot` fills the same config as an import), a dense 4 MiB memory
/// file (0600), a 64 MiB sparse raw disk with three data runs, a qcow2
/// made by qemu-img (if installed), config.json and an empty cidata.img.
fn snapshot_dir(s: &Store) -> PathBuf {
    let dir = s.path("snap");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("snapshot.json"), envelope().to_string()).unwrap();
    if have_tool("qemu-img") {
        sh(Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(dir.join("overlay.qcow2"))
            .arg("64M"));
    }
    let cow = File::create(dir.join("cow.raw")).unwrap();
    cow.set_len(64 << 20).unwrap();
    cow.write_all_at(&bytes(1 << 20, 1), 1 << 20).unwrap();
    cow.write_all_at(&bytes(3 << 20, 2), 20 << 20).unwrap();
    cow.write_all_at(&bytes(512 << 10, 3), 60 << 20).unwrap();
    cow.sync_all().unwrap();
    fs::write(dir.join("memory-ranges"), bytes(4 << 20, 4)).unwrap();
    fs::set_permissions(dir.join("memory-ranges"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(
        dir.join("config.json"),
        br#"{"cpus":{"boot_vcpus":2},"memory":{"size":1073741824}}"#,
    )
    .unwrap();
    fs::write(dir.join("cidata.img"), b"").unwrap();
    dir
}

/// The snapshot's files (not `snapshot.json`), in name order.
fn files_of(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "snapshot.json")
        .collect();
    names.sort();
    names
}

fn python(script: &str, args: &[&Path]) -> Command {
    let mut c = Command::new("python3");
    c.arg("-c").arg(script).args(args);
    c
}

/// Writes a tar from `spec` with Python's tarfile.
fn python_tar(s: &Store, name: &str, spec: &Value) -> PathBuf {
    let spec_path = s.file(&format!("{name}.json"), spec.to_string().as_bytes());
    let out = s.path(name);
    sh(&mut python(WRITE_TAR, &[&spec_path, &out]));
    out
}

/// The snapshot directory as a Python-written tar.
fn python_tar_of(s: &Store, dir: &Path) -> PathBuf {
    let members: Vec<Value> = files_of(dir)
        .iter()
        .map(|n| json!({"name": n, "path": dir.join(n)}))
        .collect();
    python_tar(
        s,
        "py.tar",
        &json!({"envelope": envelope(), "members": members}),
    )
}

/// Reads a tar with Python's tarfile into a fresh directory; returns it and
/// what the script saw.
fn python_read(s: &Store, tar: &Path, out: &str) -> (PathBuf, Value) {
    let dir = s.path(out);
    fs::create_dir(&dir).unwrap();
    let seen = sh(&mut python(READ_TAR, &[tar, &dir]));
    (dir, serde_json::from_str(&seen).unwrap())
}

/// Same names, bytes, modes, and holes (allocated blocks) in `b` as in `a`.
fn assert_same_files(a: &Path, b: &Path) {
    assert_eq!(files_of(a), files_of(b), "same file names");
    for n in files_of(a) {
        let (x, y) = (a.join(&n), b.join(&n));
        assert!(
            fs::read(&x).unwrap() == fs::read(&y).unwrap(),
            "{n}: bytes differ"
        );
        let (mx, my) = (fs::metadata(&x).unwrap(), fs::metadata(&y).unwrap());
        assert_eq!(mx.mode() & 0o7777, my.mode() & 0o7777, "{n}: mode");
        assert!(
            my.blocks() <= mx.blocks() + 64,
            "{n}: holes kept ({} vs {} blocks)",
            my.blocks(),
            mx.blocks()
        );
    }
}

/// A snapshot's manifest and config, creation times removed.
fn without_times(s: &Store, r: &str) -> (Value, Value) {
    let m = s.json(&["inspect", r]);
    let mut doc = m["manifest"].clone();
    let raw = fs::read(s.blob(doc["config"]["digest"].as_str().unwrap())).unwrap();
    let mut config: Value = serde_json::from_slice(&raw).unwrap();
    config.as_object_mut().unwrap().remove("createdAt");
    doc["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("org.opencontainers.image.created");
    doc.as_object_mut().unwrap().remove("config");
    (doc, config)
}

fn import_stdin(s: &Store, input: Stdio, args: &[&str]) -> std::process::Output {
    let mut a = vec!["import-tar", "-"];
    a.extend_from_slice(args);
    s.cmd(&a).stdin(input).output().unwrap()
}

#[test]
fn python_tars_import_plain_gzip_and_from_stdin_and_unpack_identical() {
    if !have_tool("python3") || !have_tool("gzip") {
        return;
    }
    let s = Store::new();
    let dir = snapshot_dir(&s);
    let tar = python_tar_of(&s, &dir);
    s.ok(&[
        "import-tar",
        tar.to_str().unwrap(),
        "--ref",
        "bot:plain",
        "--chunk-size",
        "1MiB",
    ]);
    let gz = s.path("py.tar.gz");
    let gz_bytes = sh(Command::new("sh").arg("-c").arg(format!(
        "gzip -c {} > {} && echo ok",
        tar.display(),
        gz.display()
    )));
    assert_eq!(gz_bytes.trim(), "ok");
    s.ok(&[
        "import-tar",
        gz.to_str().unwrap(),
        "--ref",
        "bot:gz",
        "--chunk-size",
        "1MiB",
    ]);
    let out = import_stdin(
        &s,
        File::open(&tar).unwrap().into(),
        &["--ref", "bot:stdin", "--chunk-size", "1MiB", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["ref"], "bot:stdin");
    assert_eq!(
        j["artifactType"],
        "application/vnd.cocoonstack.snapshot.v2+json"
    );
    assert!(
        j["size"].as_u64().unwrap() < 16 << 20,
        "holes not stored: {j}"
    );
    let want = without_times(&s, "bot:plain");
    for r in ["bot:gz", "bot:stdin"] {
        assert_eq!(without_times(&s, r), want, "{r}");
    }
    let config = &want.1;
    assert_eq!(config["snapshotId"], "sn-42");
    assert_eq!(config["cpu"], 2);
    assert!(config.get("name").is_none(), "the name becomes the ref");
    assert_eq!(config["files"]["cow.raw"]["sparseSize"], 64u64 << 20);
    for r in ["bot:plain", "bot:gz", "bot:stdin"] {
        let target = s.path(&format!("out-{}", r.replace(':', "-")));
        s.ok(&["unpack", r, target.to_str().unwrap()]);
        assert_same_files(&dir, &target);
    }
    s.ok(&["verify"]);
}

#[test]
fn import_makes_what_pack_snapshot_makes() {
    if !have_tool("python3") {
        return;
    }
    let s = Store::new();
    let dir = snapshot_dir(&s);
    let tar = python_tar_of(&s, &dir);
    let runs: [&[&str]; 4] = [
        &["--format", "v1"],
        &["--chunk-size", "1MiB"],
        &["--chunk-size", "2MiB", "--compress", "zstd:3"],
        &["--compress", "zstd", "--description", "nightly"],
    ];
    for (i, extra) in runs.iter().enumerate() {
        let (packed, imported) = (format!("pack:{i}"), format!("import:{i}"));
        let mut a = vec!["pack", "snapshot", dir.to_str().unwrap(), "--ref", &packed];
        a.extend_from_slice(extra);
        s.ok(&a);
        let mut a = vec!["import-tar", tar.to_str().unwrap(), "--ref", &imported];
        a.extend_from_slice(extra);
        s.ok(&a);
        assert_eq!(
            without_times(&s, &imported),
            without_times(&s, &packed),
            "{extra:?}"
        );
    }
}

#[test]
fn exports_are_read_by_python_and_round_trip() {
    if !have_tool("python3") {
        return;
    }
    let s = Store::new();
    let dir = snapshot_dir(&s);
    let runs: [(&str, &[&str]); 3] = [
        ("v1", &["--format", "v1"]),
        ("v2", &["--chunk-size", "1MiB"]),
        ("v2z", &["--chunk-size", "2MiB", "--compress", "zstd:3"]),
    ];
    for (tag, extra) in runs {
        let r = format!("bot:{tag}");
        let mut a = vec!["pack", "snapshot", dir.to_str().unwrap(), "--ref", &r];
        a.extend_from_slice(extra);
        s.ok(&a);
        let file = s.path(&format!("{tag}.tar"));
        let j = s.json(&["export-tar", &r, "-o", file.to_str().unwrap()]);
        assert_eq!(j["size"].as_u64(), Some(fs::metadata(&file).unwrap().len()));
        // To stdout: the same bytes (the stream is deterministic).
        let out = s.cmd(&["export-tar", &r]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout == fs::read(&file).unwrap(),
            "{tag}: stdout and -o differ"
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("Exported"));

        let (got, seen) = python_read(&s, &file, &format!("py-{tag}"));
        assert_eq!(seen["names"][0], "snapshot.json", "{seen}");
        let mut names = vec!["snapshot.json".to_string()];
        names.extend(files_of(&dir));
        assert_eq!(seen["names"], json!(names));
        assert_eq!(seen["envelope"]["version"], 1);
        assert_eq!(seen["envelope"]["config"]["name"], "bot");
        assert_eq!(seen["envelope"]["config"]["id"], "sn-42");
        assert_eq!(seen["envelope"]["config"]["storage"], 10737418240_u64);
        let cow = seen["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "cow.raw");
        assert_eq!(cow.unwrap()["sparse"], true);
        assert_same_files(&dir, &got);

        // Export, import, unpack: the same snapshot again.
        let back = format!("back:{tag}");
        let mut a = vec!["import-tar", file.to_str().unwrap(), "--ref", &back];
        a.extend_from_slice(extra);
        s.ok(&a);
        assert_eq!(without_times(&s, &back), without_times(&s, &r), "{tag}");
        let target = s.path(&format!("unpacked-{tag}"));
        s.ok(&["unpack", &back, target.to_str().unwrap()]);
        assert_same_files(&dir, &target);
    }
    // By the digest of an untagged manifest, the snapshot is named after
    // its id; --name overrides.
    let digest = s.json(&["inspect", "bot:v1"])["digest"]
        .as_str()
        .unwrap()
        .to_string();
    s.ok(&["untag", "bot:v1", "back:v1"]);
    let file = s.path("by-digest.tar");
    s.ok(&["export-tar", &digest, "-o", file.to_str().unwrap()]);
    assert_eq!(
        python_read(&s, &file, "py-d").1["envelope"]["config"]["name"],
        "sn-42"
    );
    s.ok(&[
        "export-tar",
        &digest,
        "-o",
        file.to_str().unwrap(),
        "--name",
        "vm7",
    ]);
    assert_eq!(
        python_read(&s, &file, "py-n").1["envelope"]["config"]["name"],
        "vm7"
    );
}

mod bad;
