//! The README's first command: a demo of epoch-store on generated data.
//!
//! `cargo run --release --example quickstart` makes a temp dir with a
//! generated VM snapshot (a 768 MiB disk image and a 256 MiB memory file),
//! then: init, add, tag, ls, verify, damage a copy and verify it again,
//! untag, gc. Each step prints what it did and how long it took.
//! Set `QUICKSTART_MIB` to change the data size.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use epoch_store::model::{annotation, media_type_for_cocoon_file};
use epoch_store::{GcOptions, Layout, NoProgress, VerifyOptions};
use rayon::prelude::*;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let mib: u64 = std::env::var("QUICKSTART_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let tmp = tempfile::Builder::new()
        .prefix("epoch-quickstart-")
        .tempdir()?;
    println!("epoch-store quickstart in {}\n", tmp.path().display());

    let src = tmp.path().join("snapshot");
    fs::create_dir(&src)?;
    let disk = mib * 3 / 4;
    step("generate a VM snapshot", mib << 20, || {
        generate(&src.join("overlay.qcow2"), disk << 20, 1)?;
        generate(&src.join("memory-ranges"), (mib - disk) << 20, 2)?;
        fs::write(
            src.join("config.json"),
            br#"{"cpus":{"boot_vcpus":2},"memory":{"size":1073741824}}"#,
        )?;
        Ok(format!(
            "overlay.qcow2 {disk} MiB, memory-ranges {} MiB, config.json",
            mib - disk
        ))
    })?;

    let root = tmp.path().join("usb-stick");
    let layout = step("init", 0, || {
        let l = Layout::init(&root)?;
        Ok((l, format!("OCI image layout at {}", root.display())))
    })?;

    let manifest = step(
        "add --ref sre-agent-bot:v1 (hash + copy, files in parallel)",
        mib << 20,
        || {
            let w = layout.writer()?;
            let mut files: Vec<_> = fs::read_dir(&src)?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            files.sort();
            let layers = files
                .par_iter()
                .map(|p| {
                    let name = p
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_default()
                        .to_string();
                    let mut d = w.put_file(media_type_for_cocoon_file(&name), p, &NoProgress)?;
                    d.annotations.insert(annotation::TITLE.into(), name);
                    Ok(d)
                })
                .collect::<epoch_store::Result<Vec<_>>>()?;
            let m = epoch_store::artifact::files_manifest(&w, &layers, None, None)?;
            w.update_index(|i| Ok(i.set_ref("sre-agent-bot:v1", &m)))?;
            Ok((m.clone(), format!("{} ({} layers)", m.digest, layers.len())))
        },
    )?;

    step("tag sre-agent-bot:v1 sre-agent-bot:latest", 0, || {
        let w = layout.writer()?;
        w.update_index(|i| Ok(i.set_ref("sre-agent-bot:latest", &manifest)))?;
        Ok("two refs, one manifest".to_string())
    })?;

    step("ls", 0, || {
        let index = layout.read_index()?;
        let mut lines = Vec::new();
        for (name, d) in index.refs() {
            let s = layout.summarize(d)?;
            lines.push(format!(
                "  {name:<22} {:<8} {:>10}  {}",
                s.kind.as_str(),
                human(s.size),
                d.digest.short()
            ));
        }
        Ok(format!("\n{}", lines.join("\n")))
    })?;

    step(
        "verify (re-hash every blob on all cores)",
        mib << 20,
        || {
            let r = layout.verify(&VerifyOptions::default(), &NoProgress)?;
            Ok(format!(
                "{} problems, {} blobs checked",
                r.problems.len(),
                r.blobs_checked
            ))
        },
    )?;

    let copy = tmp.path().join("damaged-copy");
    step(
        "copy the layout and flip one bit in the disk image",
        0,
        || {
            copy_dir(&root, &copy)?;
            let damaged = Layout::open(&copy)?;
            let (_, doc) = damaged.read_document(&manifest)?;
            let disk = doc
                .layers
                .unwrap_or_default()
                .into_iter()
                .max_by_key(|l| l.size)
                .ok_or("no layers")?;
            let path = damaged.blob_path(&disk.digest);
            let mut bytes = fs::read(&path)?;
            let at = bytes.len() / 3;
            bytes[at] ^= 0x10;
            fs::write(&path, bytes)?;
            Ok(format!("bit 4 of byte {at} of {}", disk.digest.short()))
        },
    )?;

    step("verify the damaged copy", mib << 20, || {
        let r = Layout::open(&copy)?.verify(&VerifyOptions::default(), &NoProgress)?;
        let found: Vec<String> = r
            .problems
            .iter()
            .map(|p| format!("  problem: {p}"))
            .collect();
        Ok(format!(
            "{} problem(s) found, as expected:\n{}",
            r.problems.len(),
            found.join("\n")
        ))
    })?;

    step("untag sre-agent-bot:v1 and sre-agent-bot:latest", 0, || {
        let w = layout.writer()?;
        w.update_index(|i| {
            i.remove_ref("sre-agent-bot:v1");
            i.remove_ref("sre-agent-bot:latest");
            Ok(())
        })?;
        Ok("index.json has no refs left".to_string())
    })?;

    step("gc --grace 0s", 0, || {
        let r = layout.gc(&GcOptions::default().grace(std::time::Duration::ZERO))?;
        Ok(format!(
            "removed {} blobs, freed {}",
            r.removed_blobs,
            human(r.removed_bytes)
        ))
    })?;

    println!("\nDone. The CLI does the same: `epoch-store --help`.");
    Ok(())
}

/// Runs a step, printing its name, result, time and (for data steps) throughput.
fn step<T>(name: &str, bytes: u64, f: impl FnOnce() -> Res<T>) -> Res<T::Out>
where
    T: StepOut,
{
    let t = Instant::now();
    let (out, msg) = f()?.split();
    let secs = t.elapsed().as_secs_f64();
    let speed = if bytes > 0 {
        format!(", {}/s", human((bytes as f64 / secs) as u64))
    } else {
        String::new()
    };
    println!("==> {name}  [{:.2}s{speed}]\n    {msg}", secs);
    Ok(out)
}

trait StepOut {
    type Out;
    fn split(self) -> (Self::Out, String);
}
impl StepOut for String {
    type Out = ();
    fn split(self) -> ((), String) {
        ((), self)
    }
}
impl<T> StepOut for (T, String) {
    type Out = T;
    fn split(self) -> (T, String) {
        self
    }
}

/// Writes `len` bytes of compressible-but-not-constant data, like a real image.
fn generate(path: &Path, len: u64, seed: u64) -> Res<()> {
    let mut f = fs::File::create(path)?;
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..len >> 20 {
        for w in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&buf)?;
    }
    f.sync_all()?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Res<()> {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}

fn human(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}
