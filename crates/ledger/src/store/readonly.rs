//! A redb storage backend that reads a file and never writes it.
//!
//! redb 2 has no read-only mode: opening a database marks its header "in use" and closing it
//! writes the allocator state back, so merely inspecting a ledger changed its file (and, after an
//! unclean shutdown, opening it runs a repair that writes). Tools that only read — `cairn ledger
//! inspect`, `prove`, `verify` — must leave the file byte for byte as they found it. This backend
//! opens the file read-only (the operating system refuses any write to it) and keeps every write
//! redb makes in memory, block by block, on top of the file's bytes: redb sees a database it can
//! open, repair in memory if it must, and close; the file never changes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Mutex;

use redb::StorageBackend;

/// Granularity of the in-memory overlay (redb's own page size).
const BLOCK: u64 = 4096;

/// Reads from a file opened read-only; writes land in an in-memory overlay.
#[derive(Debug)]
pub(crate) struct ReadOnlyFile {
    file: File,
    overlay: Mutex<Overlay>,
}

/// What redb wrote since opening: whole blocks, and the length it set.
#[derive(Debug)]
struct Overlay {
    /// Block index -> the block's current bytes (always [`BLOCK`] long).
    blocks: BTreeMap<u64, Vec<u8>>,
    /// Current length as redb sees it.
    len: u64,
    /// How much of the file still shows through: the file's length, lowered by every
    /// shortening (bytes cut off and grown back read as zeros, as with a real file).
    file_visible: u64,
}

impl ReadOnlyFile {
    /// Opens `path` for reading only.
    pub(crate) fn open(path: &Path) -> io::Result<ReadOnlyFile> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(ReadOnlyFile {
            file,
            overlay: Mutex::new(Overlay {
                blocks: BTreeMap::new(),
                len,
                file_visible: len,
            }),
        })
    }

    fn overlay(&self) -> io::Result<std::sync::MutexGuard<'_, Overlay>> {
        self.overlay
            .lock()
            .map_err(|_| io::Error::other("read-only overlay lock poisoned"))
    }

    /// Block `index` as redb currently sees it, zero-filled beyond the current length.
    fn block(&self, overlay: &Overlay, index: u64) -> io::Result<Vec<u8>> {
        if let Some(block) = overlay.blocks.get(&index) {
            return Ok(block.clone());
        }
        let mut block = vec![0u8; BLOCK as usize];
        let start = index * BLOCK;
        let visible = overlay.len.min(overlay.file_visible);
        if start < visible {
            let available = usize::try_from((visible - start).min(BLOCK))
                .map_err(|_| io::Error::other("block length overflows usize"))?;
            read_exact_at(&self.file, &mut block[..available], start)?;
        }
        Ok(block)
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buffer, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buffer: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buffer.is_empty() {
        match file.seek_read(buffer, offset)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buffer = &mut buffer[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

impl StorageBackend for ReadOnlyFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.overlay()?.len)
    }

    fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let overlay = self.overlay()?;
        let end = offset
            .checked_add(len as u64)
            .filter(|end| *end <= overlay.len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
        let mut out = Vec::with_capacity(len);
        let mut at = offset;
        while at < end {
            let index = at / BLOCK;
            let within = (at % BLOCK) as usize;
            let take = ((BLOCK - at % BLOCK).min(end - at)) as usize;
            let block = self.block(&overlay, index)?;
            out.extend_from_slice(&block[within..within + take]);
            at += take as u64;
        }
        Ok(out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut overlay = self.overlay()?;
        if len < overlay.len {
            // Bytes cut off must read as zeros if the length grows again: drop whole blocks
            // past the end and zero the tail of the last one.
            let first_gone = len.div_ceil(BLOCK);
            overlay.blocks.retain(|index, _| *index < first_gone);
            if len % BLOCK != 0 {
                let index = len / BLOCK;
                let mut block = self.block(&overlay, index)?;
                block[(len % BLOCK) as usize..].fill(0);
                overlay.blocks.insert(index, block);
            }
        }
        overlay.len = len;
        overlay.file_visible = overlay.file_visible.min(len);
        Ok(())
    }

    fn sync_data(&self, _eventual: bool) -> io::Result<()> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut overlay = self.overlay()?;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| io::Error::other("write past u64::MAX"))?;
        let mut at = offset;
        let mut from = 0usize;
        while at < end {
            let index = at / BLOCK;
            let within = (at % BLOCK) as usize;
            let take = ((BLOCK - at % BLOCK).min(end - at)) as usize;
            let mut block = self.block(&overlay, index)?;
            block[within..within + take].copy_from_slice(&data[from..from + take]);
            overlay.blocks.insert(index, block);
            at += take as u64;
            from += take;
        }
        overlay.len = overlay.len.max(end);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_seen_by_reads_but_never_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let original: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &original).unwrap();
        let backend = ReadOnlyFile::open(&path).unwrap();
        assert_eq!(backend.read(0, 10_000).unwrap(), original);

        backend.write(4000, &[7u8; 200]).unwrap();
        let mut expected = original.clone();
        expected[4000..4200].fill(7);
        assert_eq!(backend.read(0, 10_000).unwrap(), expected);

        backend.write(12_000, &[9u8; 10]).unwrap();
        assert_eq!(backend.len().unwrap(), 12_010);
        assert_eq!(backend.read(10_000, 2000).unwrap(), vec![0u8; 2000]);

        backend.set_len(5000).unwrap();
        backend.set_len(9000).unwrap();
        let tail = backend.read(4000, 5000).unwrap();
        assert_eq!(&tail[..200], &[7u8; 200]);
        assert_eq!(&tail[200..1000], &original[4200..5000]);
        assert!(
            tail[1000..].iter().all(|b| *b == 0),
            "cut bytes read as zeros"
        );
        assert!(backend.read(8000, 2000).is_err(), "reads past the end fail");

        backend.sync_data(false).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            original,
            "the file is unchanged"
        );
    }
}
