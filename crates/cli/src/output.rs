//! The files a command writes: checked before the work starts, written whole at the end.
//!
//! A run can take minutes, so everything that would make its outputs fail or do harm is checked
//! first, by [`check_output`], and the run refuses to start: a missing folder, an output that is
//! one of the run's inputs (which writing would destroy), or an output that exists and is not a
//! regular file (a symbolic link, directory, FIFO, socket or device, which the rename below would
//! replace or fail on). [`write_output`] then writes each file through a temporary file in the
//! same folder and a rename, so a failure leaves the old file or the new one, never part of one.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// Tries at naming a temporary file before giving up (another process may hold some names).
const TEMPORARY_NAME_TRIES: u32 = 16;

/// Refuses an output path that the command could not or should not write, before any work.
///
/// `flag` is the option that gave `path` (`--output`, `--save`, ...), used in the error message.
/// `inputs` are `(flag, path)` pairs of everything the command reads, and of the outputs checked
/// before this one, so that two outputs cannot name the same file either. It fails, naming
/// `flag` and `path` and saying what to do, when:
///
/// - `path` does not name a file (it is empty or ends in `..` or `/`);
/// - the folder that would hold `path` does not exist, is not a folder, or does not let this
///   process create a file in it;
/// - `path` exists and is not a regular file: a symbolic link (the rename that writes outputs
///   would replace the link, not the file it points to), a directory, a FIFO, a socket or a
///   device node (which the rename would replace by a regular file);
/// - `path` is the same file as one of `inputs`: the same canonical path (another spelling of the
///   path, or a symbolic link to it or to a folder above it) or the same device and inode (a hard
///   link).
///
/// It reads metadata only and leaves nothing behind (the folder check creates and removes an
/// empty probe file). [`write_output`] repeats the file-kind check just before it writes.
///
/// ```ignore
/// output::check_output("--output", &args.output, &[("--input", &args.input)])?;
/// // ... the work ...
/// output::write_output("--output", &args.output, &bytes)?;
/// ```
pub fn check_output(flag: &str, path: &Path, inputs: &[(&str, &Path)]) -> anyhow::Result<()> {
    let shown = path.display();
    let Some(name) = path.file_name() else {
        bail!("{flag} {shown} does not name a file; give a file path such as out/result.npy");
    };
    let folder = folder_of(path);
    match fs::metadata(&folder) {
        Ok(metadata) if metadata.is_dir() => {}
        Ok(_) => bail!(
            "{flag} {shown}: {} is not a folder; choose a path in an existing folder",
            folder.display()
        ),
        Err(error) if error.kind() == io::ErrorKind::NotFound => bail!(
            "{flag} {shown}: the folder {} does not exist; create it first (mkdir -p {}) or \
             choose a path in an existing folder",
            folder.display(),
            folder.display()
        ),
        Err(error) => {
            return Err(error).with_context(|| {
                format!(
                    "{flag} {shown}: cannot check the folder {}",
                    folder.display()
                )
            })
        }
    }
    check_kind(flag, path)?;
    check_folder_writable(flag, path, &folder, name)?;
    let output = Identity::of(path);
    for (input_flag, input) in inputs {
        if output.same_as(&Identity::of(input)) {
            bail!(
                "{flag} {shown} is the same file as {input_flag} {}; writing it would destroy \
                 that file: choose another {flag} path",
                input.display()
            );
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` through a new temporary file in the same folder, synced to disk and
/// then renamed over `path`; `flag` names the option in error messages.
///
/// Just before the rename it checks again that `path` is not (or has not become) a symbolic
/// link or other non-regular file, as [`check_output`] does.
pub fn write_output(flag: &str, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let shown = path.display();
    let Some(name) = path.file_name() else {
        bail!("{flag} {shown} does not name a file; give a file path such as out/result.npy");
    };
    let folder = folder_of(path);
    let (temporary, mut file) = create_temporary(&folder, name, "tmp")
        .with_context(|| format!("cannot write {flag} {shown}: cannot create a temporary file"))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(anyhow::Error::from)
        .and_then(|()| check_kind(flag, path))
        .and_then(|()| fs::rename(&temporary, path).map_err(anyhow::Error::from));
    if let Err(error) = written {
        // Best effort: the temporary file is ours and useless now; the original error matters.
        let _ = fs::remove_file(&temporary);
        return Err(error.context(format!("cannot write {flag} {shown}")));
    }
    Ok(())
}

/// The folder that holds `path` (`.` for a bare file name).
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Refuses `path` if it exists and is not a regular file.
fn check_kind(flag: &str, path: &Path) -> anyhow::Result<()> {
    let shown = path.display();
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => {
            return Err(error).with_context(|| format!("{flag} {shown}: cannot check the file"))
        }
    };
    let kind = metadata.file_type();
    if kind.is_file() {
        return Ok(());
    }
    if kind.is_symlink() {
        let target = fs::read_link(path)
            .map(|target| format!(" (to {})", target.display()))
            .unwrap_or_default();
        bail!(
            "{flag} {shown} is a symbolic link{target}; outputs are written by renaming a new file \
             over the path, which would replace the link rather than write where it points: give \
             the path the link points to, or remove the link first"
        );
    }
    if kind.is_dir() {
        bail!("{flag} {shown} is a directory; give the path of a file to write (inside it, say)");
    }
    bail!(
        "{flag} {shown} is a {}, not a regular file; outputs are written as new regular files \
         that would replace it: choose another path",
        special_kind(&kind)
    )
}

/// A name for a file type that is neither a regular file, a directory nor a symbolic link.
fn special_kind(kind: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if kind.is_fifo() {
            return "FIFO (named pipe)";
        }
        if kind.is_socket() {
            return "socket";
        }
        if kind.is_block_device() || kind.is_char_device() {
            return "device node";
        }
    }
    let _ = kind;
    "special file"
}

/// Creates and removes an empty probe file in `folder`, as writing the output will need to.
fn check_folder_writable(
    flag: &str,
    path: &Path,
    folder: &Path,
    name: &std::ffi::OsStr,
) -> anyhow::Result<()> {
    let (probe, file) = create_temporary(folder, name, "probe").with_context(|| {
        format!(
            "{flag} {}: cannot create files in the folder {}; choose a folder you can write to",
            path.display(),
            folder.display()
        )
    })?;
    drop(file);
    // Best effort: an empty probe left behind (it is a dot file) is harmless.
    let _ = fs::remove_file(probe);
    Ok(())
}

/// Creates a new file `.NAME.TAG-PID[-N]` in `folder`, never opening one that already exists
/// (a link planted at that name is not followed).
fn create_temporary(
    folder: &Path,
    name: &std::ffi::OsStr,
    tag: &str,
) -> io::Result<(PathBuf, fs::File)> {
    let mut last_error = None;
    for attempt in 0..TEMPORARY_NAME_TRIES {
        let mut temporary = OsString::from(".");
        temporary.push(name);
        temporary.push(format!(".{tag}-{}", std::process::id()));
        if attempt > 0 {
            temporary.push(format!("-{attempt}"));
        }
        let temporary = folder.join(temporary);
        match fs::File::create_new(&temporary) {
            Ok(file) => return Ok((temporary, file)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => last_error = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free temporary file name")))
}

/// What tells two paths apart as files: the file's device and inode when it exists, and its
/// canonical path (or, for a file not created yet, its canonical folder and its name).
struct Identity {
    inode: Option<(u64, u64)>,
    canonical: Option<PathBuf>,
}

impl Identity {
    fn of(path: &Path) -> Self {
        let canonical = fs::canonicalize(path).ok().or_else(|| {
            let name = path.file_name()?;
            Some(fs::canonicalize(folder_of(path)).ok()?.join(name))
        });
        Self {
            inode: fs::metadata(path)
                .ok()
                .and_then(|metadata| inode(&metadata)),
            canonical,
        }
    }

    fn same_as(&self, other: &Identity) -> bool {
        let same_inode = matches!((self.inode, other.inode), (Some(a), Some(b)) if a == b);
        let same_path = matches!((&self.canonical, &other.canonical), (Some(a), Some(b)) if a == b);
        same_inode || same_path
    }
}

/// The device and inode numbers of a file, where the platform has them.
fn inode(metadata: &fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        Some((metadata.dev(), metadata.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_in_an_existing_folder_is_accepted_and_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.npy");
        check_output("--output", &path, &[]).unwrap();
        write_output("--output", &path, b"first").unwrap();
        check_output("--output", &path, &[]).unwrap();
        write_output("--output", &path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary or probe file is left behind");
    }

    #[test]
    fn a_missing_folder_is_refused_naming_the_flag_and_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nowhere/out.json");
        let message = check_output("--json", &path, &[]).unwrap_err().to_string();
        assert!(message.contains("--json"), "{message}");
        assert!(message.contains("nowhere"), "{message}");
        assert!(message.contains("does not exist"), "{message}");
    }

    #[cfg(unix)]
    #[test]
    fn the_same_file_under_another_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.npy");
        fs::write(&input, b"data").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        let spelled = dir.path().join("sub/../in.npy");
        let hard = dir.path().join("hard.npy");
        fs::hard_link(&input, &hard).unwrap();
        let linked_folder = dir.path().join("alias");
        std::os::unix::fs::symlink(dir.path(), &linked_folder).unwrap();
        for output in [input.clone(), spelled, hard, linked_folder.join("in.npy")] {
            let error = check_output("--output", &output, &[("--input", &input)]).unwrap_err();
            let message = error.to_string();
            assert!(message.contains("same file as --input"), "{message}");
        }
        // Two outputs that do not exist yet are the same file too.
        let json = dir.path().join("run.json");
        let error = check_output("--save", &json, &[("--json", &json)]).unwrap_err();
        assert!(error.to_string().contains("--json"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn links_and_special_files_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.npy");
        fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("link.npy");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let message = check_output("--output", &link, &[])
            .unwrap_err()
            .to_string();
        assert!(message.contains("symbolic link"), "{message}");
        let message = write_output("--output", &link, b"new")
            .unwrap_err()
            .to_string();
        assert!(message.contains("--output"), "{message}");
        assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        let message = check_output("--output", dir.path(), &[])
            .unwrap_err()
            .to_string();
        assert!(message.contains("directory"), "{message}");
    }
}
