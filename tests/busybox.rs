//! BusyBox applets from Debian's `busybox-static` arm64 package, run under elfuse and under
//! `qemu-aarch64` on the same input: stdout, stderr and the exit status must be byte-identical
//! (qemu-user is the reference).
//!
//! Every test builds a deterministic fixture tree (`fixture::build`): nested directories, text
//! files made for `sort`/`uniq`/`cut`/`awk`, a binary file, symlinks, an empty file, with every
//! timestamp pinned to one fixed date so `ls -la` and `stat` print the same thing on both runs.
//! Applets that only read run both times in the same tree; applets that change it get one
//! fresh copy per runner, and the resulting trees are compared too (`fixture::listing`).
//!
//! Only applets that run in one process are here: nothing that forks or execs (that needs
//! process support elfuse does not have yet).

mod common;

#[path = "busybox/fixture.rs"]
mod fixture;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Run, elfuse_cmd, scratch};

/// How long one applet may run before it is killed and the test fails.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The environment both runners give the applet (and nothing else).
const ENV: &[(&str, &str)] = &[("PATH", "/usr/bin:/bin"), ("LC_ALL", "C"), ("TZ", "UTC")];

/// The statically linked aarch64 BusyBox.
fn busybox() -> PathBuf {
    common::arm64_busybox()
}

/// A correction of qemu's output for a known qemu-user divergence from Linux.
type Fixup = fn(&[u8]) -> Vec<u8>;

/// How an applet is run.
#[derive(Clone, Copy, Default)]
struct Setup {
    /// A file of the tree (relative path) given as stdin; null otherwise.
    stdin: Option<&'static str>,
    /// The applet changes the tree: each runner gets its own copy and the resulting trees
    /// must match.
    mutates: bool,
    /// Extra preparation of each fresh tree, after `fixture::build` (it may run BusyBox under
    /// qemu to make inputs such as archives).
    prepare: Option<fn(&Path, &Path)>,
    /// Undoes a known qemu-user divergence from Linux in qemu's stdout before the comparison.
    qemu_fixup: Option<Fixup>,
}

impl Setup {
    /// Reads the tree only; stdin is null.
    fn reads() -> Setup {
        Setup::default()
    }

    /// Changes the tree.
    fn mutates() -> Setup {
        Setup {
            mutates: true,
            ..Setup::default()
        }
    }

    /// Reads the tree, but in a way that changes what a second reader sees (access times):
    /// each runner gets its own copy, like `mutates`.
    fn own_copies() -> Setup {
        Setup::mutates()
    }

    /// With `file` (relative to the tree) as stdin.
    fn stdin(self, file: &'static str) -> Setup {
        Setup {
            stdin: Some(file),
            ..self
        }
    }

    /// With an extra preparation step, given the tree and the BusyBox binary.
    fn prepare(self, prepare: fn(&Path, &Path)) -> Setup {
        Setup {
            prepare: Some(prepare),
            ..self
        }
    }

    /// With a correction of qemu's stdout for a known qemu-user divergence.
    fn qemu_fixup(self, fixup: Fixup) -> Setup {
        Setup {
            qemu_fixup: Some(fixup),
            ..self
        }
    }
}

/// Which program runs BusyBox.
#[derive(Clone, Copy, Debug)]
enum Runner {
    Elfuse,
    Qemu,
}

/// Runs `busybox ARGS...` in `dir` with the fixed environment, stdout and stderr going to files
/// in `out` (so a hung applet can be killed without pipe juggling).
fn run(runner: Runner, bb: &Path, args: &[&str], dir: &Path, setup: Setup, out: &Path) -> Run {
    let mut cmd = match runner {
        Runner::Elfuse => {
            let mut cmd = elfuse_cmd();
            cmd.arg("--trace-file").arg(out.join("trace"));
            cmd
        }
        Runner::Qemu => Command::new("qemu-aarch64"),
    };
    cmd.arg(bb)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(ENV.iter().copied());
    let stdin = match setup.stdin {
        Some(file) => Stdio::from(File::open(dir.join(file)).expect("open the stdin file")),
        None => Stdio::null(),
    };
    let (stdout, stderr) = (out.join("stdout"), out.join("stderr"));
    cmd.stdin(stdin)
        .stdout(File::create(&stdout).expect("create the stdout file"))
        .stderr(File::create(&stderr).expect("create the stderr file"));
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        let hint = match runner {
            Runner::Elfuse => "",
            Runner::Qemu => "; install it with `apt-get install qemu-user`",
        };
        panic!("cannot start {runner:?} ({e}){hint}")
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the applet") {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            child.kill().ok();
            child.wait().ok();
            panic!("busybox {args:?} under {runner:?} did not finish in {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        status,
        stdout: std::fs::read(&stdout).expect("read stdout"),
        stderr: std::fs::read(&stderr).expect("read stderr"),
    }
}

/// The last `n` lines of the elfuse trace in `out`.
fn trace_tail(out: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(out.join("trace")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Bytes as text for a failure message, with non-text bytes escaped.
fn show(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => text.to_string(),
        _ => bytes.escape_ascii().to_string(),
    }
}

/// Both runs of one applet.
struct Runs {
    elfuse: Run,
    qemu: Run,
}

/// Runs `busybox ARGS...` under elfuse and under qemu and asserts that stdout, stderr, the exit
/// status (and, for applets that change the tree, the resulting trees) are identical.
fn compare(args: &[&str], setup: Setup) -> Runs {
    let bb = busybox();
    let base = scratch();
    let logs = scratch();
    let (elfuse_out, qemu_out) = (logs.path().join("elfuse"), logs.path().join("qemu"));
    std::fs::create_dir(&elfuse_out).unwrap();
    std::fs::create_dir(&qemu_out).unwrap();

    let trees: Vec<PathBuf> = if setup.mutates {
        vec![base.path().join("elfuse"), base.path().join("qemu")]
    } else {
        vec![base.path().join("tree")]
    };
    for tree in &trees {
        fixture::build(tree);
        if let Some(prepare) = setup.prepare {
            prepare(tree, &bb);
        }
    }
    // `ls -la` shows `..`: pin the parent's timestamps too.
    fixture::pin_times(base.path());
    let (elfuse_tree, qemu_tree) = (&trees[0], trees.last().unwrap());

    let mut qemu = run(Runner::Qemu, &bb, args, qemu_tree, setup, &qemu_out);
    if let Some(fixup) = setup.qemu_fixup {
        qemu.stdout = fixup(&qemu.stdout);
    }
    let elfuse = run(Runner::Elfuse, &bb, args, elfuse_tree, setup, &elfuse_out);

    let same_output = elfuse.status == qemu.status
        && elfuse.stdout == qemu.stdout
        && elfuse.stderr == qemu.stderr;
    let listings = setup
        .mutates
        .then(|| (fixture::listing(elfuse_tree), fixture::listing(qemu_tree)));
    let same_trees = listings.as_ref().is_none_or(|(e, q)| e == q);
    if !same_output || !same_trees {
        let mut msg = format!("busybox {args:?}: elfuse and qemu disagree\n");
        if elfuse.status != qemu.status {
            msg += &format!(
                "status: elfuse {:?}, qemu {:?}\n",
                elfuse.status, qemu.status
            );
        }
        for (what, e, q) in [
            ("stdout", &elfuse.stdout, &qemu.stdout),
            ("stderr", &elfuse.stderr, &qemu.stderr),
        ] {
            if e != q {
                msg += &format!(
                    "--- elfuse {what} ---\n{}\n--- qemu {what} ---\n{}\n",
                    show(e),
                    show(q)
                );
            }
        }
        if let Some((e, q)) = listings.filter(|(e, q)| e != q) {
            msg += &format!("--- elfuse tree ---\n{e}--- qemu tree ---\n{q}");
        }
        msg += &format!(
            "--- elfuse trace (last 40 lines) ---\n{}\n",
            trace_tail(&elfuse_out, 40)
        );
        panic!("{msg}");
    }
    assert!(
        elfuse.stderr.len() <= qemu.stderr.len(),
        "elfuse must add nothing to stderr: {}",
        show(&elfuse.stderr)
    );
    Runs { elfuse, qemu }
}

impl Runs {
    /// Asserts the exit code both runs agreed on (guards against a broken reference).
    fn code(&self, expected: i32) -> &Runs {
        assert_eq!(
            self.qemu.code(),
            expected,
            "qemu stderr: {}",
            self.qemu.stderr()
        );
        assert_eq!(self.elfuse.code(), expected);
        self
    }

    /// Asserts the stdout both runs agreed on.
    fn stdout(&self, expected: &str) -> &Runs {
        assert_eq!(self.qemu.stdout(), expected);
        self
    }
}

/// Runs BusyBox under qemu in `dir` (to prepare inputs), expecting success.
fn qemu_busybox(bb: &Path, dir: &Path, args: &[&str]) {
    let out = Command::new("qemu-aarch64")
        .arg(bb)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(ENV.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run qemu-aarch64");
    assert!(
        out.status.success(),
        "preparing with busybox {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// Listing and reading files.

#[test]
fn ls_la_lists_the_fixture_tree() {
    compare(&["ls", "-la"], Setup::reads());
}

#[test]
fn ls_la_lists_nested_directories_and_symlinks() {
    compare(
        &["ls", "-la", "docs", "docs/deep", "link", "dangling"],
        Setup::reads(),
    );
}

#[test]
fn cat_concatenates_text_and_binary_files() {
    compare(
        &[
            "cat",
            "fruits.txt",
            "empty.txt",
            "docs/notes.txt",
            "blob.bin",
        ],
        Setup::reads(),
    );
}

#[test]
fn cat_reports_a_missing_file() {
    compare(
        &["cat", "fruits.txt", "missing.txt", "table.txt"],
        Setup::reads(),
    )
    .code(1);
}

#[test]
fn wc_counts_lines_words_and_bytes_with_a_total() {
    compare(
        &[
            "wc",
            "fruits.txt",
            "table.txt",
            "numbers.txt",
            "empty.txt",
            "blob.bin",
        ],
        Setup::reads(),
    );
}

#[test]
fn wc_l_counts_stdin() {
    compare(&["wc", "-l"], Setup::reads().stdin("fruits.txt"));
}

#[test]
fn sort_orders_lines_bytewise() {
    compare(&["sort", "fruits.txt"], Setup::reads());
}

#[test]
fn sort_by_numeric_key_with_a_separator() {
    compare(
        &["sort", "-t:", "-k2,2n", "-k1,1r", "table.txt"],
        Setup::reads(),
    );
}

#[test]
fn sort_nr_orders_numbers_descending() {
    compare(&["sort", "-n", "-r", "numbers.txt"], Setup::reads());
}

#[test]
fn uniq_c_counts_adjacent_duplicates() {
    compare(&["uniq", "-c", "fruits.txt"], Setup::reads());
}

#[test]
fn head_n_prints_the_first_lines_of_each_file() {
    compare(
        &["head", "-n", "3", "fruits.txt", "numbers.txt"],
        Setup::reads(),
    );
}

#[test]
fn head_c_prints_the_first_bytes() {
    compare(&["head", "-c", "100", "blob.bin"], Setup::reads());
}

#[test]
fn tail_n_prints_the_last_lines_of_each_file() {
    compare(
        &["tail", "-n", "2", "fruits.txt", "numbers.txt"],
        Setup::reads(),
    );
}

#[test]
fn tail_reads_stdin() {
    compare(&["tail", "-n", "+4"], Setup::reads().stdin("table.txt"));
}

#[test]
fn cut_selects_fields() {
    compare(&["cut", "-d:", "-f1,3", "table.txt"], Setup::reads());
}

#[test]
fn cut_selects_characters() {
    compare(&["cut", "-c2-4", "fruits.txt"], Setup::reads());
}

#[test]
fn tr_maps_stdin_to_upper_case() {
    compare(&["tr", "a-z", "A-Z"], Setup::reads().stdin("fruits.txt"));
}

#[test]
fn tr_deletes_and_squeezes() {
    compare(&["tr", "-d", "0-9"], Setup::reads().stdin("docs/notes.txt"));
    compare(&["tr", "-s", " "], Setup::reads().stdin("docs/notes.txt"));
    compare(
        &["tr", "-cs", "a-zA-Z", "\\n"],
        Setup::reads().stdin("docs/notes.txt"),
    );
}

#[test]
fn sed_substitutes_and_prints_matches() {
    compare(
        &["sed", "-n", "-e", "s/an/AN/g", "-e", "/AN/p", "fruits.txt"],
        Setup::reads(),
    );
}

#[test]
fn sed_deletes_ranges_and_appends() {
    compare(
        &[
            "sed",
            "-e",
            "2,4d",
            "-e",
            "$a\\the end",
            "-e",
            "1i\\the start",
            "fruits.txt",
        ],
        Setup::reads(),
    );
}

#[test]
fn sed_i_edits_a_file_in_place() {
    compare(
        &["sed", "-i", "s/apple/APPLE/", "fruits.txt"],
        Setup::mutates(),
    );
}

#[test]
fn awk_sums_columns() {
    compare(
        &[
            "awk",
            "-F:",
            "NR > 1 { s += $2; n++; print toupper($1), $2 * 2, length($3) } \
             END { printf \"total %d mean %.3f\\n\", s, s / n }",
            "table.txt",
        ],
        Setup::reads(),
    );
}

#[test]
fn awk_counts_words_in_an_array() {
    compare(
        &[
            "awk",
            "{ n[$1]++ } END { for (k in n) if (n[k] > 1) print k, n[k] }",
            "fruits.txt",
        ],
        Setup::reads(),
    );
}

#[test]
fn grep_rn_searches_the_tree_recursively() {
    compare(&["grep", "-rn", "apple", "."], Setup::reads());
}

#[test]
fn grep_reports_no_match_with_status_1() {
    compare(
        &["grep", "-c", "kiwi", "fruits.txt", "table.txt"],
        Setup::reads(),
    )
    .code(1);
}

#[test]
fn find_name_matches_a_glob() {
    compare(&["find", ".", "-name", "*.txt"], Setup::reads());
}

#[test]
fn find_type_d_lists_directories() {
    compare(&["find", ".", "-type", "d"], Setup::reads());
}

#[test]
fn find_type_l_lists_symlinks() {
    compare(&["find", ".", "-type", "l"], Setup::reads());
}

#[test]
fn find_type_f_under_a_subdirectory() {
    compare(&["find", "docs", "src", "-type", "f"], Setup::reads());
}

// Checksums and dumps.

#[test]
fn md5sum_hashes_files() {
    compare(
        &[
            "md5sum",
            "fruits.txt",
            "blob.bin",
            "empty.txt",
            "docs/notes.txt",
        ],
        Setup::reads(),
    );
}

#[test]
fn sha256sum_hashes_files() {
    compare(
        &[
            "sha256sum",
            "fruits.txt",
            "blob.bin",
            "empty.txt",
            "docs/notes.txt",
        ],
        Setup::reads(),
    );
}

#[test]
fn sha256sum_hashes_stdin() {
    compare(&["sha256sum"], Setup::reads().stdin("blob.bin"));
}

#[test]
fn od_dumps_a_binary_file() {
    compare(
        &["od", "-A", "x", "-t", "x1", "-v", "blob.bin"],
        Setup::reads(),
    );
}

#[test]
fn od_c_dumps_characters() {
    compare(&["od", "-c", "fruits.txt"], Setup::reads());
}

#[test]
fn stat_c_formats_file_metadata() {
    // The runs read symlinks after stating them, which updates their access time (%X).
    compare(
        &[
            "stat",
            "-c",
            "%n|%s|%b|%F|%a|%A|%h|%U|%G|%u|%g|%X|%Y|%y|%N",
            "fruits.txt",
            "empty.txt",
            "blob.bin",
            "docs",
            "link",
            "dangling",
            "src/run.sh",
        ],
        Setup::own_copies(),
    );
}

#[test]
fn stat_c_reports_a_missing_file() {
    compare(
        &["stat", "-c", "%n", "fruits.txt", "missing.txt"],
        Setup::reads(),
    )
    .code(1);
}

#[test]
fn du_s_sums_directory_sizes() {
    compare(
        &["du", "-s", "docs", "src", "blob.bin", "."],
        Setup::reads(),
    );
}

#[test]
fn du_lists_every_directory() {
    compare(&["du", "-k", "."], Setup::reads());
}

// Changing the tree.

#[test]
fn cp_r_copies_a_directory_tree() {
    compare(
        &["cp", "-r", "docs", "src", "copy"],
        Setup::mutates().prepare(|tree, _| {
            std::fs::create_dir(tree.join("copy")).unwrap();
        }),
    );
}

#[test]
fn cp_a_preserves_times_and_links() {
    compare(
        &["cp", "-a", "docs", "src", "link", "dangling", "backup"],
        Setup::mutates().prepare(|tree, _| {
            std::fs::create_dir(tree.join("backup")).unwrap();
        }),
    );
}

#[test]
fn mv_renames_and_moves_into_a_directory() {
    compare(&["mv", "fruits.txt", "table.txt", "src"], Setup::mutates());
}

#[test]
fn mv_renames_a_directory() {
    compare(&["mv", "docs", "documents"], Setup::mutates());
}

#[test]
fn rm_r_removes_a_directory_tree() {
    compare(&["rm", "-r", "docs", "link", "empty.txt"], Setup::mutates());
}

#[test]
fn rm_reports_a_directory_without_r() {
    compare(&["rm", "src"], Setup::mutates()).code(1);
}

#[test]
fn mkdir_p_creates_nested_directories() {
    compare(
        &["mkdir", "-p", "a/b/c", "docs/deep/new", "docs"],
        Setup::mutates(),
    );
}

#[test]
fn mkdir_reports_an_existing_directory() {
    compare(&["mkdir", "docs", "fresh"], Setup::mutates()).code(1);
}

#[test]
fn ln_s_creates_symlinks() {
    compare(
        &["ln", "-s", "../fruits.txt", "docs/fruit-link"],
        Setup::mutates(),
    );
}

#[test]
fn ln_sf_replaces_a_symlink() {
    compare(&["ln", "-sf", "table.txt", "link"], Setup::mutates());
}

#[test]
fn ln_creates_a_hard_link() {
    compare(
        &["ln", "numbers.txt", "docs/numbers-hard"],
        Setup::mutates(),
    );
}

#[test]
fn readlink_prints_a_symlink_target() {
    compare(&["readlink", "link"], Setup::reads()).stdout("fruits.txt\n");
}

#[test]
fn readlink_f_canonicalizes_paths() {
    // BusyBox's readlink takes one FILE. The shared tree's absolute path is the same for both
    // runs.
    for path in [
        "link",
        "docs/up",
        "docs/deep/../notes.txt",
        ".",
        "dangling",
        "src/../nothere",
    ] {
        compare(&["readlink", "-f", path], Setup::reads());
    }
}

#[test]
fn touch_d_sets_a_given_time() {
    compare(
        &[
            "touch",
            "-d",
            "2001-02-03 04:05:06",
            "fruits.txt",
            "newfile",
            "docs",
        ],
        Setup::mutates(),
    );
}

#[test]
fn touch_c_does_not_create() {
    compare(
        &[
            "touch",
            "-c",
            "-d",
            "1999-12-31 23:59:59",
            "nothere",
            "empty.txt",
        ],
        Setup::mutates(),
    );
}

// Text utilities without files.

#[test]
fn date_u_d_at_0_prints_the_epoch() {
    compare(&["date", "-u", "-d", "@0"], Setup::reads()).stdout("Thu Jan  1 00:00:00 UTC 1970\n");
}

#[test]
fn date_formats_a_given_time() {
    compare(
        &[
            "date",
            "-u",
            "-d",
            "@1234567890",
            "+%Y-%m-%d %H:%M:%S %j %a %s",
        ],
        Setup::reads(),
    );
}

#[test]
fn expr_evaluates_arithmetic() {
    compare(&["expr", "6", "*", "7", "+", "1"], Setup::reads())
        .stdout("43\n")
        .code(0);
}

#[test]
fn expr_zero_result_exits_1() {
    compare(&["expr", "3", "=", "4"], Setup::reads())
        .stdout("0\n")
        .code(1);
}

#[test]
fn expr_matches_and_measures_strings() {
    compare(&["expr", "length", "elfuse"], Setup::reads()).stdout("6\n");
    compare(
        &["expr", "abc123", ":", "[a-z]*\\([0-9]*\\)"],
        Setup::reads(),
    )
    .stdout("123\n");
}

#[test]
fn expr_division_by_zero_exits_2() {
    compare(&["expr", "1", "/", "0"], Setup::reads()).code(2);
}

#[test]
fn seq_counts_with_a_step() {
    compare(&["seq", "1", "3", "20"], Setup::reads());
}

#[test]
fn seq_w_pads_and_counts_down() {
    compare(&["seq", "-w", "-s", ",", "12", "-3", "0"], Setup::reads());
}

#[test]
fn printf_formats_strings_numbers_and_escapes() {
    compare(
        &[
            "printf",
            "%s|%5d|%-4s|%x|%o|%c|%e|%.2f|%%\\t\\n",
            "abc",
            "42",
            "xy",
            "255",
            "8",
            "Z",
            "3.5",
            "2.345",
        ],
        Setup::reads(),
    );
}

#[test]
fn printf_reuses_the_format_for_extra_arguments() {
    compare(
        &["printf", "<%s=%d>\\n", "a", "1", "b", "2", "c"],
        Setup::reads(),
    );
}

#[test]
fn basename_strips_directories_and_a_suffix() {
    compare(&["basename", "/a/b/c.txt", ".txt"], Setup::reads()).stdout("c\n");
}

#[test]
fn dirname_strips_the_last_component() {
    compare(&["dirname", "/a/b/c.txt"], Setup::reads()).stdout("/a/b\n");
}

// Archives and compression.

#[test]
fn tar_c_writes_an_archive_to_stdout() {
    compare(
        &["tar", "-c", "-f", "-", "docs", "fruits.txt", "link"],
        Setup::reads(),
    );
}

#[test]
fn tar_cf_writes_an_archive_file() {
    compare(
        &["tar", "-c", "-f", "out.tar", "src", "table.txt"],
        Setup::mutates(),
    );
}

#[test]
fn tar_tv_lists_an_archive() {
    compare(
        &["tar", "-t", "-v", "-f", "bundle.tar"],
        Setup::reads().prepare(make_tar),
    );
}

#[test]
fn tar_x_extracts_an_archive() {
    compare(
        &["tar", "-x", "-v", "-f", "bundle.tar", "-C", "out"],
        Setup::mutates().prepare(make_tar),
    );
}

/// Makes `bundle.tar` (docs, fruits.txt, link) and an empty `out/` in the tree.
fn make_tar(tree: &Path, bb: &Path) {
    qemu_busybox(
        bb,
        tree,
        &[
            "tar",
            "-c",
            "-f",
            "bundle.tar",
            "docs",
            "fruits.txt",
            "link",
        ],
    );
    std::fs::create_dir(tree.join("out")).unwrap();
}

#[test]
fn gzip_c_compresses_to_stdout() {
    compare(&["gzip", "-c", "fruits.txt"], Setup::reads());
}

#[test]
fn gzip_replaces_files_with_gz() {
    compare(&["gzip", "fruits.txt", "docs/notes.txt"], Setup::mutates());
}

#[test]
fn gunzip_restores_files() {
    compare(
        &["gunzip", "fruits.txt.gz", "notes.txt.gz"],
        Setup::mutates().prepare(|tree, bb| {
            qemu_busybox(bb, tree, &["gzip", "fruits.txt"]);
            std::fs::copy(tree.join("docs/notes.txt"), tree.join("notes.txt")).unwrap();
            qemu_busybox(bb, tree, &["gzip", "notes.txt"]);
        }),
    );
}

#[test]
fn gunzip_c_decompresses_stdin() {
    compare(
        &["gunzip", "-c"],
        Setup::reads().stdin("blob.bin.gz").prepare(|tree, bb| {
            qemu_busybox(bb, tree, &["gzip", "-k", "blob.bin"]);
        }),
    );
}

#[test]
fn bzip2_d_decompresses_a_file() {
    compare(
        &["bzip2", "-d", "fruits.txt.bz2"],
        Setup::mutates().prepare(|tree, bb| {
            qemu_busybox(bb, tree, &["bzip2", "fruits.txt"]);
        }),
    );
}

#[test]
fn bzip2_c_compresses_to_stdout() {
    compare(&["bzip2", "-c", "table.txt"], Setup::reads());
}

#[test]
fn base64_encodes_a_binary_file() {
    compare(&["base64", "blob.bin"], Setup::reads());
}

#[test]
fn base64_d_decodes_stdin() {
    compare(&["base64", "-d"], Setup::reads().stdin("encoded.b64")).stdout("hello, elfuse!");
}

// Comparing files.

#[test]
fn diff_prints_a_unified_diff_and_exits_1() {
    compare(&["diff", "-u", "fruits.txt", "fruits2.txt"], Setup::reads()).code(1);
}

#[test]
fn diff_of_identical_files_exits_0() {
    compare(&["diff", "fruits.txt", "link"], Setup::reads()).code(0);
}

#[test]
fn cmp_reports_the_first_difference() {
    compare(&["cmp", "fruits.txt", "fruits2.txt"], Setup::reads()).code(1);
}

#[test]
fn cmp_l_lists_differing_bytes() {
    compare(&["cmp", "-l", "fruits.txt", "fruits2.txt"], Setup::reads()).code(1);
}

// Environment and status.

/// qemu-user hands the guest its environment in reverse order (its `envlist` pushes each
/// variable at the head of a list), where Linux's execve keeps the order given; undo that.
fn reverse_lines(out: &[u8]) -> Vec<u8> {
    let mut lines: Vec<&[u8]> = out.split_inclusive(|&b| b == b'\n').collect();
    lines.reverse();
    lines.concat()
}

#[test]
fn env_prints_the_environment_in_execve_order() {
    // std's Command passes the variables sorted by name.
    compare(&["env"], Setup::reads().qemu_fixup(reverse_lines))
        .stdout("LC_ALL=C\nPATH=/usr/bin:/bin\nTZ=UTC\n");
}

#[test]
fn env_i_prints_only_the_given_variables() {
    compare(&["env", "-i", "A=1", "B=two words"], Setup::reads()).stdout("A=1\nB=two words\n");
}

#[test]
fn true_exits_0() {
    compare(&["true"], Setup::reads()).code(0);
}

#[test]
fn false_exits_1() {
    compare(&["false"], Setup::reads()).code(1);
}

#[test]
fn test_checks_file_predicates() {
    for (args, code) in [
        (&["-f", "fruits.txt"][..], 0),
        (&["-d", "docs"], 0),
        (&["-d", "fruits.txt"], 1),
        (&["-L", "link"], 0),
        (&["-e", "dangling"], 1),
        (&["-h", "dangling"], 0),
        (&["-s", "empty.txt"], 1),
        (&["-s", "blob.bin"], 0),
        (&["-x", "src/run.sh"], 0),
        (&["-x", "fruits.txt"], 1),
        (&["fruits.txt", "-ef", "link"], 0),
        (&["docs/up", "-nt", "blob.bin"], 1),
    ] {
        let argv: Vec<&str> = std::iter::once("test")
            .chain(args.iter().copied())
            .collect();
        compare(&argv, Setup::reads()).code(code);
    }
}

#[test]
fn test_compares_numbers_and_strings() {
    for (args, code) in [
        (&["3", "-lt", "12"][..], 0),
        (&["3", "-gt", "12"], 1),
        (&["abc", "=", "abc"], 0),
        (&["abc", "!=", "abc"], 1),
        (&["-z", ""], 0),
        (&["-n", ""], 1),
        (&["!", "-n", "x", "-o", "1", "-eq", "1"], 0),
        (&["x", "-lt", "1"], 2),
    ] {
        let argv: Vec<&str> = std::iter::once("test")
            .chain(args.iter().copied())
            .collect();
        compare(&argv, Setup::reads()).code(code);
    }
}
