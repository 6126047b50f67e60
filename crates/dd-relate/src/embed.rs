//! A vector per neuron for its behaviour, from the tokens it responds to through the model's own
//! token embeddings, and its nearest neighbours by those vectors.
//!
//! A neuron's token set is its Neuron2Graph graph's token nodes weighted by their importance
//! (`EmbeddingSource::Graph`), or, for a neuron without a graph, its tokens of highest mean
//! activation weighted by that mean where positive (`EmbeddingSource::ActivatingTokens`). Its vector
//! is the weighted mean of those tokens' embedding rows, scaled to unit length. Unlike the token-set
//! similarity of `dd-n2g` (a weighted Jaccard, which needs the same tokens), neighbours by vector
//! also join neurons that fire on different tokens of one meaning (` king`, ` queen`).
//!
//! Neighbours are by centred cosine (Pearson's r between two vectors' components), found exactly
//! through the same tiled Gram product and streaming lists as activation correlations.

use dd_data::{EmbeddingSource, NeuronEmbedding, NeuronGraph, SimilarNeuron, TokenMean};
use dd_model::correlation::{ActivationSample, CorrelationOptions};

use crate::RelateError;

/// A neuron's tokens with weights, and where they came from.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenSet {
    /// The data the set was taken from.
    pub source: EmbeddingSource,
    /// `(token, weight)` with positive weights.
    pub tokens: Vec<(u32, f32)>,
}

impl TokenSet {
    /// A graph's token nodes, weighted by importance; `None` when no node names a token.
    pub fn from_graph(graph: &NeuronGraph) -> Option<Self> {
        let mut tokens: Vec<(u32, f32)> = graph
            .nodes
            .iter()
            .filter_map(|node| Some((node.token_id?, node.importance)))
            .filter(|&(_, weight)| weight > 0.0 && weight.is_finite())
            .collect();
        tokens.sort_by_key(|&(token, _)| token);
        tokens.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                earlier.1 += later.1;
            }
            same
        });
        (!tokens.is_empty()).then_some(Self { source: EmbeddingSource::Graph, tokens })
    }

    /// Tokens of highest mean activation, weighted by their mean where positive.
    pub fn from_activating_tokens(tokens: &[TokenMean]) -> Option<Self> {
        let tokens: Vec<(u32, f32)> = tokens
            .iter()
            .filter(|token| token.mean > 0.0 && token.mean.is_finite())
            .map(|token| (token.token, token.mean))
            .collect();
        (!tokens.is_empty()).then_some(Self { source: EmbeddingSource::ActivatingTokens, tokens })
    }
}

/// The unit-length vector of a token set through `embedding` (`[vocabulary, dimension]`,
/// row-major); `None` when no token is in the vocabulary or the mean is zero.
pub fn embed(set: &TokenSet, embedding: &[f32], dimension: usize) -> Option<Vec<f32>> {
    let mut vector = vec![0f64; dimension];
    let mut total = 0f64;
    for &(token, weight) in &set.tokens {
        let Some(row) = embedding.get(token as usize * dimension..(token as usize + 1) * dimension) else {
            continue;
        };
        vector.iter_mut().zip(row).for_each(|(v, &e)| *v += f64::from(weight) * f64::from(e));
        total += f64::from(weight);
    }
    let norm = vector.iter().map(|v| v * v).sum::<f64>().sqrt();
    (total > 0.0 && norm > 0.0).then(|| vector.iter().map(|v| (v / norm) as f32).collect())
}

/// Each vector's `k` nearest others by centred cosine, as indices into `vectors`.
pub fn nearest(vectors: &[Vec<f32>], k: usize) -> Result<Vec<Vec<(usize, f32)>>, RelateError> {
    let Some(dimension) = vectors.first().map(Vec::len) else {
        return Ok(Vec::new());
    };
    if vectors.len() < 2 {
        return Ok(vec![Vec::new(); vectors.len()]);
    }
    // The vectors' components play the tokens' part: the sample is `vectors × dimension`.
    let mut sample = ActivationSample::new(vectors.len(), dimension)?;
    let mut rows = vec![0f32; dimension * vectors.len()];
    for (n, vector) in vectors.iter().enumerate() {
        for (d, &value) in vector.iter().enumerate() {
            rows[d * vectors.len() + n] = value;
        }
    }
    sample.push(&rows)?;
    let lists = sample.correlations(&CorrelationOptions { k, neuron_block: 1024 }, &|_| {})?;
    Ok(lists
        .into_iter()
        .map(|list| {
            list.positive.iter().filter(|c| c.correlation > 0.0).map(|c| (c.neuron as usize, c.correlation)).collect()
        })
        .collect())
}

/// The stored record: the vector quantised to int8 and its neighbours.
pub fn embedding_record(source: EmbeddingSource, vector: &[f32], neighbours: Vec<SimilarNeuron>) -> NeuronEmbedding {
    let largest = vector.iter().fold(0f32, |m, v| m.max(v.abs()));
    let scale = if largest > 0.0 { largest / 127.0 } else { 0.0 };
    let values =
        vector.iter().map(|&v| if scale > 0.0 { (v / scale).round().clamp(-127.0, 127.0) as i8 } else { 0 }).collect();
    NeuronEmbedding { source, scale, values, neighbours }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_weighted_means_and_neighbours_are_exact() {
        // A vocabulary of four tokens in three dimensions.
        let table = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.9, 0.1, 0.0, 0.0, 0.0, 1.0];
        let set = |tokens: Vec<(u32, f32)>| TokenSet { source: EmbeddingSource::Graph, tokens };
        let a = embed(&set(vec![(0, 3.0), (1, 1.0)]), &table, 3).expect("vector");
        let norm = (9.0f32 + 1.0).sqrt();
        assert!((a[0] - 3.0 / norm).abs() < 1e-6 && (a[1] - 1.0 / norm).abs() < 1e-6 && a[2] == 0.0);
        assert_eq!(embed(&set(vec![(9, 1.0)]), &table, 3), None, "a token outside the vocabulary");
        let b = embed(&set(vec![(2, 1.0)]), &table, 3).expect("vector");
        let c = embed(&set(vec![(3, 1.0)]), &table, 3).expect("vector");
        let neighbours = nearest(&[a.clone(), b.clone(), c.clone()], 2).expect("nearest");
        // Brute force: centred cosine of every pair.
        let centred_cosine = |x: &[f32], y: &[f32]| {
            let (mx, my) = (x.iter().sum::<f32>() / 3.0, y.iter().sum::<f32>() / 3.0);
            let dot: f32 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
            let nx = x.iter().map(|a| (a - mx).powi(2)).sum::<f32>().sqrt();
            let ny = y.iter().map(|b| (b - my).powi(2)).sum::<f32>().sqrt();
            dot / (nx * ny)
        };
        assert_eq!(neighbours[0][0].0, 1);
        assert!((neighbours[0][0].1 - centred_cosine(&a, &b)).abs() < 2e-3);
        assert!(neighbours[2].iter().all(|&(_, r)| r > 0.0));
        let record = embedding_record(EmbeddingSource::Graph, &a, vec![]);
        let restored: Vec<f32> = record.values.iter().map(|&v| f32::from(v) * record.scale).collect();
        assert!(restored.iter().zip(&a).all(|(r, v)| (r - v).abs() <= record.scale / 2.0 + 1e-7));
    }
}
