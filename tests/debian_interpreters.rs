//! Debian's interpreters and build tools under elfuse: Python (its standard library, threads,
//! `subprocess`), Perl, sqlite3 on a file database, jq, Lua, `make -j4`, and a musl program,
//! dynamically linked and run from the Debian bookworm arm64 test sysroot with `--sysroot`, in
//! a host scratch directory (`common::debian`; `tests/debian_programs.rs` covers the shells and
//! text tools).
//!
//! Expected values are Linux's. Where `qemu-aarch64 -L SYSROOT` can run the same command (one
//! process, no `execve`), the test runs it too and requires elfuse's stdout and exit status to
//! equal both qemu's and the value written here. Programs that start others (`subprocess`,
//! Perl's backticks and `fork`, Lua's `io.popen`, make's recipes) run under elfuse only; their
//! expected output was established by running the same programs on the host (bookworm's own
//! x86_64 Python, Perl and make), and from the Lua 5.4 manual for `io.popen` and `os.execute`
//! (the host has no Lua).
//!
//! The tests whose programs start others run a second time in `handover::`, with each guest
//! `fork` handed over to a fresh elfuse process (`ELFUSE_FORK=handover`, as on macOS).
//!
//! One divergence from Linux is pinned, in a test saying what Linux does instead:
//! `python3_asyncio_needs_sockets` (elfuse has no sockets yet).

mod common;

use std::fs;

use common::debian::*;
use common::{Run, build_musl_guest, elfuse_cmd, scratch, test_sysroot};

#[test]
fn python3_runs_its_standard_library() {
    let dir = scratch();
    fs::create_dir_all(dir.path().join("walk/a/b")).unwrap();
    fs::write(dir.path().join("walk/top"), "").unwrap();
    fs::write(dir.path().join("walk/a/b/leaf"), "").unwrap();
    let program = r#"
import hashlib, json, os, re, sqlite3, tempfile, threading, zlib
print(json.dumps({"b": [1, 2.5, None], "a": "\u00e9"}, sort_keys=True))
print(json.loads('{"x": [true, {"y": "z"}]}')["x"][1]["y"])
print(re.findall(r"(\w+)=(\d+)", "a=1, bb=22; c=x"), re.sub(r"\s+", " ", "a \t b\n c"))
print(hashlib.sha256(b"abc").hexdigest()[:16], hashlib.md5(b"").hexdigest()[:8])
db = sqlite3.connect(":memory:")
db.execute("create table t (k text, v integer)")
db.executemany("insert into t values (?, ?)", [("a", 1), ("b", 2), ("a", 3)])
print(db.execute("select k, sum(v) from t group by k order by k").fetchall())
data = b"elfuse " * 1000
packed = zlib.compress(data, 9)
print(len(packed) < 100, zlib.decompress(packed) == data, zlib.crc32(b"abc"))
for root, dirs, files in sorted(os.walk("walk")):
    print(root, sorted(dirs), sorted(files))
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "f")
    with open(path, "w") as f:
        f.write("temp")
    print(tmp.startswith("/tmp/"), os.listdir(tmp), open(path).read())
print(os.path.exists(tmp))
"#;
    let expected = "{\"a\": \"\\u00e9\", \"b\": [1, 2.5, null]}\nz\n\
                    [('a', '1'), ('bb', '22')] a b c\n\
                    ba7816bf8f01cfea d41d8cd9\n\
                    [('a', 4), ('b', 2)]\n\
                    True True 891568578\n\
                    walk ['a'] ['top']\nwalk/a ['b'] []\nwalk/a/b [] ['leaf']\n\
                    True ['f'] temp\nFalse\n";
    expect_like_qemu(dir.path(), "python3", &["-c", program], "", 0, expected);
}

#[test]
fn python3_threads_share_work_under_a_lock() {
    let dir = scratch();
    let program = r#"
import threading, queue
lock = threading.Lock()
total = 0
results = queue.Queue()
def work(n):
    global total
    for i in range(1000):
        with lock:
            total += 1
    results.put((n, threading.current_thread().name))
threads = [threading.Thread(target=work, args=(n,), name=f"w{n}") for n in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(total, sorted(results.get() for _ in range(4)))
ev = threading.Event()
threading.Timer(0.05, ev.set).start()
print(ev.wait(5))
"#;
    let expected = "4000 [(0, 'w0'), (1, 'w1'), (2, 'w2'), (3, 'w3')]\nTrue\n";
    expect(dir.path(), "python3", &["-c", program], "", 0, expected);
}

#[test]
fn python3_subprocess_runs_the_sysroots_programs() {
    let dir = scratch();
    fs::write(dir.path().join("b.txt"), "").unwrap();
    fs::write(dir.path().join("a.txt"), "").unwrap();
    let program = r#"
import subprocess, sys
r = subprocess.run(["ls", "-1", "."], capture_output=True, text=True)
print(r.returncode, r.stdout.split())
r = subprocess.run(["sh", "-c", "echo err >&2; exit 9"], capture_output=True, text=True)
print(r.returncode, repr(r.stderr))
r = subprocess.run(["tr", "a-z", "A-Z"], input="piped\n", capture_output=True, text=True)
print(r.stdout, end="")
out = subprocess.check_output("printf '%s\\n' one two | wc -l", shell=True)
print(int(out))
try:
    subprocess.run(["no-such-program"])
except FileNotFoundError as e:
    print("FileNotFoundError", e.errno)
sys.exit(subprocess.call(["false"]) + 10)
"#;
    let expected = "0 ['a.txt', 'b.txt']\n9 'err\\n'\nPIPED\n2\nFileNotFoundError 2\n";
    expect(dir.path(), "python3", &["-c", program], "", 11, expected);
}

/// DIVERGENCE: asyncio's event loop makes a socketpair for its self-pipe, and elfuse has
/// no sockets yet (`socketpair` is ENOSYS), so `asyncio.run` fails where Linux prints 5.
/// This pins today's behaviour; when sockets arrive, expect `(0, "5\n")` here.
#[test]
fn python3_asyncio_needs_sockets() {
    let dir = scratch();
    let program = "import asyncio\n\
                   async def main(): return 5\n\
                   print(asyncio.run(main()))\n";
    let run = elfuse_in(dir.path(), "python3", &["-c", program], "");
    let stderr = run.stderr();
    assert_eq!((run.code(), run.stdout().as_str()), (1, ""), "{stderr}");
    assert!(
        stderr.contains("OSError: [Errno 38] Function not implemented"),
        "{stderr}"
    );
}

#[test]
fn perl_runs_a_script() {
    let dir = scratch();
    fs::write(dir.path().join("input"), "b 2\na 1\nc 3\n").unwrap();
    let program = r#"
use strict; use warnings; use POSIX qw(floor); use List::Util qw(sum max);
open(my $fh, "<", "input") or die "open: $!";
my %h = map { chomp; split / / } <$fh>;
close $fh;
print join(",", map { "$_=$h{$_}" } sort keys %h), "\n";
printf "%d %d %.3f %s\n", sum(values %h), max(values %h), 22 / 7, floor(-2.5);
(my $s = "Hello World") =~ s/(\w+)/\u\L$1/g;
my @w = ("x-1", "y-22") ; my @n = map { /(\d+)/ ? $1 : () } @w;
print "$s @n ", scalar(reverse "abc"), " ", sprintf("%05.1f", 3.14159), "\n";
exit 4;
"#;
    let expected = "a=1,b=2,c=3\n6 3 3.143 -3\nHello World 1 22 cba 003.1\n";
    expect_like_qemu(dir.path(), "perl", &["-e", program], "", 4, expected);
    // Backticks and system() start other programs: elfuse only.
    let program = r#"
my $n = `echo 5`; chomp $n;
system("sh", "-c", "exit 3"); my $status = $? >> 8;
my $pid = fork // die "fork: $!"; exit 6 if $pid == 0; waitpid($pid, 0); my $child = $? >> 8;
open(my $p, "-|", "printf", "a\\nb\\n") or die "open: $!"; my @lines = <$p>; close $p;
print $n * 2, " $status $child ", scalar(@lines), "\n";
"#;
    expect(dir.path(), "perl", &["-e", program], "", 0, "10 3 6 2\n");
}

#[test]
fn sqlite3_keeps_a_database_file() {
    let dir = scratch();
    let create = "create table people (id integer primary key, name text, age int);\n\
                  insert into people (name, age) values ('ann', 31), ('bob', 27), ('cy', 45);\n\
                  create index by_age on people (age);";
    expect(dir.path(), "sqlite3", &["people.db", create], "", 0, "");
    let db = fs::read(dir.path().join("people.db")).unwrap();
    assert!(
        db.starts_with(b"SQLite format 3\0"),
        "a SQLite database file"
    );

    // A second process reads what the first wrote; qemu reads the same file.
    let query = "select name, age from people where age > 30 order by age desc;";
    expect_like_qemu(
        dir.path(),
        "sqlite3",
        &["people.db", query],
        "",
        0,
        "cy|45\nann|31\n",
    );
    let query = "update people set age = age + 1 where name = 'bob'; \
                 select count(*), sum(age) from people;";
    expect(
        dir.path(),
        "sqlite3",
        &["people.db", query],
        "",
        0,
        "3|104\n",
    );
    let args = ["-json", "people.db", "select name from people where id = 2"];
    expect_like_qemu(
        dir.path(),
        "sqlite3",
        &args,
        "",
        0,
        "[{\"name\":\"bob\"}]\n",
    );
    // A bad statement fails with status 1.
    let run = elfuse_in(
        dir.path(),
        "sqlite3",
        &["people.db", "select * from nosuch;"],
        "",
    );
    assert_eq!(
        (run.code(), run.stderr().as_str()),
        (1, "Error: in prepare, no such table: nosuch\n")
    );
}

#[test]
fn jq_transforms_json() {
    let dir = scratch();
    let input = r#"{"items": [{"n": "b", "p": 2.5}, {"n": "a", "p": 1}], "tag": null}"#;
    let filter = "{names: [.items[].n] | sort, total: ([.items[].p] | add), \
                  tag: (.tag // \"none\")}";
    let expected = "{\"names\":[\"a\",\"b\"],\"total\":3.5,\"tag\":\"none\"}\n";
    expect_like_qemu(dir.path(), "jq", &["-c", filter], input, 0, expected);
    let expected = "b\t2.5\na\t1\n";
    let args = ["-r", ".items[] | [.n, .p] | @tsv"];
    expect_like_qemu(dir.path(), "jq", &args, input, 0, expected);
    // -e: the last output null or false means status 1.
    expect_like_qemu(dir.path(), "jq", &["-e", ".tag"], input, 1, "null\n");
}

#[test]
fn lua_runs_a_script() {
    let dir = scratch();
    let program = r#"
local t = {}
for w in ("the quick brown fox"):gmatch("%a+") do t[#t + 1] = w:upper() end
table.sort(t)
print(table.concat(t, ","), #t, string.format("%5.2f", math.pi))
local co = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i * i) end end)
print(co(), co(), co(), math.type(1), math.type(1.0), 7 // 2, 2 ^ 10)
os.exit(5)
"#;
    let expected = "BROWN,FOX,QUICK,THE\t4\t 3.14\n1\t4\t9\tinteger\tfloat\t3\t1024.0\n";
    expect_like_qemu(dir.path(), "lua5.4", &["-e", program], "", 5, expected);
    // io.popen and os.execute run sh: elfuse only.
    let program = r#"
local p = io.popen("echo from sh; exit 3")
print(p:read("a"), p:close())
print(os.execute("exit 4"))
"#;
    let expected = "from sh\n\tnil\texit\t3\nnil\texit\t4\n";
    expect(dir.path(), "lua5.4", &["-e", program], "", 0, expected);
}

#[test]
fn make_builds_in_parallel_with_shell_recipes() {
    let dir = scratch();
    let makefile = "PARTS := a b c d e f\n\
                    all: report.txt\n\
                    report.txt: $(PARTS:%=%.part)\n\
                    \tcat $^ | sort -r > $@\n\
                    \t@echo \"$$(wc -l < $@) parts\"\n\
                    %.part:\n\
                    \t@sleep 0.1; echo \"part $*\" > $@\n\
                    fail:\n\
                    \t@exit 3\n\
                    .PHONY: all fail\n";
    fs::write(dir.path().join("Makefile"), makefile).unwrap();
    let expected = "cat a.part b.part c.part d.part e.part f.part | sort -r > report.txt\n\
                    6 parts\n";
    expect(dir.path(), "make", &["-j4"], "", 0, expected);
    assert_eq!(
        fs::read_to_string(dir.path().join("report.txt")).unwrap(),
        "part f\npart e\npart d\npart c\npart b\npart a\n"
    );
    expect(
        dir.path(),
        "make",
        &[],
        "",
        0,
        "make: Nothing to be done for 'all'.\n",
    );
    let run = elfuse_in(dir.path(), "make", &["fail"], "");
    assert_eq!(
        (run.code(), run.stdout().as_str(), run.stderr().as_str()),
        (2, "", "make: *** [Makefile:9: fail] Error 3\n")
    );
}

#[test]
fn a_musl_program_runs_with_musls_loader() {
    let bin = build_musl_guest("musl_hello", "musl_hello");
    let dir = scratch();
    let run: Run = elfuse_cmd()
        .arg("--sysroot")
        .arg(test_sysroot())
        .arg("--clear-env")
        .arg(&bin)
        .args(["a", "b"])
        .current_dir(dir.path())
        .output()
        .expect("run elfuse")
        .into();
    assert_eq!(
        (run.code(), run.stdout().as_str(), run.stderr().as_str()),
        (2, "hello from musl\na\nb\n", "")
    );
}

/// The tests whose programs start others, again with the fork hand-over.
mod handover {
    use super::*;

    #[test]
    fn python3_subprocess() {
        handed_over(python3_subprocess_runs_the_sysroots_programs);
    }

    #[test]
    fn perl_fork_and_pipes() {
        handed_over(perl_runs_a_script);
    }

    #[test]
    fn make_in_parallel() {
        handed_over(make_builds_in_parallel_with_shell_recipes);
    }
}
