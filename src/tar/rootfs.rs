//! Reproducible filesystem tars, for image layers: the same tree gives the
//! same bytes on every machine. Members are sorted by name (a directory
//! before what it holds), every mtime is 0, owners are numeric 0:0 with no
//! user or group names, and modes keep their permission bits. Written with
//! the crate's one tar writer ([`super::write`]).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tar::EntryType;

use super::write::{END_OF_ARCHIVE, OCI_STYLE, padding, pax_data, pax_records};
use crate::error::{Error, IoContext, Result};
use crate::io::input::{open_input, open_regular, type_name};

/// Bytes copied at a time from a file into its member.
const BUFFER: usize = 1 << 20;

/// A writer of a reproducible filesystem tar.
#[derive(Debug)]
pub struct RootfsTar<W: Write> {
    out: W,
}

impl<W: Write> RootfsTar<W> {
    /// A tar written to `out`.
    pub fn new(out: W) -> RootfsTar<W> {
        RootfsTar { out }
    }

    /// Adds the file the user named at `path` (symlinks followed) as the
    /// regular file `name` with `mode`.
    ///
    /// # Errors
    /// A path that is not a regular file; I/O errors.
    pub fn add_file(&mut self, name: &str, mode: u32, path: &Path) -> Result<()> {
        let (file, md) = open_input(path)?;
        self.file_member(name, mode, file, md.len(), path)
    }

    /// Adds everything under `dir` (not `dir` itself) with names relative
    /// to it, sorted: directories, regular files (a hard link is stored
    /// as a copy) and symlinks, nothing followed.
    ///
    /// # Errors
    /// A FIFO, socket or device in the tree ([`Error::NotRegularFile`]
    /// naming it); a name that is not UTF-8; I/O errors.
    pub fn add_tree(&mut self, dir: &Path) -> Result<()> {
        let md = fs::metadata(dir).ctx("stat", dir)?;
        if !md.is_dir() {
            return Err(Error::InvalidArgument(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        self.walk(dir, "")
    }

    /// Writes the end of the archive and returns the writer.
    ///
    /// # Errors
    /// Errors of the writer.
    pub fn finish(mut self) -> Result<W> {
        self.out.write_all(&END_OF_ARCHIVE).map_err(write_error)?;
        Ok(self.out)
    }

    fn walk(&mut self, dir: &Path, prefix: &str) -> Result<()> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(dir).ctx("read directory", dir)? {
            let entry = entry.ctx("read directory", dir)?;
            let name = entry.file_name().into_string().map_err(|n| {
                Error::InvalidArgument(format!(
                    "{}: the name is not UTF-8, which a layer cannot carry portably",
                    dir.join(n).display()
                ))
            })?;
            entries.push(name);
        }
        entries.sort();
        for name in entries {
            let path = dir.join(&name);
            let member = format!("{prefix}{name}");
            let md = fs::symlink_metadata(&path).ctx("stat", &path)?;
            let mode = md.permissions().mode() & 0o7777;
            let kind = md.file_type();
            if kind.is_dir() {
                self.header(&format!("{member}/"), mode, EntryType::Directory, 0, None)?;
                self.walk(&path, &format!("{member}/"))?;
            } else if kind.is_symlink() {
                let target = fs::read_link(&path).ctx("read link", &path)?;
                let target = target.to_str().ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "{}: the link target is not UTF-8",
                        path.display()
                    ))
                })?;
                self.header(&member, 0o777, EntryType::Symlink, 0, Some(target))?;
            } else if kind.is_file() {
                let (file, md) = open_regular(&path)?;
                self.file_member(&member, mode, file, md.len(), &path)?;
            } else {
                return Err(Error::NotRegularFile {
                    path,
                    kind: type_name(kind),
                });
            }
        }
        Ok(())
    }

    /// A regular file's header, its `size` bytes read from `file`, padding.
    fn file_member(
        &mut self,
        name: &str,
        mode: u32,
        mut file: File,
        size: u64,
        path: &Path,
    ) -> Result<()> {
        self.header(name, mode, EntryType::Regular, size, None)?;
        let mut buf = vec![0u8; BUFFER.min(size as usize).max(1)];
        let mut left = size;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = file.read(&mut buf[..want]).ctx("read", path)?;
            if n == 0 {
                return Err(Error::io(
                    "read",
                    path,
                    io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while read"),
                ));
            }
            self.out.write_all(&buf[..n]).map_err(write_error)?;
            left -= n as u64;
        }
        self.out.write_all(padding(size)).map_err(write_error)
    }

    /// A member's headers: PAX records for a long name or link target or
    /// a size over 8 GiB, then ustar.
    fn header(
        &mut self,
        name: &str,
        mode: u32,
        kind: EntryType,
        size: u64,
        link: Option<&str>,
    ) -> Result<()> {
        let mut extra = Vec::new();
        if let Some(target) = link.filter(|t| t.len() > 100) {
            extra.push(("linkpath", target.to_string()));
        }
        let pax = pax_data(&pax_records(name, size, extra));
        OCI_STYLE
            .write_pax(&mut self.out, name, &pax)
            .map_err(write_error)?;
        let mut h = OCI_STYLE.header(name, mode, size, kind);
        if let Some(target) = link {
            let bytes = target.as_bytes();
            let n = bytes.len().min(100);
            h.as_old_mut().linkname[..n].copy_from_slice(&bytes[..n]);
            h.set_cksum();
        }
        self.out.write_all(h.as_bytes()).map_err(write_error)
    }
}

fn write_error(e: io::Error) -> Error {
    Error::stream("write", "the layer tar", e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn members(tar: &[u8]) -> Vec<(String, u32, Vec<u8>, String)> {
        let mut out = Vec::new();
        let mut a = tar::Archive::new(tar);
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            assert_eq!(
                (h.mtime().unwrap(), h.uid().unwrap(), h.gid().unwrap()),
                (0, 0, 0)
            );
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            out.push((name, h.mode().unwrap(), body, link));
        }
        out
    }

    #[test]
    fn a_tree_is_written_sorted_with_fixed_times_and_owners() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("b/c")).unwrap();
        fs::write(root.join("b/c/file"), b"hello").unwrap();
        fs::write(root.join("a"), b"first").unwrap();
        fs::set_permissions(root.join("a"), fs::Permissions::from_mode(0o750)).unwrap();
        let long = "x".repeat(150);
        symlink(&long, root.join("link")).unwrap();
        let mut t = RootfsTar::new(Vec::new());
        t.add_tree(root).unwrap();
        let tar = t.finish().unwrap();
        let got = members(&tar);
        let names: Vec<&str> = got.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(names, ["a", "b/", "b/c/", "b/c/file", "link"]);
        assert_eq!((got[0].1, got[0].2.as_slice()), (0o750, &b"first"[..]));
        assert_eq!(got[3].2, b"hello");
        assert_eq!(got[4].3, long, "a long link target survives");

        let mut again = RootfsTar::new(Vec::new());
        again.add_tree(root).unwrap();
        assert_eq!(
            again.finish().unwrap(),
            tar,
            "the same tree, the same bytes"
        );
    }

    #[test]
    fn fifos_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let mut t = RootfsTar::new(Vec::new());
        let err = t.add_tree(dir.path()).unwrap_err().to_string();
        assert!(err.contains("pipe"), "{err}");
    }
}
