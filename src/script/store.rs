//! `ScriptStore`: the `.js` files of `<data_dir>/scripts/`. Names are checked before any path
//! is built, sources are validated before they are written, writes go to a temporary file that
//! is renamed over the old one, and the folder holds at most `SCRIPT_FILES_MAX` files of at most
//! `SCRIPT_FILE_BYTES_MAX` bytes.

use super::{slot, ScriptError};
use crate::limits::{SCRIPT_FILES_MAX, SCRIPT_FILE_BYTES_MAX};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Bytes of a script file name (names are file names, so a cap keeps them within every file
/// system's limit).
const NAME_BYTES_MAX: usize = 128;

/// One script file as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScriptInfo {
    pub name: String,
    pub bytes: u64,
    /// Last change, ms since the Unix epoch (0 when the file system does not say).
    pub modified_ms: i64,
}

/// The scripts folder.
#[derive(Debug)]
pub struct ScriptStore {
    dir: PathBuf,
    /// Makes temporary file names unique among concurrent writers of this process.
    temp_seq: AtomicU64,
}

impl ScriptStore {
    /// The store over `<data_dir>/scripts/` (created when missing).
    pub fn open(data_dir: &Path) -> Result<ScriptStore, ScriptError> {
        ScriptStore::at(data_dir.join("scripts"))
    }

    /// The store over `dir` itself (created when missing).
    pub fn at(dir: PathBuf) -> Result<ScriptStore, ScriptError> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| ScriptError::Io(format!("cannot create {}: {e}", dir.display())))?;
        Ok(ScriptStore {
            dir,
            temp_seq: AtomicU64::new(0),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Checks a script file name: `[A-Za-z0-9_.-]+\.js`, no path separator, no `..`, not
    /// hidden.
    pub fn check_name(name: &str) -> Result<(), ScriptError> {
        let bad = || ScriptError::BadName(name.chars().take(NAME_BYTES_MAX).collect());
        let stem = name.strip_suffix(".js").ok_or_else(bad)?;
        let chars_ok = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if stem.is_empty()
            || !chars_ok
            || name.len() > NAME_BYTES_MAX
            || name.contains("..")
            || name.starts_with('.')
        {
            return Err(bad());
        }
        Ok(())
    }

    /// Every script file, by name (other files in the folder, such as temporary ones, are not
    /// script files). Only files put by hand can make it longer than `SCRIPT_FILES_MAX`.
    pub fn list(&self) -> Result<Vec<ScriptInfo>, ScriptError> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| self.io("list", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| self.io("list", e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if ScriptStore::check_name(&name).is_err() {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let modified_ms = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64);
            out.push(ScriptInfo {
                name,
                bytes: meta.len(),
                modified_ms,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The source of `name`.
    pub fn get(&self, name: &str) -> Result<String, ScriptError> {
        ScriptStore::check_name(name)?;
        let path = self.dir.join(name);
        let meta = std::fs::metadata(&path).map_err(|e| self.missing(name, e))?;
        if meta.len() > SCRIPT_FILE_BYTES_MAX as u64 {
            return Err(ScriptError::TooLarge {
                what: "SCRIPT_FILE_BYTES_MAX",
                limit: SCRIPT_FILE_BYTES_MAX,
            });
        }
        let bytes = std::fs::read(&path).map_err(|e| self.missing(name, e))?;
        String::from_utf8(bytes).map_err(|_| ScriptError::Io(format!("{name} is not UTF-8")))
    }

    /// Validates `source` and writes it as `name` (atomically: a reader sees the old or the new
    /// file, never a part). Whether the file is new.
    pub fn put(&self, name: &str, source: &str) -> Result<bool, ScriptError> {
        ScriptStore::check_name(name)?;
        if source.len() > SCRIPT_FILE_BYTES_MAX {
            return Err(ScriptError::TooLarge {
                what: "SCRIPT_FILE_BYTES_MAX",
                limit: SCRIPT_FILE_BYTES_MAX,
            });
        }
        slot::validate(source)?;
        let path = self.dir.join(name);
        let created = !path.exists();
        if created && self.list()?.len() >= SCRIPT_FILES_MAX {
            return Err(ScriptError::TooMany {
                limit: SCRIPT_FILES_MAX,
            });
        }
        let seq = self.temp_seq.fetch_add(1, Relaxed);
        // Not a script name (leading dot, no .js suffix): never listed or loaded.
        let temp = self
            .dir
            .join(format!(".{name}.{}.{seq}.tmp", std::process::id()));
        let written = (|| {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(source.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temp, &path)?;
            // The rename itself is durable once the folder is synced.
            std::fs::File::open(&self.dir)?.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(self.io(name, e));
        }
        Ok(created)
    }

    /// Deletes `name`.
    pub fn delete(&self, name: &str) -> Result<(), ScriptError> {
        ScriptStore::check_name(name)?;
        std::fs::remove_file(self.dir.join(name)).map_err(|e| self.missing(name, e))
    }

    /// Every loadable script, in name order: (name, source) for at most `SCRIPT_FILES_MAX`
    /// files, and an error line for each file that could not be read or is too large.
    pub fn load_all(&self) -> (Vec<(String, String)>, Vec<String>) {
        let mut errors = Vec::new();
        let list = match self.list() {
            Ok(list) => list,
            Err(e) => return (Vec::new(), vec![e.to_string()]),
        };
        if list.len() > SCRIPT_FILES_MAX {
            errors.push(format!(
                "{} script files, only the first SCRIPT_FILES_MAX ({SCRIPT_FILES_MAX}) load",
                list.len()
            ));
        }
        let mut out = Vec::new();
        for info in list.into_iter().take(SCRIPT_FILES_MAX) {
            match self.get(&info.name) {
                Ok(source) => out.push((info.name, source)),
                Err(e) => errors.push(format!("{}: {e}", info.name)),
            }
        }
        (out, errors)
    }

    fn io(&self, what: &str, e: std::io::Error) -> ScriptError {
        ScriptError::Io(format!("{what} in {}: {e}", self.dir.display()))
    }

    fn missing(&self, name: &str, e: std::io::Error) -> ScriptError {
        if e.kind() == std::io::ErrorKind::NotFound {
            ScriptError::NoFile(name.to_string())
        } else {
            self.io(name, e)
        }
    }
}
