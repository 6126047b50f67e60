//! The relations between neurons as the API and the website serve them: pages built from the
//! stored correlations, groups, roles, embeddings and changes, and the model-level rankings
//! (roles by each measure, the most changed neurons) computed from the layers' records.

use dd_data::{
    LayerChanges, LayerDataKind, LayerRecord, LayerRoles, ModelDataKind, ModelRecord, NeuronChange, NeuronCorrelations,
    NeuronDataKind, NeuronEmbedding, NeuronGroup, NeuronGroups, NeuronIndex, NeuronRecord, NeuronRole, Role,
};
use dd_store::{ModelEntry, SourceEntry, StoreRead};

use crate::error::ApiError;
use crate::token_strings::TokenStrings;
use crate::wire;

/// Entries of each model-level ranking.
pub(crate) const RANKED: usize = 50;

/// The `correlations` page of a record.
pub(crate) fn correlations_page(record: &NeuronCorrelations) -> wire::CorrelationsPage {
    let list = |list: &[dd_data::CorrelatedNeuron]| {
        list.iter()
            .map(|c| wire::CorrelatedNeuronObject {
                layer: c.neuron.layer,
                neuron: c.neuron.index,
                correlation: c.correlation,
            })
            .collect()
    };
    wire::CorrelationsPage { tokens: record.tokens, positive: list(&record.positive), negative: list(&record.negative) }
}

/// The `embedding` page of a record.
pub(crate) fn embedding_page(record: &NeuronEmbedding) -> wire::EmbeddingPage {
    wire::EmbeddingPage {
        source: record.source.name().to_owned(),
        vector: record.values.iter().map(|&v| f32::from(v) * record.scale).collect(),
        neighbours: record
            .neighbours
            .iter()
            .map(|n| wire::SimilarNeuronObject { layer: n.layer, neuron: n.index, similarity: n.similarity })
            .collect(),
    }
}

fn members(group: &NeuronGroup) -> Vec<wire::NeuronIndexObject> {
    group.members.iter().map(|m| wire::NeuronIndexObject { layer: m.layer, neuron: m.index }).collect()
}

/// The model-level `groups` page.
pub(crate) fn groups_page(groups: &NeuronGroups) -> wire::GroupsPage {
    wire::GroupsPage {
        method: groups.method.clone(),
        tokens: groups.tokens,
        groups: groups
            .groups
            .iter()
            .enumerate()
            .map(|(number, group)| wire::GroupSummaryObject {
                group: number as u32,
                cohesion: group.cohesion,
                members: members(group),
            })
            .collect(),
    }
}

/// One group's page, its contexts' tokens as text.
pub(crate) fn group_page(number: u32, group: &NeuronGroup, tokens: &TokenStrings) -> wire::GroupPage {
    wire::GroupPage {
        group: number,
        cohesion: group.cohesion,
        members: members(group),
        contexts: group
            .contexts
            .iter()
            .map(|context| wire::GroupContextObject {
                dataset_index: context.dataset_index,
                tokens: context.tokens.iter().map(|&id| tokens.display(id)).collect(),
                token_ids: context.tokens.clone(),
                scores: context.scores.clone(),
                firing: context.firing,
            })
            .collect(),
    }
}

/// The model's groups, if it has them.
pub(crate) fn groups(store: &dyn StoreRead, model: &ModelEntry) -> Result<Option<NeuronGroups>, ApiError> {
    Ok(match store.model_record(model, ModelDataKind::Groups)? {
        Some(ModelRecord::Groups(groups)) => Some(groups),
        _ => None,
    })
}

/// The group `neuron` is in, with its number: from the layer's roles when stored (one small
/// record), else from the members of every group.
pub(crate) fn group_of(
    store: &dyn StoreRead,
    model: &ModelEntry,
    source: &SourceEntry,
    neuron: NeuronIndex,
) -> Result<Option<(u32, NeuronGroup)>, ApiError> {
    if !model.model_kinds.contains(&ModelDataKind::Groups) {
        return Ok(None);
    }
    let from_roles = match layer_roles(store, source, neuron.layer)? {
        Some(roles) => Some(roles.neurons.get(neuron.index as usize).and_then(|role| role.group)),
        None => None,
    };
    if from_roles == Some(None) {
        return Ok(None);
    }
    let Some(groups) = groups(store, model)? else { return Ok(None) };
    let found = match from_roles.flatten() {
        Some(number) => groups.groups.into_iter().nth(number as usize).map(|group| (number, group)),
        None => groups
            .groups
            .into_iter()
            .enumerate()
            .find(|(_, group)| group.members.contains(&neuron))
            .map(|(number, group)| (number as u32, group)),
    };
    Ok(found.filter(|(_, group)| group.members.contains(&neuron)))
}

/// A neuron's role as the API prints it.
pub(crate) fn role_object(neuron: NeuronIndex, role: &NeuronRole) -> wire::RoleObject {
    wire::RoleObject {
        layer: neuron.layer,
        neuron: neuron.index,
        role: role.role.name().to_owned(),
        in_degree: role.in_degree,
        out_degree: role.out_degree,
        in_strength: role.in_strength,
        out_strength: role.out_strength,
        strength_z: role.strength_z,
        participation: role.participation,
        betweenness: role.betweenness,
        group: role.group,
    }
}

/// A layer's roles, if stored.
pub(crate) fn layer_roles(
    store: &dyn StoreRead,
    source: &SourceEntry,
    layer: u32,
) -> Result<Option<LayerRoles>, ApiError> {
    if !source.layer_kinds.contains(&LayerDataKind::Roles) {
        return Ok(None);
    }
    Ok(match store.layer_record(source, layer, LayerDataKind::Roles)? {
        Some(LayerRecord::Roles(roles)) => Some(roles),
        _ => None,
    })
}

/// One neuron's role, if stored.
pub(crate) fn neuron_role(
    store: &dyn StoreRead,
    source: &SourceEntry,
    neuron: NeuronIndex,
) -> Result<Option<NeuronRole>, ApiError> {
    Ok(layer_roles(store, source, neuron.layer)?.and_then(|roles| roles.neurons.get(neuron.index as usize).copied()))
}

/// Every neuron's role, in order, and the model's connector boundary; `None` when no layer has them.
pub(crate) fn all_roles(store: &dyn StoreRead, source: &SourceEntry) -> Result<Option<ModelRoles>, ApiError> {
    let mut all = Vec::new();
    let mut connector_participation = f32::NAN;
    for layer in 0..source.info.n_layers as u32 {
        if let Some(roles) = layer_roles(store, source, layer)? {
            connector_participation = roles.connector_participation;
            all.extend(
                roles
                    .neurons
                    .into_iter()
                    .enumerate()
                    .map(|(index, role)| (NeuronIndex { layer, index: index as u32 }, role)),
            );
        }
    }
    Ok((!all.is_empty()).then_some(ModelRoles { connector_participation, neurons: all }))
}

/// Every neuron's role with the model's connector boundary.
pub(crate) struct ModelRoles {
    /// The participation above which a non-hub is a connector.
    pub(crate) connector_participation: f32,
    /// Every neuron's role, in order.
    pub(crate) neurons: Vec<(NeuronIndex, NeuronRole)>,
}

/// The measures the model's roles are ranked by, with their names in URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoleMeasure {
    Strength,
    Betweenness,
    Participation,
}

impl RoleMeasure {
    pub(crate) const ALL: [RoleMeasure; 3] =
        [RoleMeasure::Strength, RoleMeasure::Betweenness, RoleMeasure::Participation];

    pub(crate) fn name(self) -> &'static str {
        match self {
            RoleMeasure::Strength => "strength",
            RoleMeasure::Betweenness => "betweenness",
            RoleMeasure::Participation => "participation",
        }
    }

    pub(crate) fn value(self, role: &NeuronRole) -> f32 {
        match self {
            RoleMeasure::Strength => role.strength_z,
            RoleMeasure::Betweenness => role.betweenness,
            RoleMeasure::Participation => role.participation,
        }
    }
}

/// The `limit` neurons of highest `measure`, ties by position.
pub(crate) fn ranked_roles(
    all: &[(NeuronIndex, NeuronRole)],
    measure: RoleMeasure,
    limit: usize,
) -> Vec<(NeuronIndex, NeuronRole)> {
    let mut ranked = all.to_vec();
    ranked.sort_by(|a, b| measure.value(&b.1).total_cmp(&measure.value(&a.1)).then(a.0.cmp(&b.0)));
    ranked.truncate(limit);
    ranked
}

/// The model-level `roles` page.
pub(crate) fn roles_model_page(roles: &ModelRoles) -> wire::RolesModelPage {
    let all = &roles.neurons;
    let count = |role: Role| all.iter().filter(|(_, r)| r.role == role).count() as u64;
    let ranked =
        |measure| ranked_roles(all, measure, RANKED).iter().map(|(neuron, role)| role_object(*neuron, role)).collect();
    wire::RolesModelPage {
        hub_z: dd_data::HUB_Z,
        connector_participation: roles.connector_participation,
        hubs: count(Role::Hub),
        connectors: count(Role::Connector),
        peripheral: count(Role::Peripheral),
        by_strength: ranked(RoleMeasure::Strength),
        by_betweenness: ranked(RoleMeasure::Betweenness),
        by_participation: ranked(RoleMeasure::Participation),
    }
}

/// A neuron's change as the API prints it.
pub(crate) fn change_object(neuron: NeuronIndex, change: &NeuronChange) -> wire::ChangeObject {
    wire::ChangeObject {
        layer: neuron.layer,
        neuron: neuron.index,
        score: change.score,
        mean_change: change.mean_change,
        std_change: change.std_change,
        max_change: change.max_change,
        density_change: change.density_change,
        top_overlap: change.top_overlap,
        shared_contexts: change.shared_contexts,
        activation_correlation: change.activation_correlation,
    }
}

/// A layer's changes, if stored.
pub(crate) fn layer_changes(
    store: &dyn StoreRead,
    source: &SourceEntry,
    layer: u32,
) -> Result<Option<LayerChanges>, ApiError> {
    if !source.layer_kinds.contains(&LayerDataKind::Changes) {
        return Ok(None);
    }
    Ok(match store.layer_record(source, layer, LayerDataKind::Changes)? {
        Some(LayerRecord::Changes(changes)) => Some(changes),
        _ => None,
    })
}

/// The most changed neurons of `changes`, most changed first, ties by position.
fn most_changed(changes: impl Iterator<Item = (NeuronIndex, NeuronChange)>, limit: usize) -> Vec<wire::ChangeObject> {
    let mut all: Vec<(NeuronIndex, NeuronChange)> = changes.collect();
    all.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.0.cmp(&b.0)));
    all.iter().take(limit).map(|(neuron, change)| change_object(*neuron, change)).collect()
}

/// The model-level `changes` page; `None` when no layer has changes.
pub(crate) fn changes_model_page(
    store: &dyn StoreRead,
    source: &SourceEntry,
) -> Result<Option<wire::ChangesModelPage>, ApiError> {
    let mut layers = Vec::new();
    let mut baseline = None;
    for layer in 0..source.info.n_layers as u32 {
        if let Some(changes) = layer_changes(store, source, layer)? {
            baseline.get_or_insert(changes.baseline.clone());
            layers.push((layer, changes));
        }
    }
    let Some(baseline) = baseline else { return Ok(None) };
    let with_index = |layer: u32, changes: &LayerChanges| -> Vec<(NeuronIndex, NeuronChange)> {
        changes.neurons.iter().enumerate().map(|(index, c)| (NeuronIndex { layer, index: index as u32 }, *c)).collect()
    };
    Ok(Some(wire::ChangesModelPage {
        baseline,
        score_formula: dd_data::CHANGE_SCORE_FORMULA.to_owned(),
        most_changed: most_changed(layers.iter().flat_map(|(layer, changes)| with_index(*layer, changes)), RANKED),
        layers: layers
            .iter()
            .map(|(layer, changes)| wire::LayerChangeSummaryObject {
                layer: *layer,
                mean_score: changes.neurons.iter().map(|c| c.score).sum::<f32>() / changes.neurons.len().max(1) as f32,
                most_changed: most_changed(with_index(*layer, changes).into_iter(), 10),
            })
            .collect(),
    }))
}

/// The relation services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Relation {
    Correlations,
    Embedding,
    Groups,
    Roles,
    Changes,
}

fn json<T: serde::Serialize>(value: &T) -> Option<String> {
    Some(serde_json::to_string(value).unwrap_or_else(|_| "null".into()))
}

/// The JSON of a relation service's page for a target (`(layer, neuron)`, `None` above that
/// level); `None` when its data is missing.
pub(crate) fn page(
    relation: Relation,
    store: &dyn StoreRead,
    model: &ModelEntry,
    tokens: &TokenStrings,
    source: &SourceEntry,
    target: (Option<u32>, Option<u32>),
) -> Result<Option<String>, ApiError> {
    Ok(match (relation, target) {
        (Relation::Correlations, (Some(layer), Some(index))) => {
            match store.neuron_record(source, layer, index, NeuronDataKind::Correlations)? {
                Some(NeuronRecord::Correlations(record)) => json(&correlations_page(&record)),
                _ => None,
            }
        }
        (Relation::Embedding, (Some(layer), Some(index))) => {
            match store.neuron_record(source, layer, index, NeuronDataKind::Embedding)? {
                Some(NeuronRecord::Embedding(record)) => json(&embedding_page(&record)),
                _ => None,
            }
        }
        (Relation::Groups, (None, None)) => {
            groups(store, model)?.map(|groups| groups_page(&groups)).and_then(|p| json(&p))
        }
        (Relation::Groups, (Some(layer), Some(index))) => {
            if !model.model_kinds.contains(&ModelDataKind::Groups) {
                return Ok(None);
            }
            let group = group_of(store, model, source, NeuronIndex { layer, index })?;
            json(&wire::NeuronGroupPage { group: group.map(|(number, group)| group_page(number, &group, tokens)) })
        }
        (Relation::Roles, (None, None)) => all_roles(store, source)?.and_then(|all| json(&roles_model_page(&all))),
        (Relation::Roles, (Some(layer), None)) => layer_roles(store, source, layer)?.and_then(|roles| {
            json(&wire::LayerRolesPage {
                layer,
                neurons: roles
                    .neurons
                    .iter()
                    .enumerate()
                    .map(|(index, role)| role_object(NeuronIndex { layer, index: index as u32 }, role))
                    .collect(),
            })
        }),
        (Relation::Roles, (Some(layer), Some(index))) => neuron_role(store, source, NeuronIndex { layer, index })?
            .and_then(|role| json(&role_object(NeuronIndex { layer, index }, &role))),
        (Relation::Changes, (None, None)) => changes_model_page(store, source)?.and_then(|p| json(&p)),
        (Relation::Changes, (Some(layer), None)) => layer_changes(store, source, layer)?.and_then(|changes| {
            json(&wire::LayerChangesPage {
                baseline: changes.baseline.clone(),
                layer,
                neurons: changes
                    .neurons
                    .iter()
                    .enumerate()
                    .map(|(index, change)| change_object(NeuronIndex { layer, index: index as u32 }, change))
                    .collect(),
            })
        }),
        (Relation::Changes, (Some(layer), Some(index))) => layer_changes(store, source, layer)?.and_then(|changes| {
            let change = changes.neurons.get(index as usize)?;
            json(&wire::NeuronChangePage {
                baseline: changes.baseline.clone(),
                score_formula: dd_data::CHANGE_SCORE_FORMULA.to_owned(),
                change: change_object(NeuronIndex { layer, index }, change),
            })
        }),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    //! The relation services and pages over the synthetic database, which holds every relation kind,
    //! against the records read straight from the file.

    use std::time::Duration;

    use dd_data::{NeuronDataKind, NeuronRecord};
    use dd_store::{ReadConfig, SqliteStore, StoreRead};
    use serde_json::Value;

    use crate::LiveLimits;
    use crate::testing::{LiveApp, MODEL, N_LAYERS, N_NEURONS};

    fn app() -> LiveApp {
        LiveApp::new(LiveLimits { max_tokens: 8, max_concurrent_runs: 1, queue_wait: Duration::from_secs(30) })
    }

    fn data(app: &LiveApp, target: &str) -> Value {
        let (status, body) = app.get(target);
        assert_eq!(status, 200, "{target}: {body}");
        serde_json::from_str::<Value>(&body).expect("json")["data"].take()
    }

    #[test]
    fn pages_show_the_stored_records_and_rank_the_whole_model() {
        let app = app();
        let store = SqliteStore::open(&app.database(), &ReadConfig::serving()).expect("open");
        let entry = store.catalog().model(MODEL).expect("model").clone();
        let source = entry.sources[0].clone();

        let Some(NeuronRecord::Correlations(stored)) =
            store.neuron_record(&source, 1, 2, NeuronDataKind::Correlations).expect("read")
        else {
            panic!("synth writes correlations")
        };
        let page = data(&app, &format!("/api/{MODEL}/correlations/1/2"));
        assert_eq!(page["tokens"], stored.tokens);
        let served: Vec<(u64, u64, f32)> = page["positive"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| {
                (
                    c["layer"].as_u64().expect("layer"),
                    c["neuron"].as_u64().expect("neuron"),
                    c["correlation"].as_f64().expect("r") as f32,
                )
            })
            .collect();
        let expected: Vec<(u64, u64, f32)> = stored
            .positive
            .iter()
            .map(|c| (u64::from(c.neuron.layer), u64::from(c.neuron.index), c.correlation))
            .collect();
        assert_eq!(served, expected);

        let Some(NeuronRecord::Embedding(embedding)) =
            store.neuron_record(&source, 0, 5, NeuronDataKind::Embedding).expect("read")
        else {
            panic!("synth writes embeddings")
        };
        let page = data(&app, &format!("/api/{MODEL}/embedding/0/5"));
        let vector: Vec<f64> =
            page["vector"].as_array().expect("vector").iter().map(|v| v.as_f64().expect("f")).collect();
        assert_eq!(vector.len(), embedding.values.len());
        for (served, &value) in vector.iter().zip(&embedding.values) {
            assert!((served - f64::from(value) * f64::from(embedding.scale)).abs() < 1e-6);
        }

        // Every neuron's role, and the rankings over all of them.
        let mut roles = Vec::new();
        for layer in 0..N_LAYERS {
            let page = data(&app, &format!("/api/{MODEL}/roles/{layer}"));
            roles.extend(page["neurons"].as_array().expect("neurons").iter().cloned());
        }
        assert_eq!(roles.len(), (N_LAYERS * N_NEURONS) as usize);
        assert_eq!(data(&app, &format!("/api/{MODEL}/roles/1/3")), roles[N_NEURONS as usize + 3]);
        let model = data(&app, &format!("/api/{MODEL}/roles"));
        let total: u64 = ["hubs", "connectors", "peripheral"].iter().map(|k| model[k].as_u64().expect("count")).sum();
        assert_eq!(total, u64::from(N_LAYERS * N_NEURONS));
        for (list, key) in
            [("by_strength", "strength_z"), ("by_betweenness", "betweenness"), ("by_participation", "participation")]
        {
            let values: Vec<f64> =
                model[list].as_array().expect(list).iter().map(|r| r[key].as_f64().expect(key)).collect();
            assert!(values.windows(2).all(|w| w[0] >= w[1]), "{list} is sorted");
            let best = roles.iter().map(|r| r[key].as_f64().expect(key)).fold(f64::MIN, f64::max);
            assert_eq!(values[0], best, "{list} starts with the model's best");
        }

        // Groups: the model's list, a member's group, and a neuron in none.
        let groups = data(&app, &format!("/api/{MODEL}/groups"));
        let first = &groups["groups"][0];
        let member = &first["members"][0];
        let (layer, neuron) = (member["layer"].as_u64().expect("layer"), member["neuron"].as_u64().expect("neuron"));
        let page = data(&app, &format!("/api/{MODEL}/groups/{layer}/{neuron}"));
        assert_eq!(page["group"]["group"], 0);
        assert_eq!(page["group"]["members"], first["members"]);
        let context = &page["group"]["contexts"][0];
        assert_eq!(
            context["tokens"].as_array().expect("tokens").len(),
            context["scores"].as_array().expect("scores").len()
        );
        let outsider = roles.iter().position(|r| r["group"].is_null()).expect("a neuron in no group");
        let page = data(
            &app,
            &format!("/api/{MODEL}/groups/{}/{}", outsider / N_NEURONS as usize, outsider % N_NEURONS as usize),
        );
        assert!(page["group"].is_null());

        // Changes: the most changed first, overall and per layer.
        let changes = data(&app, &format!("/api/{MODEL}/changes"));
        assert_eq!(changes["baseline"], MODEL);
        let scores: Vec<f64> = changes["most_changed"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| c["score"].as_f64().expect("score"))
            .collect();
        let mut all = Vec::new();
        for layer in 0..N_LAYERS {
            let page = data(&app, &format!("/api/{MODEL}/changes/{layer}"));
            all.extend(
                page["neurons"].as_array().expect("neurons").iter().map(|c| c["score"].as_f64().expect("score")),
            );
        }
        all.sort_by(|a, b| b.total_cmp(a));
        assert_eq!(scores, all[..scores.len()]);
        let one = data(&app, &format!("/api/{MODEL}/changes/0/4"));
        assert_eq!(one["change"]["neuron"], 4);
    }

    #[test]
    fn the_website_shows_relations_on_neuron_pages_and_their_own_pages() {
        let app = app();
        let page = |target: &str| {
            let (status, body) = app.get(target);
            assert_eq!(status, 200, "{target}: {body}");
            body
        };
        let neuron = page(&format!("/viz/{MODEL}/1/2"));
        let relations = neuron.split("<section id=relations>").nth(1).expect("a relations section");
        for part in
            ["id=correlated-positive", "id=correlated-negative", "id=role>", "id=embedding-neighbours", "id=change>"]
        {
            assert!(relations.contains(part), "{part} missing");
        }
        let model = page(&format!("/viz/{MODEL}"));
        for path in ["groups", "roles", "changes"] {
            assert!(model.contains(&format!("href=\"/viz/{MODEL}/{path}\"")), "the model page links {path}");
        }
        let groups = page(&format!("/viz/{MODEL}/groups"));
        let link =
            groups.split("<table id=groups>").nth(1).expect("table").split("href=\"").nth(1).expect("a group link");
        let href = link.split('"').next().expect("href");
        let group = page(href);
        assert!(group.contains("<section id=members>") && group.contains("<section id=group-contexts>"));
        for by in ["strength", "betweenness", "participation"] {
            assert!(page(&format!("/viz/{MODEL}/roles?by={by}")).contains(&format!("<strong>{by}</strong>")));
        }
        assert_eq!(app.get(&format!("/viz/{MODEL}/roles?by=fame")).0, 400);
        let changes = page(&format!("/viz/{MODEL}/changes"));
        assert!(changes.contains("<table id=most-changed>") && changes.contains("side by side"));
        let side_by_side = page(&format!("/viz/{MODEL}/changes/1/2"));
        assert!(side_by_side.contains("<section id=baseline>") && side_by_side.contains("<section id=current>"));
        assert_eq!(app.get(&format!("/viz/{MODEL}/changes/9/2")).0, 404, "a layer past the model");
    }
}
