//! What the Neuronpedia export and the SAEDashboard batches share: their source ids
//! (`{layer}-{set}`), their example rows (a top group and quantile bands), their logit tables,
//! batch discovery and the metadata of a model that the dataset describes only in part.

use std::collections::BTreeMap;

use dd_data::{
    Example, ExampleGroup, ExampleGroupKind, LogitAttribution, ModelMetadata, NeuronExamples, Provenance, TokenValue,
};
use serde::{Deserialize, Deserializer};

use crate::fetch::Fetcher;
use crate::tokens::TokenMap;

/// Consecutive missing batches that end the probe for more: a lone missing batch is a gap the
/// importer reports as missing, not the end of the dataset.
pub(crate) const PROBE_GAP: u32 = 4;

/// One published example context, as both formats write it.
pub(crate) struct PublishedExample {
    /// Token texts, as the publisher wrote them.
    pub tokens: Vec<String>,
    /// The unit's activation on each token.
    pub values: Vec<f32>,
    /// The token that qualified the context for its group, when the publisher says.
    pub max_token_index: Option<u32>,
    /// The context's index in the publisher's dataset, when it says.
    pub dataset_index: Option<u64>,
    /// The quantile band's bounds; `None` for the top group (the publisher's `-1`).
    pub band: Option<(f32, f32)>,
}

/// Where a source id (`6-res-jb`, `20-gemmascope-res-16k__l0-71`) puts its units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceId {
    /// The layer number.
    pub layer: u32,
    /// The source set and any suffix: the dd-data source name.
    pub set: String,
}

/// Splits a Neuronpedia source id into its layer and set.
pub(crate) fn parse_source_id(id: &str) -> Result<SourceId, String> {
    let (layer, set) = id.split_once('-').ok_or_else(|| format!("source id {id:?} is not `{{layer}}-{{set}}`"))?;
    let layer = layer.parse::<u32>().map_err(|_| format!("source id {id:?} does not start with a layer number"))?;
    let set = source_name(set);
    if set.is_empty() {
        return Err(format!("source id {id:?} names no source set"));
    }
    Ok(SourceId { layer, set })
}

/// A set name made safe as a dd-data source name: characters a URL would need escaped become `-`.
pub(crate) fn source_name(set: &str) -> String {
    let name: String =
        set.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' }).collect();
    name.chars().take(dd_data::MAX_NAME_BYTES).collect()
}

/// Whether the set holds a model's MLP neurons, which go into the `mlp` source beside recorded
/// ones; any other set (SAE features, transcoders) gets a source of its own.
pub(crate) fn is_mlp_set(set: &str, declared_mlp: bool) -> bool {
    declared_mlp || set == dd_data::MLP_SOURCE
}

/// A token as stored: Neuronpedia's own importer drops NUL characters, which Postgres refuses.
pub(crate) fn clean_token(token: &str) -> String {
    token.replace('\u{0}', "")
}

/// The unit's examples: the top group (highest maximum first), then one group per quantile band,
/// lowest band first. A context whose tokens and values disagree fails the whole unit, with the
/// reason.
pub(crate) fn examples_of(
    unit: u32,
    published: Vec<PublishedExample>,
    tokens: &TokenMap,
) -> Result<NeuronExamples, String> {
    let mut top = Vec::new();
    let mut bands: BTreeMap<(u32, u32), (f32, f32, Vec<Example>)> = BTreeMap::new();
    for (example_idx, example) in published.into_iter().enumerate() {
        if example.tokens.len() != example.values.len() {
            return Err(format!(
                "unit {unit}: example {example_idx} has {} tokens and {} values",
                example.tokens.len(),
                example.values.len()
            ));
        }
        if example.values.iter().any(|value| !value.is_finite()) {
            return Err(format!("unit {unit}: example {example_idx} has an activation that is not a finite number"));
        }
        let max_token_index = match example.max_token_index {
            Some(index) if (index as usize) < example.tokens.len() || example.tokens.is_empty() => index,
            Some(index) => {
                return Err(format!(
                    "unit {unit}: example {example_idx} names token {index} of {}",
                    example.tokens.len()
                ));
            }
            None => argmax(&example.values),
        };
        let cleaned: Vec<String> = example.tokens.iter().map(|token| clean_token(token)).collect();
        let converted = Example {
            dataset_index: example.dataset_index.unwrap_or(0),
            tokens: tokens.ids_of(&cleaned),
            activations: example.values,
            max_token_index,
            activation_error: 0.0,
        };
        match example.band {
            None => top.push(converted),
            Some((lower, upper)) => {
                // Bit patterns of the bounds key the band: equal floats, one band.
                let key = (order_key(lower), order_key(upper));
                bands.entry(key).or_insert_with(|| (lower, upper, Vec::new())).2.push(converted);
            }
        }
    }
    let by_max_descending = |a: &Example, b: &Example| b.max_activation().total_cmp(&a.max_activation());
    let mut groups = Vec::with_capacity(bands.len() + 1);
    if !top.is_empty() {
        top.sort_by(by_max_descending);
        groups.push(ExampleGroup { kind: ExampleGroupKind::Top, examples: top });
    }
    for (band, (_, (lower, upper, mut examples))) in bands.into_iter().enumerate() {
        examples.sort_by(by_max_descending);
        groups.push(ExampleGroup { kind: ExampleGroupKind::Quantile { band: band as u32, lower, upper }, examples });
    }
    Ok(NeuronExamples { groups })
}

/// The logit table: `pos_*` the tokens pushed up most, `neg_*` those pushed down most; `None` when
/// the publisher left both empty.
pub(crate) fn logit_attribution(
    unit: u32,
    pos: (&[String], &[f32]),
    neg: (&[String], &[f32]),
    tokens: &TokenMap,
) -> Result<Option<LogitAttribution>, String> {
    let side = |name: &str, (strings, values): (&[String], &[f32])| -> Result<Vec<TokenValue>, String> {
        if strings.len() != values.len() {
            return Err(format!(
                "unit {unit}: {name}_str has {} tokens and {name}_values {}",
                strings.len(),
                values.len()
            ));
        }
        if values.iter().any(|value| !value.is_finite()) {
            return Err(format!("unit {unit}: {name}_values has a value that is not a finite number"));
        }
        let cleaned: Vec<String> = strings.iter().map(|token| clean_token(token)).collect();
        Ok(tokens.ids_of(&cleaned).into_iter().zip(values).map(|(token, &value)| TokenValue { token, value }).collect())
    };
    let top = side("pos", pos)?;
    let bottom = side("neg", neg)?;
    if top.is_empty() && bottom.is_empty() {
        return Ok(None);
    }
    Ok(Some(LogitAttribution { top, bottom }))
}

/// A batch found while discovering: its number and its bytes as fetched.
pub(crate) type FoundBatch = (u32, Vec<u8>);

/// The batch numbers to import: `0..count` when the caller knows the count, else every batch up
/// to the last one found by probing `path_of(n)` until [`PROBE_GAP`] consecutive batches are
/// missing. Also hands back the last batch found, which plans read for the dataset's shape.
pub(crate) fn discover_batches(
    fetcher: &Fetcher,
    count: Option<u32>,
    path_of: &dyn Fn(u32) -> String,
) -> Result<(u32, Option<FoundBatch>), String> {
    if let Some(count) = count {
        let mut last = None;
        for n in (0..count).rev() {
            if let Some(bytes) = fetcher.get(&path_of(n)).map_err(|error| error.to_string())? {
                last = Some((n, bytes));
                break;
            }
        }
        return Ok((count, last));
    }
    let mut last: Option<FoundBatch> = None;
    let mut n = 0;
    let mut misses = 0;
    while misses < PROBE_GAP {
        match fetcher.get(&path_of(n)).map_err(|error| error.to_string())? {
            Some(bytes) => {
                last = Some((n, bytes));
                misses = 0;
            }
            None => misses += 1,
        }
        n += 1;
    }
    let count = last.as_ref().map_or(0, |(n, _)| n + 1);
    Ok((count, last))
}

/// What a model gets when the dataset creates it: what the dataset says, "unknown" or 0 for what
/// it does not (the architecture, the activation function, the parameter count).
pub(crate) struct PartialModel<'a> {
    /// The publisher's model id.
    pub name: &'a str,
    /// Transformer blocks, 0 when the dataset does not say.
    pub n_layers: u64,
    /// MLP neurons per layer, 0 when the dataset does not say.
    pub d_mlp: u64,
    /// Residual width, 0 when the dataset does not say.
    pub d_model: u64,
    /// The text the examples come from, when the dataset says.
    pub dataset: Option<&'a str>,
    /// Where the data came from (`neuronpedia export https://…`).
    pub data_source: String,
}

/// The metadata of a model created by an import.
pub(crate) fn model_metadata(model: PartialModel<'_>) -> ModelMetadata {
    ModelMetadata {
        name: source_name(model.name),
        architecture: "unknown".to_owned(),
        n_layers: model.n_layers,
        d_mlp: model.d_mlp,
        d_model: model.d_model,
        activation_function: "unknown".to_owned(),
        dataset: model.dataset.filter(|dataset| !dataset.is_empty()).unwrap_or("unknown").to_owned(),
        training_dataset: None,
        n_parameters: 0,
        context_length: 0,
        provenance: Provenance {
            data_source: model.data_source,
            model_source: None,
            weights: None,
            tokens_recorded: 0,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            recorded_at: dd_data::time::now_rfc3339(),
        },
    }
}

/// A JSON array field that may be missing or `null` (exports write both for empty columns).
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// A count or index that the database export writes as a string and the converters as a number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Number {
    /// A JSON number.
    Integer(u64),
    /// A JSON string holding one.
    Text(String),
}

impl Number {
    /// Its value, when it is a non-negative integer.
    pub(crate) fn value(&self) -> Option<u64> {
        match self {
            Number::Integer(value) => Some(*value),
            Number::Text(text) => text.trim().parse().ok(),
        }
    }

    /// Its value as a unit or layer index, or why not.
    pub(crate) fn index(&self, what: &str) -> Result<u32, String> {
        self.value()
            .and_then(|value| u32::try_from(value).ok())
            .ok_or_else(|| format!("{what} {self:?} is not an index"))
    }
}

/// Lines of a JSONL file parsed one by one; a bad line fails the file with its number.
pub(crate) fn parse_jsonl<T: for<'de> Deserialize<'de>>(path: &str, bytes: &[u8]) -> Result<Vec<T>, String> {
    let text = std::str::from_utf8(bytes).map_err(|error| format!("{path}: not UTF-8: {error}"))?;
    let mut rows = Vec::new();
    for (line_idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        rows.push(serde_json::from_str(line).map_err(|error| format!("{path} line {}: {error}", line_idx + 1))?);
    }
    Ok(rows)
}

/// Position of the largest value (the first of equals); 0 for none.
fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (idx, value) in values.iter().enumerate() {
        if *value > values[best] {
            best = idx;
        }
    }
    best as u32
}

/// A float's bits ordered as the float is (negative numbers flipped), for sorting bands.
fn order_key(value: f32) -> u32 {
    let bits = value.to_bits();
    if bits & 0x8000_0000 != 0 { !bits } else { bits | 0x8000_0000 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_ids_split_into_layer_and_set() {
        assert_eq!(parse_source_id("6-res-jb"), Ok(SourceId { layer: 6, set: "res-jb".to_owned() }));
        assert_eq!(
            parse_source_id("20-gemmascope-res-16k__l0-71").map(|id| id.set),
            Ok("gemmascope-res-16k__l0-71".to_owned())
        );
        assert!(parse_source_id("res-jb").is_err());
        assert!(parse_source_id("6-").is_err());
    }

    #[test]
    fn bands_sort_by_their_bounds() {
        assert!(order_key(-1.5) < order_key(-0.5));
        assert!(order_key(-0.5) < order_key(0.0));
        assert!(order_key(0.25) < order_key(2.0));
    }
}
