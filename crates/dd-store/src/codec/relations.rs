//! Payload encodings of the relations between neurons: correlations, embeddings, roles, changes
//! and co-activating groups (`docs/format.md`).

use dd_data::{
    CorrelatedNeuron, EmbeddingSource, GroupContext, LayerChanges, LayerRoles, NeuronChange, NeuronCorrelations,
    NeuronEmbedding, NeuronGroup, NeuronGroups, NeuronIndex, NeuronRole, Role, SimilarNeuron,
};

use super::CodecError;
use super::wire::{WireReader, WireWriter};

fn write_neuron(neuron: NeuronIndex, out: &mut WireWriter) {
    out.varint(neuron.layer.into());
    out.varint(neuron.index.into());
}

fn read_neuron(input: &mut WireReader<'_>) -> Result<NeuronIndex, CodecError> {
    Ok(NeuronIndex { layer: input.u32()?, index: input.u32()? })
}

fn write_correlated(list: &[CorrelatedNeuron], out: &mut WireWriter) {
    out.len(list.len());
    for entry in list {
        write_neuron(entry.neuron, out);
        out.f32(entry.correlation);
    }
}

fn read_correlated(input: &mut WireReader<'_>) -> Result<Vec<CorrelatedNeuron>, CodecError> {
    let n = input.count(6)?;
    (0..n).map(|_| Ok(CorrelatedNeuron { neuron: read_neuron(input)?, correlation: input.f32()? })).collect()
}

pub(super) fn write_correlations(correlations: &NeuronCorrelations, out: &mut WireWriter) {
    out.varint(correlations.tokens.into());
    write_correlated(&correlations.positive, out);
    write_correlated(&correlations.negative, out);
}

pub(super) fn read_correlations(input: &mut WireReader<'_>) -> Result<NeuronCorrelations, CodecError> {
    let tokens = input.u32()?;
    let positive = read_correlated(input)?;
    let negative = read_correlated(input)?;
    Ok(NeuronCorrelations { tokens, positive, negative })
}

pub(super) fn write_embedding(embedding: &NeuronEmbedding, out: &mut WireWriter) {
    out.u8(embedding.source.code());
    out.f32(embedding.scale);
    out.len(embedding.values.len());
    embedding.values.iter().for_each(|&value| out.u8(value as u8));
    out.len(embedding.neighbours.len());
    for neighbour in &embedding.neighbours {
        out.varint(neighbour.layer.into());
        out.varint(neighbour.index.into());
        out.f32(neighbour.similarity);
    }
}

pub(super) fn read_embedding(input: &mut WireReader<'_>) -> Result<NeuronEmbedding, CodecError> {
    let source = EmbeddingSource::from_code(input.u8()?).ok_or(CodecError::Invalid("bad embedding source"))?;
    let scale = input.f32()?;
    let n_values = input.count(1)?;
    let values = input.bytes(n_values)?.iter().map(|&byte| byte as i8).collect();
    let n_neighbours = input.count(6)?;
    let neighbours = (0..n_neighbours)
        .map(|_| Ok(SimilarNeuron { layer: input.u32()?, index: input.u32()?, similarity: input.f32()? }))
        .collect::<Result<_, CodecError>>()?;
    Ok(NeuronEmbedding { source, scale, values, neighbours })
}

pub(super) fn write_roles(roles: &LayerRoles, out: &mut WireWriter) {
    out.f32(roles.connector_participation);
    out.len(roles.neurons.len());
    for neuron in &roles.neurons {
        out.varint(neuron.in_degree.into());
        out.varint(neuron.out_degree.into());
        for value in
            [neuron.in_strength, neuron.out_strength, neuron.strength_z, neuron.participation, neuron.betweenness]
        {
            out.f32(value);
        }
        out.u8(neuron.role.code());
        // The group plus one, so that no group is 0.
        out.varint(neuron.group.map_or(0, |group| u64::from(group) + 1));
    }
}

pub(super) fn read_roles(input: &mut WireReader<'_>) -> Result<LayerRoles, CodecError> {
    let connector_participation = input.f32()?;
    let n = input.count(24)?;
    let neurons = (0..n)
        .map(|_| {
            let in_degree = input.u32()?;
            let out_degree = input.u32()?;
            let [in_strength, out_strength, strength_z, participation, betweenness] =
                [input.f32()?, input.f32()?, input.f32()?, input.f32()?, input.f32()?];
            let role = Role::from_code(input.u8()?).ok_or(CodecError::Invalid("bad role"))?;
            let group = match input.u32()? {
                0 => None,
                plus_one => Some(plus_one - 1),
            };
            Ok(NeuronRole {
                in_degree,
                out_degree,
                in_strength,
                out_strength,
                strength_z,
                participation,
                betweenness,
                role,
                group,
            })
        })
        .collect::<Result<_, CodecError>>()?;
    Ok(LayerRoles { connector_participation, neurons })
}

pub(super) fn write_changes(changes: &LayerChanges, out: &mut WireWriter) {
    out.str(&changes.baseline);
    out.len(changes.neurons.len());
    for neuron in &changes.neurons {
        for value in
            [neuron.mean_change, neuron.std_change, neuron.max_change, neuron.density_change, neuron.top_overlap]
        {
            out.f32(value);
        }
        out.varint(neuron.shared_contexts.into());
        match neuron.activation_correlation {
            Some(r) => {
                out.u8(1);
                out.f32(r);
            }
            None => out.u8(0),
        }
        out.f32(neuron.score);
    }
}

pub(super) fn read_changes(input: &mut WireReader<'_>) -> Result<LayerChanges, CodecError> {
    let baseline = input.string()?;
    let n = input.count(26)?;
    let neurons = (0..n)
        .map(|_| {
            let [mean_change, std_change, max_change, density_change, top_overlap] =
                [input.f32()?, input.f32()?, input.f32()?, input.f32()?, input.f32()?];
            let shared_contexts = input.u32()?;
            let activation_correlation = match input.u8()? {
                0 => None,
                1 => Some(input.f32()?),
                _ => return Err(CodecError::Invalid("bad correlation flag")),
            };
            Ok(NeuronChange {
                mean_change,
                std_change,
                max_change,
                density_change,
                top_overlap,
                shared_contexts,
                activation_correlation,
                score: input.f32()?,
            })
        })
        .collect::<Result<_, CodecError>>()?;
    Ok(LayerChanges { baseline, neurons })
}

pub(super) fn write_groups(groups: &NeuronGroups, out: &mut WireWriter) {
    out.str(&groups.method);
    out.varint(groups.tokens.into());
    out.len(groups.groups.len());
    for group in &groups.groups {
        out.len(group.members.len());
        group.members.iter().for_each(|&member| write_neuron(member, out));
        out.f32(group.cohesion);
        out.len(group.contexts.len());
        for context in &group.contexts {
            out.varint(context.dataset_index);
            out.varint(context.firing.into());
            out.len(context.tokens.len());
            context.tokens.iter().for_each(|&token| out.varint(token.into()));
            context.scores.iter().for_each(|&score| out.f32(score));
        }
    }
}

pub(super) fn read_groups(input: &mut WireReader<'_>) -> Result<NeuronGroups, CodecError> {
    let method = input.string()?;
    let tokens = input.u32()?;
    let n_groups = input.count(6)?;
    let mut groups = Vec::with_capacity(n_groups);
    for _ in 0..n_groups {
        let n_members = input.count(2)?;
        let members = (0..n_members).map(|_| read_neuron(input)).collect::<Result<_, _>>()?;
        let cohesion = input.f32()?;
        let n_contexts = input.count(3)?;
        let mut contexts = Vec::with_capacity(n_contexts);
        for _ in 0..n_contexts {
            let dataset_index = input.varint()?;
            let firing = input.u32()?;
            // Each token is at least a one-byte id and a four-byte score.
            let n_tokens = input.count(5)?;
            let tokens = (0..n_tokens).map(|_| input.u32()).collect::<Result<_, _>>()?;
            let scores = (0..n_tokens).map(|_| input.f32()).collect::<Result<_, _>>()?;
            contexts.push(GroupContext { dataset_index, tokens, scores, firing });
        }
        groups.push(NeuronGroup { members, cohesion, contexts });
    }
    Ok(NeuronGroups { method, tokens, groups })
}
