//! Dynamically linked programs under a sysroot: the interpreter loaded from it, the guest's
//! name space confined to it (`tests/guest/fs_sysroot.c`), and the errors for a missing or
//! broken interpreter.
//!
//! The sysroot here is built from the cross toolchain's arm64 glibc (`libc6-arm64-cross`),
//! which is enough for a C program; the Debian sysroot tests use real distribution programs.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::{Link, build_guest, elfuse_cmd, scratch};

/// Where `libc6-arm64-cross` installs the arm64 glibc.
const CROSS_LIBS: &str = "/usr/aarch64-linux-gnu/lib";

/// A small sysroot in `dir`:
///
/// ```text
/// bin/prog                  the program under test
/// etc/marker                "sysroot etc\n"
/// etc/passwd                one line for root
/// etc/abs_passwd -> /etc/passwd
/// lib/ld-linux-aarch64.so.1, lib/libc.so.6
/// escape_abs -> /etc        escape_rel -> ../../../../../../../../etc
/// usr/loop1 -> loop2        usr/loop2 -> loop1        usr/dotdot -> ..
/// home/
/// ```
fn mini_sysroot(dir: &Path, program: &Path) -> PathBuf {
    let root = dir.join("sysroot");
    for sub in ["bin", "etc", "lib", "usr", "home"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::write(root.join("etc/marker"), "sysroot etc\n").unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    symlink("/etc/passwd", root.join("etc/abs_passwd")).unwrap();
    for lib in ["ld-linux-aarch64.so.1", "libc.so.6"] {
        let from = Path::new(CROSS_LIBS).join(lib);
        std::fs::copy(&from, root.join("lib").join(lib))
            .unwrap_or_else(|e| panic!("copy {} ({e}): install libc6-arm64-cross", from.display()));
    }
    symlink("/etc", root.join("escape_abs")).unwrap();
    symlink("../../../../../../../../etc", root.join("escape_rel")).unwrap();
    symlink("loop2", root.join("usr/loop1")).unwrap();
    symlink("loop1", root.join("usr/loop2")).unwrap();
    symlink("..", root.join("usr/dotdot")).unwrap();
    std::fs::copy(program, root.join("bin/prog")).unwrap();
    root
}

#[test]
fn the_name_space_stays_inside_the_sysroot() {
    let program = build_guest("fs_sysroot", "fs_sysroot_dyn", Link::Dynamic);
    let dir = scratch();
    let sysroot = mini_sysroot(dir.path(), &program);
    let work = dir.path().join("work");
    let home = dir.path().join("home");
    std::fs::create_dir(&work).unwrap();
    std::fs::create_dir(&home).unwrap();
    std::fs::write(work.join("data.txt"), "host data\n").unwrap();
    std::fs::write(home.join("home.txt"), "host home\n").unwrap();
    let tmp = tempfile::Builder::new()
        .prefix("elfuse-sysroot-")
        .tempfile_in("/tmp")
        .unwrap();
    std::fs::write(tmp.path(), "host tmp\n").unwrap();
    let tmp_name = tmp.path().file_name().unwrap();
    let work = std::fs::canonicalize(&work).unwrap();

    let run: common::Run = elfuse_cmd()
        .arg("--sysroot")
        .arg(&sysroot)
        .arg(sysroot.join("bin/prog"))
        .arg(&work)
        .arg(tmp_name)
        .env("HOME", &home)
        .current_dir(&work)
        .output()
        .unwrap()
        .into();
    assert_eq!(
        (run.code(), run.stderr().as_str()),
        (0, ""),
        "stdout:\n{}",
        run.stdout()
    );
    assert!(run.stdout().starts_with("ok "), "{}", run.stdout());
    // The file the guest created under /home is in the sysroot, not on the host.
    assert_eq!(
        std::fs::read_to_string(sysroot.join("home/created")).unwrap(),
        "in sysroot\n"
    );
}

/// A dynamically linked program and the sysroot to run it with.
fn dynamic_probe(dir: &Path) -> (PathBuf, PathBuf) {
    let program = build_guest("cli_probe", "cli_probe_dyn", Link::Dynamic);
    let sysroot = mini_sysroot(dir, &program);
    (sysroot.join("bin/prog"), sysroot)
}

/// Runs `elfuse --sysroot SYSROOT PROGRAM ARGS...`.
fn run_under(sysroot: &Path, program: &Path, args: &[&str]) -> common::Run {
    elfuse_cmd()
        .arg("--sysroot")
        .arg(sysroot)
        .arg(program)
        .args(args)
        .output()
        .unwrap()
        .into()
}

#[test]
fn a_dynamic_program_runs_and_exits_with_its_status() {
    let dir = scratch();
    let (program, sysroot) = dynamic_probe(dir.path());
    let run = run_under(&sysroot, &program, &["exit", "42"]);
    assert_eq!((run.code(), run.stderr().as_str()), (42, ""));
}

#[test]
fn without_a_sysroot_a_dynamic_program_is_not_found() {
    let dir = scratch();
    let (program, _) = dynamic_probe(dir.path());
    let run: common::Run = elfuse_cmd().arg(&program).output().unwrap().into();
    assert_eq!(run.code(), 127);
    assert_eq!(
        run.stderr(),
        format!(
            "elfuse: {}: dynamically linked (interpreter /lib/ld-linux-aarch64.so.1) and no \
             sysroot is configured; add one with 'elfuse sysroot add NAME DIR|TARBALL' or pass \
             --sysroot DIR\n",
            program.display()
        )
    );
}

#[test]
fn a_missing_interpreter_names_itself_and_the_sysroot() {
    let dir = scratch();
    let (program, sysroot) = dynamic_probe(dir.path());
    std::fs::remove_file(sysroot.join("lib/ld-linux-aarch64.so.1")).unwrap();
    let run = run_under(&sysroot, &program, &[]);
    assert_eq!(run.code(), 127);
    let sysroot = std::fs::canonicalize(&sysroot).unwrap();
    assert_eq!(
        run.stderr(),
        format!(
            "elfuse: {}: interpreter /lib/ld-linux-aarch64.so.1 not found in sysroot {}\n",
            program.display(),
            sysroot.display()
        )
    );
}

#[test]
fn an_interpreter_that_is_not_an_elf_cannot_run() {
    let dir = scratch();
    let (program, sysroot) = dynamic_probe(dir.path());
    std::fs::write(sysroot.join("lib/ld-linux-aarch64.so.1"), "#!/bin/sh\n").unwrap();
    let run = run_under(&sysroot, &program, &[]);
    assert_eq!(run.code(), 126);
    let sysroot = std::fs::canonicalize(&sysroot).unwrap();
    assert_eq!(
        run.stderr(),
        format!(
            "elfuse: {}: interpreter /lib/ld-linux-aarch64.so.1 in sysroot {}: not an ELF \
             executable\n",
            program.display(),
            sysroot.display()
        )
    );
}

/// Runs the dynamic probe's `cat PATH` under `sysroot` with its cache in `cache`.
fn guest_cat(program: &Path, sysroot: &Path, cache: &Path, path: &str) -> String {
    let run: common::Run = elfuse_cmd()
        .arg("--sysroot")
        .arg(sysroot)
        .arg(program)
        .args(["cat", path])
        .env("XDG_CACHE_HOME", cache)
        .output()
        .unwrap()
        .into();
    assert_eq!(
        (run.code(), run.stderr().as_str()),
        (0, ""),
        "{}",
        run.stdout()
    );
    run.stdout()
}

#[test]
fn the_guest_sees_the_host_user_and_machine_in_etc() {
    let dir = scratch();
    let (program, sysroot) = dynamic_probe(dir.path());
    let cache = dir.path().join("cache");
    // A sysroot that knows nobody with the host user's ids.
    std::fs::write(
        sysroot.join("etc/passwd"),
        "nobody:x:65534:65534::/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(sysroot.join("etc/group"), "nogroup:x:65534:\n").unwrap();

    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    let user = nix::unistd::User::from_uid(uid).unwrap().unwrap();
    let group = nix::unistd::Group::from_gid(gid).unwrap().unwrap();
    let home = std::env::home_dir().unwrap();
    let passwd = guest_cat(&program, &sysroot, &cache, "/etc/passwd");
    assert_eq!(
        passwd,
        format!(
            "nobody:x:65534:65534::/:/bin/false\n{}:x:{uid}:{gid}:{}:{}:/bin/sh\n",
            user.name,
            user.gecos.to_string_lossy(),
            home.display()
        )
    );
    let groups = guest_cat(&program, &sysroot, &cache, "/etc/group");
    assert_eq!(
        groups,
        format!("nogroup:x:65534:\n{}:x:{gid}:{}\n", group.name, user.name)
    );

    let hostname = nix::unistd::gethostname().unwrap();
    assert_eq!(
        guest_cat(&program, &sysroot, &cache, "/etc/hostname"),
        format!("{}\n", hostname.to_string_lossy())
    );
    if let Ok(resolv) = std::fs::read_to_string("/etc/resolv.conf") {
        assert_eq!(
            guest_cat(&program, &sysroot, &cache, "/etc/resolv.conf"),
            resolv
        );
    }

    // The sysroot's own files are untouched, and other names in /etc are its own.
    assert_eq!(
        std::fs::read_to_string(sysroot.join("etc/passwd")).unwrap(),
        "nobody:x:65534:65534::/:/bin/false\n"
    );
    assert_eq!(
        guest_cat(&program, &sysroot, &cache, "/etc/marker"),
        "sysroot etc\n"
    );
}

#[test]
fn the_configured_sysroot_runs_a_dynamic_program() {
    let dir = scratch();
    let (program, sysroot) = dynamic_probe(dir.path());
    let config = dir.path().join("config");
    let data = dir.path().join("data");
    let with_config = || {
        let mut cmd = elfuse_cmd();
        cmd.env("XDG_CONFIG_HOME", &config)
            .env("XDG_DATA_HOME", &data);
        cmd
    };
    let added: common::Run = with_config()
        .arg("sysroot")
        .arg("add")
        .arg("mini")
        .arg(&sysroot)
        .output()
        .unwrap()
        .into();
    assert_eq!(added.code(), 0, "{}", added.stderr());

    // The default sysroot, by no option at all; then by name and by path in ELFUSE_SYSROOT.
    for env in [
        None,
        Some("mini".into()),
        Some(sysroot.clone().into_os_string()),
    ] {
        let mut cmd = with_config();
        if let Some(value) = &env {
            cmd.env("ELFUSE_SYSROOT", value);
        }
        let run: common::Run = cmd
            .arg(&program)
            .args(["exit", "42"])
            .output()
            .unwrap()
            .into();
        assert_eq!(
            (run.code(), run.stderr().as_str()),
            (42, ""),
            "ELFUSE_SYSROOT={env:?}"
        );
    }

    // A name that is neither configured nor a directory is elfuse's own failure.
    let run: common::Run = with_config()
        .args(["--sysroot", "nosuch"])
        .arg(&program)
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code(), 125);
    assert_eq!(
        run.stderr(),
        format!(
            "elfuse: --sysroot nosuch: no sysroot of that name in {} and no such directory\n",
            config.join("elfuse/config.toml").display()
        )
    );
}

#[test]
fn the_environment_fits_the_sysroot_and_env_options_have_the_last_word() {
    let dir = scratch();
    let (program, sysroot) = dynamic_probe(dir.path());
    let run: common::Run = elfuse_cmd()
        .env_clear()
        .env("PATH", "/opt/homebrew/bin:/usr/bin")
        .env("LANG", "en_US.UTF-8")
        .env("FOO", "bar")
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .arg("--sysroot")
        .arg(&sysroot)
        .args(["--env", "LC_ALL=xx_YY.UTF-8"])
        .arg(&program)
        .arg("env")
        .output()
        .unwrap()
        .into();
    assert_eq!((run.code(), run.stderr().as_str()), (0, ""));
    let stdout = run.stdout();
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort();
    // The mini sysroot has no locales: LANG goes, PATH is Linux's, the rest stays; --env is
    // applied as given.
    let mut expected = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        "FOO=bar".to_string(),
        "LC_ALL=xx_YY.UTF-8".to_string(),
        format!("XDG_CACHE_HOME={}", dir.path().join("cache").display()),
    ];
    expected.sort();
    assert_eq!(lines, expected);
}

#[test]
fn a_trusted_local_file_chooses_the_sysroot_of_a_run() {
    let dir = scratch();
    let (program, default) = dynamic_probe(&dir.path().join("a"));
    let (_, local) = dynamic_probe(&dir.path().join("b"));
    std::fs::write(local.join("etc/marker"), "local etc\n").unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(
        project.join(".elfuse.toml"),
        format!("sysroot = \"{}\"\n", local.display()),
    )
    .unwrap();
    let config = dir.path().join("config");
    let data = dir.path().join("data");
    let elfuse = |args: &[&std::ffi::OsStr]| -> common::Run {
        elfuse_cmd()
            .env("XDG_CONFIG_HOME", &config)
            .env("XDG_DATA_HOME", &data)
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .current_dir(&project)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let marker = || elfuse(&[program.as_os_str(), "cat".as_ref(), "/etc/marker".as_ref()]);
    let added = elfuse(&[
        "sysroot".as_ref(),
        "add".as_ref(),
        "a".as_ref(),
        default.as_os_str(),
    ]);
    assert_eq!(added.code(), 0, "{}", added.stderr());

    // Untrusted: the default runs, after one line saying why the file was ignored.
    let run = marker();
    assert_eq!((run.code(), run.stdout().as_str()), (0, "sysroot etc\n"));
    let project = std::fs::canonicalize(&project).unwrap();
    assert_eq!(
        run.stderr(),
        format!(
            "elfuse: ignoring {0}/.elfuse.toml (not trusted; run 'elfuse sysroot trust {0}' to \
             use it)\n",
            project.display()
        )
    );

    let trusted = elfuse(&["sysroot".as_ref(), "trust".as_ref()]);
    assert_eq!(trusted.code(), 0, "{}", trusted.stderr());
    let run = marker();
    assert_eq!(
        (run.code(), run.stdout().as_str(), run.stderr().as_str()),
        (0, "local etc\n", "")
    );
}
