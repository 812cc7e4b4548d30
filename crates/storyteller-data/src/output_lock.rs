//! An exclusive lock on an output (a model directory, a feature cache), so that two runs
//! writing the same output cannot interleave: the second is refused and told who holds it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// Holds the lock until dropped (or the process ends: the operating system releases it, so
/// a killed run never leaves a stale lock). The lock file itself stays, empty of meaning.
#[derive(Debug)]
pub struct OutputLock {
    _file: File,
    path: PathBuf,
}

impl OutputLock {
    /// Locks `output` through the file `lock_file`, recording `what` (e.g. `storyteller
    /// train`) and this process's id in it for whoever is refused.
    ///
    /// # Errors
    /// [`DataError::Locked`] naming the holder when the lock is taken; an I/O failure.
    pub fn acquire(output: &Path, lock_file: &Path, what: &str) -> Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(lock_file)
            .map_err(|e| DataError::io(lock_file, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(DataError::Locked {
                    path: output.to_owned(),
                    holder: if holder.is_empty() {
                        "another process".to_owned()
                    } else {
                        holder.to_owned()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(DataError::io(lock_file, e)),
        }
        let record = format!("{what} (process {})", std::process::id());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(record.as_bytes()))
            .and_then(|()| file.flush())
            .map_err(|e| DataError::io(lock_file, e))?;
        Ok(Self {
            _file: file,
            path: lock_file.to_owned(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_and_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("model");
        let lock_file = dir.path().join("model.lock");
        let first = OutputLock::acquire(&output, &lock_file, "storyteller train").unwrap();
        let err = OutputLock::acquire(&output, &lock_file, "storyteller train")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is being written by storyteller train (process"),
            "{err}"
        );
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(first);
        let again = OutputLock::acquire(&output, &lock_file, "storyteller extract").unwrap();
        assert_eq!(again.path(), lock_file);
    }
}
