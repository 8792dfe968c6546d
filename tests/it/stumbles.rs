//! Regression tests for the first-hour stumbles of the adversarial run
//! (issue 8, item 8), one test each: gc waiting in silence, `-q` eating
//! answers, future mtimes, process-clock mtimes, ambiguous durations,
//! repeated causes, `init` on a full directory, uneven columns.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::util::{Store, bin, have_tool};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A writer that holds the layout's writer lock until its stdin closes:
/// `import-tar -` waiting for its stream.
fn hold_writer(st: &Store) -> std::process::Child {
    let child = st
        .cmd(&["import-tar", "-", "--ref", "held:1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string("/proc/locks")
        .unwrap()
        .split_whitespace()
        .any(|f| f == pid)
    {
        assert!(Instant::now() < deadline, "the writer never took its lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// gc behind a running writer waited without a word: on a terminal it now
/// says what it waits for, naming the writer's pid; in a pipe it says nothing.
#[test]
fn gc_says_on_a_terminal_what_it_waits_for() {
    if !have_tool("script") {
        return;
    }
    let st = Store::new();
    let mut writer = hold_writer(&st);
    let cmd = format!("{} --layout {} gc --grace 0s", bin(), st.layout.display());
    let mut gc = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = gc.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        out.read_to_end(&mut text).unwrap();
        String::from_utf8_lossy(&text).into_owned()
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(gc.try_wait().unwrap().is_none(), "gc waits for the writer");
    drop(writer.stdin.take()); // the writer's stream ends; it exits
    writer.wait().unwrap();
    assert!(gc.wait().unwrap().success());
    let text = reader.join().unwrap();
    assert!(
        text.contains("gc is waiting for the lock")
            && text.contains(&format!("process {}", writer.id())),
        "{text}"
    );
    assert!(text.contains("Removed 0 blobs"), "then it ran: {text}");

    // Not a terminal: no word about it.
    let mut writer = hold_writer(&st);
    let gc = st
        .cmd(&["gc", "--grace", "0s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    drop(writer.stdin.take());
    writer.wait().unwrap();
    let out = gc.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// The other way round: a writer behind a running gc says it waits for it.
/// The gc is stood in for by a process holding gc.lock exclusively, as gc
/// does while it sweeps.
#[test]
fn a_writer_says_on_a_terminal_that_it_waits_for_gc() {
    if !have_tool("script") || !have_tool("python3") {
        return;
    }
    let st = Store::new();
    let lock = st.layout.join(".epoch-store/gc.lock");
    let mut gc = Command::new("python3")
        .args([
            "-c",
            "import fcntl,sys; f=open(sys.argv[1],'a'); fcntl.flock(f,fcntl.LOCK_EX); \
             print('held',flush=True); sys.stdin.read()",
            s(&lock),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = [0u8; 5];
    gc.stdout.take().unwrap().read_exact(&mut line).unwrap();
    assert_eq!(&line, b"held\n");
    let f = st.file("f.bin", b"bytes");
    let cmd = format!(
        "{} --layout {} add --ref a:1 {}",
        bin(),
        st.layout.display(),
        f.display()
    );
    let add = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    drop(gc.stdin.take());
    gc.wait().unwrap();
    let out = add.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("a gc at work on this layout")
            && text.contains(&format!("process {}", gc.id())),
        "{text}"
    );
    assert!(text.contains("Added a:1"), "{text}");
}

/// `-q` printed nothing for ls, inspect, du and gc --dry-run, and dropped
/// the digest of an untagged `add`, its only handle.
#[test]
fn quiet_silences_chatter_never_the_answer() {
    let st = Store::new();
    let digest = st.add("a:1", &[("f", b"x")]);
    for (args, needle) in [
        (vec!["ls"], digest.as_str()),
        (vec!["inspect", "a:1"], digest.as_str()),
        (vec!["du"], digest.as_str()),
        (vec!["gc", "--dry-run"], "Would remove 0 blobs"),
    ] {
        let mut a = vec!["-q"];
        a.extend(&args);
        let out = st.ok(&a);
        assert!(out.contains(needle), "{a:?}: {out:?}");
    }
    let f = st.file("untagged.bin", b"only a digest names me");
    let out = st.ok(&["-q", "add", s(&f)]);
    let printed = out.trim();
    assert!(
        printed.starts_with("sha256:") && printed.len() == 71,
        "{out:?}"
    );
    assert_eq!(st.json(&["inspect", printed])["digest"], printed);
    // Chatter stays silent.
    assert_eq!(st.ok(&["-q", "tag", "a:1", "b:1"]), "");
    assert_eq!(st.ok(&["-q", "add", "--ref", "c:1", s(&f)]), "");
    assert_eq!(st.ok(&["-q", "verify"]), "");
}

/// Stores an unreferenced blob and sets its mtime to `t`; returns its path.
fn loose_blob(st: &Store, content: &[u8], t: SystemTime) -> std::path::PathBuf {
    let p = st.blob(&st.put_raw(content));
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(t)
        .unwrap();
    p
}

/// Unreferenced blobs with a future mtime were never collected and were
/// called "younger than 0s": they are counted apart, and the report says why.
#[test]
fn gc_counts_future_dated_blobs_apart_and_says_why() {
    let st = Store::new();
    let day = Duration::from_secs(86_400);
    let future = loose_blob(
        &st,
        b"from a machine whose clock runs ahead",
        SystemTime::now() + day,
    );
    let old = loose_blob(&st, b"old garbage", SystemTime::now() - 2 * day);
    let plan = st.json(&["gc", "--dry-run", "--grace", "0s"]);
    assert_eq!(plan["futureBlobs"], 1, "{plan}");
    assert_eq!(plan["youngBlobs"], 0, "{plan}");
    assert_eq!(plan["blobs"].as_array().unwrap().len(), 1, "{plan}");
    let out = st.ok(&["gc", "--grace", "0s"]);
    assert!(out.contains("1 unreachable dated in the future"), "{out}");
    assert!(
        out.contains("modification time in the future") && out.contains("-newermt now"),
        "{out}"
    );
    assert!(!out.contains("younger than 0s"), "{out}");
    assert!(future.exists() && !old.exists());
}

/// A blob's mtime was refreshed with the process's clock, so under clock
/// skew (faketime) a blob used just now was stamped days ago, and a gc
/// with a normal clock would remove it.
#[test]
fn refreshed_mtimes_come_from_the_kernel_clock() {
    if !have_tool("faketime") {
        return;
    }
    let st = Store::new();
    let content = b"a blob that is used again";
    let f = st.file("f.bin", content);
    st.ok(&["add", "--ref", "a:1", s(&f)]);
    let layer = st.json(&["inspect", "a:1"])["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let p = st.blob(&layer);
    let week_ago = SystemTime::now() - Duration::from_secs(7 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(week_ago)
        .unwrap();
    // The same bytes added again, by a process whose clock is 3 days late.
    let out = Command::new("faketime")
        .args(["-f", "-3d"])
        .arg(bin())
        .arg("--layout")
        .arg(&st.layout)
        .args(["add", "--ref", "a:2", s(&f)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
    let off = SystemTime::now().duration_since(mtime).unwrap_or_default();
    assert!(
        off < Duration::from_secs(120),
        "stamped {off:?} ago, not now"
    );
}

/// `--grace -1s` said "unexpected argument '-1' found", and `1M` meant a month.
#[test]
fn grace_takes_only_unambiguous_units() {
    let st = Store::new();
    for (grace, says) in [
        ("-1s", "negative"),
        ("1M", "ambiguous (month or minute?)"),
        ("10", "needs a unit"),
        ("3y", "unknown unit"),
    ] {
        let err = st.fails(2, &["gc", "--dry-run", "--grace", grace]);
        assert!(err.contains(says), "{grace}: {err}");
    }
    for grace in ["0s", "90m", "1h 30m", "1h30m", "7d", "2w", "36 hours"] {
        st.ok(&["gc", "--dry-run", "--grace", grace]);
    }
    let out = st.ok(&["gc", "--dry-run", "--grace", "90m"]);
    assert!(out.contains("younger than 1h30m"), "{out}");
}

/// Errors printed their cause twice ("...: Input/output error (os error 5)
/// / caused by: Input/output error (os error 5)").
#[test]
fn errors_do_not_repeat_their_cause() {
    if !have_tool("strace") {
        return;
    }
    let st = Store::new();
    let f = st.file("f.bin", b"bytes");
    let out = Command::new("strace")
        .args([
            "-f",
            "-o",
            "/dev/null",
            "-e",
            "trace=fsync",
            "-e",
            "inject=fsync:error=EIO:when=1",
        ])
        .arg(bin())
        .arg("--layout")
        .arg(&st.layout)
        .args(["add", "--ref", "a:1", s(&f)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.matches("Input/output error (os error 5)").count(),
        1,
        "{err}"
    );
    assert!(err.starts_with("epoch-store: error: fsync "), "{err}");
}

/// `init` on a directory that is neither empty nor a layout (say `/`)
/// turned it into a layout without a word.
#[test]
fn init_refuses_a_directory_that_is_neither_empty_nor_a_layout() {
    let st = Store::empty();
    std::fs::create_dir_all(&st.layout).unwrap();
    std::fs::write(st.layout.join("README"), b"my files").unwrap();
    let err = st.fails(2, &["init"]);
    assert!(
        err.contains("not empty") && err.contains("README") && err.contains("--force"),
        "{err}"
    );
    assert!(!st.layout.join("oci-layout").exists() && !st.layout.join("blobs").exists());
    st.ok(&["init", "--force"]);
    st.ok(&["verify"]);
    // An existing layout with extra files is still a layout: init is a no-op.
    st.ok(&["init"]);
    // A new directory, an empty one, and what an interrupted init leaves, are fine.
    let st = Store::empty();
    st.ok(&["init"]);
    std::fs::remove_file(st.layout.join("index.json")).unwrap();
    std::fs::remove_file(st.layout.join("oci-layout")).unwrap();
    st.ok(&["init"]);
    st.ok(&["verify"]);
}

/// The KIND column was padded to a fixed 15 characters whatever the kinds.
#[test]
fn ls_columns_are_as_wide_as_their_widest_cell() {
    let st = Store::new();
    st.add("files:1", &[("f", b"x")]);
    let img = st.file("disk.raw", &[7u8; 4096]);
    st.ok(&[
        "pack",
        "image",
        s(&img),
        "--ref",
        "an-os-image:with-a-long-tag",
    ]);
    let out = st.ok(&["ls"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let digest_at: Vec<usize> = lines
        .iter()
        .map(|l| l.find("sha256:").or_else(|| l.find("DIGEST")).unwrap())
        .collect();
    assert!(
        digest_at.iter().all(|&i| i == digest_at[0]),
        "DIGEST aligned:\n{out}"
    );
    // Every column is as wide as its widest cell, two spaces between: REF
    // ends two spaces before KIND, and STORED (right-aligned) ends exactly
    // where the widest KIND and the widest STORED cell put it.
    let kind_at = "an-os-image:with-a-long-tag".len() + 2;
    assert_eq!(lines[0].find("KIND"), Some(kind_at), "{out}");
    let kinds = ["KIND", "unknown", "cloud-image"];
    let stored_end = lines[0].find("STORED").unwrap() + "STORED".len();
    let widest_stored = lines
        .iter()
        .map(|l| {
            let kind = kinds.iter().find(|k| l[kind_at..].starts_with(*k)).unwrap();
            l[kind_at + kind.len()..stored_end].trim().len()
        })
        .max()
        .unwrap();
    assert_eq!(
        stored_end,
        kind_at + "cloud-image".len() + 2 + widest_stored,
        "{out}"
    );
}
