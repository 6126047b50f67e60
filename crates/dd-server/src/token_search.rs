//! `token-search`: which neurons respond to a token, found in every neuron's activating tokens and
//! Neuron2Graph graph, ranked by how selective each neuron is for it. Built once per model in
//! memory (`ModelContext` keeps it); the query language is in `token_query.rs`.
//!
//! A neuron's entry for a token form (`·Paris`, the display form) holds:
//! - where the form appears: among its activating tokens (the recorded highest-mean tokens), among
//!   its graph's activating nodes (the first depth, or a normalised activation of at least 0.5, as
//!   the original's `activator`), or among its graph's context nodes;
//! - the token mean: the recorded mean where its activating tokens list the form, otherwise the
//!   graph node's normalised activation × the graph's `scores.scale` (the largest over the form's
//!   nodes), undefined for graphs without activations or scores;
//! - z = (token mean − neuron mean) / neuron standard deviation, from its `stats` (BOS left out):
//!   selectivity, so a neuron that fires on a token far above its usual level outranks one that
//!   fires strongly on everything. Undefined without stats or with zero spread.
//!
//! A query's neurons are those every term finds; a neuron's score is its smallest z over the terms
//! (selective for all of them), undefined scores last, ties by position. Each form's entries and,
//! for insensitive matching, each normalised token's entries (one per neuron, its best form) are
//! sorted once at build, so a one-term query is a hash lookup and a slice.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use dd_data::{ActivatingTokens, NeuronDataKind, NeuronGraph, NeuronIndex, NeuronRecord, NeuronStats, normalise_token};
use dd_store::{SourceEntry, StoreError, StoreRead};

use crate::token_query::{MatchMode, Term, TermKind, parse};
use crate::token_strings::TokenStrings;
use crate::wire;

/// A place bit: the form is among the neuron's recorded activating tokens.
pub(crate) const IN_ACTIVATING_TOKENS: u8 = 1;
/// A place bit: the form is an activating node of the neuron's graph.
pub(crate) const IN_GRAPH_ACTIVATING: u8 = 2;
/// A place bit: the form is a context node of the neuron's graph.
pub(crate) const IN_GRAPH_CONTEXT: u8 = 4;

/// A graph node is activating at this normalised activation or above, as the original's `activator`.
const ACTIVATING_NODE: f32 = 0.5;

/// What the index reads of one neuron.
pub(crate) struct NeuronTokens {
    /// The neuron.
    pub(crate) neuron: NeuronIndex,
    /// Its statistics, for z.
    pub(crate) stats: Option<NeuronStats>,
    /// Its recorded highest-mean tokens.
    pub(crate) activating: Option<ActivatingTokens>,
    /// Its Neuron2Graph graph.
    pub(crate) graph: Option<NeuronGraph>,
    /// Its first explanation's text.
    pub(crate) explanation: Option<String>,
}

/// One neuron's entry for a form (or, in merged lists, for its best form of a normalised token).
#[derive(Debug, Clone, Copy)]
struct Hit {
    /// `layer × units_per_layer + index`.
    neuron: u32,
    /// NaN when undefined.
    z: f32,
    /// NaN when undefined.
    mean: f32,
    /// Occurrences in the recorded dataset; 0 when the activating tokens do not list the form.
    count: u64,
    /// Union of the place bits.
    places: u8,
    /// Bits of the matched forms, by position in their normalised token's `Key::forms`.
    forms: u64,
}

/// Entries sorted by z, with their positions by neuron, so that other terms find a neuron's entry by
/// binary search instead of a hash map over the whole list: two-term queries over common tokens
/// spent most of their time building those maps.
#[derive(Debug, Clone, Default)]
struct HitList {
    hits: Vec<Hit>,
    /// (neuron, position in `hits`), sorted.
    by_neuron: Vec<(u32, u32)>,
}

/// The list no token has.
static NO_HITS: HitList = HitList { hits: Vec::new(), by_neuron: Vec::new() };

impl HitList {
    /// Sorts `hits` by z and indexes them by neuron.
    fn sorted(mut hits: Vec<Hit>) -> Self {
        hits.sort_unstable_by(order);
        let mut by_neuron: Vec<(u32, u32)> = hits.iter().enumerate().map(|(i, hit)| (hit.neuron, i as u32)).collect();
        by_neuron.sort_unstable();
        HitList { hits, by_neuron }
    }

    /// The neuron's entry.
    fn find(&self, neuron: u32) -> Option<&Hit> {
        let found = self.by_neuron.binary_search_by_key(&neuron, |&(n, _)| n).ok()?;
        self.by_neuron.get(found).and_then(|&(_, position)| self.hits.get(position as usize))
    }
}

/// The forms that normalise to one token, and their merged entries.
#[derive(Debug, Default)]
struct Key {
    /// Form ids, in first-seen order; a form's bit in `Hit::forms` is its position here.
    forms: Vec<u32>,
    /// One entry per neuron (its best form), sorted; empty when there is one form, whose list serves.
    merged: HitList,
}

/// Token forms to neurons, ranked.
pub(crate) struct TokenSearchIndex {
    units_per_layer: u32,
    forms: Vec<Box<str>>,
    form_ids: HashMap<Box<str>, u32>,
    /// Per form id, sorted by z.
    postings: Vec<HitList>,
    keys: HashMap<String, Key>,
    explanations: HashMap<u32, Box<str>>,
}

/// A term's matched entries, with what their form bits mean.
struct TermHits<'a> {
    list: Cow<'a, HitList>,
    /// The forms the bits refer to; exact matching has one and ignores the bits.
    forms: Vec<u32>,
    exact: bool,
}

/// How one neuron matched one term.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TermMatch<'a> {
    /// The display forms matched.
    pub(crate) forms: Vec<&'a str>,
    /// Place bits.
    pub(crate) places: u8,
    /// Token mean (of the best form); NaN when undefined.
    pub(crate) mean: f32,
    /// Occurrences; 0 when not among the activating tokens.
    pub(crate) count: u64,
    /// z (of the best form); NaN when undefined.
    pub(crate) z: f32,
}

/// A neuron found by a query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Found<'a> {
    /// The neuron.
    pub(crate) neuron: NeuronIndex,
    /// Its score, the smallest z over the terms; NaN when one is undefined.
    pub(crate) z: f32,
    /// One per term, in query order.
    pub(crate) matches: Vec<TermMatch<'a>>,
    /// Its first explanation.
    pub(crate) explanation: Option<&'a str>,
}

impl Found<'_> {
    /// The match that sets the score: the one with the smallest z.
    pub(crate) fn ranking_match(&self) -> Option<&TermMatch<'_>> {
        self.matches.iter().min_by(|a, b| rank(a.z).total_cmp(&rank(b.z)))
    }
}

/// A page of a query's results.
#[derive(Debug)]
pub(crate) struct Results<'a> {
    /// The terms read from the query.
    pub(crate) terms: Vec<Term>,
    /// Neurons found in all.
    pub(crate) total: usize,
    /// The page asked for.
    pub(crate) found: Vec<Found<'a>>,
}

impl TokenSearchIndex {
    /// Reads every neuron's activating tokens, graph, stats and first explanation, a few layers at
    /// once on threads of their own. Blocking; up to four blob reads per neuron.
    pub(crate) fn build(
        store: &dyn StoreRead,
        source: &SourceEntry,
        strings: &TokenStrings,
    ) -> Result<Self, StoreError> {
        let units_per_layer = source.info.units_per_layer as u32;
        let has = |kind| source.has_neuron_kind(kind);
        let (has_tokens, has_graphs) = (has(NeuronDataKind::ActivatingTokens), has(NeuronDataKind::Graph));
        if !has_tokens && !has_graphs {
            return Self::from_neurons(strings, units_per_layer, std::iter::empty());
        }
        let neurons = crate::layer_scan::read_layers(store, source, read_layer);
        Self::from_neurons(strings, units_per_layer, neurons)
    }

    /// Builds the index from neurons as read; the one path `build` and the benchmark share.
    pub(crate) fn from_neurons<E>(
        strings: &TokenStrings,
        units_per_layer: u32,
        neurons: impl Iterator<Item = Result<NeuronTokens, E>>,
    ) -> Result<Self, E> {
        let mut index = TokenSearchIndex {
            units_per_layer: units_per_layer.max(1),
            forms: Vec::new(),
            form_ids: HashMap::new(),
            postings: Vec::new(),
            keys: HashMap::new(),
            explanations: HashMap::new(),
        };
        for neuron in neurons {
            index.add(strings, neuron?);
        }
        index.finish();
        Ok(index)
    }

    fn add(&mut self, strings: &TokenStrings, neuron: NeuronTokens) {
        let flat = neuron.neuron.layer.saturating_mul(self.units_per_layer).saturating_add(neuron.neuron.index);
        let spread = neuron.stats.as_ref().map(|s| (s.mean, s.variance.max(0.0).sqrt()));
        let z = |mean: f32| match spread {
            Some((neuron_mean, deviation)) if deviation > 0.0 && mean.is_finite() => {
                ((f64::from(mean) - neuron_mean) / deviation) as f32
            }
            _ => f32::NAN,
        };
        for (form, mean, count, places) in neuron_forms(strings, &neuron) {
            let exact = exact_form(&form);
            let id = match self.form_ids.get(exact.as_str()) {
                Some(&id) => id,
                None => {
                    let id = self.forms.len() as u32;
                    self.forms.push(form.into_boxed_str());
                    self.form_ids.insert(exact.into_boxed_str(), id);
                    self.postings.push(HitList::default());
                    id
                }
            };
            let hit = Hit { neuron: flat, z: z(mean), mean, count, places, forms: 0 };
            if let Some(list) = self.postings.get_mut(id as usize) {
                list.hits.push(hit);
            }
        }
        if let Some(text) = neuron.explanation {
            self.explanations.insert(flat, text.into_boxed_str());
        }
    }

    fn finish(&mut self) {
        for (id, form) in self.forms.iter().enumerate() {
            let key = self.keys.entry(normalise_token(form)).or_default();
            let bit = if key.forms.len() < 64 { 1u64 << key.forms.len() } else { 0 };
            key.forms.push(id as u32);
            if let Some(list) = self.postings.get_mut(id) {
                let mut hits = std::mem::take(&mut list.hits);
                hits.iter_mut().for_each(|hit| hit.forms = bit);
                *list = HitList::sorted(hits);
            }
        }
        for key in self.keys.values_mut().filter(|key| key.forms.len() > 1) {
            let lists = key.forms.iter().filter_map(|&id| self.postings.get(id as usize));
            key.merged = merge(lists.map(|list| list.hits.iter().copied()), |_| true);
        }
    }

    /// Neurons matching every term of `query`, best first: `limit` of them from `offset`.
    pub(crate) fn search(&self, query: &str, mode: MatchMode, offset: usize, limit: usize) -> Results<'_> {
        let terms = parse(query);
        let lookups: Vec<TermHits<'_>> = terms.iter().map(|term| self.term_hits(term, mode)).collect();
        let Some(smallest) = (0..lookups.len()).min_by_key(|&i| lookups[i].list.hits.len()) else {
            return Results { terms, total: 0, found: Vec::new() };
        };
        if lookups.len() == 1 {
            let lookup = &lookups[0];
            let found = lookup
                .list
                .hits
                .iter()
                .skip(offset)
                .take(limit)
                .map(|hit| {
                    let matched = self.term_match(lookup, hit);
                    self.found(hit.neuron, matched.z, vec![matched])
                })
                .collect();
            return Results { total: lookup.list.hits.len(), terms, found };
        }
        let base = &lookups[smallest].list.hits;
        let hits_of = |position: usize| -> Option<Vec<&Hit>> {
            let first = base.get(position)?;
            lookups
                .iter()
                .enumerate()
                .map(|(i, lookup)| if i == smallest { Some(first) } else { lookup.list.find(first.neuron) })
                .collect()
        };
        let candidates = intersect(&lookups, smallest, offset.saturating_add(limit));
        let found = candidates
            .iter()
            .skip(offset)
            .take(limit)
            .filter_map(|&(score, neuron, position)| {
                let hits = hits_of(position)?;
                let matches = hits.iter().zip(&lookups).map(|(hit, lookup)| self.term_match(lookup, hit)).collect();
                Some(self.found(neuron, if score.is_finite() { score } else { f32::NAN }, matches))
            })
            .collect();
        Results { total: candidates.len(), terms, found }
    }

    /// The `token-search` page of a query.
    pub(crate) fn page(&self, query: &str, mode: MatchMode, offset: usize, limit: usize) -> wire::TokenSearchPage {
        let results = self.search(query, mode, offset, limit);
        let number = |value: f32| value.is_finite().then_some(value);
        let counted = |count: u64| (count > 0).then_some(count);
        wire::TokenSearchPage {
            token: results.terms.first().map(|term| search_form(&term.token, mode)).unwrap_or_default(),
            total: results.total as u64,
            neurons: results
                .found
                .iter()
                .map(|found| {
                    let ranking = found.ranking_match();
                    wire::TokenSearchHitObject {
                        layer: found.neuron.layer,
                        neuron: found.neuron.index,
                        mean: ranking.and_then(|m| number(m.mean)),
                        count: ranking.and_then(|m| counted(m.count)),
                        z: number(found.z),
                        matches: found
                            .matches
                            .iter()
                            .map(|m| wire::TermMatchObject {
                                tokens: m.forms.iter().map(|form| (*form).to_owned()).collect(),
                                found_in: place_names(m.places).map(str::to_owned).collect(),
                                mean: number(m.mean),
                                count: counted(m.count),
                                z: number(m.z),
                            })
                            .collect(),
                        explanation: found.explanation.map(str::to_owned),
                    }
                })
                .collect(),
            query: query.to_owned(),
            match_mode: mode.name().to_owned(),
            terms: results
                .terms
                .iter()
                .map(|term| wire::SearchTermObject { kind: term.kind.name().to_owned(), token: term.token.clone() })
                .collect(),
            offset: offset as u64,
        }
    }

    fn term_hits(&self, term: &Term, mode: MatchMode) -> TermHits<'_> {
        let wanted = places_of(term.kind);
        let keep = |hit: &Hit| hit.places & wanted != 0;
        match mode {
            MatchMode::Exact => {
                let form = search_form(&term.token, mode);
                let Some(&id) = self.form_ids.get(form.as_str()) else {
                    return TermHits { list: Cow::Borrowed(&NO_HITS), forms: Vec::new(), exact: true };
                };
                let all = self.postings.get(id as usize).unwrap_or(&NO_HITS);
                let list = match term.kind {
                    TermKind::Any => Cow::Borrowed(all),
                    _ => Cow::Owned(HitList::sorted(all.hits.iter().filter(|hit| keep(hit)).copied().collect())),
                };
                TermHits { list, forms: vec![id], exact: true }
            }
            MatchMode::Insensitive => {
                let Some(key) = self.keys.get(&search_form(&term.token, mode)) else {
                    return TermHits { list: Cow::Borrowed(&NO_HITS), forms: Vec::new(), exact: false };
                };
                let lists = || key.forms.iter().filter_map(|&id| self.postings.get(id as usize));
                let list = match (term.kind, key.forms.as_slice()) {
                    (TermKind::Any, [single]) => Cow::Borrowed(self.postings.get(*single as usize).unwrap_or(&NO_HITS)),
                    (TermKind::Any, _) => Cow::Borrowed(&key.merged),
                    _ => Cow::Owned(merge(lists().map(|list| list.hits.iter().copied()), keep)),
                };
                TermHits { list, forms: key.forms.clone(), exact: false }
            }
        }
    }

    fn term_match(&self, lookup: &TermHits<'_>, hit: &Hit) -> TermMatch<'_> {
        let forms = lookup
            .forms
            .iter()
            .enumerate()
            .filter(|&(bit, _)| lookup.exact || (bit < 64 && hit.forms & (1 << bit) != 0))
            .filter_map(|(_, &id)| self.forms.get(id as usize).map(|form| &**form))
            .collect();
        TermMatch { forms, places: hit.places, mean: hit.mean, count: hit.count, z: hit.z }
    }

    fn found<'a>(&'a self, flat: u32, z: f32, matches: Vec<TermMatch<'a>>) -> Found<'a> {
        let neuron = NeuronIndex { layer: flat / self.units_per_layer, index: flat % self.units_per_layer };
        Found { neuron, z, matches, explanation: self.explanations.get(&flat).map(|text| &**text) }
    }
}

/// Every neuron of a layer as the index reads it.
fn read_layer(store: &dyn StoreRead, source: &SourceEntry, layer: u32) -> Result<Vec<NeuronTokens>, StoreError> {
    let read = |index: u32, kind: NeuronDataKind| -> Result<Option<NeuronRecord>, StoreError> {
        if !source.has_neuron_kind(kind) {
            return Ok(None);
        }
        store.neuron_record(source, layer, index, kind)
    };
    (0..source.info.units_per_layer as u32)
        .map(|index| {
            let neuron = NeuronIndex { layer, index };
            let activating = match read(index, NeuronDataKind::ActivatingTokens)? {
                Some(NeuronRecord::ActivatingTokens(tokens)) => Some(tokens),
                _ => None,
            };
            let graph = match read(index, NeuronDataKind::Graph)? {
                Some(NeuronRecord::Graph(graph)) => Some(graph),
                _ => None,
            };
            if activating.is_none() && graph.is_none() {
                return Ok(NeuronTokens { neuron, stats: None, activating, graph, explanation: None });
            }
            let stats = match read(index, NeuronDataKind::Stats)? {
                Some(NeuronRecord::Stats(stats)) => Some(stats),
                _ => None,
            };
            let explanation = match read(index, NeuronDataKind::Explanations)? {
                Some(NeuronRecord::Explanations(explanations)) => {
                    explanations.explanations.into_iter().next().map(|e| e.text)
                }
                _ => None,
            };
            Ok(NeuronTokens { neuron, stats, activating, graph, explanation })
        })
        .collect()
}

/// The key a query token is looked up by: as typed (`·` a space) for exact matching, else normalised.
pub(crate) fn search_form(token: &str, mode: MatchMode) -> String {
    match mode {
        MatchMode::Exact => exact_form(token),
        MatchMode::Insensitive => normalise_token(token),
    }
}

/// The names of the places in `places`, for pages: `activating_tokens`, `graph_activating`, `graph_context`.
pub(crate) fn place_names(places: u8) -> impl Iterator<Item = &'static str> {
    [
        (IN_ACTIVATING_TOKENS, "activating_tokens"),
        (IN_GRAPH_ACTIVATING, "graph_activating"),
        (IN_GRAPH_CONTEXT, "graph_context"),
    ]
    .into_iter()
    .filter(move |(bit, _)| places & bit != 0)
    .map(|(_, name)| name)
}

/// The neurons every term found, as (score, neuron, position in the smallest list), the first
/// `n_sorted` of them in ranking order.
///
/// Walks the smallest list in neuron order. Each other list is searched by bisection when it is
/// much longer, else walked alongside: two lists of 300,000 common-token neurons meet in one
/// sequential pass instead of 300,000 scattered searches.
fn intersect(lookups: &[TermHits<'_>], smallest: usize, n_sorted: usize) -> Vec<(f32, u32, usize)> {
    let Some(base) = lookups.get(smallest) else { return Vec::new() };
    let base = &base.list;
    let bisect: Vec<bool> =
        lookups.iter().map(|lookup| base.by_neuron.len().saturating_mul(16) < lookup.list.by_neuron.len()).collect();
    let mut cursors = vec![0usize; lookups.len()];
    let mut candidates = Vec::new();
    'neurons: for &(neuron, position) in &base.by_neuron {
        let Some(first) = base.hits.get(position as usize) else { continue };
        let mut score = rank(first.z);
        for (i, lookup) in lookups.iter().enumerate() {
            if i == smallest {
                continue;
            }
            let hit = match bisect[i] {
                true => lookup.list.find(neuron),
                false => {
                    let by_neuron = &lookup.list.by_neuron;
                    let cursor = &mut cursors[i];
                    while by_neuron.get(*cursor).is_some_and(|&(other, _)| other < neuron) {
                        *cursor += 1;
                    }
                    match by_neuron.get(*cursor) {
                        Some(&(other, at)) if other == neuron => lookup.list.hits.get(at as usize),
                        _ => None,
                    }
                }
            };
            let Some(hit) = hit else { continue 'neurons };
            score = score.min(rank(hit.z));
        }
        candidates.push((score, neuron, position as usize));
    }
    let by_rank = |a: &(f32, u32, usize), b: &(f32, u32, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    // Only the page needs an order: select it, then sort it.
    if n_sorted < candidates.len() {
        candidates.select_nth_unstable_by(n_sorted, by_rank);
    }
    let n_sorted = n_sorted.min(candidates.len());
    candidates[..n_sorted].sort_unstable_by(by_rank);
    candidates
}

/// Descending z, undefined last, then by neuron.
fn order(a: &Hit, b: &Hit) -> Ordering {
    rank(b.z).total_cmp(&rank(a.z)).then(a.neuron.cmp(&b.neuron))
}

/// z for sorting: undefined below every defined value.
fn rank(z: f32) -> f32 {
    if z.is_nan() { f32::NEG_INFINITY } else { z }
}

/// One entry per neuron over several forms' lists (those `keep` accepts): the best form's numbers,
/// every place and form bit; sorted.
fn merge(lists: impl Iterator<Item = impl Iterator<Item = Hit>>, keep: impl Fn(&Hit) -> bool) -> HitList {
    let mut merged: HashMap<u32, Hit> = HashMap::new();
    for hit in lists.flatten().filter(|hit| keep(hit)) {
        merged
            .entry(hit.neuron)
            .and_modify(|best| {
                let (places, forms) = (best.places | hit.places, best.forms | hit.forms);
                if order(&hit, best) == Ordering::Less {
                    *best = hit;
                }
                best.places = places;
                best.forms = forms;
            })
            .or_insert(hit);
    }
    HitList::sorted(merged.into_values().collect())
}

/// The place bits a term kind accepts.
fn places_of(kind: TermKind) -> u8 {
    match kind {
        TermKind::Activating => IN_ACTIVATING_TOKENS | IN_GRAPH_ACTIVATING,
        TermKind::Important => IN_GRAPH_CONTEXT,
        TermKind::Any => IN_ACTIVATING_TOKENS | IN_GRAPH_ACTIVATING | IN_GRAPH_CONTEXT,
    }
}

/// A form as exact matching compares it: `·` (how most vocabularies display a space) read as a
/// space, everything else as is.
fn exact_form(token: &str) -> String {
    token.replace('·', " ")
}

/// A neuron's forms with their token mean (NaN when undefined), count and place bits.
fn neuron_forms(strings: &TokenStrings, neuron: &NeuronTokens) -> Vec<(String, f32, u64, u8)> {
    let mut forms: Vec<(String, f32, u64, u8)> = Vec::new();
    for token in neuron.activating.iter().flat_map(|a| &a.tokens) {
        let form = strings.display(token.token);
        match forms.iter_mut().find(|entry| same_form(&entry.0, &form)) {
            Some(entry) if entry.1 < token.mean => (entry.1, entry.2) = (token.mean, token.count),
            Some(_) => {}
            None => forms.push((form, token.mean, token.count, IN_ACTIVATING_TOKENS)),
        }
    }
    let Some(graph) = &neuron.graph else { return forms };
    let scale = graph.scores.map(|scores| scores.scale);
    let depths = graph.node_clusters();
    // DeepDecipher's graphs start with the root's empty cluster, which puts the activating tokens at depth 1.
    let first_depth = usize::from(!depths.contains(&Some(0)));
    for (node, depth) in graph.nodes.iter().zip(depths) {
        let form = node.token_id.map_or_else(|| node.token.clone(), |id| strings.display(id));
        let activating = depth == Some(first_depth) || node.activation.is_some_and(|a| a >= ACTIVATING_NODE);
        let place = if activating { IN_GRAPH_ACTIVATING } else { IN_GRAPH_CONTEXT };
        let mean = match (node.activation, scale) {
            (Some(activation), Some(scale)) => activation * scale,
            _ => f32::NAN,
        };
        match forms.iter_mut().find(|entry| same_form(&entry.0, &form)) {
            Some(entry) => {
                entry.3 |= place;
                // A recorded mean over the whole dataset beats one node's observation.
                if entry.3 & IN_ACTIVATING_TOKENS == 0 && (entry.1.is_nan() || entry.1 < mean) {
                    entry.1 = mean;
                }
            }
            None => forms.push((form, mean, 0, place)),
        }
    }
    forms
}

/// Whether two forms are one for exact matching (`·the` and ` the` are).
fn same_form(a: &str, b: &str) -> bool {
    a == b || exact_form(a) == exact_form(b)
}

#[cfg(test)]
mod tests;
