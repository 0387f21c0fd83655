//! Free disk space: how many bytes the node may still write on the filesystem of its store.

use std::path::Path;

/// Bytes available to unprivileged users on the filesystem holding `path` (`statvfs`:
/// `f_bavail × f_frsize`), the figure `storage.min_free_bytes` is compared with.
///
/// # Errors
/// The `statvfs` call's, for a path that does not exist or a filesystem that does not answer.
pub(crate) fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_has_free_space_and_a_missing_path_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).unwrap() > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }
}
