//! What `import-tar` refuses and what a failed `export-tar` leaves.

use std::fs::{self, File};
use std::process::Command;

use serde_json::{Value, json};

use super::{envelope, import_stdin, python_tar, snapshot_dir};
use crate::util::{Store, bytes, have_tool};

#[test]
fn export_refuses_json_on_stdout_and_damage_leaves_nothing_usable() {
    let s = Store::new();
    let dir = snapshot_dir(&s);
    s.ok(&[
        "pack",
        "snapshot",
        dir.to_str().unwrap(),
        "--ref",
        "bot:1",
        "--chunk-size",
        "1MiB",
    ]);
    let err = s.fails(2, &["--json", "export-tar", "bot:1"]);
    assert!(err.contains("-o FILE"), "{err}");
    let err = s.fails(
        2,
        &[
            "export-tar",
            "nope:1",
            "-o",
            s.path("x.tar").to_str().unwrap(),
        ],
    );
    assert!(err.contains("no ref named"), "{err}");
    assert!(!s.path("x.tar").exists());

    // Damage the last chunk of cow.raw.
    let m = s.json(&["inspect", "bot:1"]);
    let layer = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|l| l["annotations"]["org.opencontainers.image.title"] == "cow.raw")
        .unwrap();
    let p = s.blob(layer["digest"].as_str().unwrap());
    let mut b = fs::read(&p).unwrap();
    b[10] ^= 1;
    fs::write(&p, b).unwrap();
    let dest = s.path("bad.tar");
    let err = s.fails(2, &["export-tar", "bot:1", "-o", dest.to_str().unwrap()]);
    assert!(err.contains("damaged"), "{err}");
    let leftovers: Vec<_> = fs::read_dir(s.tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("bad.tar"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let out = s.cmd(&["export-tar", "bot:1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let partial = s.file("partial.tar", &out.stdout);
    assert!(!out.stdout.is_empty());
    // Neither we nor GNU tar take the partial stream for a whole one.
    let err = s.fails(
        2,
        &["import-tar", partial.to_str().unwrap(), "--ref", "p:1"],
    );
    assert!(err.contains("truncated"), "{err}");
    if have_tool("tar") {
        let st = Command::new("tar")
            .arg("-tf")
            .arg(&partial)
            .output()
            .unwrap();
        assert!(!st.status.success(), "GNU tar accepted the partial stream");
    }
    let refs: Vec<Value> = s.json(&["ls"]).as_array().unwrap().clone();
    assert_eq!(refs.len(), 1, "{refs:?}");
}

#[test]
fn bad_tars_are_refused_and_nothing_is_tagged() {
    if !have_tool("python3") {
        return;
    }
    let s = Store::new();
    let good = json!({"name": "config.json", "data_len": 100});
    let sparse = |map: &str, size: &str, len: u64| {
        json!({"name": "cow.raw", "data_len": len,
               "pax": {"COCOON.sparse.map": map, "COCOON.sparse.size": size}})
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "dotdot",
            json!({"name": "../escape", "data_len": 10}),
            "refused",
        ),
        (
            "abs",
            json!({"name": "/etc/evil", "data_len": 10}),
            "absolute",
        ),
        (
            "subdir",
            json!({"name": "a/b", "data_len": 10}),
            "separator",
        ),
        (
            "overlap",
            sparse(r#"[{"o":0,"l":4096},{"o":2048,"l":4096}]"#, "65536", 8192),
            "overlaps",
        ),
        (
            "past",
            sparse(r#"[{"o":0,"l":4096},{"o":8192,"l":4096}]"#, "10000", 8192),
            "past the logical size",
        ),
        (
            "sum",
            sparse(r#"[{"o":0,"l":4096}]"#, "65536", 8192),
            "sparse map holds",
        ),
        (
            "negative",
            sparse(r#"[{"o":-1,"l":4096}]"#, "65536", 4096),
            "non-negative",
        ),
        (
            "negsize",
            sparse(r#"[{"o":0,"l":4096}]"#, "-5", 4096),
            "not a decimal size",
        ),
        ("notjson", sparse("garbage", "65536", 4096), "JSON"),
        (
            "halfsparse",
            json!({"name": "m", "data_len": 10, "pax": {"COCOON.sparse.map": "[]"}}),
            "only one of",
        ),
    ];
    for (name, member, want) in &cases {
        let spec = json!({"envelope": envelope(), "members": [good, member]});
        let tar = python_tar(&s, &format!("{name}.tar"), &spec);
        let err = s.fails(2, &["import-tar", tar.to_str().unwrap(), "--ref", "bad:1"]);
        assert!(err.contains(want), "{name}: {err}");
    }
    // What is not a regular file is passed over, said, never created, as
    // cocoon's import and cocoon-common's push pass it over.
    let passed_over: Vec<(&str, Value, &str)> = vec![
        (
            "symlink",
            json!({"name": "l", "type": "symlink", "link": "/etc/passwd"}),
            "symbolic link",
        ),
        (
            "hardlink",
            json!({"name": "h", "type": "hardlink", "link": "config.json"}),
            "hard link",
        ),
        (
            "chr",
            json!({"name": "null", "type": "chr"}),
            "character device",
        ),
        ("blk", json!({"name": "sda", "type": "blk"}), "block device"),
        ("fifo", json!({"name": "p", "type": "fifo"}), "FIFO"),
        ("dir", json!({"name": "d", "type": "dir"}), "directory"),
    ];
    for (name, member, want) in &passed_over {
        let spec = json!({"envelope": envelope(), "members": [good, member]});
        let tar = python_tar(&s, &format!("{name}.tar"), &spec);
        let r = format!("over:{name}");
        let out = s.run(&["import-tar", tar.to_str().unwrap(), "--ref", &r]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && err.contains(want), "{name}: {err}");
        let files = s.json(&["inspect", &r])["files"].clone();
        assert_eq!(
            files.as_array().unwrap().len(),
            1,
            "{name}: only config.json: {files}"
        );
        s.ok(&["untag", &r]);
    }
    // No envelope, a bad envelope, truncation, garbage, an empty stream.
    let no_env = python_tar(
        &s,
        "noenv.tar",
        &json!({"envelope": null, "members": [good]}),
    );
    let bad_env = python_tar(
        &s,
        "badenv.tar",
        &json!({"envelope": {"version": 2, "config": {}}, "members": [good]}),
    );
    let whole = python_tar(
        &s,
        "whole.tar",
        &json!({"envelope": envelope(), "members": [good, {"name": "mem", "data_len": 300000}]}),
    );
    let bytes_whole = fs::read(&whole).unwrap();
    let truncated = s.file("truncated.tar", &bytes_whole[..bytes_whole.len() / 2]);
    let garbage = s.file("garbage.tar", &bytes(100_000, 9));
    let empty = s.file("empty.tar", b"");
    for (tar, want) in [
        (&no_env, "not snapshot.json"),
        (&bad_env, "version 2"),
        (&truncated, "truncated"),
        (&garbage, "cocoon snapshot tar stream"),
        (&empty, "empty"),
    ] {
        let err = s.fails(2, &["import-tar", tar.to_str().unwrap(), "--ref", "bad:1"]);
        assert!(err.contains(want), "{}: {err}", tar.display());
    }
    let out = import_stdin(
        &s,
        File::open(&truncated).unwrap().into(),
        &["--ref", "bad:1"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(s.json(&["ls"]), json!([]));
    s.ok(&["verify"]);
    // The whole stream imports, so the failures above were the damage.
    s.ok(&["import-tar", whole.to_str().unwrap(), "--ref", "good:1"]);
}
