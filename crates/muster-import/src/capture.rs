//! A captured directory: one JSON file of what a source answered, owner-readable only (it
//! holds people's e-mail addresses and phone numbers; never a key or token).

use crate::ImportError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Writes `raw` as `dir/file` (the directory is created if needed).
pub fn write<T: Serialize>(raw: &T, dir: &Path, file: &str) -> Result<(), ImportError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ImportError::Input(format!("{}: {e}", dir.display())))?;
    let json = serde_json::to_vec_pretty(raw).map_err(|e| ImportError::Input(e.to_string()))?;
    crate::write_private(&dir.join(file), &json)
}

/// Reads `dir/file`; an error names the file and the field that does not parse.
pub fn read<T: DeserializeOwned>(dir: &Path, file: &str) -> Result<T, ImportError> {
    let path = dir.join(file);
    let text =
        std::fs::read(&path).map_err(|e| ImportError::Input(format!("{}: {e}", path.display())))?;
    let mut de = serde_json::Deserializer::from_slice(&text);
    serde_path_to_error::deserialize(&mut de)
        .map_err(|e| ImportError::Input(format!("{}: {}: {}", path.display(), e.path(), e.inner())))
}
