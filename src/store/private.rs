//! Files only their owner may read: spool folders (`0700`) and the spool, dead-letter and key
//! files in them (`0600`), the modes set when they are created (on Unix; elsewhere the
//! platform's defaults).

use std::fs::{DirBuilder, File, OpenOptions};
use std::path::Path;

/// Creates `dir` and its missing parents, owner-only.
pub(crate) fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Opens `path` to read and append, creating it owner-only if it does not exist.
pub(crate) fn open_private(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).read(true).append(true);
    owner_only(&mut o).open(path)
}

/// Creates `path` owner-only, to write; fails if it exists.
pub(crate) fn create_private(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    owner_only(&mut o).open(path)
}

fn owner_only(o: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}
