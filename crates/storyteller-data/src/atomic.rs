//! Atomic file writes: a uniquely named temporary file in the same directory, fsync, rename;
//! and the clean-up of temporaries that a killed writer left behind.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{DataError, Result};

/// Writes a file atomically: the bytes go to a temporary file next to `path` (a unique name,
/// so concurrent writers never share one, removed if anything fails), which is flushed to
/// disk and renamed over `path`. A crash leaves either the old file or the new one, never a
/// torn one.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let result = (|| {
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(dir)?;
        let mut out = BufWriter::new(tmp);
        write(&mut out)?;
        let tmp = out.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        // Persist the rename itself; not every platform lets a directory be opened.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|source| DataError::io(path, source))
}

/// Whether `name` is one of [`write_atomic`]'s temporaries (`.{target}.{random}.tmp`),
/// for the target `target` when given.
fn is_temporary(name: &str, target: Option<&str>) -> bool {
    let Some(inner) = name
        .strip_prefix('.')
        .and_then(|rest| rest.strip_suffix(".tmp"))
    else {
        return false;
    };
    match target {
        Some(target) => inner
            .strip_prefix(target)
            .is_some_and(|random| random.len() > 1 && random.starts_with('.')),
        None => inner.contains('.'),
    }
}

/// Removes the temporaries [`write_atomic`] left next to `target` (a process killed between
/// creating and renaming one cannot remove it). Call it only while no other process writes
/// `target` (under its [`OutputLock`](crate::OutputLock)). Returns the files removed.
///
/// # Errors
/// A temporary that exists but cannot be removed.
pub fn remove_stale_temporaries(target: &Path) -> Result<Vec<std::path::PathBuf>> {
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    remove_matching(dir, Some(&name), false)
}

/// Removes every temporary of [`write_atomic`] under `dir`, in every sub-folder too: for a
/// folder that only this program writes (a model directory), under its lock.
///
/// # Errors
/// A temporary that exists but cannot be removed.
pub fn remove_stale_temporaries_under(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    remove_matching(dir, None, true)
}

fn remove_matching(
    dir: &Path,
    target: Option<&str>,
    recurse: bool,
) -> Result<Vec<std::path::PathBuf>> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(removed);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() && recurse {
            removed.extend(remove_matching(&path, target, true)?);
        } else if kind.is_file() && is_temporary(&entry.file_name().to_string_lossy(), target) {
            std::fs::remove_file(&path).map_err(|e| DataError::io(&path, e))?;
            removed.push(path);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn stale_temporaries_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("f.safetensors");
        write_atomic(&cache, |w| w.write_all(b"rows")).unwrap();
        let stale = dir.path().join(".f.safetensors.Ab12Cd.tmp");
        let other_target = dir.path().join(".g.safetensors.Ab12Cd.tmp");
        let users = dir.path().join(".f.safetensors.notes");
        for path in [&stale, &other_target, &users] {
            fs::write(path, b"x").unwrap();
        }
        assert_eq!(
            remove_stale_temporaries(&cache).unwrap(),
            std::slice::from_ref(&stale)
        );
        assert!(cache.exists() && other_target.exists() && users.exists());

        let model = dir.path().join("model");
        fs::create_dir_all(model.join("checkpoint/epoch-0001")).unwrap();
        let nested = model.join("checkpoint/epoch-0001/.model.bpk.x1y2z3.tmp");
        let top = model.join(".decoder.bpk.x1y2z3.tmp");
        fs::write(&nested, b"x").unwrap();
        fs::write(&top, b"x").unwrap();
        fs::write(model.join("config.json"), b"{}").unwrap();
        let mut removed = remove_stale_temporaries_under(&model).unwrap();
        removed.sort();
        assert_eq!(removed, [top, nested]);
        assert!(model.join("config.json").exists());
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, |w| w.write_all(b"one")).unwrap();
        write_atomic(&path, |w| w.write_all(b"two")).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn concurrent_writers_never_share_a_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        std::thread::scope(|scope| {
            for i in 0..8u8 {
                let path = &path;
                scope.spawn(move || {
                    write_atomic(path, |w| w.write_all(&[i; 100_000])).unwrap();
                });
            }
        });
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 100_000);
        assert!(bytes.iter().all(|&b| b == bytes[0]), "a torn file");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, |w| w.write_all(b"old")).unwrap();
        let err = write_atomic(&path, |_| Err(std::io::Error::other("boom"))).unwrap_err();
        assert!(err.to_string().contains("a.json"));
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
