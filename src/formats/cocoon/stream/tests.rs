//! Import and export against `pack`, in memory and in temp dirs.

use std::fs;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;

use serde_json::Value;

use std::io::Write;

use super::*;
use crate::formats::cocoon::snapshot::plan;
use crate::formats::cocoon::snapshot::{Format, pack};
use crate::formats::cocoon::tar::{Envelope, EnvelopeConfig, FileHeader, TarWriter};
use crate::io::progress::NoProgress;
use crate::io::sparse::SparseMap;
use crate::store::layout::Layout;

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9) | 1;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Half the bytes repeat, so zstd has something to do.
            if i % 2 == 0 { x as u8 } else { 7 }
        })
        .collect()
}

fn envelope() -> Envelope {
    Envelope::new(EnvelopeConfig {
        id: "sn-7".into(),
        name: "bot".into(),
        image: "img:1".into(),
        cpu: 2,
        memory: 1 << 30,
        hypervisor: "cloud-hypervisor".into(),
        ..EnvelopeConfig::default()
    })
}

/// A snapshot directory (with its envelope as `snapshot.json`, so that
/// `pack` fills the same config) and the same files as a tar stream.
fn sample(dir: &Path) -> Vec<u8> {
    fs::create_dir_all(dir).unwrap();
    fs::write(
        dir.join("snapshot.json"),
        serde_json::to_vec(&envelope()).unwrap(),
    )
    .unwrap();
    fs::write(dir.join("memory-ranges"), pattern(3 << 20, 1)).unwrap();
    fs::set_permissions(dir.join("memory-ranges"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(dir.join("config.json"), br#"{"cpus":{"boot_vcpus":2}}"#).unwrap();
    fs::write(dir.join("cidata.img"), b"").unwrap();
    let cow = fs::File::create(dir.join("cow.raw")).unwrap();
    cow.set_len(64 << 20).unwrap();
    cow.write_all_at(&pattern(1 << 20, 2), 4 << 20).unwrap();
    cow.write_all_at(&pattern(20 << 20, 3), 40 << 20).unwrap();
    cow.sync_all().unwrap();
    let mut w = TarWriter::new(Vec::new(), &envelope()).unwrap();
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "snapshot.json")
        .collect();
    names.sort();
    for name in names {
        let f = fs::File::open(dir.join(&name)).unwrap();
        let map = SparseMap::of_file(&f).unwrap();
        let mode = f.metadata().unwrap().permissions().mode() & 0o7777;
        let mut stored = Vec::new();
        for e in map.extents() {
            let mut b = vec![0u8; e.len as usize];
            f.read_exact_at(&mut b, e.offset).unwrap();
            stored.extend(b);
        }
        let sparse = (!map.is_dense()).then_some(&map);
        w.append_file(&name, mode, map.logical_size(), sparse, &mut &stored[..])
            .unwrap();
    }
    w.finish().unwrap()
}

/// A manifest and its config as JSON, creation times removed.
fn without_times(layout: &Layout, m: &Descriptor) -> (Value, Value) {
    let mut doc: Value = serde_json::from_slice(&layout.read_blob(m, 1 << 20).unwrap()).unwrap();
    let config_desc: Descriptor = serde_json::from_value(doc["config"].clone()).unwrap();
    let mut config: Value =
        serde_json::from_slice(&layout.read_blob(&config_desc, 1 << 20).unwrap()).unwrap();
    config.as_object_mut().unwrap().remove("createdAt");
    doc["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("org.opencontainers.image.created");
    doc.as_object_mut().unwrap().remove("config");
    (doc, config)
}

/// Each file member's header and body.
type Files = Vec<(FileHeader, Vec<u8>)>;

/// Reads a tar stream back: envelope and each member with its body.
fn read_back(tar: &[u8]) -> Result<(Envelope, Files)> {
    let (reader, env) = TarReader::new(tar)?;
    let mut files = Vec::new();
    reader.for_each_file(|h, body| {
        let mut data = Vec::new();
        body.read_to_end(&mut data)
            .map_err(|e| Error::io("read", "test", e))?;
        files.push((h.clone(), data));
        Ok(())
    })?;
    Ok((env, files))
}

fn options() -> Vec<PackOptions> {
    vec![
        PackOptions::default().format(Format::V1),
        PackOptions::default().chunk_size(1 << 20),
        PackOptions::default()
            .chunk_size(2 << 20)
            .zstd_level(Some(3)),
        PackOptions::default().zstd_level(Some(1)),
    ]
}

#[test]
fn import_matches_pack_and_export_gives_the_stream_back() -> Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("snap");
    let tar = sample(&dir);
    let (_, want) = read_back(&tar)?;
    let layout = Layout::init(tmp.path().join("l"))?;
    for opts in options() {
        let w = layout.writer()?;
        let imported = import_tar(&w, &tar[..], &opts, &NoProgress)?.manifest;
        let packed = pack(&w, &dir, &opts, &NoProgress)?.manifest;
        drop(w);
        assert_eq!(imported.artifact_type, packed.artifact_type);
        assert_eq!(
            without_times(&layout, &imported),
            without_times(&layout, &packed),
            "{opts:?}"
        );
        let out = export_tar(&layout, &imported, Vec::new(), &NoProgress)?;
        let (env, files) = read_back(&out)?;
        let mut env_want = envelope();
        env_want.config.name = "sn-7".into(); // by digest: named by its id
        assert_eq!(env, env_want);
        assert_eq!(files, want, "{opts:?}");
    }
    Ok(())
}

#[test]
fn gzip_streams_import_and_bad_ones_fail() -> Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let tar = sample(&tmp.path().join("snap"));
    let layout = Layout::init(tmp.path().join("l"))?;
    let w = layout.writer()?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let a = import_tar(&w, &tar[..], &PackOptions::default(), &NoProgress)?.manifest;
    let b = import_tar(&w, &gz[..], &PackOptions::default(), &NoProgress)?.manifest;
    assert_eq!(without_times(&layout, &a), without_times(&layout, &b));
    for cut_at in [100, 700, tar.len() / 2, tar.len() - 1024] {
        assert!(
            import_tar(&w, &tar[..cut_at], &PackOptions::default(), &NoProgress).is_err(),
            "truncated at {cut_at}"
        );
    }
    assert!(import_tar(&w, &b"not a tar"[..], &PackOptions::default(), &NoProgress).is_err());
    let bad = PackOptions::default()
        .format(Format::V1)
        .zstd_level(Some(3));
    assert!(import_tar(&w, &tar[..], &bad, &NoProgress).is_err());
    Ok(())
}

/// Damages the blob of `digest` in place (same size).
fn damage(layout: &Layout, blob: &Descriptor) {
    let p = layout.blob_path(&blob.digest);
    let mut bytes = fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0x55;
    fs::write(&p, bytes).unwrap();
}

#[test]
fn damaged_chunks_fail_the_export_and_leave_the_stream_unterminated() -> Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let tar = sample(&tmp.path().join("snap"));
    for (name, opts) in [
        // A small chunk: verified before a byte of it is written.
        ("small", PackOptions::default().chunk_size(1 << 20)),
        // v1: the 21 MiB cow.raw is one blob, checked as it streams.
        ("large", PackOptions::default().format(Format::V1)),
    ] {
        let layout = Layout::init(tmp.path().join(name))?;
        let w = layout.writer()?;
        let m = import_tar(&w, &tar[..], &opts, &NoProgress)?.manifest;
        drop(w);
        let plan = plan(&layout, &m)?;
        let cow = plan.files.iter().find(|f| f.name == "cow.raw").unwrap();
        let victim = &cow.chunks.last().unwrap().blob;
        damage(&layout, victim);
        let mut out = Vec::new();
        let err = export_tar(&layout, &m, &mut out, &NoProgress).unwrap_err();
        assert!(
            err.to_string().contains("damaged") || err.to_string().contains("hashes to"),
            "{name}: {err}"
        );
        assert!(
            read_back(&out).is_err(),
            "{name}: the partial stream is refused"
        );
        let dest = tmp.path().join(format!("{name}.tar"));
        assert!(export_tar_file(&layout, &m, None, &dest, &NoProgress).is_err());
        let left: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().contains(".tar"))
            .collect();
        assert!(left.is_empty(), "{name}: no file, no temp file: {left:?}");
    }
    Ok(())
}

#[test]
fn export_to_a_file_names_the_snapshot_after_its_ref() -> Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let tar = sample(&tmp.path().join("snap"));
    let layout = Layout::init(tmp.path().join("l"))?;
    let w = layout.writer()?;
    let m = import_tar(&w, &tar[..], &PackOptions::default(), &NoProgress)?.manifest;
    w.update_index(|i| {
        i.set_ref(&"registry.local/team/bot:v3".parse().unwrap(), &m);
        Ok(())
    })?;
    drop(w);
    let m = layout.resolve("registry.local/team/bot:v3")?;
    let dest = tmp.path().join("out.tar");
    let n = export_tar_file(&layout, &m, None, &dest, &NoProgress)?;
    let bytes = fs::read(&dest).unwrap();
    assert_eq!(n, bytes.len() as u64);
    let (env, _) = read_back(&bytes)?;
    assert_eq!(env.config.name, "registry.local/team/bot");
    let out = export_tar_as(&layout, &m, Some("other"), Vec::new(), &NoProgress)?;
    assert_eq!(read_back(&out)?.0.config.name, "other");
    Ok(())
}
