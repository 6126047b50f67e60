//! Token strings to token ids. Published datasets store tokens as strings; the database stores
//! ids into the model's vocabulary. With a tokenizer's vocabulary (or a model already in the
//! database) strings map to its ids; a string it lacks is added past its end and counted as
//! unmapped. Without one, the vocabulary is built from the strings as they come.

use std::collections::HashMap;
use std::sync::RwLock;

use dd_data::{Vocabulary, display_token};

/// A shared, growing map from token text to id; `Sync`, for the import's worker threads.
pub struct TokenMap {
    inner: RwLock<Inner>,
}

struct Inner {
    /// Display strings (`dd_data::display_token`) by id: the vocabulary written to the store.
    tokens: Vec<String>,
    ids: HashMap<String, u32, FnvBuild>,
    /// Token texts as published (` the`) already seen, to their ids: most tokens recur, and a hit
    /// here skips making the display string.
    raw_ids: HashMap<String, u32, FnvBuild>,
    /// Ids below this came from the tokenizer or the stored model.
    n_known: usize,
    /// Token occurrences that the known vocabulary lacked.
    unmapped_occurrences: u64,
    /// How many entries the vocabulary had when last written to the store.
    written: usize,
}

impl TokenMap {
    /// A map onto `vocabulary` (a tokenizer's, or the stored model's); empty to build one.
    pub fn new(vocabulary: Vocabulary) -> Self {
        let mut ids = HashMap::with_capacity_and_hasher(vocabulary.tokens.len(), FnvBuild);
        for (id, token) in vocabulary.tokens.iter().enumerate() {
            // Several ids may show the same (half characters all show as `<0x..>` bytes, unused
            // slots alike): the first wins, as a tokenizer would encode the text.
            ids.entry(token.clone()).or_insert(id as u32);
        }
        let n_known = vocabulary.tokens.len();
        Self {
            inner: RwLock::new(Inner {
                tokens: vocabulary.tokens,
                ids,
                raw_ids: HashMap::with_hasher(FnvBuild),
                n_known,
                unmapped_occurrences: 0,
                written: n_known,
            }),
        }
    }

    /// A map that goes on growing `vocabulary`, one built from strings by an earlier import: what
    /// it lacks is added without being counted as unmapped.
    pub fn extending(vocabulary: Vocabulary) -> Self {
        let map = Self::new(vocabulary);
        {
            let mut inner = map.write();
            inner.n_known = 0;
        }
        map
    }

    /// Whether the map started from a known vocabulary.
    pub fn has_known_vocabulary(&self) -> bool {
        self.read().n_known > 0
    }

    /// The ids of `texts` (token texts as the publisher wrote them, spaces and all).
    pub fn ids_of<S: AsRef<str>>(&self, texts: &[S]) -> Vec<u32> {
        {
            let inner = self.read();
            let known: Option<Vec<u32>> = texts.iter().map(|text| inner.raw_ids.get(text.as_ref()).copied()).collect();
            if let Some(ids) = known {
                return ids;
            }
        }
        let shown: Vec<String> = texts.iter().map(|text| display_token(text.as_ref().as_bytes())).collect();
        let ids = self.ids_of_displayed(&shown);
        let mut inner = self.write();
        for (text, &id) in texts.iter().zip(&ids) {
            if !inner.raw_ids.contains_key(text.as_ref()) {
                inner.raw_ids.insert(text.as_ref().to_owned(), id);
            }
        }
        ids
    }

    /// The ids of tokens already in display form (`·the`), as the original DeepDecipher and our
    /// own exports store them.
    pub fn ids_of_displayed(&self, shown: &[String]) -> Vec<u32> {
        {
            let inner = self.read();
            if let Some(ids) = shown.iter().map(|token| inner.ids.get(token).copied()).collect::<Option<Vec<u32>>>() {
                return ids;
            }
        }
        let mut inner = self.write();
        let mut ids = Vec::with_capacity(shown.len());
        for token in shown {
            let id = match inner.ids.get(token) {
                Some(&id) => id,
                None => {
                    let id = inner.tokens.len() as u32;
                    inner.tokens.push(token.clone());
                    inner.ids.insert(token.clone(), id);
                    id
                }
            };
            if inner.n_known > 0 && id as usize >= inner.n_known {
                inner.unmapped_occurrences += 1;
            }
            ids.push(id);
        }
        ids
    }

    /// The id of one token text.
    pub fn id_of(&self, text: &str) -> u32 {
        self.ids_of(&[text])[0]
    }

    /// The vocabulary when it grew since the last call (to be written with the records that use
    /// the new ids), else `None`.
    pub fn take_grown_vocabulary(&self) -> Option<Vocabulary> {
        let mut inner = self.write();
        if inner.tokens.len() == inner.written {
            return None;
        }
        inner.written = inner.tokens.len();
        Some(Vocabulary { tokens: inner.tokens.clone() })
    }

    /// Strings the known vocabulary lacked (distinct), and how often they occurred.
    pub fn unmapped(&self) -> (usize, u64) {
        let inner = self.read();
        if inner.n_known == 0 {
            return (0, 0);
        }
        (inner.tokens.len() - inner.n_known, inner.unmapped_occurrences)
    }

    /// Entries in the vocabulary now.
    pub fn len(&self) -> usize {
        self.read().tokens.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// FNV-1a: token texts are short, and SipHash's protection against chosen keys buys nothing in a
/// map that lives for one import.
#[derive(Clone, Copy, Default)]
struct FnvBuild;

struct Fnv(u64);

impl std::hash::BuildHasher for FnvBuild {
    type Hasher = Fnv;

    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_map_onto_a_known_vocabulary_and_the_rest_is_counted() {
        let map = TokenMap::new(Vocabulary { tokens: vec!["the".into(), "·the".into(), "↵".into()] });
        assert_eq!(map.ids_of(&[" the", "the", "\n"]), [1, 0, 2]);
        assert_eq!(map.take_grown_vocabulary(), None);
        assert_eq!(map.ids_of(&[" cat", " the", " cat"]), [3, 1, 3]);
        assert_eq!(map.unmapped(), (1, 2));
        let grown = map.take_grown_vocabulary().expect("grew");
        assert_eq!(grown.tokens[3], "·cat");
        assert_eq!(map.take_grown_vocabulary(), None);
    }

    #[test]
    fn an_earlier_imports_vocabulary_grows_without_counting() {
        let map = TokenMap::extending(Vocabulary { tokens: vec!["a".into()] });
        assert_eq!(map.ids_of(&["a", "b"]), [0, 1]);
        assert_eq!(map.unmapped(), (0, 0));
        assert_eq!(map.take_grown_vocabulary().expect("grew").tokens, ["a", "b"]);
    }

    #[test]
    fn without_a_vocabulary_one_is_built_and_nothing_is_unmapped() {
        let map = TokenMap::new(Vocabulary::default());
        assert_eq!(map.ids_of(&["a", "b", "a"]), [0, 1, 0]);
        assert_eq!(map.unmapped(), (0, 0));
        assert_eq!(map.take_grown_vocabulary().expect("built").tokens, ["a", "b"]);
    }
}
