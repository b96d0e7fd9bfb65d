//! Changing the configuration file in place for `elfuse sysroot add|remove|default`.
//!
//! The file is edited as a `toml_edit` document, so comments, blank lines, key order and
//! formatting the user wrote survive; only the entry being added or removed (with the
//! comments directly above it) and the `default` value change. The file is validated before
//! and after the change, saved through a temporary file and a rename, and the previous
//! version is kept as `config.toml.bak`.
//!
//! Limitations: a sysroot still named by a rule cannot be removed; remove the rule first.

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, value};

use super::config::{Config, ConfigError, Dirs};
use super::local::write_atomically;

/// The configuration file, open for changes.
#[derive(Debug)]
pub struct ConfigEdit {
    file: PathBuf,
    home: Option<PathBuf>,
    doc: DocumentMut,
    config: Config,
    /// Whether the file as read began with a blank line (else none is added at the top).
    starts_blank: bool,
}

/// Whether a sysroot name is acceptable: it also names a directory under the data directory.
pub fn check_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::BadName(name.to_string()))
    }
}

impl ConfigEdit {
    /// Reads and validates the configuration file (a missing one is empty).
    pub fn open(dirs: &Dirs) -> Result<ConfigEdit, ConfigError> {
        let file = dirs.config_file.clone();
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(ConfigError::io(&file, e)),
        };
        let config = Config::parse(&file, &text, dirs.home.as_deref())?;
        let doc = text
            .parse::<DocumentMut>()
            .map_err(|e| ConfigError::Invalid {
                file: file.clone(),
                line: 1,
                message: e.to_string(),
            })?;
        Ok(ConfigEdit {
            file,
            home: dirs.home.clone(),
            doc,
            config,
            starts_blank: text.starts_with('\n'),
        })
    }

    /// The configuration as it was read.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Defines sysroot `name` at `path`; it becomes the default if there is none. Tells
    /// whether it became the default.
    pub fn add(&mut self, name: &str, path: &Path) -> Result<bool, ConfigError> {
        check_name(name)?;
        if let Some(existing) = self.config.sysroots.get(name) {
            let message = format!("sysroot \"{name}\" is already defined");
            return Err(super::config::invalid(&self.file, existing.line, message));
        }
        let path = path
            .to_str()
            .ok_or_else(|| ConfigError::NotUtf8(path.to_path_buf()))?;

        let not_a_table = self.not_a_table("sysroots");
        let sysroots = self.doc.entry("sysroots").or_insert_with(|| {
            let mut table = Table::new();
            table.set_implicit(true);
            Item::Table(table)
        });
        match sysroots {
            Item::Table(sysroots) => {
                let mut table = Table::new();
                table.decor_mut().set_prefix("\n");
                table.insert("path", value(path));
                sysroots.insert(name, Item::Table(table));
            }
            Item::Value(toml_edit::Value::InlineTable(sysroots)) => {
                let mut entry = toml_edit::InlineTable::new();
                entry.insert("path", path.into());
                sysroots.insert(name, entry.into());
            }
            _ => return Err(not_a_table),
        }

        let becomes_default = self.config.default.is_none();
        if becomes_default {
            self.doc.insert("default", value(name));
        }
        self.refresh()?;
        Ok(becomes_default)
    }

    /// Removes sysroot `name` (and `default`, if it was the default). Tells whether it was.
    pub fn remove(&mut self, name: &str) -> Result<bool, ConfigError> {
        self.defined(name)?;
        if let Some(rule) = self.config.rules.iter().find(|r| r.sysroot == name) {
            let number = self
                .config
                .rules
                .iter()
                .position(|r| r == rule)
                .unwrap_or(0)
                + 1;
            let message =
                format!("sysroot \"{name}\" is used by rule {number}; remove the rule first");
            return Err(super::config::invalid(&self.file, rule.line, message));
        }
        if let Some(sysroots) = self
            .doc
            .get_mut("sysroots")
            .and_then(|s| s.as_table_like_mut())
        {
            sysroots.remove(name);
        }
        let was_default = self.config.default.as_deref() == Some(name);
        if was_default {
            self.remove_default();
        }
        self.refresh()?;
        Ok(was_default)
    }

    /// Makes `name` the default.
    pub fn set_default(&mut self, name: &str) -> Result<(), ConfigError> {
        self.defined(name)?;
        let decor = self
            .doc
            .get("default")
            .and_then(|d| d.as_value())
            .map(|v| v.decor().clone());
        let mut new = toml_edit::Value::from(name);
        if let Some(decor) = decor {
            *new.decor_mut() = decor;
        }
        self.doc["default"] = Item::Value(new);
        self.refresh()
    }

    /// Re-reads the configuration from the edited document, so that further edits see it.
    fn refresh(&mut self) -> Result<(), ConfigError> {
        self.config = Config::parse(&self.file, &self.doc.to_string(), self.home.as_deref())?;
        Ok(())
    }

    /// Removes `default`, keeping the comments above it (they may describe the whole file).
    fn remove_default(&mut self) {
        let root = self.doc.as_table_mut();
        let comments = root
            .key("default")
            .and_then(|k| k.leaf_decor().prefix())
            .and_then(|p| p.as_str())
            .unwrap_or("")
            .to_string();
        root.remove("default");
        if comments.trim().is_empty() {
            return;
        }
        let before = root.decor().prefix().and_then(|p| p.as_str()).unwrap_or("");
        let kept = format!("{before}{comments}");
        root.decor_mut().set_prefix(kept);
    }

    /// Validates the edited document and writes it, keeping the old file as `.bak`.
    pub fn save(&self) -> Result<(), ConfigError> {
        let mut text = self.doc.to_string();
        if !self.starts_blank {
            text = text.trim_start_matches('\n').to_string();
        }
        Config::parse(&self.file, &text, self.home.as_deref())?;

        let dir = self.file.parent().unwrap_or(Path::new("/"));
        std::fs::create_dir_all(dir).map_err(|e| ConfigError::io(dir, e))?;
        if self.file.exists() {
            let backup = self.file.with_extension("toml.bak");
            std::fs::copy(&self.file, &backup).map_err(|e| ConfigError::io(&backup, e))?;
        }
        write_atomically(&self.file, text.as_bytes())
    }

    fn defined(&self, name: &str) -> Result<(), ConfigError> {
        if self.config.sysroots.contains_key(name) {
            Ok(())
        } else {
            Err(ConfigError::NoSuchSysroot {
                file: self.file.clone(),
                name: name.to_string(),
            })
        }
    }

    fn not_a_table(&self, key: &str) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            line: 1,
            message: format!("'{key}' is not a table"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(root: &Path) -> Dirs {
        Dirs {
            config_file: root.join("elfuse/config.toml"),
            data_dir: root.join("data"),
            home: Some(root.to_path_buf()),
        }
    }

    fn edit(root: &Path, text: &str) -> ConfigEdit {
        let dirs = dirs(root);
        std::fs::create_dir_all(dirs.config_file.parent().unwrap()).unwrap();
        std::fs::write(&dirs.config_file, text).unwrap();
        ConfigEdit::open(&dirs).unwrap()
    }

    fn saved(root: &Path) -> String {
        std::fs::read_to_string(dirs(root).config_file).unwrap()
    }

    #[test]
    fn adding_to_a_missing_file_creates_it_with_a_default() {
        let root = tempfile::tempdir().unwrap();
        let mut edit = ConfigEdit::open(&dirs(root.path())).unwrap();
        assert!(edit.add("deb", Path::new("/s/deb")).unwrap());
        edit.save().unwrap();
        assert_eq!(
            saved(root.path()),
            "default = \"deb\"\n\n[sysroots.deb]\npath = \"/s/deb\"\n"
        );
    }

    #[test]
    fn comments_and_layout_survive_every_edit() {
        let root = tempfile::tempdir().unwrap();
        let original = "# My sysroots.\ndefault = \"a\"   # the usual one\n\n\
                        [sysroots.a]\npath = \"/a\"  # keep me\n\n\
                        # musl programs\n[[rules]]\ninterpreter = \"/lib/ld-musl-aarch64.so.1\"\n\
                        sysroot = \"a\"\n";
        let mut e = edit(root.path(), original);
        assert!(!e.add("b", Path::new("/b")).unwrap());
        e.save().unwrap();
        let text = saved(root.path());
        let added = "path = \"/a\"  # keep me\n\n[sysroots.b]\npath = \"/b\"\n";
        assert_eq!(text, original.replace("path = \"/a\"  # keep me\n", added));

        let mut e = ConfigEdit::open(&dirs(root.path())).unwrap();
        e.set_default("b").unwrap();
        e.save().unwrap();
        assert_eq!(
            saved(root.path()),
            text.replace("default = \"a\"   #", "default = \"b\"   #")
        );

        let mut e = ConfigEdit::open(&dirs(root.path())).unwrap();
        assert!(e.remove("b").unwrap());
        e.save().unwrap();
        assert_eq!(
            saved(root.path()),
            original.replace("default = \"a\"   # the usual one\n", "")
        );
        assert_eq!(
            std::fs::read_to_string(dirs(root.path()).config_file.with_extension("toml.bak"))
                .unwrap(),
            text.replace("default = \"a\"   #", "default = \"b\"   #")
        );
    }

    #[test]
    fn removing_the_default_leaves_no_blank_first_line() {
        let root = tempfile::tempdir().unwrap();
        let mut e = ConfigEdit::open(&dirs(root.path())).unwrap();
        e.add("a", Path::new("/a")).unwrap();
        e.add("b", Path::new("/b")).unwrap();
        e.save().unwrap();
        let mut e = ConfigEdit::open(&dirs(root.path())).unwrap();
        assert!(e.remove("a").unwrap());
        e.save().unwrap();
        assert_eq!(saved(root.path()), "[sysroots.b]\npath = \"/b\"\n");
    }

    #[test]
    fn refusals_name_the_problem() {
        let root = tempfile::tempdir().unwrap();
        let file = dirs(root.path()).config_file;
        let mut e = edit(
            root.path(),
            "[sysroots.a]\npath = \"/a\"\n[[rules]]\npath = \"/p\"\nsysroot = \"a\"\n",
        );
        assert_eq!(
            e.add("a", Path::new("/x")).unwrap_err().to_string(),
            format!("{}:2: sysroot \"a\" is already defined", file.display())
        );
        assert_eq!(
            e.remove("a").unwrap_err().to_string(),
            format!(
                "{}:5: sysroot \"a\" is used by rule 1; remove the rule first",
                file.display()
            )
        );
        assert_eq!(
            e.set_default("zz").unwrap_err().to_string(),
            format!("{}: no sysroot named \"zz\"", file.display())
        );
        assert_eq!(
            e.add("../x", Path::new("/x")).unwrap_err().to_string(),
            "invalid sysroot name \"../x\": use letters, digits, '.', '_' and '-'"
        );
    }

    #[test]
    fn a_broken_file_is_not_edited() {
        let root = tempfile::tempdir().unwrap();
        let dirs = dirs(root.path());
        std::fs::create_dir_all(dirs.config_file.parent().unwrap()).unwrap();
        std::fs::write(&dirs.config_file, "default = \"nope\"\n").unwrap();
        assert_eq!(
            ConfigEdit::open(&dirs).unwrap_err().to_string(),
            format!(
                "{}:1: default names sysroot \"nope\", which is not defined",
                dirs.config_file.display()
            )
        );
    }
}
