use std::path::{Path, PathBuf};

/// The binaries are missing.
#[derive(Debug, thiserror::Error)]
#[error("binary {name} not found in {dir}: build it first (`cargo build --workspace --bins`)")]
pub struct BinariesError {
    /// The binary's name.
    pub name: String,
    /// Where it was looked for.
    pub dir: String,
}

/// The directory holding the workspace's built binaries (`target/<profile>`).
#[derive(Debug, Clone)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// Uses `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Binaries { dir: dir.into() }
    }

    /// Finds the binaries next to the running executable: a test binary lives in `target/<profile>/deps`,
    /// a workspace binary in `target/<profile>`. `FLEXCORD_BIN_DIR` overrides.
    pub fn locate() -> Self {
        if let Some(dir) = std::env::var_os("FLEXCORD_BIN_DIR") {
            return Binaries::in_dir(dir);
        }
        let exe = std::env::current_exe().unwrap_or_default();
        let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        if dir.file_name().is_some_and(|n| n == "deps") {
            dir.pop();
        }
        Binaries { dir }
    }

    /// The path of binary `name`, checked to exist.
    pub fn path(&self, name: &str) -> Result<PathBuf, BinariesError> {
        let p = self.dir.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            Err(BinariesError {
                name: name.to_owned(),
                dir: self.dir.display().to_string(),
            })
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
