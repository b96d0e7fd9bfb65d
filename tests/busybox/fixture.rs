//! The deterministic file tree the BusyBox tests run in, and a listing of a tree for comparing
//! what two runs left behind.

use std::ffi::CString;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Every timestamp in the tree: 2021-03-04 05:06:07 UTC.
pub const FIXED_TIME: i64 = 1_614_834_367;

/// Unsorted lines with duplicates (adjacent and not) and mixed case.
const FRUITS: &str = "banana\napple\ncherry\napple\napple\ndate\nbanana\nelderberry\nfig\n\
                      Cherry\ngrape\ngrape\n";

/// `FRUITS` with a changed, a removed and an added line, for `diff` and `cmp`.
const FRUITS2: &str = "banana\napple\ncherry\napple\napricot\ndate\nbanana\nfig\nCherry\n\
                       grape\ngrape\nhoneydew\n";

/// Colon-separated columns with a header line.
const TABLE: &str = "name:age:city\nalice:30:paris\nbob:25:berlin\ncarol:41:rome\n\
                     dave:25:oslo\neve:7:kyoto\n";

const NUMBERS: &str = "10\n2\n33\n-4\n5.5\n2\n100\n0\n";

const NOTES: &str = "Notes on the apple harvest.\n\
                     The apple trees   gave 1200 kg in 2020,\n\
                     and    3400 kg in 2021.\n\
                     \n\
                     Tabs\tand\ttrailing spaces   \n";

const LEAF: &str = "an apple at the bottom of the tree\n";

const MAIN_C: &str =
    "#include <stdio.h>\n\nint main(void) {\n    puts(\"hello\");\n    return 0;\n}\n";

const UTIL_C: &str = "int add(int a, int b) { return a + b; }\n";

const RUN_SH: &str = "#!/bin/sh\necho run\n";

/// 700 bytes: every byte value, then a repeating pattern.
fn blob() -> Vec<u8> {
    (0..=255u8)
        .chain((0..444u32).map(|i| (i * 7 % 251) as u8))
        .collect()
}

/// Builds the tree at `root` (which must not exist) and pins every timestamp.
///
/// ```text
/// blob.bin  dangling -> missing.txt  empty.txt  encoded.b64  fruits.txt  fruits2.txt
/// link -> fruits.txt  numbers.txt  table.txt
/// docs/notes.txt  docs/up -> ../table.txt  docs/deep/nested/leaf.txt
/// src/main.c  src/util.c  src/run.sh (0755)
/// ```
pub fn build(root: &Path) {
    let dirs = ["", "docs", "docs/deep", "docs/deep/nested", "src"];
    for dir in dirs {
        std::fs::create_dir(root.join(dir)).expect("create a fixture directory");
    }
    let files: [(&str, &[u8], u32); 12] = [
        ("fruits.txt", FRUITS.as_bytes(), 0o644),
        ("fruits2.txt", FRUITS2.as_bytes(), 0o644),
        ("table.txt", TABLE.as_bytes(), 0o644),
        ("numbers.txt", NUMBERS.as_bytes(), 0o644),
        ("empty.txt", b"", 0o644),
        ("blob.bin", &blob(), 0o600),
        ("encoded.b64", b"aGVsbG8sIGVsZnVzZSE=\n", 0o644),
        ("docs/notes.txt", NOTES.as_bytes(), 0o644),
        ("docs/deep/nested/leaf.txt", LEAF.as_bytes(), 0o444),
        ("src/main.c", MAIN_C.as_bytes(), 0o644),
        ("src/util.c", UTIL_C.as_bytes(), 0o640),
        ("src/run.sh", RUN_SH.as_bytes(), 0o755),
    ];
    for (path, contents, mode) in files {
        let path = root.join(path);
        std::fs::write(&path, contents).expect("write a fixture file");
        std::fs::set_permissions(&path, PermissionsExt::from_mode(mode)).unwrap();
    }
    for (link, target) in [
        ("link", "fruits.txt"),
        ("dangling", "missing.txt"),
        ("docs/up", "../table.txt"),
    ] {
        std::os::unix::fs::symlink(target, root.join(link)).expect("create a fixture symlink");
    }
    for dir in dirs {
        std::fs::set_permissions(root.join(dir), PermissionsExt::from_mode(0o755)).unwrap();
    }
    pin_times(root);
}

/// Sets the access and modification times of `path` and of everything under it (symlinks
/// themselves, not their targets) to `FIXED_TIME`, children before their directory.
pub fn pin_times(path: &Path) {
    let meta = std::fs::symlink_metadata(path).expect("stat a fixture path");
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).expect("read a fixture directory") {
            pin_times(&entry.unwrap().path());
        }
    }
    let c_path = CString::new(path.as_os_str().as_bytes()).unwrap();
    let time = libc::timespec {
        tv_sec: FIXED_TIME as libc::time_t,
        tv_nsec: 0,
    };
    let times = [time, time];
    // SAFETY: `c_path` is a NUL-terminated path and `times` points to two timespecs, as
    // utimensat requires; both outlive the call.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(
        rc,
        0,
        "utimensat {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// FNV-1a, enough to tell file contents apart in a listing.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A modification time for a listing: exact when it was set on purpose (more than a day ago),
/// `recent` when it is the time the test ran (which differs between the two runs).
fn mtime(meta: &std::fs::Metadata) -> String {
    let time =
        SystemTime::UNIX_EPOCH + Duration::new(meta.mtime() as u64, meta.mtime_nsec() as u32);
    let day_ago = SystemTime::now() - Duration::from_secs(86_400);
    if meta.mtime() >= 0 && time < day_ago {
        format!("{}.{:09}", meta.mtime(), meta.mtime_nsec())
    } else {
        "recent".to_string()
    }
}

/// One line per entry under `root`, sorted by path: type, mode, owner, link count, mtime, and
/// the size and a content hash (files), or the target (symlinks).
pub fn listing(root: &Path) -> String {
    let mut out = String::new();
    walk(root, Path::new(""), &mut out);
    out
}

fn walk(root: &Path, rel: &Path, out: &mut String) {
    let path = root.join(rel);
    let meta = std::fs::symlink_metadata(&path).expect("stat a tree entry");
    let kind = meta.file_type();
    let shown = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let _ = write!(
        out,
        "{} {:o} {}:{} n{} {}",
        shown.display(),
        meta.mode(),
        meta.uid(),
        meta.gid(),
        meta.nlink(),
        mtime(&meta)
    );
    if kind.is_symlink() {
        let _ = writeln!(out, " -> {}", std::fs::read_link(&path).unwrap().display());
    } else if kind.is_file() {
        let contents = std::fs::read(&path).expect("read a tree file");
        let _ = writeln!(out, " {} bytes {:016x}", contents.len(), fnv1a(&contents));
    } else {
        out.push('\n');
    }
    if kind.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            walk(root, &rel.join(name), out);
        }
    }
}
