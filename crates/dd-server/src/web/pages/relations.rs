//! The relations between neurons on the website: the neuron page's section (correlated neurons,
//! its group, its role, its embedding neighbours, its change), and the model-level pages of
//! groups, roles and changes with the group and comparison pages under them.

use dd_data::{
    ExampleGroupKind, GroupContext, NeuronDataKind, NeuronExamples, NeuronGroup, NeuronIndex, NeuronRecord, NeuronRole,
};
use dd_store::{SourceEntry, StoreRead};

use super::super::layout::Page;
use super::super::tokens::{ColourScale, example_group, example_text, legend_with_note};
use super::super::view::{PageContext, PageError};
use super::parts::neuron_link;
use crate::error::ApiError;
use crate::html::{count, escape, number};
use crate::relations::{
    RANKED, RoleMeasure, all_roles, changes_model_page, group_of, groups, layer_changes, neuron_role, ranked_roles,
};

/// Group members listed on a neuron page before "and N more".
const MEMBERS_SHOWN: usize = 12;

/// The neuron page's relations: correlated neurons, group, role, embedding neighbours and change.
pub(crate) fn relations_section(
    out: &mut String,
    context: &PageContext<'_>,
    neuron: NeuronIndex,
) -> Result<(), ApiError> {
    let store = context.state.store.as_ref();
    let source = context.source;
    let mut section = String::new();
    if let Some(NeuronRecord::Correlations(correlations)) =
        store.neuron_record(source, neuron.layer, neuron.index, NeuronDataKind::Correlations)?
    {
        for (id, title, list) in [
            ("correlated-positive", "Most correlated neurons", &correlations.positive),
            ("correlated-negative", "Most anti-correlated neurons", &correlations.negative),
        ] {
            section.push_str("<div id=");
            section.push_str(id);
            section.push_str("><h3>");
            section.push_str(title);
            section.push_str("</h3><ul class=tokens>");
            for correlated in list {
                section.push_str("<li>");
                neuron_link(&mut section, context, correlated.neuron);
                section.push_str("<span>r ");
                number(&mut section, f64::from(correlated.correlation), 3);
                section.push_str("</span></li>");
            }
            section.push_str("</ul></div>");
        }
        section.push_str("<p class=\"muted small\">Pearson r of the activations over ");
        count(&mut section, u64::from(correlations.tokens));
        section.push_str(" tokens of the recorded text, every layer.</p>");
    }
    if let Some((number_of_group, group)) = group_of(store, &context.model.entry, source, neuron)? {
        section.push_str("<div id=group><h3>Fires together with</h3><p><a href=\"");
        escape(&mut section, &context.href(&format!("/groups/{}/{}", neuron.layer, neuron.index)));
        section.push_str("\">Group ");
        section.push_str(itoa::Buffer::new().format(number_of_group));
        section.push_str("</a>: ");
        section.push_str(itoa::Buffer::new().format(group.members.len()));
        section.push_str(" neurons, cohesion ");
        number(&mut section, f64::from(group.cohesion), 3);
        section.push_str("</p><ul class=tokens>");
        for member in group.members.iter().filter(|m| **m != neuron).take(MEMBERS_SHOWN) {
            section.push_str("<li>");
            neuron_link(&mut section, context, *member);
            section.push_str("</li>");
        }
        if group.members.len() > MEMBERS_SHOWN + 1 {
            section.push_str("<li class=muted>and ");
            section.push_str(itoa::Buffer::new().format(group.members.len() - MEMBERS_SHOWN - 1));
            section.push_str(" more</li>");
        }
        section.push_str("</ul></div>");
    }
    if let Some(role) = neuron_role(store, source, neuron)? {
        role_table(&mut section, context, &role);
    }
    if let Some(NeuronRecord::Embedding(embedding)) =
        store.neuron_record(source, neuron.layer, neuron.index, NeuronDataKind::Embedding)?
    {
        section.push_str("<div id=embedding-neighbours><h3>Similar behaviour (embedding)</h3><ul class=tokens>");
        for neighbour in &embedding.neighbours {
            section.push_str("<li>");
            neuron_link(&mut section, context, NeuronIndex { layer: neighbour.layer, index: neighbour.index });
            section.push_str("<span>cosine ");
            number(&mut section, f64::from(neighbour.similarity), 3);
            section.push_str("</span></li>");
        }
        section.push_str("</ul><p class=\"muted small\">Nearest by a vector of the tokens its ");
        section.push_str(match embedding.source {
            dd_data::EmbeddingSource::Graph => "Neuron2Graph graph",
            dd_data::EmbeddingSource::ActivatingTokens => "highest mean activations",
        });
        section.push_str(" holds, through the model's token embeddings.</p></div>");
    }
    if let Some(changes) = layer_changes(store, source, neuron.layer)? {
        if let Some(change) = changes.neurons.get(neuron.index as usize) {
            section.push_str("<div id=change><h3>Change since ");
            escape(&mut section, &changes.baseline);
            section.push_str("</h3><p>Score ");
            number(&mut section, f64::from(change.score), 3);
            section.push_str(", top-context overlap ");
            number(&mut section, f64::from(change.top_overlap), 3);
            if let Some(r) = change.activation_correlation {
                section.push_str(", r on shared contexts ");
                number(&mut section, f64::from(r), 3);
            }
            section.push_str(". <a href=\"");
            escape(&mut section, &context.href(&format!("/changes/{}/{}", neuron.layer, neuron.index)));
            section.push_str("\">Examples side by side</a></p></div>");
        }
    }
    if !section.is_empty() {
        out.push_str("<section id=relations><h2>Relations</h2><div class=grid>");
        out.push_str(&section);
        out.push_str("</div></section>");
    }
    Ok(())
}

fn role_table(out: &mut String, context: &PageContext<'_>, role: &NeuronRole) {
    out.push_str("<div id=role><h3>Role in the weight graph: <a href=\"");
    escape(out, &context.href("/roles"));
    out.push_str("\">");
    out.push_str(role.role.name());
    out.push_str("</a></h3><table><tbody>");
    let rows: [(&str, f64, u32); 7] = [
        ("In-degree", f64::from(role.in_degree), 0),
        ("Out-degree", f64::from(role.out_degree), 0),
        ("In-strength", f64::from(role.in_strength), 3),
        ("Out-strength", f64::from(role.out_strength), 3),
        ("Strength z in its layer", f64::from(role.strength_z), 3),
        ("Participation across layers", f64::from(role.participation), 3),
        ("Betweenness", f64::from(role.betweenness), 3),
    ];
    for (label, value, digits) in rows {
        out.push_str("<tr><th>");
        out.push_str(label);
        out.push_str("</th><td class=num>");
        number(out, value, digits);
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table></div>");
}

fn page_with(context: &PageContext<'_>, title: &str, crumb: (&str, &str), json: String, body: String) -> Page {
    let name = context.model_name();
    let mut page = Page::new(format!("{title} · {name}"), body);
    page.crumbs = vec![(name.to_owned(), context.href("")), (crumb.0.to_owned(), context.href(crumb.1))];
    page.json_href = Some(json);
    page
}

fn missing(what: &str) -> PageError {
    ApiError::missing_data(format!("no {what} are stored for this model (see `deepdecipher relate` and `compare`)"))
        .into()
}

/// `/viz/{model}/groups`: every co-activating group.
pub(crate) fn groups_page(context: &PageContext<'_>) -> Result<Page, PageError> {
    let Some(groups) = groups(context.state.store.as_ref(), &context.model.entry)? else {
        return Err(missing("groups"));
    };
    let mut body = String::from("<h1>Groups of neurons that fire together</h1><p class=\"muted small\">");
    escape(&mut body, &groups.method);
    body.push_str("; over ");
    count(&mut body, u64::from(groups.tokens));
    body.push_str(" tokens of the recorded text.</p>");
    body.push_str("<table id=groups><thead><tr><th class=num>Group</th><th class=num>Members</th><th class=num>Cohesion</th><th>Members</th></tr></thead><tbody>");
    for (index, group) in groups.groups.iter().enumerate() {
        body.push_str("<tr><td class=num>");
        if let Some(first) = group.members.first() {
            body.push_str("<a href=\"");
            escape(&mut body, &context.href(&format!("/groups/{}/{}", first.layer, first.index)));
            body.push_str("\">");
            body.push_str(itoa::Buffer::new().format(index));
            body.push_str("</a>");
        }
        body.push_str("</td><td class=num>");
        body.push_str(itoa::Buffer::new().format(group.members.len()));
        body.push_str("</td><td class=num>");
        number(&mut body, f64::from(group.cohesion), 3);
        body.push_str("</td><td>");
        for (i, member) in group.members.iter().take(8).enumerate() {
            if i > 0 {
                body.push_str(", ");
            }
            neuron_link(&mut body, context, *member);
        }
        if group.members.len() > 8 {
            body.push_str(" …");
        }
        body.push_str("</td></tr>");
    }
    body.push_str("</tbody></table>");
    let name = context.model_name();
    Ok(page_with(context, "Groups", ("Groups", "/groups"), format!("/api/{name}/groups"), body))
}

/// `/viz/{model}/groups/{layer}/{neuron}`: the group a neuron is in, with its contexts.
pub(crate) fn group_page(context: &PageContext<'_>, neuron: NeuronIndex) -> Result<Page, PageError> {
    let store = context.state.store.as_ref();
    let Some((number_of_group, group)) = group_of(store, &context.model.entry, context.source, neuron)? else {
        return Err(ApiError::missing_data(format!(
            "neuron {}/{} is in no group of neurons that fire together",
            neuron.layer, neuron.index
        ))
        .into());
    };
    let mut body = String::from("<h1>Group ");
    body.push_str(itoa::Buffer::new().format(number_of_group));
    body.push_str(" <span class=muted>");
    body.push_str(itoa::Buffer::new().format(group.members.len()));
    body.push_str(" neurons, cohesion ");
    number(&mut body, f64::from(group.cohesion), 3);
    body.push_str("</span></h1><section id=members><h2>Members</h2><ul class=tokens>");
    for member in &group.members {
        body.push_str("<li>");
        neuron_link(&mut body, context, *member);
        if let Some(role) = neuron_role(store, context.source, *member)? {
            body.push_str("<span>");
            body.push_str(role.role.name());
            body.push_str("</span>");
        }
        body.push_str("</li>");
    }
    body.push_str("</ul></section>");
    group_contexts(&mut body, context, &group);
    let name = context.model_name();
    Ok(page_with(
        context,
        &format!("Group {number_of_group}"),
        ("Groups", "/groups"),
        format!("/api/{name}/groups/{}/{}", neuron.layer, neuron.index),
        body,
    ))
}

fn group_contexts(out: &mut String, context: &PageContext<'_>, group: &NeuronGroup) {
    out.push_str("<section id=group-contexts><h2>Where they fire together</h2>");
    let bound = group.contexts.iter().flat_map(|c| &c.scores).fold(0f32, |m, s| m.max(s.abs()));
    let scale = ColourScale::new(bound);
    legend_with_note(out, &scale, "the members' mean z-score on each token");
    out.push_str("<div class=examples>");
    for (i, group_context) in group.contexts.iter().enumerate() {
        let GroupContext { dataset_index, tokens, scores, firing } = group_context;
        let best = scores.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i);
        out.push_str("<div class=exhead><span>");
        out.push_str(itoa::Buffer::new().format(*firing));
        out.push_str(" of ");
        out.push_str(itoa::Buffer::new().format(group.members.len()));
        out.push_str(" members at z ≥ 2 on token ");
        out.push_str(itoa::Buffer::new().format(best));
        out.push_str("</span><span>dataset index ");
        out.push_str(itoa::Buffer::new().format(*dataset_index));
        out.push_str("</span></div>");
        example_text(out, &format!("g{i}"), tokens, scores, best as u32, &scale, &context.model.tokens);
    }
    out.push_str("</div></section>");
}

/// `/viz/{model}/roles`: neurons ranked by a measure of their place in the weight graph (`?by=`).
pub(crate) fn roles_page(context: &PageContext<'_>) -> Result<Page, PageError> {
    let Some(roles) = all_roles(context.state.store.as_ref(), context.source)? else { return Err(missing("roles")) };
    let all = &roles.neurons;
    let by = context.params.get("by").map(String::as_str).unwrap_or("strength");
    let Some(measure) = RoleMeasure::ALL.into_iter().find(|m| m.name() == by) else {
        return Err(ApiError::bad_parameter("by must be strength, betweenness or participation").into());
    };
    let mut body = String::from("<h1>Roles in the weight graph</h1><p class=\"muted small\">");
    body.push_str(
        "Each neuron's stored weight connections make a directed graph between layers. A <b>hub</b> has a total \
         strength (sum of |weight|) at least ",
    );
    number(&mut body, f64::from(dd_data::HUB_Z), 2);
    body.push_str(
        " standard deviations above its layer's mean; a <b>connector</b> is not a hub and spreads its weight over \
         more layers than most: a participation coefficient above ",
    );
    number(&mut body, f64::from(roles.connector_participation), 3);
    body.push_str(
        ", the model's 90th percentile. The rest are <b>peripheral</b>. Betweenness is estimated from sampled \
         sources.</p><p>",
    );
    for role in dd_data::Role::ALL {
        body.push_str(role.name());
        body.push_str(": ");
        count(&mut body, all.iter().filter(|(_, r)| r.role == *role).count() as u64);
        body.push_str(" · ");
    }
    body.push_str("</p><div class=toolbar><span>Rank by</span>");
    for option in RoleMeasure::ALL {
        if option == measure {
            body.push_str("<strong>");
            body.push_str(option.name());
            body.push_str("</strong>");
        } else {
            body.push_str("<a href=\"");
            escape(&mut body, &context.href(&format!("/roles?by={}", option.name())));
            body.push_str("\">");
            body.push_str(option.name());
            body.push_str("</a>");
        }
    }
    body.push_str("</div><table id=roles><thead><tr><th class=num>Rank</th><th>Neuron</th><th>Role</th><th class=num>In</th><th class=num>Out</th><th class=num>Strength z</th><th class=num>Participation</th><th class=num>Betweenness</th></tr></thead><tbody>");
    for (rank, (neuron, role)) in ranked_roles(all, measure, RANKED * 2).iter().enumerate() {
        body.push_str("<tr><td class=num>");
        body.push_str(itoa::Buffer::new().format(rank + 1));
        body.push_str("</td><td>");
        neuron_link(&mut body, context, *neuron);
        body.push_str("</td><td>");
        body.push_str(role.role.name());
        body.push_str("</td>");
        for (value, digits) in [
            (f64::from(role.in_degree), 0),
            (f64::from(role.out_degree), 0),
            (f64::from(role.strength_z), 2),
            (f64::from(role.participation), 3),
            (f64::from(role.betweenness), 3),
        ] {
            body.push_str("<td class=num>");
            number(&mut body, value, digits);
            body.push_str("</td>");
        }
        body.push_str("</tr>");
    }
    body.push_str("</tbody></table>");
    let name = context.model_name();
    Ok(page_with(context, "Roles", ("Roles", "/roles"), format!("/api/{name}/roles"), body))
}

/// `/viz/{model}/changes`: the neurons that changed most since the baseline, overall and per layer.
pub(crate) fn changes_page(context: &PageContext<'_>) -> Result<Page, PageError> {
    let Some(page) = changes_model_page(context.state.store.as_ref(), context.source)? else {
        return Err(missing("comparisons"));
    };
    let mut body = String::from("<h1>Change since ");
    escape(&mut body, &page.baseline);
    body.push_str("</h1><p class=\"muted small\">Score: ");
    escape(&mut body, &page.score_formula);
    body.push_str(".</p><h2>Most changed neurons</h2><table id=most-changed><thead><tr><th class=num>Rank</th><th>Neuron</th><th class=num>Score</th><th class=num>Top overlap</th><th class=num>r</th><th class=num>Δ mean</th><th class=num>Δ σ</th><th></th></tr></thead><tbody>");
    for (rank, change) in page.most_changed.iter().enumerate() {
        let neuron = NeuronIndex { layer: change.layer, index: change.neuron };
        body.push_str("<tr><td class=num>");
        body.push_str(itoa::Buffer::new().format(rank + 1));
        body.push_str("</td><td>");
        neuron_link(&mut body, context, neuron);
        body.push_str("</td>");
        for value in [
            Some(change.score),
            Some(change.top_overlap),
            change.activation_correlation,
            Some(change.mean_change),
            Some(change.std_change),
        ] {
            body.push_str("<td class=num>");
            if let Some(value) = value {
                number(&mut body, f64::from(value), 3);
            }
            body.push_str("</td>");
        }
        body.push_str("<td><a href=\"");
        escape(&mut body, &context.href(&format!("/changes/{}/{}", neuron.layer, neuron.index)));
        body.push_str("\">side by side</a></td></tr>");
    }
    body.push_str("</tbody></table><h2>By layer</h2><table id=layer-changes><thead><tr><th>Layer</th><th class=num>Mean score</th><th>Most changed</th></tr></thead><tbody>");
    for layer in &page.layers {
        body.push_str("<tr><td>");
        body.push_str(itoa::Buffer::new().format(layer.layer));
        body.push_str("</td><td class=num>");
        number(&mut body, f64::from(layer.mean_score), 3);
        body.push_str("</td><td>");
        for (i, change) in layer.most_changed.iter().take(5).enumerate() {
            if i > 0 {
                body.push_str(", ");
            }
            neuron_link(&mut body, context, NeuronIndex { layer: change.layer, index: change.neuron });
        }
        body.push_str("</td></tr>");
    }
    body.push_str("</tbody></table>");
    let name = context.model_name();
    Ok(page_with(context, "Changes", ("Changes", "/changes"), format!("/api/{name}/changes"), body))
}

fn top_examples(store: &dyn StoreRead, source: &SourceEntry, neuron: NeuronIndex) -> Result<NeuronExamples, ApiError> {
    Ok(match store.neuron_record(source, neuron.layer, neuron.index, NeuronDataKind::Examples)? {
        Some(NeuronRecord::Examples(mut examples)) => {
            examples.groups.retain(|group| group.kind == ExampleGroupKind::Top);
            examples
        }
        _ => NeuronExamples::default(),
    })
}

/// `/viz/{model}/changes/{layer}/{neuron}`: the neuron's top examples beside the baseline's.
pub(crate) fn comparison_page(context: &PageContext<'_>, neuron: NeuronIndex) -> Result<Page, PageError> {
    let store = context.state.store.as_ref();
    let Some(changes) = layer_changes(store, context.source, neuron.layer)? else { return Err(missing("comparisons")) };
    let Some(change) = changes.neurons.get(neuron.index as usize) else { return Err(missing("comparisons")) };
    let baseline = context.state.model(&changes.baseline).ok_or_else(|| {
        ApiError::missing_data(format!("the baseline {:?} is not in this database", changes.baseline))
    })?;
    let baseline_source = baseline.source(None).ok_or_else(|| missing("comparisons"))?;
    let ours = top_examples(store, context.source, neuron)?;
    let theirs = top_examples(store, baseline_source, neuron)?;
    let groups: Vec<_> = ours.groups.iter().chain(&theirs.groups).cloned().collect();
    let scale = ColourScale::for_groups(&groups);
    let mut body = String::from("<h1>Neuron ");
    body.push_str(itoa::Buffer::new().format(neuron.index));
    body.push_str(" in layer ");
    body.push_str(itoa::Buffer::new().format(neuron.layer));
    body.push_str(" <span class=muted>");
    escape(&mut body, &changes.baseline);
    body.push_str(" → ");
    escape(&mut body, context.model_name());
    body.push_str("</span></h1><p>Score ");
    number(&mut body, f64::from(change.score), 3);
    body.push_str(" · top-context overlap ");
    number(&mut body, f64::from(change.top_overlap), 3);
    body.push_str(" · ");
    body.push_str(itoa::Buffer::new().format(change.shared_contexts));
    body.push_str(" shared contexts");
    if let Some(r) = change.activation_correlation {
        body.push_str(", r ");
        number(&mut body, f64::from(r), 3);
    }
    body.push_str(" · Δ mean ");
    number(&mut body, f64::from(change.mean_change), 3);
    body.push_str(" · Δ σ ");
    number(&mut body, f64::from(change.std_change), 3);
    body.push_str(" · Δ max ");
    number(&mut body, f64::from(change.max_change), 3);
    body.push_str("</p>");
    legend_with_note(&mut body, &scale, "one scale for both models");
    body.push_str("<div class=grid id=side-by-side>");
    for (id, title, model_name, examples) in [
        ("baseline", "Baseline", changes.baseline.as_str(), &theirs),
        ("current", "This model", context.model_name(), &ours),
    ] {
        body.push_str("<section id=");
        body.push_str(id);
        body.push_str("><h2>");
        body.push_str(title);
        body.push_str(": <a href=\"");
        escape(&mut body, &format!("/viz/{model_name}/{}/{}", neuron.layer, neuron.index));
        body.push_str("\">");
        escape(&mut body, model_name);
        body.push_str("</a></h2>");
        for group in &examples.groups {
            example_group(&mut body, &format!("{id}-"), group, &scale, &context.model.tokens);
        }
        body.push_str("</section>");
    }
    body.push_str("</div>");
    let name = context.model_name();
    let mut page = page_with(
        context,
        &format!("Neuron {}/{} since {}", neuron.layer, neuron.index, changes.baseline),
        ("Changes", "/changes"),
        format!("/api/{name}/changes/{}/{}", neuron.layer, neuron.index),
        body,
    );
    page.crumbs.push((format!("Neuron {}/{}", neuron.layer, neuron.index), String::new()));
    Ok(page)
}
