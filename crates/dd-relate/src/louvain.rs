//! Louvain community detection (Blondel et al. 2008) on an undirected weighted graph: nodes move
//! one at a time to the neighbouring community that raises modularity most, then communities
//! become nodes and the moves repeat, until no move helps.
//!
//! Deterministic: nodes are visited in index order, and a move must gain more than rounding (a
//! tie keeps the node where it is, else goes to the lower-numbered community), so the same graph
//! always gives the same partition.

/// An undirected weighted edge between two different nodes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Edge {
    /// One end.
    pub a: u32,
    /// The other end.
    pub b: u32,
    /// A positive weight.
    pub weight: f64,
}

/// Adjacency in compressed rows, with each node's self-loop weight apart.
struct Graph {
    offsets: Vec<usize>,
    neighbours: Vec<(u32, f64)>,
    self_loops: Vec<f64>,
}

impl Graph {
    fn new(n: usize, edges: &[Edge], self_loops: Vec<f64>) -> Self {
        let mut degree = vec![0usize; n + 1];
        for edge in edges {
            degree[edge.a as usize + 1] += 1;
            degree[edge.b as usize + 1] += 1;
        }
        for i in 0..n {
            degree[i + 1] += degree[i];
        }
        let offsets = degree.clone();
        let mut fill = degree;
        let mut neighbours = vec![(0u32, 0.0); offsets[n]];
        for edge in edges {
            neighbours[fill[edge.a as usize]] = (edge.b, edge.weight);
            fill[edge.a as usize] += 1;
            neighbours[fill[edge.b as usize]] = (edge.a, edge.weight);
            fill[edge.b as usize] += 1;
        }
        Self { offsets, neighbours, self_loops }
    }

    fn len(&self) -> usize {
        self.self_loops.len()
    }

    fn neighbours(&self, node: usize) -> &[(u32, f64)] {
        &self.neighbours[self.offsets[node]..self.offsets[node + 1]]
    }

    /// Weighted degree, a self-loop counted twice.
    fn degree(&self, node: usize) -> f64 {
        self.neighbours(node).iter().map(|&(_, w)| w).sum::<f64>() + 2.0 * self.self_loops[node]
    }
}

/// The community of every node of an `n`-node graph, numbered from 0 in order of each
/// community's lowest node. `resolution` above 1 favours smaller communities.
pub fn louvain(n: usize, edges: &[Edge], resolution: f64) -> Vec<u32> {
    let mut graph = Graph::new(n, edges, vec![0.0; n]);
    // Which community of the current level each original node is in.
    let mut membership: Vec<u32> = (0..n as u32).collect();
    loop {
        let communities = move_nodes(&graph, resolution);
        let (renumbered, count) = renumber(&communities);
        if count == graph.len() {
            break;
        }
        for community in &mut membership {
            *community = renumbered[*community as usize];
        }
        graph = aggregate(&graph, &renumbered, count);
    }
    renumber(&membership).0
}

/// The local moving phase: the community of each node of `graph`.
fn move_nodes(graph: &Graph, resolution: f64) -> Vec<u32> {
    let n = graph.len();
    let degrees: Vec<f64> = (0..n).map(|node| graph.degree(node)).collect();
    let two_m: f64 = degrees.iter().sum();
    let mut community: Vec<u32> = (0..n as u32).collect();
    if two_m == 0.0 {
        return community;
    }
    let mut totals = degrees.clone();
    let mut weight_to = vec![0.0f64; n];
    let mut touched: Vec<u32> = Vec::new();
    // Enough passes to settle; each pass that moves nothing ends it.
    for _ in 0..64 {
        let mut moved = false;
        for node in 0..n {
            let own = community[node];
            for &(other, weight) in graph.neighbours(node) {
                let c = community[other as usize];
                if weight_to[c as usize] == 0.0 {
                    touched.push(c);
                }
                weight_to[c as usize] += weight;
            }
            let k = degrees[node];
            totals[own as usize] -= k;
            let gain = |c: u32, weight: f64| weight - resolution * totals[c as usize] * k / two_m;
            let mut best = own;
            let mut best_gain = gain(own, weight_to[own as usize]);
            touched.sort_unstable();
            for &c in &touched {
                let g = gain(c, weight_to[c as usize]);
                if g > best_gain + 1e-12 {
                    best = c;
                    best_gain = g;
                }
            }
            for &c in &touched {
                weight_to[c as usize] = 0.0;
            }
            touched.clear();
            totals[best as usize] += k;
            if best != own {
                community[node] = best;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    community
}

/// Communities numbered 0.. in order of their first member, and how many there are.
fn renumber(communities: &[u32]) -> (Vec<u32>, usize) {
    let mut map = vec![u32::MAX; communities.len()];
    let mut next = 0u32;
    let renumbered = communities
        .iter()
        .map(|&c| {
            if map[c as usize] == u32::MAX {
                map[c as usize] = next;
                next += 1;
            }
            map[c as usize]
        })
        .collect();
    (renumbered, next as usize)
}

/// The graph whose nodes are `graph`'s communities: edge weights summed, internal weight as self-loops.
fn aggregate(graph: &Graph, community: &[u32], count: usize) -> Graph {
    let mut self_loops = vec![0.0; count];
    let mut weights: std::collections::BTreeMap<(u32, u32), f64> = std::collections::BTreeMap::new();
    for node in 0..graph.len() {
        let c = community[node];
        self_loops[c as usize] += graph.self_loops[node];
        for &(other, weight) in graph.neighbours(node) {
            let d = community[other as usize];
            if c == d {
                // Each internal edge is seen from both ends.
                self_loops[c as usize] += weight / 2.0;
            } else if c < d {
                *weights.entry((c, d)).or_insert(0.0) += weight;
            }
        }
    }
    let edges: Vec<Edge> = weights.into_iter().map(|((a, b), weight)| Edge { a, b, weight }).collect();
    Graph::new(count, &edges, self_loops)
}

/// Newman's modularity of a partition, for tests and reports.
pub fn modularity(n: usize, edges: &[Edge], community: &[u32], resolution: f64) -> f64 {
    let mut degree = vec![0.0; n];
    let mut internal = 0.0;
    let mut total = 0.0;
    for edge in edges {
        degree[edge.a as usize] += edge.weight;
        degree[edge.b as usize] += edge.weight;
        total += edge.weight;
        if community[edge.a as usize] == community[edge.b as usize] {
            internal += edge.weight;
        }
    }
    if total == 0.0 {
        return 0.0;
    }
    let mut community_degree = std::collections::HashMap::<u32, f64>::new();
    for (node, &d) in degree.iter().enumerate() {
        *community_degree.entry(community[node]).or_insert(0.0) += d;
    }
    let expected: f64 = community_degree.values().map(|d| d * d).sum::<f64>() / (4.0 * total * total);
    internal / total - resolution * expected
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clique(nodes: std::ops::Range<u32>, weight: f64, edges: &mut Vec<Edge>) {
        for a in nodes.clone() {
            for b in a + 1..nodes.end {
                edges.push(Edge { a, b, weight });
            }
        }
    }

    #[test]
    fn finds_planted_cliques_joined_by_weak_edges() {
        let mut edges = Vec::new();
        for start in [0, 5, 10, 15] {
            clique(start..start + 5, 1.0, &mut edges);
        }
        // A ring of weak bridges between the cliques.
        for (a, b) in [(4, 5), (9, 10), (14, 15), (19, 0)] {
            edges.push(Edge { a, b, weight: 0.1 });
        }
        let communities = louvain(21, &edges, 1.0);
        let expected: Vec<u32> = (0..20).map(|node| node / 5).chain([4]).collect();
        assert_eq!(communities, expected);
        // No other partition of a brute-force family does better: merging or splitting cliques loses.
        let best = modularity(21, &edges, &communities, 1.0);
        let merged: Vec<u32> = (0..21).map(|node| if node < 10 { 0 } else { node / 5 }).collect();
        assert!(best > modularity(21, &edges, &merged, 1.0));
        let split: Vec<u32> = (0..21).map(|node| if node == 2 { 9 } else { node / 5 }).collect();
        assert!(best > modularity(21, &edges, &split, 1.0));
    }

    #[test]
    fn is_deterministic_and_handles_empty_graphs() {
        assert_eq!(louvain(3, &[], 1.0), vec![0, 1, 2]);
        assert_eq!(louvain(0, &[], 1.0), Vec::<u32>::new());
        let mut edges = Vec::new();
        clique(0..4, 1.0, &mut edges);
        clique(4..8, 1.0, &mut edges);
        edges.push(Edge { a: 3, b: 4, weight: 1.0 });
        let first = louvain(8, &edges, 1.0);
        assert_eq!(first, louvain(8, &edges, 1.0));
        assert_eq!(first, vec![0, 0, 0, 0, 1, 1, 1, 1]);
    }
}
