//! The state machine's view of the store: typed records under prefixed keys, read through
//! layered overlays so a block (and each transaction inside it) writes nothing until it succeeds.

pub mod keys;
mod overlay;

pub use overlay::{Overlay, StateError};
