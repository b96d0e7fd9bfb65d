//! Unit tests of tarball unpacking: what is kept, what is refused, and the case check.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::*;

/// A probe that answers as told, standing in for a file system of either kind.
struct FakeProbe(bool);

impl CaseProbe for FakeProbe {
    fn case_insensitive(&self, _dir: &Path) -> std::io::Result<bool> {
        Ok(self.0)
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(1_700_000_000);
    header
}

/// A small root file system: a directory, a 0755 program, a symlink, a hard link, a device.
fn rootfs_tar() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    tar.append_data(
        &mut header(tar::EntryType::Directory, 0o755, 0),
        "./usr/bin/",
        &[][..],
    )
    .unwrap();
    let body = b"#!/bin/sh\n";
    let mut prog = header(tar::EntryType::Regular, 0o755, body.len() as u64);
    tar.append_data(&mut prog, "./usr/bin/prog", &body[..])
        .unwrap();
    let mut link = header(tar::EntryType::Symlink, 0o777, 0);
    tar.append_link(&mut link, "./bin", "usr/bin").unwrap();
    let mut hard = header(tar::EntryType::Link, 0o755, 0);
    tar.append_link(&mut hard, "./usr/bin/prog2", "./usr/bin/prog")
        .unwrap();
    let mut dev = header(tar::EntryType::Char, 0o666, 0);
    tar.append_data(&mut dev, "./dev/null", &[][..]).unwrap();
    tar.into_inner().unwrap()
}

/// A tar whose one member is named `name` verbatim (the builder refuses `..` itself).
fn raw_member_tar(name: &[u8], kind: tar::EntryType, link: &[u8]) -> Vec<u8> {
    let mut h = header(kind, 0o644, 0);
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(&[0; 1024]);
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn symlinks_hard_links_and_modes_are_kept_and_devices_skipped() {
    let scratch = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("root.tar", rootfs_tar()),
        ("root.tgz", gzip(&rootfs_tar())),
    ] {
        let archive = write(scratch.path(), name, &bytes);
        let dest = scratch.path().join(format!("out-{name}"));
        let done = unpack(&archive, &dest, &FakeProbe(false)).unwrap();
        assert_eq!(
            done,
            Unpacked {
                members: 4,
                skipped: 1
            }
        );

        let prog = std::fs::metadata(dest.join("usr/bin/prog")).unwrap();
        assert_eq!(prog.permissions().mode() & 0o7777, 0o755);
        assert_eq!(prog.mtime(), 1_700_000_000);
        assert_eq!(
            std::fs::read_link(dest.join("bin")).unwrap(),
            Path::new("usr/bin")
        );
        let twin = std::fs::metadata(dest.join("usr/bin/prog2")).unwrap();
        assert_eq!((twin.ino(), twin.nlink()), (prog.ino(), 2));
        assert!(!dest.join("dev/null").exists());
    }
    // Nothing is left behind but the archives and the two trees.
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 4);
}

#[test]
fn members_climbing_out_are_refused_before_anything_is_written() {
    let scratch = tempfile::tempdir().unwrap();
    let cases = [
        (
            raw_member_tar(b"../evil", tar::EntryType::Regular, b""),
            "../evil",
        ),
        (
            raw_member_tar(b"a/../../evil", tar::EntryType::Regular, b""),
            "a/../../evil",
        ),
        (
            raw_member_tar(b"link", tar::EntryType::Link, b"../../etc/passwd"),
            "../../etc/passwd",
        ),
    ];
    for (bytes, member) in cases {
        let archive = write(scratch.path(), "bad.tar", &bytes);
        let dest = scratch.path().join("sysroots/bad");
        let err = unpack(&archive, &dest, &FakeProbe(false)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: member {member} points outside the sysroot; refusing the archive",
                archive.display()
            )
        );
        assert_eq!(
            std::fs::read_dir(scratch.path().join("sysroots"))
                .unwrap()
                .count(),
            0
        );
    }
    assert!(!scratch.path().join("evil").exists());
}

#[test]
fn case_twins_are_refused_only_where_case_is_ignored() {
    let scratch = tempfile::tempdir().unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    for name in ["share/terminfo/E/eterm", "share/terminfo/e/eterm"] {
        tar.append_data(
            &mut header(tar::EntryType::Regular, 0o644, 0),
            name,
            &[][..],
        )
        .unwrap();
    }
    let archive = write(scratch.path(), "twins.tar", &tar.into_inner().unwrap());
    let dest = scratch.path().join("sysroots/twins");

    let err = unpack(&archive, &dest, &FakeProbe(true)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: share/terminfo/E and share/terminfo/e differ only in case, and {} is on a \
             case-insensitive file system that would merge them; {}",
            archive.display(),
            scratch.path().join("sysroots").display(),
            case::advice()
        )
    );
    assert!(!dest.exists());

    unpack(&archive, &dest, &FakeProbe(false)).unwrap();
    assert!(dest.join("share/terminfo/E/eterm").is_file());
    assert!(dest.join("share/terminfo/e/eterm").is_file());
}

#[test]
fn an_existing_destination_or_unknown_suffix_is_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let archive = write(scratch.path(), "root.tar", &rootfs_tar());
    let err = unpack(&archive, scratch.path(), &FakeProbe(false)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: already exists", scratch.path().display())
    );

    let zip = write(scratch.path(), "root.zip", b"PK");
    let err = unpack(&zip, &scratch.path().join("z"), &FakeProbe(false)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: not a directory nor a .tar, .tar.gz, .tgz, .tar.xz or .txz file",
            zip.display()
        )
    );
}

#[test]
fn compression_is_told_by_the_suffix() {
    let of = |name: &str| Compression::of(Path::new(name));
    assert_eq!(of("a.tar"), Some(Compression::None));
    assert_eq!(of("a.TAR.GZ"), Some(Compression::Gzip));
    assert_eq!(of("a.tgz"), Some(Compression::Gzip));
    assert_eq!(of("a.tar.xz"), Some(Compression::Xz));
    assert_eq!(of("a.txz"), Some(Compression::Xz));
    assert_eq!(of("a.tar.bz2"), None);
    assert_eq!(of("tar"), None);
}
