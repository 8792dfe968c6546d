//! The README's first command: a demo of epoch-store on generated data.
//!
//! `cargo run --release --example quickstart` makes a temp dir with a
//! generated VM snapshot: an 8 GiB sparse disk holding 768 MiB of data, a
//! 256 MiB memory file and Cloud Hypervisor's config.json. Then, as the CLI
//! would: init, pack snapshot, tag, ls, verify, unpack, compare with the
//! original (bytes and holes), damage a copy and verify it again, untag, gc.
//! Each step prints what it did, how long it took and its throughput.
//! Set `QUICKSTART_MIB` to change the amount of data (default 1024).

use std::fs::{self, File};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::Instant;

use epoch_store::formats::cocoon::snapshot::{self, PackOptions};
use epoch_store::io::sparse::SparseMap;
use epoch_store::{GcOptions, Layout, NoProgress, VerifyOptions};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Logical size of the generated disk.
const DISK_LOGICAL: u64 = 8 << 30;
/// The disk's data comes in runs of this size, spread over the disk.
const RUN: u64 = 16 << 20;

fn main() -> Res<()> {
    let mib: u64 = std::env::var("QUICKSTART_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024)
        .max(64);
    let tmp = tempfile::Builder::new()
        .prefix("epoch-quickstart-")
        .tempdir()?;
    println!("epoch-store quickstart in {}\n", tmp.path().display());

    let src = tmp.path().join("snapshot");
    fs::create_dir(&src)?;
    let disk_data = (mib * 3 / 4) << 20;
    let memory = (mib << 20) - disk_data;
    step("generate a VM snapshot", mib << 20, || {
        generate_sparse(&src.join("disk.raw"), DISK_LOGICAL, disk_data, 1)?;
        let f = File::create(src.join("memory-ranges"))?;
        generate(&f, 0, memory, 2)?;
        f.sync_all()?;
        fs::write(
            src.join("config.json"),
            br#"{"cpus":{"boot_vcpus":2},"memory":{"size":1073741824}}"#,
        )?;
        Ok(format!(
            "disk.raw {} logical with {} of data in {} runs, memory-ranges {}, config.json",
            human(DISK_LOGICAL),
            human(disk_data),
            disk_data.div_ceil(RUN),
            human(memory)
        ))
    })?;

    let root = tmp.path().join("usb-stick");
    let layout = step("init", 0, || {
        let l = Layout::init(&root)?;
        Ok((l, format!("OCI image layout at {}", root.display())))
    })?;

    let manifest = step(
        "pack snapshot --ref sre-agent-bot:v1 (holes skipped, chunks hashed on all cores)",
        mib << 20,
        || {
            let w = layout.writer()?;
            let m = snapshot::pack(&w, &src, &PackOptions::default(), &NoProgress)?.manifest;
            w.update_index(|i| Ok(i.set_ref(&"sre-agent-bot:v1".parse()?, &m)))?;
            let s = layout.summarize(&m)?;
            Ok((
                m.clone(),
                format!(
                    "{} ({}): {} blobs, {} stored",
                    m.digest.short(),
                    m.artifact_type.as_deref().unwrap_or("-"),
                    s.blobs,
                    human(s.size)
                ),
            ))
        },
    )?;

    step("tag sre-agent-bot:v1 sre-agent-bot:latest", 0, || {
        let w = layout.writer()?;
        w.update_index(|i| Ok(i.set_ref(&"sre-agent-bot:latest".parse()?, &manifest)))?;
        Ok("two refs, one manifest".to_string())
    })?;

    step("ls", 0, || {
        let index = layout.read_index()?;
        let mut lines = vec![format!(
            "  {:<22} {:<8} {:>10} {:>10}  DIGEST",
            "REF", "KIND", "STORED", "LOGICAL"
        )];
        for (name, d) in index.refs() {
            let s = layout.summarize(d)?;
            let logical =
                epoch_store::formats::logical_size(&layout, &s)?.map_or("-".into(), human);
            lines.push(format!(
                "  {name:<22} {:<8} {:>10} {:>10}  {}",
                s.kind.as_str(),
                human(s.size),
                logical,
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

    let restored = tmp.path().join("restored");
    step(
        "unpack sre-agent-bot:v1 restored/ (every byte verified, holes kept)",
        mib << 20,
        || {
            let files = snapshot::unpack(
                &layout,
                &manifest,
                &restored,
                &Default::default(),
                &NoProgress,
            )?;
            Ok(format!("{} files", files.len()))
        },
    )?;

    step("compare restored/ with the original", mib << 20, || {
        let mut lines = Vec::new();
        let mut names: Vec<_> = fs::read_dir(&src)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for n in names {
            let (a, b) = (src.join(&n), restored.join(&n));
            same_file(&a, &b)?;
            lines.push(format!(
                "  {:<14} identical, {} logical, {} allocated (original: {})",
                n.to_string_lossy(),
                human(fs::metadata(&b)?.len()),
                human(fs::metadata(&b)?.blocks() * 512),
                human(fs::metadata(&a)?.blocks() * 512)
            ));
        }
        Ok(format!("\n{}", lines.join("\n")))
    })?;

    let copy = tmp.path().join("damaged-copy");
    step(
        "copy the layout and flip one bit in the memory file's first chunk",
        0,
        || {
            copy_dir(&root, &copy)?;
            let damaged = Layout::open(&copy)?;
            let plan = snapshot::plan(&damaged, &manifest)?;
            let mem = plan
                .files
                .iter()
                .find(|f| f.name == "memory-ranges")
                .ok_or("no memory-ranges")?;
            let blob = &mem.chunks[0].blob;
            let f = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(damaged.blob_path(&blob.digest))?;
            let at = blob.size / 3;
            let mut b = [0u8];
            f.read_exact_at(&mut b, at)?;
            f.write_all_at(&[b[0] ^ 0x10], at)?;
            Ok(format!("bit 4 of byte {at} of {}", blob.digest.short()))
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

    println!(
        "\nDone. The CLI does the same: `epoch-store pack snapshot DIR --ref NAME:TAG`, \
         `epoch-store verify`, `epoch-store unpack NAME:TAG DIR`; see `epoch-store --help`."
    );
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

/// Writes `len` bytes of pseudo-random data at `at`, like a real image.
fn generate(f: &File, at: u64, len: u64, seed: u64) -> Res<()> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0;
    while done < len {
        for w in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        let n = (len - done).min(buf.len() as u64) as usize;
        f.write_all_at(&buf[..n], at + done)?;
        done += n as u64;
    }
    Ok(())
}

/// A sparse file of `logical` bytes with `data` bytes in runs of [`RUN`],
/// spread evenly; the rest are holes.
fn generate_sparse(path: &Path, logical: u64, data: u64, seed: u64) -> Res<()> {
    let f = File::create(path)?;
    f.set_len(logical)?;
    let runs = data.div_ceil(RUN);
    let stride = logical / runs;
    for i in 0..runs {
        let len = RUN.min(data - i * RUN);
        generate(&f, i * stride, len, seed + i)?;
    }
    f.sync_all()?;
    Ok(())
}

/// Fails unless `a` and `b` have the same data extents and the same bytes
/// in them (holes are zeros by definition, so this is byte identity).
fn same_file(a: &Path, b: &Path) -> Res<()> {
    let (fa, fb) = (File::open(a)?, File::open(b)?);
    let (ma, mb) = (SparseMap::of_file(&fa)?, SparseMap::of_file(&fb)?);
    if ma.logical_size() != mb.logical_size() {
        return Err(format!("{}: sizes differ", b.display()).into());
    }
    // Extents may be merged or split differently; compare the union of both
    // maps' data, reading each range from both files.
    let mut ranges: Vec<(u64, u64)> = ma
        .extents()
        .iter()
        .chain(mb.extents())
        .map(|e| (e.offset, e.end()))
        .collect();
    ranges.sort_unstable();
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut covered = 0;
    for (start, end) in ranges {
        let mut at = start.max(covered);
        while at < end {
            let n = (end - at).min(ba.len() as u64) as usize;
            fa.read_exact_at(&mut ba[..n], at)?;
            fb.read_exact_at(&mut bb[..n], at)?;
            if ba[..n] != bb[..n] {
                return Err(format!("{}: differs near byte {at}", b.display()).into());
            }
            at += n as u64;
        }
        covered = covered.max(end);
    }
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
