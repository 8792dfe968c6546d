//! Removable media for the tests: FAT32, exFAT and NTFS images made with
//! their mkfs tools and mounted with FUSE (fusefat, exfat-fuse, ntfs-3g),
//! through a loop device where the driver wants a block device. Unmounted
//! (and the loop device detached) when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{have_tool, sh, skip};

/// The kinds of stick the tests use.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Fat32,
    Exfat,
    Ntfs,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Fat32, Kind::Exfat, Kind::Ntfs];

    fn tools(self) -> &'static [&'static str] {
        match self {
            Kind::Fat32 => &["mkfs.vfat", "fusefat", "fusermount"],
            Kind::Exfat => &["mkfs.exfat", "mount.exfat-fuse", "losetup", "fusermount"],
            Kind::Ntfs => &["mkntfs", "ntfs-3g", "losetup", "fusermount"],
        }
    }

    /// What `copy --dry-run --json` must call it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Fat32 => "FAT",
            Kind::Exfat => "exFAT",
            Kind::Ntfs => "NTFS",
        }
    }
}

/// A mounted medium.
pub struct Stick {
    pub mount: PathBuf,
    loop_dev: Option<String>,
}

impl Stick {
    /// Makes a `mib` MiB image of `kind` under `dir` and mounts it (read-only
    /// if `ro`); `None` (after saying why) if the tools or FUSE are missing
    /// and peers are not required.
    pub fn new(dir: &Path, kind: Kind, mib: u64, ro: bool) -> Option<Stick> {
        if !kind.tools().iter().all(|t| have_tool(t)) {
            return None;
        }
        if !Path::new("/dev/fuse").exists() {
            skip("/dev/fuse is missing, so no FUSE medium can be mounted");
            return None;
        }
        let image = dir.join(format!("{kind:?}.img"));
        let mount = dir.join(format!("{kind:?}-mnt"));
        std::fs::create_dir_all(&mount).unwrap();
        let f = std::fs::File::create(&image).unwrap();
        f.set_len(mib << 20).unwrap();
        drop(f);
        let mut loop_dev = None;
        match kind {
            Kind::Fat32 => {
                sh(Command::new("mkfs.vfat").args(["-F", "32"]).arg(&image));
                sh(Command::new("fusefat")
                    .args(["-o", if ro { "ro" } else { "rw+" }])
                    .arg(&image)
                    .arg(&mount));
            }
            Kind::Exfat | Kind::Ntfs => {
                if let Kind::Exfat = kind {
                    sh(Command::new("mkfs.exfat").arg(&image));
                } else {
                    sh(Command::new("mkntfs").args(["-q", "-F"]).arg(&image));
                }
                let dev = sh(Command::new("losetup").args(["-f", "--show"]).arg(&image))
                    .trim()
                    .to_string();
                let mut c = Command::new(if let Kind::Exfat = kind {
                    "mount.exfat-fuse"
                } else {
                    "ntfs-3g"
                });
                if ro {
                    c.args(["-o", "ro"]);
                }
                let out = c.arg(&dev).arg(&mount).output().unwrap();
                if !out.status.success() {
                    let _ = Command::new("losetup").arg("-d").arg(&dev).status();
                    panic!(
                        "mounting {kind:?} failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                loop_dev = Some(dev);
            }
        }
        Some(Stick { mount, loop_dev })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.mount.join(name)
    }
}

impl Drop for Stick {
    fn drop(&mut self) {
        for _ in 0..20 {
            let ok = Command::new("fusermount")
                .arg("-u")
                .arg(&self.mount)
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if let Some(dev) = &self.loop_dev {
            let _ = Command::new("losetup").arg("-d").arg(dev).status();
        }
    }
}
