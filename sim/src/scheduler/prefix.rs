//! The prefix cache's bookkeeping: prompt blocks identified by a hash chained over the block
//! contents, so a hit means the whole prefix up to that block matched. Bounded, oldest first
//! out. It decides hits only; the scheduler decides what a hit saves.

use std::collections::{HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};

/// Prompt blocks seen before, by chained block hash, bounded FIFO.
pub(super) struct PrefixCache {
    set: HashSet<u64>,
    order: VecDeque<u64>,
    cap: usize,
}

impl PrefixCache {
    pub(super) fn new(cap: usize) -> Self {
        PrefixCache {
            set: HashSet::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    pub(super) fn hits(&self, hashes: &[u64]) -> usize {
        hashes.iter().take_while(|h| self.set.contains(h)).count()
    }

    pub(super) fn insert(&mut self, hashes: &[u64]) {
        for h in hashes {
            if self.set.insert(*h) {
                self.order.push_back(*h);
                if self.order.len() > self.cap
                    && let Some(old) = self.order.pop_front()
                {
                    self.set.remove(&old);
                }
            }
        }
    }
}

pub(super) fn block_hashes(prompt: &[u32], block_size: u32) -> Vec<u64> {
    let mut prev = 0u64;
    prompt
        .chunks_exact(block_size as usize)
        .map(|block| {
            let mut h = DefaultHasher::new();
            prev.hash(&mut h);
            block.hash(&mut h);
            prev = h.finish();
            prev
        })
        .collect()
}
