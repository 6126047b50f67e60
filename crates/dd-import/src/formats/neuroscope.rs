//! Neuroscope (neuroscope.io): the model table of the site's `index.html`, and one HTML page per
//! neuron, `{model}/{layer}/{neuron}.html`, as `neuroscope/make_neuroscope_page.py` writes it: a
//! header "Neuron N in Layer L", then per text its Max/Min Range, Max/Min Act, Data Index, Max
//! Activating Token Index and two CircuitsVis `ColoredTokens` renders (a truncated view, then the
//! full text). Each page becomes a Top group of [`NeuronExamples`].
//!
//! Pages are read with an HTML parser, by the labels a reader sees rather than by tag or
//! position, so extra elements, reordered attributes or another heading level do not break the
//! import; a page that lacks a needed field fails alone, with the field named.
//!
//! Gaps: a page the site does not have (404) or an empty one is missing. A page about another
//! neuron, or with its header but no texts (cut short), fails, so that a rerun fetches it again.

use dd_data::{
    Example, ExampleGroup, ExampleGroupKind, MLP_SOURCE, ModelMetadata, NeuronExamples, NeuronRecord, Provenance,
    SourceInfo,
};
use scraper::{ElementRef, Html, Selector};
use serde::Deserialize;

use crate::error::ImportError;
use crate::fetch::Fetcher;
use crate::job::{ImportPlan, ImportRequest, ImportedUnit, Importer, ItemOutcome, WorkItem};
use crate::tokens::TokenMap;

/// Imports a model's neuron pages from a Neuroscope site (`https://neuroscope.io` or a mirror).
#[derive(Debug, Clone, Default)]
pub struct NeuroscopeImporter {
    /// The site's name of the model; when `None`, the request's model name, else the site's only
    /// model.
    model: Option<String>,
}

/// One model's row of the site's index table.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexRow {
    /// The site's name of the model (`gpt2-small`).
    pub model: String,
    /// Activation function as the site abbreviates it (`gelu`, `solu`).
    pub activation_function: String,
    /// The dataset the texts come from, as the site names it (`Open Web Text`).
    pub dataset: String,
    /// Number of layers.
    pub n_layers: u64,
    /// Neurons per layer.
    pub d_mlp: u64,
    /// Parameters of the model.
    pub n_parameters: u64,
}

/// One neuron page as read.
#[derive(Debug, Clone, PartialEq)]
pub struct NeuronPage {
    /// Layer named by the header.
    pub layer: u32,
    /// Neuron named by the header.
    pub neuron: u32,
    /// The texts, in the page's order (highest activation first).
    pub texts: Vec<PageText>,
}

/// One text of a neuron page.
#[derive(Debug, Clone, PartialEq)]
pub struct PageText {
    /// Top of the page's colour scale (the neuron's highest activation over the shown texts).
    pub max_range: Option<f32>,
    /// Bottom of the colour scale (minus the top).
    pub min_range: Option<f32>,
    /// Highest activation in this text.
    pub max_activation: Option<f32>,
    /// Lowest activation in this text.
    pub min_activation: Option<f32>,
    /// Index of the text in the site's dataset.
    pub data_index: u64,
    /// Position of the token with the highest activation.
    pub max_token_index: u32,
    /// The tokens as the model's tokenizer decodes them (` the`).
    pub tokens: Vec<String>,
    /// The neuron's activation on each token.
    pub activations: Vec<f32>,
}

impl NeuroscopeImporter {
    /// An importer of the site's model named `model`; `None` takes the request's model name, or
    /// the site's only model.
    pub fn new(model: Option<&str>) -> Self {
        Self { model: model.map(str::to_owned) }
    }
}

impl Importer for NeuroscopeImporter {
    fn format(&self) -> &'static str {
        "neuroscope"
    }

    fn plan(&self, fetcher: &Fetcher, request: &ImportRequest) -> Result<ImportPlan, ImportError> {
        let index = fetcher
            .get("index.html")
            .map_err(|error| ImportError::Dataset(format!("the Neuroscope index: {error}")))?
            .ok_or_else(|| ImportError::Dataset("the site has no index.html".to_owned()))?;
        let rows = parse_index(&String::from_utf8_lossy(&index)).map_err(ImportError::Dataset)?;
        let wanted = self.model.as_deref().or(request.model_name.as_deref());
        let row = match wanted {
            Some(name) => rows.iter().find(|row| row.model == name),
            None if rows.len() == 1 => rows.first(),
            None => None,
        };
        let Some(row) = row else {
            let names: Vec<&str> = rows.iter().map(|row| row.model.as_str()).collect();
            return Err(ImportError::Invalid(format!(
                "the Neuroscope index lists no model {:?}: choose one of {names:?}",
                wanted.unwrap_or("(none given)")
            )));
        };
        // The model page of older site versions marks layers not generated yet; those are left out
        // rather than counted as thousands of missing pages.
        let not_added = match fetcher.get(&format!("{}/index.html", row.model)) {
            Ok(Some(page)) => layers_not_added(&String::from_utf8_lossy(&page)),
            Ok(None) | Err(_) => Vec::new(),
        };
        let mut items = Vec::new();
        for layer in 0..row.n_layers as u32 {
            if !request.wants_layer(layer) || not_added.contains(&layer) {
                continue;
            }
            for neuron in (0..row.d_mlp as u32).take_while(|&neuron| request.wants_unit(neuron)) {
                items.push(WorkItem { key: format!("{}/{layer}/{neuron}", row.model) });
            }
        }
        let metadata = metadata_of(row, &fetcher.location().describe());
        Ok(ImportPlan {
            source: SourceInfo { name: MLP_SOURCE.to_owned(), n_layers: row.n_layers, units_per_layer: row.d_mlp },
            metadata,
            items,
            model_records: Vec::new(),
        })
    }

    fn import_item(&self, fetcher: &Fetcher, item: &WorkItem, tokens: &TokenMap) -> Result<ItemOutcome, String> {
        let (layer, neuron) = unit_of_key(&item.key)?;
        let Some(bytes) = fetcher.get(&format!("{}.html", item.key)).map_err(|error| error.to_string())? else {
            return Ok(ItemOutcome::Missing);
        };
        let html = String::from_utf8_lossy(&bytes);
        if html.trim().is_empty() {
            return Ok(ItemOutcome::Missing);
        }
        let page = parse_neuron_page(&html)?;
        if (page.layer, page.neuron) != (layer, neuron) {
            return Err(format!(
                "the page is about neuron {} in layer {}, not neuron {neuron} in layer {layer}",
                page.neuron, page.layer
            ));
        }
        if page.texts.is_empty() {
            // The generator always writes its top texts after the header; a page that stops
            // there was cut short, and a rerun should fetch it again rather than skip it.
            return Err("the page has its header but no texts".to_owned());
        }
        let texts =
            page.texts.into_iter().map(|text| (text.data_index, text.tokens, text.activations, text.max_token_index));
        let examples =
            top_group(texts, tokens).map_err(|error| format!("the page's texts are inconsistent: {error}"))?;
        Ok(ItemOutcome::Imported(vec![ImportedUnit {
            layer,
            index: neuron,
            records: vec![NeuronRecord::Examples(examples)],
        }]))
    }
}

/// The layer and neuron of a work item's key, `{model}/{layer}/{neuron}`.
fn unit_of_key(key: &str) -> Result<(u32, u32), String> {
    let mut parts = key.rsplit('/');
    let neuron = parts.next().and_then(|part| part.parse().ok());
    let layer = parts.next().and_then(|part| part.parse().ok());
    layer.zip(neuron).ok_or_else(|| format!("{key:?} is not a model/layer/neuron key"))
}

/// The model as the database records it: the index row, with provenance naming the site.
fn metadata_of(row: &IndexRow, location: &str) -> ModelMetadata {
    // The site is generated from TransformerLens models: GPT-2 and Pythia keep their family, the
    // rest are Neel Nanda's own (`solu-*`, `gelu-*`) TransformerLens models.
    let architecture = if row.model.starts_with("gpt2") {
        "gpt2"
    } else if row.model.starts_with("pythia") {
        "neox"
    } else {
        "tlens"
    };
    ModelMetadata {
        name: row.model.clone(),
        architecture: architecture.to_owned(),
        n_layers: row.n_layers,
        d_mlp: row.d_mlp,
        // The site does not say; 0 marks it unknown.
        d_model: 0,
        activation_function: row.activation_function.clone(),
        dataset: row.dataset.clone(),
        training_dataset: None,
        n_parameters: row.n_parameters,
        context_length: 0,
        provenance: Provenance {
            data_source: format!("neuroscope.io ({location})"),
            model_source: None,
            weights: None,
            tokens_recorded: 0,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            recorded_at: dd_data::time::now_rfc3339(),
        },
    }
}

/// The models of the site's index table (pandas' `to_html` of Model, Random, Act Fn, Dataset,
/// Layers, Neurons per Layer, Total Neurons, Params). Columns are found by their heading, so a
/// reordered or extended table still reads; a table without headings is read by the generator's
/// positions.
pub fn parse_index(html: &str) -> Result<Vec<IndexRow>, String> {
    let document = Html::parse_document(html);
    let table_selector = selector("table");
    let row_selector = selector("tr");
    let cell_selector = selector("th, td");
    let mut rows = Vec::new();
    for table in document.select(&table_selector) {
        let mut columns = Columns::POSITIONS;
        for row in table.select(&row_selector) {
            let cells: Vec<ElementRef<'_>> = row.select(&cell_selector).collect();
            let texts: Vec<String> = cells.iter().map(|cell| squash(&cell.text().collect::<String>())).collect();
            if row.select(&selector("th")).count() == cells.len() && !cells.is_empty() {
                columns = Columns::from_headings(&texts).unwrap_or(Columns::POSITIONS);
                continue;
            }
            if let Some(parsed) = columns.read(&texts) {
                rows.push(parsed);
            }
        }
    }
    if rows.is_empty() {
        return Err("the index has no table of models".to_owned());
    }
    Ok(rows)
}

/// Where each field sits in an index row.
#[derive(Debug, Clone, Copy)]
struct Columns {
    model: usize,
    activation_function: usize,
    dataset: usize,
    n_layers: usize,
    d_mlp: usize,
    n_parameters: usize,
}

impl Columns {
    /// The generator's layout (`make_neuroscope_index_pages.py`), also what the original read.
    const POSITIONS: Columns =
        Columns { model: 0, activation_function: 2, dataset: 3, n_layers: 4, d_mlp: 5, n_parameters: 7 };

    fn from_headings(headings: &[String]) -> Option<Columns> {
        let find = |names: &[&str]| {
            headings.iter().position(|heading| names.iter().any(|name| heading.eq_ignore_ascii_case(name)))
        };
        Some(Columns {
            model: find(&["Model"])?,
            activation_function: find(&["Act Fn", "Activation Function", "Activation"])?,
            dataset: find(&["Dataset"])?,
            n_layers: find(&["Layers"])?,
            d_mlp: find(&["Neurons per Layer"])?,
            n_parameters: find(&["Params", "Parameters"])?,
        })
    }

    /// The row's fields; `None` for a row that is not a model (a heading, a note).
    fn read(&self, texts: &[String]) -> Option<IndexRow> {
        let number = |column: usize| texts.get(column)?.replace([',', '_'], "").trim().parse::<u64>().ok();
        let model = texts.get(self.model)?.trim().to_owned();
        if dd_data::validate_name(&model).is_err() {
            return None;
        }
        Some(IndexRow {
            model,
            activation_function: texts.get(self.activation_function)?.trim().to_lowercase(),
            dataset: texts.get(self.dataset)?.trim().to_owned(),
            n_layers: number(self.n_layers)?,
            d_mlp: number(self.d_mlp).filter(|&d_mlp| d_mlp > 0)?,
            n_parameters: number(self.n_parameters).unwrap_or(0),
        })
    }
}

/// Layers the model page lists as "Layer #L (Not yet added)".
fn layers_not_added(html: &str) -> Vec<u32> {
    let document = Html::parse_document(html);
    document
        .select(&selector("li"))
        .map(|item| squash(&item.text().collect::<String>()))
        .filter(|text| text.contains("Not yet added"))
        .filter_map(|text| number_after(&text, "Layer #"))
        .filter_map(|number| number.parse().ok())
        .collect()
}

/// Reads a neuron page. An `Err` names what is missing or malformed.
pub fn parse_neuron_page(html: &str) -> Result<NeuronPage, String> {
    let document = Html::parse_document(html);
    let (neuron, layer) = document
        .select(&selector("h1, h2, h3, h4, h5, h6, title"))
        .find_map(|heading| unit_of_header(&squash(&heading.text().collect::<String>())))
        .ok_or("no \"Neuron N in Layer L\" header")?;

    // Texts are found in document order: a label the current text already has starts the next
    // one, so that a page whose fields come in another order, or lack the optional ones, still
    // splits right. The generator renders the truncated view first and the full text last, so
    // the last render of a text wins.
    let mut partials: Vec<PartialText> = Vec::new();
    for element in document.root_element().descendants().filter_map(ElementRef::wrap) {
        if element.value().name() == "script" {
            let script: String = element.text().collect();
            if let Some(current) = partials.last_mut()
                && let Some(render) = colored_tokens(&script)
            {
                current.render = Some(render);
            }
            continue;
        }
        let own_text: String = element.children().filter_map(|child| child.value().as_text()).map(|t| &**t).collect();
        let own_text = squash(&own_text);
        let Some(&label) = LABELS.iter().find(|label| own_text.starts_with(*label)) else { continue };
        if partials.last().is_none_or(|current| current.has(label)) {
            partials.push(PartialText::default());
        }
        let Some(current) = partials.last_mut() else { continue };
        let text = squash(&element.text().collect::<String>());
        let field = |label: &str| word_after(&text, label);
        // A label without a value is kept as an empty one, which then fails to parse with the
        // label named.
        let labelled = Some(field(label).unwrap_or_default());
        match label {
            "Max Range:" => (current.max_range, current.min_range) = (labelled, field("Min Range:")),
            "Max Act:" => (current.max_activation, current.min_activation) = (labelled, field("Min Act:")),
            "Data Index:" => current.data_index = labelled,
            _ => current.max_token_index = labelled,
        }
    }
    let texts = partials
        .into_iter()
        .enumerate()
        .map(|(text_idx, partial)| partial.finish().map_err(|why| format!("text #{text_idx}: {why}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(NeuronPage { layer, neuron, texts })
}

/// The labels of a text's fields, as the element holding each begins.
const LABELS: [&str; 4] = ["Max Range:", "Max Act:", "Data Index:", "Max Activating Token Index:"];

/// What has been read of one text so far: each field as the page wrote it.
#[derive(Debug, Default)]
struct PartialText {
    max_range: Option<String>,
    min_range: Option<String>,
    max_activation: Option<String>,
    min_activation: Option<String>,
    data_index: Option<String>,
    max_token_index: Option<String>,
    render: Option<Result<ColoredTokens, String>>,
}

/// The argument of a CircuitsVis `ColoredTokens` render; other fields (`minValue`) are ignored.
#[derive(Debug, Deserialize)]
struct ColoredTokens {
    tokens: Vec<String>,
    values: Vec<f32>,
}

impl PartialText {
    /// Whether the field `label` introduces has been read.
    fn has(&self, label: &str) -> bool {
        match label {
            "Max Range:" => self.max_range.is_some(),
            "Max Act:" => self.max_activation.is_some(),
            "Data Index:" => self.data_index.is_some(),
            _ => self.max_token_index.is_some(),
        }
    }

    fn finish(self) -> Result<PageText, String> {
        // The ranges and extremes only repeat what the values say; a page that leaves them out
        // still reads, one that writes garbage there does not.
        let optional_number = |field: &Option<String>, name: &str| -> Result<Option<f32>, String> {
            field
                .as_deref()
                .map(|word| word.parse::<f32>().map_err(|_| format!("{name} {word:?} is not a number")))
                .transpose()
        };
        let max_range = optional_number(&self.max_range, "Max Range")?;
        let min_range = optional_number(&self.min_range, "Min Range")?;
        let max_activation = optional_number(&self.max_activation, "Max Act")?;
        let min_activation = optional_number(&self.min_activation, "Min Act")?;
        let data_index = self.data_index.ok_or("no Data Index")?;
        let data_index = data_index.parse().map_err(|_| format!("Data Index {data_index:?} is not a number"))?;
        let max_token_index = self.max_token_index.ok_or("no Max Activating Token Index")?;
        let max_token_index = max_token_index
            .parse()
            .map_err(|_| format!("Max Activating Token Index {max_token_index:?} is not a number"))?;
        let render = self.render.ok_or("no ColoredTokens render of the text")??;
        if render.tokens.len() != render.values.len() {
            return Err(format!("{} tokens but {} values", render.tokens.len(), render.values.len()));
        }
        if render.tokens.is_empty() {
            return Err("the text has no tokens".to_owned());
        }
        // Checked here, before any token reaches the shared vocabulary.
        if max_token_index as usize >= render.tokens.len() {
            return Err(format!(
                "Max Activating Token Index {max_token_index} is past the text's {} tokens",
                render.tokens.len()
            ));
        }
        if render.values.iter().any(|value| !value.is_finite()) {
            return Err("an activation is not finite".to_owned());
        }
        Ok(PageText {
            max_range,
            min_range,
            max_activation,
            min_activation,
            data_index,
            max_token_index,
            tokens: render.tokens,
            activations: render.values,
        })
    }
}

/// The JSON argument of the `render(id, ColoredTokens, {...})` call in a script, if it has one.
fn colored_tokens(script: &str) -> Option<Result<ColoredTokens, String>> {
    // `ColoredTokens` also appears in the module import (`import { render, ColoredTokens }`); the
    // call's argument follows the name and a comma.
    let mut rest = script;
    while let Some(found) = rest.find("ColoredTokens") {
        rest = &rest[found + "ColoredTokens".len()..];
        let after = rest.trim_start();
        if let Some(argument) = after.strip_prefix(',') {
            let mut values = serde_json::Deserializer::from_str(argument.trim_start()).into_iter::<ColoredTokens>();
            return Some(match values.next() {
                Some(Ok(render)) => Ok(render),
                Some(Err(error)) => Err(format!("the ColoredTokens data is malformed: {error}")),
                None => Err("the ColoredTokens render has no data".to_owned()),
            });
        }
    }
    None
}

/// `(neuron, layer)` of a header "Neuron N in Layer L".
fn unit_of_header(text: &str) -> Option<(u32, u32)> {
    let neuron = number_after(text, "Neuron ")?.parse().ok()?;
    let layer = number_after(text, " in Layer ")?.parse().ok()?;
    Some((neuron, layer))
}

/// The word right after the first `label` in `text`, without the sentence's closing period
/// (`Max Act: 1.2500. Min Act: …` gives `1.2500`).
fn word_after(text: &str, label: &str) -> Option<String> {
    let start = text.find(label)? + label.len();
    let word = text[start..].split_whitespace().next()?;
    let word = word.strip_suffix('.').unwrap_or(word);
    Some(word.to_owned())
}

/// The digits right after the first `label` in `text` (spaces skipped).
fn number_after(text: &str, label: &str) -> Option<String> {
    let start = text.find(label)? + label.len();
    let digits: String = text[start..].trim_start().chars().take_while(char::is_ascii_digit).collect();
    (!digits.is_empty()).then_some(digits)
}

/// `text` with runs of whitespace made one space and the ends trimmed.
fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn selector(css: &str) -> Selector {
    // The selectors are constants of this file; a typo is a bug that every test would catch.
    Selector::parse(css).unwrap_or_else(|error| unreachable!("bad selector {css:?}: {error}"))
}

/// Neuroscope's texts (dataset index, the tokenizer's token texts, activations, the max
/// token's position), however they reached us (its pages, the original DeepDecipher's database or
/// API), as one top group of examples, checked.
pub(crate) fn top_group(
    texts: impl Iterator<Item = (u64, Vec<String>, Vec<f32>, u32)>,
    tokens: &TokenMap,
) -> Result<NeuronExamples, dd_data::DataError> {
    let examples = texts
        .map(|(dataset_index, texts, activations, max_token_index)| Example {
            dataset_index,
            // Neuroscope publishes the tokenizer's text (` the`), not a display form.
            tokens: tokens.ids_of(&texts),
            activations,
            max_token_index,
            activation_error: 0.0,
        })
        .collect();
    let examples = NeuronExamples { groups: vec![ExampleGroup { kind: ExampleGroupKind::Top, examples }] };
    examples.validate()?;
    Ok(examples)
}
