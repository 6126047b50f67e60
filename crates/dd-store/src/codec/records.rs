//! Payload encodings of every record kind except examples (see `examples.rs`).

use dd_data::{
    ActivatingTokens, Connection, Explanation, ExplanationProvenance, Explanations, FiringCounts, GraphNode,
    GraphScores, Histogram, InputTokens, LayerDataKind, LayerRecord, LayerSummary, LogitAttribution, ModelDataKind,
    ModelRecord, NamedScore, NeuronConnections, NeuronDataKind, NeuronGraph, NeuronIndex, NeuronRanking, NeuronRecord,
    NeuronStats, NeuronSummary, PositionStats, RankedNeuron, SimilarNeuron, SimilarNeurons, SimulatedSequence,
    TextEmbedding, TokenIndex, TokenIndexEntry, TokenMean, TokenValue, Vocabulary,
};

use super::wire::{WireReader, WireWriter};
use super::{CodecError, EncodeOptions, examples, relations};

pub(super) fn neuron_payload(record: &NeuronRecord, options: &EncodeOptions) -> Result<Vec<u8>, CodecError> {
    let mut out = WireWriter::default();
    match record {
        NeuronRecord::Examples(value) => examples::write(value, options, &mut out)?,
        NeuronRecord::Stats(stats) => {
            out.varint(stats.count);
            for value in
                [stats.max, stats.min, stats.mean, stats.variance, stats.skewness, stats.kurtosis, stats.density]
            {
                out.f64(value);
            }
            out.f32(stats.histogram.lower);
            out.f32(stats.histogram.upper);
            out.len(stats.histogram.counts.len());
            stats.histogram.counts.iter().for_each(|&c| out.varint(c));
            match &stats.bos {
                Some(bos) => {
                    out.u8(1);
                    out.varint(bos.count);
                    for value in [bos.max, bos.min, bos.mean] {
                        out.f64(value);
                    }
                }
                None => out.u8(0),
            }
        }
        NeuronRecord::Logits(logits) => {
            write_token_values(&logits.top, &mut out);
            write_token_values(&logits.bottom, &mut out);
        }
        NeuronRecord::Explanations(value) => {
            out.len(value.explanations.len());
            for explanation in &value.explanations {
                out.str(&explanation.text);
                out.str(&explanation.origin);
                let flags = explanation_flags(explanation);
                out.u8(flags);
                if let Some(author) = &explanation.author {
                    out.str(author);
                }
                out.len(explanation.scores.len());
                for score in &explanation.scores {
                    out.str(&score.name);
                    out.f32(score.value);
                }
                write_explanation_details(explanation, flags, &mut out);
            }
        }
        NeuronRecord::Graph(graph) => {
            out.len(graph.subgraph_indices.len());
            graph.subgraph_indices.iter().for_each(|&i| out.varint(i.into()));
            out.len(graph.nodes.len());
            for node in &graph.nodes {
                out.str(&node.token);
                out.len(node.required.len());
                node.required.iter().for_each(|&r| out.varint(r.into()));
                out.f32(node.importance);
                let flags = u8::from(node.token_id.is_some())
                    | u8::from(node.activation.is_some()) << 1
                    | u8::from(node.is_end) << 2;
                out.u8(flags);
                if let Some(id) = node.token_id {
                    out.varint(id.into());
                }
                if let Some(activation) = node.activation {
                    out.f32(activation);
                }
            }
            match &graph.scores {
                Some(scores) => {
                    out.u8(1);
                    out.f32(scores.threshold);
                    out.f32(scores.scale);
                    for counts in [&scores.held_out_top, &scores.random] {
                        out.varint(counts.texts.into());
                        for value in [counts.tokens, counts.firing, counts.predicted, counts.true_positives] {
                            out.varint(value);
                        }
                    }
                }
                None => out.u8(0),
            }
        }
        NeuronRecord::Similar(similar) => {
            out.len(similar.neurons.len());
            for neuron in &similar.neurons {
                out.varint(neuron.layer.into());
                out.varint(neuron.index.into());
                out.f32(neuron.similarity);
            }
        }
        NeuronRecord::ActivatingTokens(activating) => {
            out.len(activating.tokens.len());
            for token in &activating.tokens {
                out.varint(token.token.into());
                out.f32(token.mean);
                out.varint(token.count);
            }
        }
        NeuronRecord::InputTokens(inputs) => {
            write_token_values(&inputs.top, &mut out);
            write_token_values(&inputs.bottom, &mut out);
        }
        NeuronRecord::Connections(connections) => {
            write_connections(&connections.inputs, &mut out);
            write_connections(&connections.outputs, &mut out);
        }
        NeuronRecord::Correlations(correlations) => relations::write_correlations(correlations, &mut out),
        NeuronRecord::Embedding(embedding) => relations::write_embedding(embedding, &mut out),
    }
    Ok(out.buf)
}

pub(super) fn read_neuron(kind: NeuronDataKind, input: &mut WireReader<'_>) -> Result<NeuronRecord, CodecError> {
    Ok(match kind {
        NeuronDataKind::Examples => NeuronRecord::Examples(examples::read(input)?),
        NeuronDataKind::Stats => {
            let count = input.varint()?;
            let mut moments = [0f64; 7];
            for value in &mut moments {
                *value = input.f64()?;
            }
            let [max, min, mean, variance, skewness, kurtosis, density] = moments;
            let lower = input.f32()?;
            let upper = input.f32()?;
            let n_bins = input.count(1)?;
            let counts = (0..n_bins).map(|_| input.varint()).collect::<Result<_, _>>()?;
            // Version 1 had no BOS section: its statistics mixed the BOS position in.
            let bos = match input.version() {
                1 => None,
                _ => match input.u8()? {
                    0 => None,
                    1 => {
                        let count = input.varint()?;
                        let (max, min, mean) = (input.f64()?, input.f64()?, input.f64()?);
                        Some(PositionStats { count, max, min, mean })
                    }
                    _ => return Err(CodecError::Invalid("bad BOS flag")),
                },
            };
            NeuronRecord::Stats(NeuronStats {
                count,
                max,
                min,
                mean,
                variance,
                skewness,
                kurtosis,
                density,
                histogram: Histogram { lower, upper, counts },
                bos,
            })
        }
        NeuronDataKind::Logits => {
            let top = read_token_values(input)?;
            let bottom = read_token_values(input)?;
            NeuronRecord::Logits(LogitAttribution { top, bottom })
        }
        NeuronDataKind::Explanations => {
            let n_explanations = input.count(4)?;
            let mut explanations = Vec::with_capacity(n_explanations);
            for _ in 0..n_explanations {
                let text = input.string()?;
                let origin = input.string()?;
                // Up to version 4 the author's presence had a byte of its own; version 5 folds it
                // into the explanation's flags.
                let mut flags = if input.version() >= 5 {
                    let flags = input.u8()?;
                    if flags & !ALL_EXPLANATION_FLAGS != 0 {
                        return Err(CodecError::Invalid("bad explanation flags"));
                    }
                    flags
                } else {
                    match input.u8()? {
                        0 => 0,
                        1 => HAS_AUTHOR,
                        _ => return Err(CodecError::Invalid("bad author flag")),
                    }
                };
                let author = if flags & HAS_AUTHOR != 0 { Some(input.string()?) } else { None };
                let n_scores = input.count(5)?;
                let scores = (0..n_scores)
                    .map(|_| Ok(NamedScore { name: input.string()?, value: input.f32()? }))
                    .collect::<Result<_, CodecError>>()?;
                let mut explanation = Explanation { text, origin, author, scores, ..Explanation::default() };
                // Version 4 added provenance, simulations and the embedding behind a flags byte of
                // their own, and always wrote the number of simulations.
                if input.version() == 4 {
                    let details = input.u8()?;
                    if details & !(HAS_PROVENANCE | HAS_SIMULATOR | HAS_EMBEDDING) != 0 {
                        return Err(CodecError::Invalid("bad explanation flags"));
                    }
                    flags |= details | HAS_SIMULATIONS;
                }
                read_explanation_details(input, flags, &mut explanation)?;
                explanations.push(explanation);
            }
            NeuronRecord::Explanations(Explanations { explanations })
        }
        NeuronDataKind::Graph => {
            let n_subgraphs = input.count(1)?;
            let subgraph_indices = (0..n_subgraphs).map(|_| input.u32()).collect::<Result<_, _>>()?;
            let n_nodes = input.count(6)?;
            let mut nodes = Vec::with_capacity(n_nodes);
            // Version 3 added each node's token id, activation and end flag, and the scores.
            let built = input.version() >= 3;
            for _ in 0..n_nodes {
                let token = input.string()?;
                let n_required = input.count(1)?;
                let required = (0..n_required).map(|_| input.u32()).collect::<Result<_, _>>()?;
                let importance = input.f32()?;
                let mut node =
                    GraphNode { token, token_id: None, required, importance, activation: None, is_end: false };
                if built {
                    let flags = input.u8()?;
                    if flags > 0b111 {
                        return Err(CodecError::Invalid("bad graph node flags"));
                    }
                    node.is_end = flags & 0b100 != 0;
                    if flags & 0b001 != 0 {
                        node.token_id = Some(input.u32()?);
                    }
                    if flags & 0b010 != 0 {
                        node.activation = Some(input.f32()?);
                    }
                }
                nodes.push(node);
            }
            let scores = match (built, built.then(|| input.u8()).transpose()?) {
                (true, Some(1)) => {
                    let threshold = input.f32()?;
                    let scale = input.f32()?;
                    let mut counts = [FiringCounts::default(); 2];
                    for slot in &mut counts {
                        slot.texts = input.u32()?;
                        slot.tokens = input.varint()?;
                        slot.firing = input.varint()?;
                        slot.predicted = input.varint()?;
                        slot.true_positives = input.varint()?;
                    }
                    Some(GraphScores { threshold, scale, held_out_top: counts[0], random: counts[1] })
                }
                (true, Some(0)) | (false, _) => None,
                _ => return Err(CodecError::Invalid("bad graph scores flag")),
            };
            let graph = NeuronGraph { subgraph_indices, nodes, scores };
            graph.validate().map_err(|_| CodecError::Invalid("graph references a missing node"))?;
            NeuronRecord::Graph(graph)
        }
        NeuronDataKind::Similar => {
            let n_neurons = input.count(6)?;
            let neurons = (0..n_neurons)
                .map(|_| Ok(SimilarNeuron { layer: input.u32()?, index: input.u32()?, similarity: input.f32()? }))
                .collect::<Result<_, CodecError>>()?;
            NeuronRecord::Similar(SimilarNeurons { neurons })
        }
        NeuronDataKind::ActivatingTokens => {
            // Each entry is at least a one-byte token, four-byte mean and one-byte count.
            let n_tokens = input.count(6)?;
            let tokens = (0..n_tokens)
                .map(|_| Ok(TokenMean { token: input.u32()?, mean: input.f32()?, count: input.varint()? }))
                .collect::<Result<_, CodecError>>()?;
            NeuronRecord::ActivatingTokens(ActivatingTokens { tokens })
        }
        NeuronDataKind::InputTokens => {
            let top = read_token_values(input)?;
            let bottom = read_token_values(input)?;
            NeuronRecord::InputTokens(InputTokens { top, bottom })
        }
        NeuronDataKind::Connections => {
            let inputs = read_connections(input)?;
            let outputs = read_connections(input)?;
            NeuronRecord::Connections(NeuronConnections { inputs, outputs })
        }
        NeuronDataKind::Correlations => NeuronRecord::Correlations(relations::read_correlations(input)?),
        NeuronDataKind::Embedding => NeuronRecord::Embedding(relations::read_embedding(input)?),
    })
}

pub(super) fn layer_payload(record: &LayerRecord) -> Vec<u8> {
    let mut out = WireWriter::default();
    match record {
        LayerRecord::Ranking(ranking) => write_ranking(ranking, &mut out),
        LayerRecord::Summary(summary) => {
            out.len(summary.neurons.len());
            for neuron in &summary.neurons {
                out.f32(neuron.max_activation);
                out.f32(neuron.min_activation);
                out.f32(neuron.density);
                out.f32(neuron.kurtosis);
            }
        }
        LayerRecord::Roles(roles) => relations::write_roles(roles, &mut out),
        LayerRecord::Changes(changes) => relations::write_changes(changes, &mut out),
    }
    out.buf
}

pub(super) fn read_layer(kind: LayerDataKind, input: &mut WireReader<'_>) -> Result<LayerRecord, CodecError> {
    Ok(match kind {
        LayerDataKind::Ranking => LayerRecord::Ranking(read_ranking(input)?),
        LayerDataKind::Summary => {
            let n_neurons = input.count(16)?;
            let neurons = (0..n_neurons)
                .map(|_| {
                    Ok(NeuronSummary {
                        max_activation: input.f32()?,
                        min_activation: input.f32()?,
                        density: input.f32()?,
                        kurtosis: input.f32()?,
                    })
                })
                .collect::<Result<_, CodecError>>()?;
            LayerRecord::Summary(LayerSummary { neurons })
        }
        LayerDataKind::Roles => LayerRecord::Roles(relations::read_roles(input)?),
        LayerDataKind::Changes => LayerRecord::Changes(relations::read_changes(input)?),
    })
}

pub(super) fn model_payload(record: &ModelRecord) -> Vec<u8> {
    let mut out = WireWriter::default();
    match record {
        ModelRecord::Vocabulary(vocabulary) => {
            out.len(vocabulary.tokens.len());
            vocabulary.tokens.iter().for_each(|t| out.str(t));
        }
        ModelRecord::Ranking(ranking) => write_ranking(ranking, &mut out),
        ModelRecord::TokenIndex(index) => {
            out.len(index.entries.len());
            for entry in &index.entries {
                out.str(&entry.token);
                write_neuron_list(&entry.activating, &mut out);
                write_neuron_list(&entry.important, &mut out);
            }
        }
        ModelRecord::Groups(groups) => relations::write_groups(groups, &mut out),
    }
    out.buf
}

pub(super) fn read_model(kind: ModelDataKind, input: &mut WireReader<'_>) -> Result<ModelRecord, CodecError> {
    Ok(match kind {
        ModelDataKind::Vocabulary => {
            let n_tokens = input.count(1)?;
            let tokens = (0..n_tokens).map(|_| input.string()).collect::<Result<_, _>>()?;
            ModelRecord::Vocabulary(Vocabulary { tokens })
        }
        ModelDataKind::Ranking => ModelRecord::Ranking(read_ranking(input)?),
        ModelDataKind::TokenIndex => {
            let n_entries = input.count(3)?;
            let mut entries = Vec::with_capacity(n_entries);
            for _ in 0..n_entries {
                let token = input.string()?;
                let activating = read_neuron_list(input)?;
                let important = read_neuron_list(input)?;
                entries.push(TokenIndexEntry { token, activating, important });
            }
            ModelRecord::TokenIndex(TokenIndex { entries })
        }
        ModelDataKind::Groups => ModelRecord::Groups(relations::read_groups(input)?),
    })
}

fn write_token_values(values: &[TokenValue], out: &mut WireWriter) {
    out.len(values.len());
    for value in values {
        out.varint(value.token.into());
        out.f32(value.value);
    }
}

fn read_token_values(input: &mut WireReader<'_>) -> Result<Vec<TokenValue>, CodecError> {
    let n_values = input.count(5)?;
    (0..n_values).map(|_| Ok(TokenValue { token: input.u32()?, value: input.f32()? })).collect()
}

fn write_connections(connections: &[Connection], out: &mut WireWriter) {
    out.len(connections.len());
    for connection in connections {
        out.varint(connection.neuron.layer.into());
        out.varint(connection.neuron.index.into());
        out.f32(connection.weight);
    }
}

fn read_connections(input: &mut WireReader<'_>) -> Result<Vec<Connection>, CodecError> {
    let n_connections = input.count(6)?;
    (0..n_connections)
        .map(|_| {
            Ok(Connection { neuron: NeuronIndex { layer: input.u32()?, index: input.u32()? }, weight: input.f32()? })
        })
        .collect()
}

fn write_ranking(ranking: &NeuronRanking, out: &mut WireWriter) {
    out.len(ranking.neurons.len());
    for entry in &ranking.neurons {
        out.varint(entry.neuron.layer.into());
        out.varint(entry.neuron.index.into());
        out.f32(entry.score);
    }
}

fn read_ranking(input: &mut WireReader<'_>) -> Result<NeuronRanking, CodecError> {
    let n_neurons = input.count(6)?;
    let neurons = (0..n_neurons)
        .map(|_| {
            Ok(RankedNeuron { neuron: NeuronIndex { layer: input.u32()?, index: input.u32()? }, score: input.f32()? })
        })
        .collect::<Result<_, CodecError>>()?;
    Ok(NeuronRanking { neurons })
}

fn write_neuron_list(neurons: &[NeuronIndex], out: &mut WireWriter) {
    out.len(neurons.len());
    for neuron in neurons {
        out.varint(neuron.layer.into());
        out.varint(neuron.index.into());
    }
}

fn read_neuron_list(input: &mut WireReader<'_>) -> Result<Vec<NeuronIndex>, CodecError> {
    let n_neurons = input.count(2)?;
    (0..n_neurons).map(|_| Ok(NeuronIndex { layer: input.u32()?, index: input.u32()? })).collect()
}

/// Flags of an explanation's optional parts: one byte per explanation since format version 5
/// (version 4 wrote the author's presence and the others in two bytes, and always wrote the
/// number of simulations).
const HAS_PROVENANCE: u8 = 1;
const HAS_SIMULATOR: u8 = 1 << 1;
const HAS_EMBEDDING: u8 = 1 << 2;
const HAS_AUTHOR: u8 = 1 << 3;
const HAS_SIMULATIONS: u8 = 1 << 4;
const ALL_EXPLANATION_FLAGS: u8 = HAS_PROVENANCE | HAS_SIMULATOR | HAS_EMBEDDING | HAS_AUTHOR | HAS_SIMULATIONS;

fn explanation_flags(explanation: &Explanation) -> u8 {
    let provenance = explanation.provenance.as_ref();
    let flag = |present: bool, flag: u8| if present { flag } else { 0 };
    flag(provenance.is_some(), HAS_PROVENANCE)
        | flag(provenance.is_some_and(|p| p.simulator.is_some()), HAS_SIMULATOR)
        | flag(explanation.embedding.is_some(), HAS_EMBEDDING)
        | flag(explanation.author.is_some(), HAS_AUTHOR)
        | flag(!explanation.simulations.is_empty(), HAS_SIMULATIONS)
}

fn write_explanation_details(explanation: &Explanation, flags: u8, out: &mut WireWriter) {
    if let Some(provenance) = &explanation.provenance {
        out.str(&provenance.prompt_version);
        out.str(&provenance.prompt);
        out.str(&provenance.created);
        if let Some(simulator) = &provenance.simulator {
            out.str(simulator);
        }
    }
    if flags & HAS_SIMULATIONS != 0 {
        out.len(explanation.simulations.len());
        for sequence in &explanation.simulations {
            out.len(sequence.token_ids.len());
            sequence.token_ids.iter().for_each(|&id| out.varint(id.into()));
            sequence.true_activations.iter().for_each(|&value| out.f32(value));
            sequence.simulated_activations.iter().for_each(|&value| out.f32(value));
        }
    }
    if let Some(embedding) = &explanation.embedding {
        out.str(&embedding.model);
        out.f32(embedding.scale);
        out.len(embedding.values.len());
        embedding.values.iter().for_each(|&value| out.u8(value as u8));
    }
}

fn read_explanation_details(
    input: &mut WireReader<'_>,
    flags: u8,
    explanation: &mut Explanation,
) -> Result<(), CodecError> {
    if flags & HAS_PROVENANCE != 0 {
        let prompt_version = input.string()?;
        let prompt = input.string()?;
        let created = input.string()?;
        let simulator = if flags & HAS_SIMULATOR != 0 { Some(input.string()?) } else { None };
        explanation.provenance = Some(ExplanationProvenance { prompt_version, prompt, simulator, created });
    } else if flags & HAS_SIMULATOR != 0 {
        return Err(CodecError::Invalid("simulator without provenance"));
    }
    let n_sequences = if flags & HAS_SIMULATIONS != 0 { input.count(1)? } else { 0 };
    for _ in 0..n_sequences {
        // Each token costs at least one id byte and eight activation bytes.
        let n_tokens = input.count(9)?;
        let token_ids = (0..n_tokens).map(|_| input.u32()).collect::<Result<Vec<_>, _>>()?;
        let true_activations = (0..n_tokens).map(|_| input.f32()).collect::<Result<Vec<_>, _>>()?;
        let simulated_activations = (0..n_tokens).map(|_| input.f32()).collect::<Result<Vec<_>, _>>()?;
        explanation.simulations.push(SimulatedSequence { token_ids, true_activations, simulated_activations });
    }
    if flags & HAS_EMBEDDING != 0 {
        let model = input.string()?;
        let scale = input.f32()?;
        let n_values = input.count(1)?;
        let values = input.bytes(n_values)?.iter().map(|&byte| byte as i8).collect();
        explanation.embedding = Some(TextEmbedding { model, scale, values });
    }
    Ok(())
}
