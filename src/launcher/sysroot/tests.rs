//! Unit tests of sysroot selection: each precedence level, rules, static programs, notices and
//! the exact error messages.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::*;
use crate::launcher::local::LOCAL_FILE;

const GLIBC: &[u8] = b"/lib/ld-linux-aarch64.so.1";
const MUSL: &[u8] = b"/lib/ld-musl-aarch64.so.1";

/// A scratch home with a configuration, three sysroot directories and a project directory.
struct Fixture {
    root: tempfile::TempDir,
    dirs: Dirs,
}

impl Fixture {
    fn new(config: &str) -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let dirs = Dirs {
            config_file: root.path().join("config/elfuse/config.toml"),
            data_dir: root.path().join("data/elfuse"),
            home: Some(root.path().to_path_buf()),
        };
        for dir in [
            "roots/deb",
            "roots/musl",
            "roots/other",
            "project/sub",
            "project/rootfs",
        ] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        std::fs::create_dir_all(dirs.config_file.parent().unwrap()).unwrap();
        std::fs::write(&dirs.config_file, config).unwrap();
        Fixture { root, dirs }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// Writes `project/.elfuse.toml`, trusted or not.
    fn local(&self, text: &str, trusted: bool) -> PathBuf {
        let path = self.path("project").join(LOCAL_FILE);
        std::fs::write(&path, text).unwrap();
        if trusted {
            LocalFile::find(&self.path("project"))
                .unwrap()
                .unwrap()
                .trust(&self.dirs)
                .unwrap();
        }
        path
    }

    fn choose(
        &self,
        cli: Option<&str>,
        env: Option<&str>,
        interp: Option<&[u8]>,
    ) -> Result<Selection, ConfigError> {
        let program = self.path("project/sub/prog");
        let cwd = self.path("project/sub");
        let req = Request {
            cli: cli.map(OsStr::new),
            env: env.map(OsStr::new),
            program: &program,
            interpreter: interp,
            cwd: &cwd,
        };
        choose(&req, &self.dirs)
    }

    /// The chosen name, path (relative to the scratch root) and reason text.
    fn chosen(&self, cli: Option<&str>, env: Option<&str>, interp: Option<&[u8]>) -> String {
        match self.choose(cli, env, interp).unwrap().decision {
            Decision::Chosen(c) => format!(
                "{} {} ({})",
                c.name.as_deref().unwrap_or("-"),
                c.path.strip_prefix(self.root.path()).unwrap().display(),
                c.reason
                    .to_string()
                    .replace(&self.root.path().display().to_string(), "")
            ),
            other => format!("{other:?}"),
        }
    }
}

const CONFIG: &str = "default = \"deb\"\n\
    [sysroots.deb]\npath = \"~/roots/deb\"\n\
    [sysroots.musl]\npath = \"~/roots/musl\"\n\
    [sysroots.other]\npath = \"~/roots/other\"\n\
    [[rules]]\ninterpreter = \"/lib/ld-musl-aarch64.so.1\"\nsysroot = \"musl\"\n\
    [[rules]]\npath = \"~/project/sub\"\nsysroot = \"other\"\n";

#[test]
fn each_level_wins_over_the_ones_below_it() {
    let fx = Fixture::new(CONFIG);
    fx.local("sysroot = \"musl\"\n", true);
    assert_eq!(
        fx.chosen(Some("deb"), Some("other"), Some(GLIBC)),
        "deb roots/deb (--sysroot)"
    );
    assert_eq!(
        fx.chosen(None, Some("other"), Some(GLIBC)),
        "other roots/other (ELFUSE_SYSROOT)"
    );
    assert_eq!(
        fx.chosen(None, None, Some(GLIBC)),
        "musl roots/musl (/project/.elfuse.toml)"
    );

    std::fs::remove_file(fx.path("project").join(LOCAL_FILE)).unwrap();
    assert_eq!(
        fx.chosen(None, None, Some(MUSL)),
        "musl roots/musl (rule 1 in /config/elfuse/config.toml \
         (interpreter /lib/ld-musl-aarch64.so.1))"
    );
    assert_eq!(
        fx.chosen(None, None, Some(GLIBC)),
        "other roots/other (rule 2 in /config/elfuse/config.toml (path ~/project/sub))"
    );
}

#[test]
fn the_default_applies_when_no_rule_matches() {
    let fx = Fixture::new(&CONFIG.replace("~/project/sub", "~/elsewhere"));
    assert_eq!(
        fx.chosen(None, None, Some(GLIBC)),
        "deb roots/deb (default in /config/elfuse/config.toml)"
    );
}

#[test]
fn an_empty_environment_value_is_unset() {
    let fx = Fixture::new(CONFIG);
    assert_eq!(
        fx.chosen(None, Some(""), Some(MUSL)),
        "musl roots/musl (rule 1 in /config/elfuse/config.toml \
         (interpreter /lib/ld-musl-aarch64.so.1))"
    );
}

#[test]
fn a_dynamic_program_with_nothing_configured_is_unconfigured() {
    let fx = Fixture::new("");
    assert_eq!(fx.chosen(None, None, Some(GLIBC)), "Unconfigured");
    std::fs::remove_file(&fx.dirs.config_file).unwrap();
    assert_eq!(fx.chosen(None, None, Some(GLIBC)), "Unconfigured");
}

#[test]
fn static_programs_need_none_but_honour_an_explicit_choice() {
    let fx = Fixture::new(CONFIG);
    assert_eq!(fx.chosen(None, None, None), "Static");
    assert_eq!(
        fx.chosen(Some("musl"), None, None),
        "musl roots/musl (--sysroot)"
    );
    assert_eq!(
        fx.chosen(None, Some("deb"), None),
        "deb roots/deb (ELFUSE_SYSROOT)"
    );
}

#[test]
fn a_broken_configuration_does_not_stop_a_static_program() {
    let fx = Fixture::new("this is not toml\n");
    assert_eq!(fx.chosen(None, None, None), "Static");
    let err = fx.choose(None, None, Some(GLIBC)).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:1: ", fx.dirs.config_file.display())),
        "{err}"
    );
}

#[test]
fn values_are_names_then_paths_then_directories() {
    let fx = Fixture::new(CONFIG);
    let abs = fx.path("roots/other");
    assert_eq!(
        fx.chosen(Some(abs.to_str().unwrap()), None, Some(GLIBC)),
        "- roots/other (--sysroot)"
    );
    assert_eq!(
        fx.chosen(Some("../rootfs"), None, Some(GLIBC)),
        "- project/rootfs (--sysroot)"
    );
    // Not a name but a directory under the current directory.
    std::fs::create_dir(fx.path("project/sub/tree")).unwrap();
    assert_eq!(
        fx.chosen(None, Some("tree"), Some(GLIBC)),
        "- project/sub/tree (ELFUSE_SYSROOT)"
    );
}

#[test]
fn an_unknown_name_is_an_error_naming_it() {
    let fx = Fixture::new(CONFIG);
    assert_eq!(
        fx.choose(Some("nope"), None, Some(GLIBC))
            .unwrap_err()
            .to_string(),
        format!(
            "--sysroot nope: no sysroot of that name in {} and no such directory",
            fx.dirs.config_file.display()
        )
    );
    assert_eq!(
        fx.choose(None, Some("./missing"), None)
            .unwrap_err()
            .to_string(),
        "ELFUSE_SYSROOT ./missing: No such file or directory"
    );
}

#[test]
fn an_untrusted_local_file_is_ignored_with_a_notice() {
    let fx = Fixture::new(CONFIG);
    let file = fx.local("sysroot = \"deb\"\n", false);
    let selection = fx.choose(None, None, Some(MUSL)).unwrap();
    assert_eq!(
        selection.notices,
        vec![Notice::Untrusted { file: file.clone() }]
    );
    match selection.decision {
        Decision::Chosen(choice) => assert_eq!(choice.name.as_deref(), Some("musl")),
        other => panic!("{other:?}"),
    }

    // Trusted, then edited: untrusted again.
    fx.local("sysroot = \"deb\"\n", true);
    assert_eq!(
        fx.chosen(None, None, Some(MUSL)),
        "deb roots/deb (/project/.elfuse.toml)"
    );
    fx.local("sysroot = \"other\"\n", false);
    let selection = fx.choose(None, None, Some(MUSL)).unwrap();
    assert_eq!(selection.notices, vec![Notice::Untrusted { file }]);
}

#[test]
fn a_local_path_is_relative_to_the_file() {
    let fx = Fixture::new(CONFIG);
    fx.local("sysroot = \"./rootfs\"\n", true);
    assert_eq!(
        fx.chosen(None, None, Some(GLIBC)),
        "- project/rootfs (/project/.elfuse.toml)"
    );

    let file = fx.local("# pinned\nsysroot = \"./gone\"\n", true);
    assert_eq!(
        fx.choose(None, None, Some(GLIBC)).unwrap_err().to_string(),
        format!(
            "{}:2: sysroot \"./gone\": {}: No such file or directory",
            file.display(),
            fx.path("project/gone").display()
        )
    );

    fx.local("sysroot = \"nameless\"\n", true);
    assert_eq!(
        fx.choose(None, None, Some(GLIBC)).unwrap_err().to_string(),
        format!(
            "{}:1: sysroot \"nameless\" is neither defined in {} nor a directory",
            file.display(),
            fx.dirs.config_file.display()
        )
    );
}

#[test]
fn a_chosen_sysroot_with_a_missing_directory_is_an_error() {
    let fx = Fixture::new(CONFIG);
    std::fs::remove_dir(fx.path("roots/musl")).unwrap();
    assert_eq!(
        fx.choose(None, None, Some(MUSL)).unwrap_err().to_string(),
        format!(
            "{}:5: sysroot \"musl\": {}: No such file or directory",
            fx.dirs.config_file.display(),
            fx.path("roots/musl").display()
        )
    );
    // Another sysroot is still usable.
    assert_eq!(
        fx.chosen(Some("deb"), None, Some(MUSL)),
        "deb roots/deb (--sysroot)"
    );
}

#[test]
fn the_unconfigured_message_says_how_to_add_one() {
    assert_eq!(
        unconfigured_message(GLIBC),
        "dynamically linked (interpreter /lib/ld-linux-aarch64.so.1) and no sysroot is \
         configured; add one with 'elfuse sysroot add NAME DIR|TARBALL' or pass --sysroot DIR"
    );
}

#[test]
fn a_program_path_relative_to_the_current_directory_matches_path_rules() {
    let fx = Fixture::new(CONFIG);
    let cwd = fx.path("project");
    let req = Request {
        cli: None,
        env: None,
        program: Path::new("sub/./prog"),
        interpreter: Some(GLIBC),
        cwd: &cwd,
    };
    match choose(&req, &fx.dirs).unwrap().decision {
        Decision::Chosen(choice) => assert_eq!(choice.name.as_deref(), Some("other")),
        other => panic!("{other:?}"),
    }
}
