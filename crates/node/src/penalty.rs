//! Marks against peers that send bad data; past a limit the peer is blocked.
//!
//! One bad message can be an accident (a version skew, a stale answer after a timeout); a peer
//! that keeps sending them is hostile or broken. [`Penalties`] adds a weight per offence to the
//! peer's score and answers [`Verdict::Block`] once the score reaches the limit. The caller then
//! blocks the peer through commonware-p2p's `Blocker`, which disconnects it and refuses it from
//! then on. The ledger stays deterministic: peers live in a `BTreeMap`.

use std::collections::BTreeMap;

/// What a peer did wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Offence {
    /// Bytes that do not decode as a message, or a message on the wrong channel.
    Malformed,
    /// A length field above its bound (chunk, blob, transaction): never sent by honest peers.
    Oversized,
    /// An answer to a question this node did not ask that peer.
    Unsolicited,
    /// A blob whose bytes do not hash to the requested hash.
    WrongHash,
    /// A transaction with a bad signature or for another chain.
    InvalidTransaction,
}

/// What to do with a peer after a mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The peer stays connected.
    Tolerated,
    /// The peer reached the limit: block it.
    Block,
}

/// Weights per offence and the limit at which a peer is blocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PenaltyConfig {
    /// Weight of [`Offence::Malformed`].
    pub malformed: u32,
    /// Weight of [`Offence::Oversized`].
    pub oversized: u32,
    /// Weight of [`Offence::Unsolicited`].
    pub unsolicited: u32,
    /// Weight of [`Offence::WrongHash`].
    pub wrong_hash: u32,
    /// Weight of [`Offence::InvalidTransaction`].
    pub invalid_transaction: u32,
    /// A peer whose summed weights reach this is blocked.
    pub limit: u32,
}

impl Default for PenaltyConfig {
    /// Oversized data blocks at once (honest peers never exceed a bound); two wrong hashes or
    /// ten malformed messages block; stray answers (late replies after a timeout) cost little.
    fn default() -> Self {
        Self {
            malformed: 10,
            oversized: 100,
            unsolicited: 2,
            wrong_hash: 50,
            invalid_transaction: 10,
            limit: 100,
        }
    }
}

impl PenaltyConfig {
    /// The weight of one offence.
    pub fn weight(&self, offence: Offence) -> u32 {
        match offence {
            Offence::Malformed => self.malformed,
            Offence::Oversized => self.oversized,
            Offence::Unsolicited => self.unsolicited,
            Offence::WrongHash => self.wrong_hash,
            Offence::InvalidTransaction => self.invalid_transaction,
        }
    }
}

/// Marks per peer and per offence.
#[derive(Clone, Debug)]
pub struct Penalties<P: Ord> {
    config: PenaltyConfig,
    peers: BTreeMap<P, Record>,
}

#[derive(Clone, Debug, Default)]
struct Record {
    score: u32,
    marks: BTreeMap<Offence, u32>,
}

impl<P: Ord + Clone> Penalties<P> {
    /// An empty record with the given weights.
    pub fn new(config: PenaltyConfig) -> Self {
        Self {
            config,
            peers: BTreeMap::new(),
        }
    }

    /// Records one offence by `peer`; [`Verdict::Block`] when its score reaches the limit (and on
    /// every later mark, so a caller that missed the first verdict blocks again).
    pub fn mark(&mut self, peer: &P, offence: Offence) -> Verdict {
        let weight = self.config.weight(offence);
        let record = self.peers.entry(peer.clone()).or_default();
        record.score = record.score.saturating_add(weight);
        let count = record.marks.entry(offence).or_default();
        *count = count.saturating_add(1);
        if record.score >= self.config.limit {
            Verdict::Block
        } else {
            Verdict::Tolerated
        }
    }

    /// The peer's summed weight so far.
    pub fn score(&self, peer: &P) -> u32 {
        self.peers.get(peer).map_or(0, |record| record.score)
    }

    /// How many times `peer` committed `offence`.
    pub fn count(&self, peer: &P, offence: Offence) -> u32 {
        self.peers
            .get(peer)
            .and_then(|record| record.marks.get(&offence).copied())
            .unwrap_or(0)
    }

    /// Whether the peer has reached the limit.
    pub fn is_blocked(&self, peer: &P) -> bool {
        self.score(peer) >= self.config.limit
    }

    /// Forgets a peer (e.g. one that left every tracked peer set), bounding this map.
    pub fn forget(&mut self, peer: &P) {
        self.peers.remove(peer);
    }

    /// Peers with any mark, in ascending order.
    pub fn marked(&self) -> impl Iterator<Item = (&P, u32)> {
        self.peers.iter().map(|(peer, record)| (peer, record.score))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_accumulate_until_the_limit_blocks() {
        let mut penalties = Penalties::new(PenaltyConfig::default());
        for _ in 0..9 {
            assert_eq!(penalties.mark(&1u8, Offence::Malformed), Verdict::Tolerated);
        }
        assert!(!penalties.is_blocked(&1));
        assert_eq!(penalties.mark(&1u8, Offence::Malformed), Verdict::Block);
        assert!(penalties.is_blocked(&1));
        assert_eq!(penalties.count(&1, Offence::Malformed), 10);
        assert_eq!(penalties.score(&2), 0);
    }

    #[test]
    fn oversized_data_blocks_at_once_and_peers_are_independent() {
        let mut penalties = Penalties::new(PenaltyConfig::default());
        assert_eq!(
            penalties.mark(&1u8, Offence::Unsolicited),
            Verdict::Tolerated
        );
        assert_eq!(penalties.mark(&2u8, Offence::Oversized), Verdict::Block);
        assert!(!penalties.is_blocked(&1));
        assert_eq!(
            penalties.marked().collect::<Vec<_>>(),
            vec![(&1, 2), (&2, 100)]
        );
        penalties.forget(&2);
        assert_eq!(penalties.score(&2), 0);
    }

    #[test]
    fn two_wrong_hashes_block() {
        let mut penalties = Penalties::new(PenaltyConfig::default());
        assert_eq!(penalties.mark(&"p", Offence::WrongHash), Verdict::Tolerated);
        assert_eq!(penalties.mark(&"p", Offence::WrongHash), Verdict::Block);
        assert_eq!(penalties.mark(&"p", Offence::Unsolicited), Verdict::Block);
    }
}
