//! A neuron's patterns (spec §5–6): the prediction trie that N2G fits from lines and walks to
//! predict activations, and the graph view that DeepDecipher stores and draws.
//!
//! Both structures are built from the same [`Line`]s, keyed by token id:
//! - the prediction trie keeps the [`Key::Ignore`] wildcards and an end value per node (the
//!   original's `**END**` child), and has its wildcard siblings merged by [`PatternBuilder::finish`];
//! - the graph view skips wildcards, so only important tokens chain and gaps of any length collapse.
//!
//! Choices, where the spec leaves room or the original has a quirk:
//! - Tokens are ids and are not normalised (` The` and `the` are different keys); searching
//!   case-insensitively is the token index's job.
//! - First writer wins, as in the original's Python: a node keeps the importance and activation of
//!   the first line that created it, and an end value is never overwritten (no max, no mean).
//! - The graph view's `is_end` is sticky: a node is an end when any line ends there. The original
//!   took it from the first line only, so a short pattern inserted after a longer one through the
//!   same node lost its bold outline.
//! - A line whose first element is a wildcard is skipped (it would match any token); trailing
//!   wildcards are dropped before inserting, as the original's line builder does.
//! - Prediction returns the deepest end value on the greedy path, 0 when none (the original's
//!   Python, not n2g-rs's "final node" variant), and stops at depth 0 when that node is not an
//!   activator (its activation does not exceed the threshold), as the original does.
//! - Merging copies siblings in the order they were created, which is the original's dict order,
//!   so that first-writer-wins picks the same values.

use std::collections::{HashMap, VecDeque};

use dd_data::{GraphNode, NeuronGraph};

/// A trie key: a token id, or the wildcard that matches any one token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// An exact token.
    Token(u32),
    /// Any one token (the original's `**IGNORE**`); sorts after every token so lookups try exact
    /// matches first.
    Ignore,
}

/// One step of a pattern, walking back from the activating token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Element {
    /// The token, or the wildcard for an unimportant one.
    pub key: Key,
    /// How much masking this token lowers the activating token's activation.
    pub importance: f32,
    /// The normalised activation of this token in its prompt.
    pub activation: f32,
}

/// A pattern: `elements[0]` is the activating token (never Ignore), then earlier context going backwards (Ignore = unimportant token), trailing wildcards already dropped; `activation` is the activating token's normalised activation, what the END leaf predicts.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// The activating token, then its context going backwards.
    pub elements: Vec<Element>,
    /// The activating token's normalised activation: the value the pattern predicts.
    pub activation: f32,
}

type NodeId = usize;

const ROOT: NodeId = 0;

#[derive(Clone, Debug)]
struct Node {
    /// The key this node hangs under (the root's is never read).
    key: Key,
    /// Sorted by key, so the wildcard is last; creation order is the arena order of the ids.
    children: Vec<(Key, NodeId)>,
    /// The prediction of a pattern ending here (prediction trie only).
    end: Option<f32>,
    importance: f32,
    activation: f32,
    /// Whether a pattern ends here (graph view only).
    is_end: bool,
}

impl Node {
    fn new(key: Key, importance: f32, activation: f32) -> Self {
        Self { key, children: Vec::new(), end: None, importance, activation, is_end: false }
    }
}

/// An arena trie; nodes cut off by merging stay in the arena but are unreachable from the root.
#[derive(Clone, Debug)]
struct Trie {
    nodes: Vec<Node>,
}

impl Trie {
    fn new() -> Self {
        Self { nodes: vec![Node::new(Key::Ignore, 0.0, 0.0)] }
    }

    fn child(&self, node: NodeId, key: Key) -> Option<NodeId> {
        let children = &self.nodes[node].children;
        children.binary_search_by(|(k, _)| k.cmp(&key)).ok().map(|i| children[i].1)
    }

    fn ignore_child(&self, node: NodeId) -> Option<NodeId> {
        match self.nodes[node].children.last() {
            Some(&(Key::Ignore, id)) => Some(id),
            _ => None,
        }
    }

    /// The child under `key`, created with this payload if absent (first writer wins).
    fn child_or_insert(&mut self, node: NodeId, key: Key, importance: f32, activation: f32) -> NodeId {
        match self.nodes[node].children.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => self.nodes[node].children[i].1,
            Err(i) => {
                let id = self.nodes.len();
                self.nodes.push(Node::new(key, importance, activation));
                self.nodes[node].children.insert(i, (key, id));
                id
            }
        }
    }

    /// Children in creation order: the order the original's dicts iterate in.
    fn children_in_creation_order(&self, node: NodeId) -> Vec<(Key, NodeId)> {
        let mut children = self.nodes[node].children.clone();
        children.sort_unstable_by_key(|&(_, id)| id);
        children
    }

    /// Every path from `start` (excluded) down to a node with an end value (included), as the
    /// nodes' ids: the original's root-to-leaf paths minus their first node and END leaf.
    fn end_paths(&self, start: NodeId) -> Vec<Vec<NodeId>> {
        let mut paths = Vec::new();
        let mut stack: Vec<(NodeId, Vec<NodeId>)> = vec![(start, Vec::new())];
        while let Some((node, path)) = stack.pop() {
            if self.nodes[node].end.is_some() && !path.is_empty() {
                paths.push(path.clone());
            }
            for &(_, child) in &self.nodes[node].children {
                let mut longer = path.clone();
                longer.push(child);
                stack.push((child, longer));
            }
        }
        paths
    }

    /// merge_ignores (spec §5): wherever a node has a wildcard child, copy each exact sibling's
    /// continuations under the wildcard and drop the siblings where no pattern ends; top-down, so
    /// the copies are merged in turn when the walk reaches them.
    fn merge_ignores(&mut self) {
        let mut queue = VecDeque::from([ROOT]);
        while let Some(node) = queue.pop_front() {
            if let Some(wildcard) = self.ignore_child(node) {
                let mut cut = Vec::new();
                for (key, sibling) in self.children_in_creation_order(node) {
                    if key == Key::Ignore {
                        continue;
                    }
                    for path in self.end_paths(sibling) {
                        self.copy_path(wildcard, &path);
                    }
                    if self.nodes[sibling].end.is_none() {
                        cut.push(key);
                    }
                }
                self.nodes[node].children.retain(|(key, _)| !cut.contains(key));
            }
            queue.extend(self.nodes[node].children.iter().map(|&(_, child)| child));
        }
    }

    /// Inserts a copy of `path` (ids elsewhere in this trie) under `under`, first writer wins.
    fn copy_path(&mut self, under: NodeId, path: &[NodeId]) {
        let mut at = under;
        for &source in path {
            let Node { key, importance, activation, .. } = self.nodes[source];
            at = self.child_or_insert(at, key, importance, activation);
        }
        if let Some(&last) = path.last() {
            if self.nodes[at].end.is_none() {
                self.nodes[at].end = self.nodes[last].end;
            }
        }
    }
}

/// Builds a neuron's patterns from lines inserted in order.
#[derive(Clone, Debug)]
pub struct PatternBuilder {
    activation_threshold: f32,
    prediction: Trie,
    graph: Trie,
}

impl PatternBuilder {
    /// A builder whose activators are nodes with normalised activation above `activation_threshold` (the original's 0.5).
    pub fn new(activation_threshold: f32) -> Self {
        Self { activation_threshold, prediction: Trie::new(), graph: Trie::new() }
    }

    /// Adds one line to both structures; earlier lines keep their payloads and end values.
    pub fn insert(&mut self, line: &Line) {
        let kept = line.elements.iter().rposition(|e| e.key != Key::Ignore).map_or(0, |last| last + 1);
        let elements = &line.elements[..kept];
        if elements.first().is_none_or(|first| first.key == Key::Ignore) {
            return;
        }
        let mut at = ROOT;
        for e in elements {
            at = self.prediction.child_or_insert(at, e.key, e.importance, e.activation);
        }
        let end = &mut self.prediction.nodes[at].end;
        end.get_or_insert(line.activation);

        let mut at = ROOT;
        for e in elements.iter().filter(|e| e.key != Key::Ignore) {
            at = self.graph.child_or_insert(at, e.key, e.importance, e.activation);
        }
        self.graph.nodes[at].is_end = true;
    }

    /// The fitted patterns: the prediction trie with its wildcards merged, and the graph view.
    pub fn finish(mut self) -> Patterns {
        self.prediction.merge_ignores();
        Patterns { activation_threshold: self.activation_threshold, prediction: self.prediction, graph: self.graph }
    }
}

/// A fitted neuron model: the prediction trie (wildcards, merged) and the graph view (wildcards skipped).
#[derive(Clone, Debug)]
pub struct Patterns {
    activation_threshold: f32,
    prediction: Trie,
    graph: Trie,
}

impl Patterns {
    /// Per position, the normalised activation predicted for `tokens[t]` from `tokens[..=t]`.
    pub fn predict(&self, tokens: &[u32]) -> Vec<f32> {
        (0..tokens.len()).map(|t| self.predict_last(&tokens[..=t])).collect()
    }

    /// The prediction for the last token: a greedy walk backwards (an exact child before the
    /// wildcard, no backtracking) that returns the deepest end value it passes, 0 if none.
    fn predict_last(&self, tokens: &[u32]) -> f32 {
        let trie = &self.prediction;
        let mut at = ROOT;
        let mut found = 0.0;
        for (depth, &token) in tokens.iter().rev().enumerate() {
            match trie.child(at, Key::Token(token)).or_else(|| trie.ignore_child(at)) {
                Some(next) => at = next,
                None => break,
            }
            let node = &trie.nodes[at];
            if depth == 0 && !fires(node.activation, self.activation_threshold) {
                break;
            }
            if let Some(end) = node.end {
                found = end;
            }
        }
        found
    }

    /// Whether no pattern was inserted (every prediction is 0).
    pub fn is_empty(&self) -> bool {
        self.prediction.nodes[ROOT].children.is_empty()
    }

    /// The firing threshold the patterns were built with, in normalised activation.
    pub fn activation_threshold(&self) -> f32 {
        self.activation_threshold
    }

    /// The graph view in the original's flattened layout (see [`NeuronGraph`]): cluster 0 is the
    /// empty root cluster, cluster 1 the activating tokens, cluster d + 1 the d-th preceding
    /// important token; nodes are merged per depth by token, the first met breadth-first defining
    /// the node, as the original's DOT builder does. Scores are left for the builder.
    pub fn graph(&self, token_text: &dyn Fn(u32) -> String) -> NeuronGraph {
        let layout = GraphLayout::new(&self.graph);
        let starts: Vec<u32> = layout
            .depths
            .iter()
            .scan(0u32, |next, members| {
                let start = *next;
                *next += members.len() as u32;
                Some(start)
            })
            .collect();
        let mut subgraph_indices = vec![0];
        subgraph_indices.extend(&starts);
        let global = |depth: usize, local: usize| starts[depth] + local as u32;
        let mut nodes = Vec::new();
        for (depth, members) in layout.depths.iter().enumerate() {
            for member in members {
                let first = &self.graph.nodes[member.first];
                let importance = match depth {
                    0 => colour_activation(first.activation, self.activation_threshold),
                    _ => clamp_unit(first.importance),
                };
                nodes.push(GraphNode {
                    token: token_text(member.token),
                    token_id: Some(member.token),
                    required: member.required.iter().map(|&local| global(depth + 1, local)).collect(),
                    importance,
                    activation: Some(first.activation).filter(|a| a.is_finite()),
                    is_end: member.is_end,
                });
            }
        }
        NeuronGraph { subgraph_indices, nodes, scores: None }
    }
}

/// Whether a normalised activation passes the firing threshold (strictly, as the original); a NaN
/// never fires.
pub fn fires(activation: f32, threshold: f32) -> bool {
    activation > threshold
}

/// A node of the drawn graph: every trie node at one depth with one token.
struct Member {
    token: u32,
    /// The first trie node met breadth-first, whose payload the graph node shows.
    first: usize,
    is_end: bool,
    /// Local indices, at the next depth, of the context this node connects to; in the order met.
    required: Vec<usize>,
}

/// The graph view's trie merged per depth by token.
struct GraphLayout {
    depths: Vec<Vec<Member>>,
}

impl GraphLayout {
    fn new(trie: &Trie) -> Self {
        let mut depths: Vec<Vec<Member>> = Vec::new();
        let mut by_token: Vec<HashMap<u32, usize>> = Vec::new();
        // (trie node, depth, the parent's local index at depth - 1)
        let mut queue: VecDeque<(NodeId, usize, Option<usize>)> =
            trie.children_in_creation_order(ROOT).into_iter().map(|(_, child)| (child, 0, None)).collect();
        while let Some((id, depth, parent)) = queue.pop_front() {
            let node = &trie.nodes[id];
            let Key::Token(token) = node.key else { continue };
            if depths.len() <= depth {
                depths.push(Vec::new());
                by_token.push(HashMap::new());
            }
            let local = *by_token[depth].entry(token).or_insert_with(|| {
                depths[depth].push(Member { token, first: id, is_end: false, required: Vec::new() });
                depths[depth].len() - 1
            });
            depths[depth][local].is_end |= node.is_end;
            if let Some(parent) = parent {
                let required = &mut depths[depth - 1][parent].required;
                if !required.contains(&local) {
                    required.push(local);
                }
            }
            queue.extend(
                trie.children_in_creation_order(id).into_iter().map(|(_, child)| (child, depth + 1, Some(local))),
            );
        }
        Self { depths }
    }
}

/// The original's red shade for an activating node: `adjust(a, max(0, threshold − 0.2))` with
/// `adjust(x, y) = (x − y) / (1 − y)`, clamped to [0, 1].
fn colour_activation(activation: f32, activation_threshold: f32) -> f32 {
    let floor = (activation_threshold - 0.2).max(0.0);
    if floor >= 1.0 {
        // The original divides by zero here; a threshold that high leaves only "fires or not".
        return if activation > floor { 1.0 } else { 0.0 };
    }
    clamp_unit((activation - floor) / (1.0 - floor))
}

/// Clamps to [0, 1], NaN to 0, so the stored graph validates whatever the inputs were.
fn clamp_unit(x: f32) -> f32 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(token: u32, activation: f32) -> Element {
        Element { key: Key::Token(token), importance: 0.9, activation }
    }

    fn ign() -> Element {
        Element { key: Key::Ignore, importance: 0.1, activation: 0.0 }
    }

    fn line(elements: Vec<Element>, activation: f32) -> Line {
        Line { elements, activation }
    }

    fn fit(lines: &[Line]) -> Patterns {
        let mut builder = PatternBuilder::new(0.5);
        lines.iter().for_each(|l| builder.insert(l));
        builder.finish()
    }

    const X: u32 = 10;
    const A: u32 = 11;
    const B: u32 = 12;
    const C: u32 = 13;
    const Q: u32 = 14;

    /// The spec's worked example: `x←a←b|.8` and `x←IGN←c|.6` merge into `x→IGN→{c .6, b .8}`.
    #[test]
    fn merge_moves_exact_continuations_under_the_wildcard() {
        let patterns = fit(&[
            line(vec![tok(X, 0.8), tok(A, 0.0), tok(B, 0.0)], 0.8),
            line(vec![tok(X, 0.6), ign(), tok(C, 0.0)], 0.6),
        ]);
        assert_eq!(patterns.predict(&[B, Q, X]), vec![0.0, 0.0, 0.8]);
        assert_eq!(patterns.predict(&[C, Q, X])[2], 0.6);
        // `a` was not terminal, so it is gone: any token stands in its place.
        assert_eq!(patterns.predict(&[B, A, X])[2], 0.8);
        assert_eq!(patterns.predict(&[X]), vec![0.0]);
        let x = patterns.prediction.child(ROOT, Key::Token(X)).expect("x is a root child");
        let keys: Vec<Key> = patterns.prediction.nodes[x].children.iter().map(|&(k, _)| k).collect();
        assert_eq!(keys, vec![Key::Ignore]);
    }

    /// The spec's example of greedy search: the exact branch dead-ends and the wildcard is not retried.
    #[test]
    fn search_is_greedy_without_backtracking() {
        const ALL: u32 = 20;
        const EVERYONE: u32 = 21;
        let patterns = fit(&[
            line(vec![tok(X, 0.7), tok(ALL, 0.0)], 0.7),
            line(vec![tok(X, 0.9), ign(), tok(EVERYONE, 0.0)], 0.9),
        ]);
        assert_eq!(patterns.predict(&[EVERYONE, ALL, X])[2], 0.7);
        assert_eq!(patterns.predict(&[EVERYONE, Q, X])[2], 0.9);
    }

    #[test]
    fn deepest_end_on_the_path_wins() {
        let patterns = fit(&[line(vec![tok(X, 0.6)], 0.6), line(vec![tok(X, 0.9), tok(A, 0.0)], 0.9)]);
        assert_eq!(patterns.predict(&[A, X]), vec![0.0, 0.9]);
        assert_eq!(patterns.predict(&[B, X]), vec![0.0, 0.6]);
        assert_eq!(patterns.predict(&[]), Vec::<f32>::new());
    }

    #[test]
    fn first_writer_wins_for_end_values_and_payloads() {
        let patterns = fit(&[
            line(vec![tok(X, 0.6), tok(A, 0.2)], 0.6),
            line(vec![Element { key: Key::Token(X), importance: 0.1, activation: 0.95 }, tok(A, 0.9)], 0.95),
        ]);
        assert_eq!(patterns.predict(&[A, X])[1], 0.6);
        let graph = patterns.graph(&|t| t.to_string());
        assert_eq!(graph.nodes[0].activation, Some(0.6));
        assert_eq!(graph.nodes[1].activation, Some(0.2));
    }

    #[test]
    fn a_depth_zero_node_that_is_no_activator_predicts_nothing() {
        let patterns = fit(&[line(vec![tok(X, 0.4)], 0.4)]);
        assert_eq!(patterns.predict(&[X]), vec![0.0]);
        assert!(!patterns.is_empty());
        assert!(fit(&[]).is_empty());
    }

    #[test]
    fn leading_wildcards_are_skipped_and_trailing_ones_dropped() {
        let patterns = fit(&[line(vec![ign(), tok(A, 0.0)], 0.9), line(vec![tok(X, 0.7), ign(), ign()], 0.7)]);
        // The second line is `x|.7`: trailing wildcards would otherwise demand two earlier tokens.
        assert_eq!(patterns.predict(&[X]), vec![0.7]);
        assert_eq!(patterns.predict(&[A, Q]), vec![0.0, 0.0]);
        let graph = patterns.graph(&|t| t.to_string());
        assert_eq!(graph.nodes.len(), 1);
    }

    /// The graph view: wildcards skipped, nodes merged per depth by token, `required` pointing at the
    /// next depth, ends sticky, colours as the original computes them.
    #[test]
    fn graph_view_layout() {
        let patterns = fit(&[
            // x ← a ← b, with a gap between a and b
            line(
                vec![tok(X, 0.8), tok(A, 0.1), ign(), Element { key: Key::Token(B), importance: 1.4, activation: 0.7 }],
                0.8,
            ),
            // y ← a: `a` at depth 1 again, merged with the first `a`
            line(vec![tok(Q, 0.65), Element { key: Key::Token(A), importance: 0.76, activation: 0.0 }], 0.65),
            // x ← a: `a` under x becomes an end too
            line(vec![tok(X, 0.9), tok(A, 0.3)], 0.9),
            // x ← c
            line(vec![tok(X, 0.9), ign(), tok(C, 0.0)], 0.9),
        ]);
        let graph = patterns.graph(&|t| format!("t{t}"));
        graph.validate().expect("valid graph");
        let tokens: Vec<&str> = graph.nodes.iter().map(|n| n.token.as_str()).collect();
        assert_eq!(tokens, vec!["t10", "t14", "t11", "t13", "t12"]);
        assert_eq!(graph.subgraph_indices, vec![0, 0, 2, 4]);
        let required: Vec<Vec<u32>> = graph.nodes.iter().map(|n| n.required.clone()).collect();
        assert_eq!(required, vec![vec![2, 3], vec![2], vec![4], vec![], vec![]]);
        let ends: Vec<bool> = graph.nodes.iter().map(|n| n.is_end).collect();
        assert_eq!(ends, vec![false, false, true, true, true]);
        // x: adjust(0.8, 0.3) = 0.5/0.7; y: adjust(0.65, 0.3) = 0.5; context: importance clamped.
        assert!((graph.nodes[0].importance - 0.5 / 0.7).abs() < 1e-6);
        assert!((graph.nodes[1].importance - 0.5).abs() < 1e-6);
        assert_eq!(graph.nodes[2].importance, 0.9);
        assert_eq!(graph.nodes[4].importance, 1.0);
        assert_eq!(graph.nodes[4].token_id, Some(B));
        assert_eq!(graph.nodes[4].activation, Some(0.7));
        assert!(graph.scores.is_none());
        assert_eq!(fit(&[]).graph(&|t| t.to_string()).subgraph_indices, vec![0]);
    }

    /// The fixture's deterministic generator, with the draws the property tests need.
    struct Rng(crate::rng::SplitMix64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0.next_u64()
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn unit(&mut self) -> f32 {
            (self.next() >> 40) as f32 / (1u64 << 24) as f32
        }
    }

    /// The spec's insert / merge_ignores / search written as the original's Python does it: owned
    /// nodes, children in insertion order, END as a child.
    mod reference {
        use super::super::{Element, Key, Line};

        #[derive(Clone, Copy, Debug, PartialEq)]
        pub(super) enum RKey {
            Key(Key),
            End,
        }

        #[derive(Clone, Debug)]
        pub(super) struct RNode {
            pub(super) children: Vec<(RKey, RNode)>,
            pub(super) activation: f32,
            pub(super) importance: f32,
        }

        impl RNode {
            pub(super) fn root() -> Self {
                Self { children: vec![], activation: 0.0, importance: 0.0 }
            }

            fn get(&self, key: RKey) -> Option<&RNode> {
                self.children.iter().find(|(k, _)| *k == key).map(|(_, n)| n)
            }

            fn add(&mut self, path: &[(RKey, f32, f32)]) {
                let Some((&(key, importance, activation), rest)) = path.split_first() else { return };
                let i = match self.children.iter().position(|(k, _)| *k == key) {
                    Some(i) => i,
                    None => {
                        self.children.push((key, RNode { children: vec![], activation, importance }));
                        self.children.len() - 1
                    }
                };
                self.children[i].1.add(rest);
            }

            pub(super) fn insert(&mut self, line: &Line) {
                let mut path: Vec<(RKey, f32, f32)> =
                    line.elements.iter().map(|e: &Element| (RKey::Key(e.key), e.importance, e.activation)).collect();
                path.push((RKey::End, 0.0, line.activation));
                self.add(&path);
            }

            fn paths(&self, me: (RKey, f32, f32)) -> Vec<Vec<(RKey, f32, f32)>> {
                if self.children.is_empty() {
                    return vec![vec![me]];
                }
                let mut out = vec![];
                for (key, child) in &self.children {
                    for path in child.paths((*key, child.importance, child.activation)) {
                        let mut full = vec![me];
                        full.extend(path);
                        out.push(full);
                    }
                }
                out
            }

            /// Pre-order instead of breadth-first: merging only touches a node's own subtree, so
            /// any top-down order gives the same trie.
            pub(super) fn merge_ignores(&mut self) {
                let ignore = RKey::Key(Key::Ignore);
                if let Some(ig) = self.children.iter().position(|(k, _)| *k == ignore) {
                    let mut copies = vec![];
                    let mut cut = vec![];
                    for (key, child) in &self.children {
                        if *key == ignore {
                            continue;
                        }
                        for path in child.paths((*key, child.importance, child.activation)) {
                            if path.len() <= 1 || (path.len() == 2 && path[1].0 == RKey::End) {
                                continue;
                            }
                            copies.push(path[1..].to_vec());
                        }
                        if *key != RKey::End && child.get(RKey::End).is_none() {
                            cut.push(*key);
                        }
                    }
                    for path in copies {
                        self.children[ig].1.add(&path);
                    }
                    self.children.retain(|(k, _)| !cut.contains(k));
                }
                for (_, child) in &mut self.children {
                    child.merge_ignores();
                }
            }

            pub(super) fn search(&self, tokens: &[u32], threshold: f32) -> f32 {
                let mut node = self;
                let mut found = vec![0.0];
                for (i, &t) in tokens.iter().rev().enumerate() {
                    let next = node.get(RKey::Key(Key::Token(t))).or_else(|| node.get(RKey::Key(Key::Ignore)));
                    let Some(next) = next else { break };
                    node = next;
                    if i == 0 && node.activation.partial_cmp(&threshold) != Some(std::cmp::Ordering::Greater) {
                        break;
                    }
                    if let Some(end) = node.get(RKey::End) {
                        found.push(end.activation);
                    }
                }
                found[found.len() - 1]
            }
        }
    }

    fn random_line(rng: &mut Rng, alphabet: u64) -> Line {
        let len = 1 + rng.below(5) as usize;
        let mut elements: Vec<Element> = (0..len)
            .map(|i| {
                let key = if i > 0 && rng.below(10) < 4 { Key::Ignore } else { Key::Token(rng.below(alphabet) as u32) };
                Element { key, importance: rng.unit(), activation: rng.unit() }
            })
            .collect();
        while elements.last().is_some_and(|e| e.key == Key::Ignore) {
            elements.pop();
        }
        // Mostly activators at depth 0, as the line builder makes them; some not, to test the check.
        if rng.below(10) < 8 {
            elements[0].activation = 0.5 + elements[0].activation / 2.0 + 1e-3;
        }
        Line { activation: elements[0].activation, elements }
    }

    /// Predictions equal the reference's on random lines over small alphabets with random wildcards.
    #[test]
    fn predictions_match_the_reference_on_random_lines() {
        let mut rng = Rng(crate::rng::SplitMix64::new(7));
        let mut compared = 0usize;
        let mut nonzero = 0usize;
        for case in 0..400 {
            let alphabet = 2 + rng.below(3);
            let lines: Vec<Line> = (0..1 + rng.below(12)).map(|_| random_line(&mut rng, alphabet)).collect();
            let mut reference = reference::RNode::root();
            let mut builder = PatternBuilder::new(0.5);
            for line in &lines {
                reference.insert(line);
                builder.insert(line);
            }
            reference.merge_ignores();
            let patterns = builder.finish();
            for _ in 0..10 {
                let tokens: Vec<u32> = (0..rng.below(9)).map(|_| rng.below(alphabet) as u32).collect();
                let got = patterns.predict(&tokens);
                let want: Vec<f32> = (0..tokens.len()).map(|t| reference.search(&tokens[..=t], 0.5)).collect();
                assert_eq!(got, want, "case {case}: lines {lines:?}, tokens {tokens:?}");
                compared += tokens.len();
                nonzero += want.iter().filter(|&&w| w != 0.0).count();
            }
        }
        // The comparison means something only if many predictions fire.
        assert!(compared > 10_000 && nonzero > compared / 5, "{nonzero} of {compared} nonzero");
    }

    /// The graph view validates and keeps every token and end of the lines, whatever the lines.
    #[test]
    fn random_graphs_validate_and_keep_every_line() {
        let mut rng = Rng(crate::rng::SplitMix64::new(11));
        for _ in 0..200 {
            let lines: Vec<Line> = (0..1 + rng.below(10)).map(|_| random_line(&mut rng, 4)).collect();
            let graph = fit(&lines).graph(&|t| t.to_string());
            graph.validate().expect("valid graph");
            for line in &lines {
                // Walk the line's important tokens through the flattened graph, depth by depth.
                let real: Vec<u32> = line
                    .elements
                    .iter()
                    .filter_map(|e| if let Key::Token(t) = e.key { Some(t) } else { None })
                    .collect();
                let depth_range = |d: usize| {
                    let start = graph.subgraph_indices[d + 1] as usize;
                    let end = graph.subgraph_indices.get(d + 2).map_or(graph.nodes.len(), |&e| e as usize);
                    start..end
                };
                let find = |d: usize, t: u32| depth_range(d).find(|&i| graph.nodes[i].token_id == Some(t));
                let mut at = find(0, real[0]).expect("activating token present");
                for (d, &t) in real.iter().enumerate().skip(1) {
                    let next = find(d, t).expect("context token present");
                    assert!(graph.nodes[at].required.contains(&(next as u32)));
                    at = next;
                }
                assert!(graph.nodes[at].is_end);
            }
        }
    }
}
