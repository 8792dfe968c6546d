//! What a destination filesystem can take: its kind (FAT, exFAT, NTFS, ...,
//! also behind FUSE), its largest file and its free space. `copy` checks a
//! plan against this before it writes a byte.
//!
//! The kind comes from `statfs`'s magic number. FUSE hides the filesystem
//! behind its own magic, so for FUSE mounts the mount table is read
//! (`/proc/self/mountinfo`: `fuse.fusefat` names FAT), and failing that the
//! boot sector of the mounted device or image file, when it is readable:
//! FAT32 and FAT12/16 name themselves at bytes 82 and 54, exFAT and NTFS at
//! byte 3.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Largest file on FAT12/16/32: 4 GiB - 1 byte.
pub const FAT_MAX_FILE: u64 = (4 << 30) - 1;

const MSDOS_MAGIC: u64 = 0x4d44;
const EXFAT_MAGIC: u64 = 0x2011_BAB0;
const NTFS_MAGIC: u64 = 0x5346_544e;
const FUSE_MAGIC: u64 = 0x6573_5546;

/// The one table of filesystem magic numbers (`statfs`'s `f_type`) the
/// crate acts on: which are local enough to map files from, and which
/// share extents on `copy_file_range`. FAT, exFAT, NTFS and FUSE are above,
/// for [`probe`]; they are neither.
struct Known {
    magic: u64,
    /// A blob cannot change or vanish under a mapping except by someone
    /// deliberately truncating it. Removable media, FUSE and network
    /// filesystems are read with `read(2)` instead: a pulled stick must give
    /// an I/O error, not SIGBUS.
    mappable: bool,
    /// `copy_file_range` shares extents (a reflink) instead of copying.
    reflink: bool,
}

const KNOWN: [Known; 8] = [
    Known {
        magic: 0xEF53,
        mappable: true,
        reflink: false,
    }, // ext2/3/4
    // xfs: reflink=1 is the default since xfsprogs 5.1
    Known {
        magic: 0x5846_5342,
        mappable: true,
        reflink: true,
    },
    Known {
        magic: 0x9123_683E,
        mappable: true,
        reflink: true,
    }, // btrfs
    Known {
        magic: 0x0102_1994,
        mappable: true,
        reflink: false,
    }, // tmpfs
    Known {
        magic: 0x794C_7630,
        mappable: true,
        reflink: false,
    }, // overlayfs
    Known {
        magic: 0xF2F5_2010,
        mappable: true,
        reflink: false,
    }, // f2fs
    Known {
        magic: 0x2FC1_2FC1,
        mappable: true,
        reflink: true,
    }, // zfs (block cloning, 2.2+)
    Known {
        magic: 0x6165_6673,
        mappable: true,
        reflink: true,
    }, // bcachefs
];

fn known(file: &File) -> Option<&'static Known> {
    let magic = rustix::fs::fstatfs(file).ok()?.f_type as u64;
    KNOWN.iter().find(|k| k.magic == magic)
}

/// Whether `file` lives on a local filesystem where mapping it is safe.
pub(crate) fn is_mappable(file: &File) -> bool {
    known(file).is_some_and(|k| k.mappable)
}

/// Whether `file` lives on a filesystem where `copy_file_range` shares
/// extents.
pub(crate) fn shares_extents(file: &File) -> bool {
    known(file).is_some_and(|k| k.reflink)
}

/// A filesystem kind, as far as it matters for what a copy can write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FsKind {
    /// FAT12/16/32 (the kernel's vfat or a FUSE driver): files of at most
    /// [`FAT_MAX_FILE`] bytes.
    Fat,
    /// exFAT.
    Exfat,
    /// NTFS (ntfs3 or ntfs-3g).
    Ntfs,
    /// Another filesystem, by its mount-table type (`ext4`, `xfs`,
    /// `tmpfs`, `fuse.sshfs`, ...).
    Other(String),
}

impl FsKind {
    /// The largest file this filesystem holds, if it has a limit a blob
    /// could reach.
    pub fn max_file_size(&self) -> Option<u64> {
        match self {
            FsKind::Fat => Some(FAT_MAX_FILE),
            _ => None,
        }
    }
}

impl fmt::Display for FsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsKind::Fat => f.write_str("FAT"),
            FsKind::Exfat => f.write_str("exFAT"),
            FsKind::Ntfs => f.write_str("NTFS"),
            FsKind::Other(t) => f.write_str(t),
        }
    }
}

/// What [`probe`] found out about the filesystem holding a directory.
#[derive(Clone, Debug)]
pub struct Medium {
    /// Its kind.
    pub kind: FsKind,
    /// Whether it is mounted through FUSE.
    pub fuse: bool,
    /// Bytes available to us, if the filesystem reports them (FUSE drivers
    /// may report nothing).
    pub free: Option<u64>,
    /// Its allocation unit (cluster size on FAT), for rounding file sizes.
    pub block_size: u64,
}

impl Medium {
    /// Bytes `size` takes on disk, rounded up to whole blocks.
    pub fn allocated(&self, size: u64) -> u64 {
        size.div_ceil(self.block_size.max(1)) * self.block_size.max(1)
    }
}

/// Probes the filesystem holding `dir`, or its nearest existing ancestor
/// when `dir` does not exist yet.
///
/// # Errors
/// `statfs` errors (the path or an ancestor must exist).
pub fn probe(dir: &Path) -> io::Result<Medium> {
    let existing = nearest_existing(dir);
    let st = rustix::fs::statfs(&existing)?;
    let vfs = rustix::fs::statvfs(&existing)?;
    let magic = st.f_type as u64;
    let fuse = magic == FUSE_MAGIC;
    let mount = mount_of(&existing);
    let kind = match magic {
        MSDOS_MAGIC => FsKind::Fat,
        EXFAT_MAGIC => FsKind::Exfat,
        NTFS_MAGIC => FsKind::Ntfs,
        FUSE_MAGIC => mount
            .as_ref()
            .and_then(kind_of_fuse_mount)
            .unwrap_or_else(|| {
                FsKind::Other(mount.as_ref().map_or("fuse".into(), |m| m.fstype.clone()))
            }),
        _ => FsKind::Other(mount.map_or_else(|| format!("0x{magic:x}"), |m| m.fstype)),
    };
    let free = (vfs.f_blocks > 0).then(|| vfs.f_bavail.saturating_mul(vfs.f_frsize));
    Ok(Medium {
        kind,
        fuse,
        free,
        block_size: vfs.f_frsize.max(512),
    })
}

fn nearest_existing(dir: &Path) -> PathBuf {
    let mut p = dir.to_path_buf();
    loop {
        if p.exists() {
            return p;
        }
        if !p.pop() || p.as_os_str().is_empty() {
            return PathBuf::from(".");
        }
    }
}

/// One line of the mount table.
#[derive(Clone, Debug)]
struct Mount {
    point: PathBuf,
    fstype: String,
    source: String,
}

/// The mount that holds `path`: the longest mount point that is a prefix
/// of its canonical form.
fn mount_of(path: &Path) -> Option<Mount> {
    let path = path.canonicalize().ok()?;
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    table
        .lines()
        .filter_map(parse_mountinfo_line)
        .filter(|m| path.starts_with(&m.point))
        .max_by_key(|m| m.point.as_os_str().len())
}

/// `id parent maj:min root point options [optional...] - fstype source super`.
fn parse_mountinfo_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let point = left.split(' ').nth(4)?;
    let mut r = right.split(' ');
    Some(Mount {
        point: PathBuf::from(unescape(point)),
        fstype: r.next()?.to_string(),
        source: unescape(r.next()?),
    })
}

/// Undoes the mount table's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn kind_of_fuse_mount(m: &Mount) -> Option<FsKind> {
    let sub = m.fstype.strip_prefix("fuse.").unwrap_or("");
    match sub {
        "fusefat" | "vfat" | "fat" | "msdos" => return Some(FsKind::Fat),
        "exfat" | "exfat-fuse" => return Some(FsKind::Exfat),
        "ntfs" | "ntfs-3g" | "ntfs3" => return Some(FsKind::Ntfs),
        _ => {}
    }
    boot_sector_kind(Path::new(&m.source))
}

/// Reads the first sector of a device or image file and names the
/// filesystem it starts, if it is one of the removable-media kinds.
fn boot_sector_kind(source: &Path) -> Option<FsKind> {
    if !source.is_absolute() {
        return None;
    }
    let mut sector = [0u8; 512];
    File::open(source).ok()?.read_exact(&mut sector).ok()?;
    kind_of_boot_sector(&sector)
}

fn kind_of_boot_sector(s: &[u8; 512]) -> Option<FsKind> {
    if &s[3..11] == b"EXFAT   " {
        Some(FsKind::Exfat)
    } else if &s[3..11] == b"NTFS    " {
        Some(FsKind::Ntfs)
    } else if &s[82..87] == b"FAT32" || &s[54..57] == b"FAT" {
        Some(FsKind::Fat)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_parse_with_escapes() {
        let m = parse_mountinfo_line(
            "43 27 0:39 / /tmp/my\\040stick rw,relatime - fuse.fusefat fusefat rw,user_id=0",
        )
        .unwrap();
        assert_eq!(m.point, PathBuf::from("/tmp/my stick"));
        assert_eq!(m.fstype, "fuse.fusefat");
        assert_eq!(kind_of_fuse_mount(&m), Some(FsKind::Fat));
        let m =
            parse_mountinfo_line("29 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard")
                .unwrap();
        assert_eq!((m.fstype.as_str(), m.source.as_str()), ("ext4", "/dev/vda"));
        assert!(parse_mountinfo_line("garbage").is_none());
    }

    #[test]
    fn boot_sectors_name_their_filesystem() {
        let mut s = [0u8; 512];
        s[3..11].copy_from_slice(b"EXFAT   ");
        assert_eq!(kind_of_boot_sector(&s), Some(FsKind::Exfat));
        s[3..11].copy_from_slice(b"NTFS    ");
        assert_eq!(kind_of_boot_sector(&s), Some(FsKind::Ntfs));
        s[3..11].copy_from_slice(b"mkfs.fat");
        s[82..90].copy_from_slice(b"FAT32   ");
        assert_eq!(kind_of_boot_sector(&s), Some(FsKind::Fat));
        let zero = [0u8; 512];
        assert_eq!(kind_of_boot_sector(&zero), None);
    }

    #[test]
    fn probe_of_a_missing_directory_uses_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let m = probe(&dir.path().join("not/yet")).unwrap();
        assert!(m.block_size >= 512);
        assert_eq!(m.kind.max_file_size(), None, "{:?}", m.kind);
        assert_eq!(m.allocated(1), m.block_size);
    }
}
