//! Tree nodes grouped into pages of four levels, the durable store's unit of storage.
//!
//! One database entry per node would cost a B-tree insert per level of every changed key; a page
//! holds the up-to-15 nodes of a 4-level slice of the tree (the root of the slice at a depth that
//! is a multiple of 4, and its descendants down to 3 levels below), so a changed key touches
//! about depth / 4 entries. Pages are storage only: node positions, hashes and roots are those of
//! the binary tree.

use std::cell::RefCell;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use redb::ReadableTable;

use super::error::{db_err, StoreError};
use super::node::{Node, NodePath, ENCODED_NODE_LEN};
use super::tree::NodeSource;

/// Tree levels per page.
const PAGE_LEVELS: u16 = 4;
/// Node positions per page: 1 + 2 + 4 + 8.
const SLOTS: usize = 15;

/// The page holding `path` and the slot of `path` within it.
fn locate(path: &NodePath) -> (NodePath, usize) {
    let depth = path.depth();
    let top = depth - depth % PAGE_LEVELS;
    let mut offset = 0usize;
    for index in top..depth {
        offset = (offset << 1) | usize::from(path.bit(index));
    }
    let level = usize::from(depth - top);
    (path.ancestor(top), (1 << level) - 1 + offset)
}

/// The nodes of one 4-level slice of the tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Page {
    slots: [Option<Node>; SLOTS],
}

impl Page {
    /// Whether no node is left (the entry is then deleted).
    fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// Encoding: a big-endian u16 bitmap of occupied slots (bit `i` = slot `i`), then each
    /// occupied slot's node in slot order.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let occupied: u16 = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.is_some())
            .fold(0, |mask, (i, _)| mask | (1 << i));
        let mut out = Vec::with_capacity(2 + ENCODED_NODE_LEN * occupied.count_ones() as usize);
        out.extend_from_slice(&occupied.to_be_bytes());
        for node in self.slots.iter().flatten() {
            out.extend_from_slice(&node.encode());
        }
        out
    }

    /// Decodes a stored page, rejecting any length or bitmap that does not fit exactly.
    pub(crate) fn decode(bytes: &[u8], path: &NodePath) -> Result<Page, StoreError> {
        let corrupt = |reason: String| StoreError::CorruptNode {
            path: path.to_string(),
            reason,
        };
        let (head, body) = bytes
            .split_first_chunk::<2>()
            .ok_or_else(|| corrupt(format!("page of {} bytes", bytes.len())))?;
        let occupied = u16::from_be_bytes(*head);
        if occupied == 0 || occupied >> SLOTS != 0 {
            return Err(corrupt(format!("page bitmap {occupied:#06x}")));
        }
        let expected = ENCODED_NODE_LEN * occupied.count_ones() as usize;
        if body.len() != expected {
            return Err(corrupt(format!(
                "page body of {} bytes, expected {expected}",
                body.len()
            )));
        }
        let mut page = Page::default();
        let mut nodes = body.chunks_exact(ENCODED_NODE_LEN);
        for (i, slot) in page.slots.iter_mut().enumerate() {
            if occupied & (1 << i) != 0 {
                let bytes = nodes
                    .next()
                    .ok_or_else(|| corrupt("short page".to_owned()))?;
                *slot = Some(Node::decode(bytes, path)?);
            }
        }
        Ok(page)
    }
}

/// Number of nodes in a stored page, for audits that scan the whole table.
pub(crate) fn stored_nodes(key: &[u8], bytes: &[u8]) -> Result<u64, StoreError> {
    let position = || key.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let head = bytes.get(..2).ok_or_else(|| StoreError::CorruptNode {
        path: format!("page key {}", position()),
        reason: format!("page of {} bytes", bytes.len()),
    })?;
    let occupied = u16::from_be_bytes([head[0], head[1]]);
    if occupied >> SLOTS != 0
        || bytes.len() != 2 + ENCODED_NODE_LEN * occupied.count_ones() as usize
    {
        return Err(StoreError::CorruptNode {
            path: format!("page key {}", position()),
            reason: "page bitmap and length disagree".to_owned(),
        });
    }
    Ok(u64::from(occupied.count_ones()))
}

/// A table of pages read as the tree's node source, each page read once per operation.
pub(crate) struct PagedNodes<'t, T> {
    table: &'t T,
    cache: RefCell<BTreeMap<NodePath, Page>>,
}

impl<'t, T: ReadableTable<&'static [u8], &'static [u8]>> PagedNodes<'t, T> {
    /// A source over `table` with an empty page cache.
    pub(crate) fn new(table: &'t T) -> PagedNodes<'t, T> {
        PagedNodes {
            table,
            cache: RefCell::new(BTreeMap::new()),
        }
    }

    /// Ends the read phase: the pages read so far, to apply writes to.
    pub(crate) fn into_pages(self) -> BTreeMap<NodePath, Page> {
        self.cache.into_inner()
    }
}

/// Reads the page rooted at `top`, or an empty page if none is stored.
fn load<T: ReadableTable<&'static [u8], &'static [u8]>>(
    table: &T,
    top: &NodePath,
) -> Result<Page, StoreError> {
    let key = top.storage_key();
    match table
        .get(key.as_slice())
        .map_err(db_err("reading a tree page"))?
    {
        None => Ok(Page::default()),
        Some(guard) => Page::decode(guard.value(), top),
    }
}

impl<T: ReadableTable<&'static [u8], &'static [u8]>> NodeSource for PagedNodes<'_, T> {
    fn node(&self, path: &NodePath) -> Result<Option<Node>, StoreError> {
        let (top, slot) = locate(path);
        if let Some(page) = self.cache.borrow().get(&top) {
            return Ok(page.slots[slot]);
        }
        let page = load(self.table, &top)?;
        let node = page.slots[slot];
        self.cache.borrow_mut().insert(top, page);
        Ok(node)
    }
}

/// Applies node writes to their pages (reading any page not read yet) and stores the changed
/// pages in key order, deleting pages left empty.
pub(crate) fn write_nodes(
    table: &mut redb::Table<&'static [u8], &'static [u8]>,
    mut pages: BTreeMap<NodePath, Page>,
    writes: &[(NodePath, Option<Node>)],
) -> Result<(), StoreError> {
    let mut dirty: BTreeMap<NodePath, Page> = BTreeMap::new();
    for (path, node) in writes {
        let (top, slot) = locate(path);
        let page = match dirty.entry(top) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let page = match pages.remove(&top) {
                    Some(page) => page,
                    None => load(table, &top)?,
                };
                entry.insert(page)
            }
        };
        page.slots[slot] = *node;
    }
    let mut entries: Vec<_> = dirty
        .into_iter()
        .map(|(top, page)| (top.storage_key(), page))
        .collect();
    entries.sort_unstable_by(|a, b| a.0.as_slice().cmp(b.0.as_slice()));
    for (key, page) in entries {
        if page.is_empty() {
            table.remove(key.as_slice()).map(drop)
        } else {
            table
                .insert(key.as_slice(), page.encode().as_slice())
                .map(drop)
        }
        .map_err(db_err("writing a tree page"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_number_a_pages_four_levels_breadth_first() {
        let root = NodePath::ROOT;
        assert_eq!(locate(&root), (root, 0));
        assert_eq!(locate(&root.child(false)), (root, 1));
        assert_eq!(locate(&root.child(true)), (root, 2));
        let deepest = root.child(true).child(true).child(true);
        assert_eq!(locate(&deepest), (root, 14));
        let next_page = deepest.child(false);
        assert_eq!(locate(&next_page), (next_page, 0));
        assert_eq!(locate(&next_page.child(true)), (next_page, 2));
    }

    #[test]
    fn page_encoding_round_trips_and_rejects_bad_bitmaps() {
        let mut page = Page::default();
        page.slots[0] = Some(Node::Internal {
            left: [1; 32],
            right: [2; 32],
        });
        page.slots[9] = Some(Node::Leaf {
            key_hash: [3; 32],
            value_hash: [4; 32],
        });
        let bytes = page.encode();
        assert_eq!(bytes.len(), 2 + 2 * ENCODED_NODE_LEN);
        assert_eq!(Page::decode(&bytes, &NodePath::ROOT).ok(), Some(page));
        let mut extra_slot = bytes.clone();
        extra_slot[0] |= 0x80;
        assert!(Page::decode(&extra_slot, &NodePath::ROOT).is_err());
        assert!(Page::decode(&bytes[..bytes.len() - 1], &NodePath::ROOT).is_err());
        assert!(Page::decode(&[0, 0], &NodePath::ROOT).is_err());
        assert!(Page::decode(&[], &NodePath::ROOT).is_err());
    }
}
