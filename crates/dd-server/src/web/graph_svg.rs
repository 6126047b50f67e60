//! The Neuron2Graph graph as inline SVG, laid out here so the neuron page needs neither Graphviz nor script.
//!
//! One column per depth: the activating tokens on the right and context depths to their left, so reading
//! left to right follows the text (the original's `rankdir=LR`). Barycenter sweeps order each column to
//! cut edge crossings; edges are cubic Béziers drawn under the nodes.
//!
//! Classes for the page's CSS (colours belong to the theme, so none are written here):
//! - `n2g`: the `<svg>`; the caller wraps it in `.graph`, whose CSS scales it.
//! - `n2g-node`: every node's `<rect>`, together with one of
//!   `n2g-act` (activating token, orange family), `n2g-ctx` (context token, blue family) or
//!   `n2g-other` (a node outside every depth; drawn unfilled), and `n2g-end` where a pattern may end
//!   (the original's bold outline; drawn with a thicker stroke).
//! - `n2g-edge`: the `<g>` holding every edge path (stroke and `fill: none` inherit).
//! - `n2g-note`: column headings and the "not shown" / "empty graph" notes.
//!
//! Fill strength is an inline `fill-opacity` from importance; text and edges fall back to `currentColor`.

use std::collections::HashSet;
use std::fmt::Write;

use dd_data::NeuronGraph;

use crate::html::{coordinate, escape, number};

/// Most nodes drawn: beyond this a column is taller than any screen and the layout stops being readable.
const MAX_NODES: usize = 200;
/// Most edges drawn, for the same reason and to bound the page's weight.
const MAX_EDGES: usize = 1_000;
/// Label length in characters before truncation; the full token stays in the node's `<title>`.
const LABEL_CHARS: usize = 24;
/// Width of one monospace cell at 12px (0.6em), rounded up so labels never touch the border.
const CELL_WIDTH: f64 = 7.4;
/// Horizontal padding inside a node, each side.
const PADDING: f64 = 8.0;
/// Height of a node.
const NODE_HEIGHT: f64 = 22.0;
/// Vertical gap between nodes of a column.
const NODE_GAP: f64 = 8.0;
/// Horizontal gap between columns, where the edges run.
const COLUMN_GAP: f64 = 72.0;
/// Outer margin.
const MARGIN: f64 = 8.0;
/// Room above the columns for their headings.
const HEADER: f64 = 18.0;
/// Room right of the last column for edges between nodes of the same column, which bulge rightwards.
const LOOP_ROOM: f64 = 24.0;
/// Barycenter sweeps, alternating direction; small graphs settle in two or three.
const SWEEPS: usize = 8;

/// What a node stands for, which sets its class and its column's heading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A token the neuron fires on.
    Activating,
    /// A token that must precede an activating one.
    Context,
    /// A node no depth range covers (damaged `subgraph_indices`).
    Other,
}

impl Kind {
    /// The CSS class of the node's rect, besides `n2g-node`.
    fn class(self) -> &'static str {
        match self {
            Kind::Activating => "n2g-act",
            Kind::Context => "n2g-ctx",
            Kind::Other => "n2g-other",
        }
    }

    /// The heading over a column of this kind.
    fn heading(self) -> &'static str {
        match self {
            Kind::Activating => "activating",
            Kind::Context => "context",
            Kind::Other => "no depth",
        }
    }
}

/// A drawn node: which graph node, and where.
#[derive(Debug)]
struct Placed {
    /// Index in `graph.nodes`.
    node: usize,
    /// Column, 0 = leftmost.
    column: usize,
    /// Left edge.
    x: f64,
    /// Top edge.
    y: f64,
    /// Box width, from the label's length.
    width: f64,
    /// The label shown: display form of the token, truncated.
    label: String,
    /// Activating, context or neither.
    kind: Kind,
}

/// Positions of everything to draw, and what was left out.
#[derive(Debug)]
struct Layout {
    /// The drawn nodes.
    nodes: Vec<Placed>,
    /// Edges as (required, requiring) indices into `nodes`.
    edges: Vec<(usize, usize)>,
    /// Per column: centre x and the kind of its nodes, for the headings.
    columns: Vec<(f64, Kind)>,
    /// Width of the drawing.
    width: f64,
    /// Height of the drawing, without the note line.
    height: f64,
    /// Nodes beyond [`MAX_NODES`].
    omitted_nodes: usize,
    /// Edges beyond [`MAX_EDGES`] or touching an omitted node.
    omitted_edges: usize,
}

/// Appends the graph as SVG to `out`; `search_href(token)` gives the link for a node's token.
///
/// The href is expected URL-encoded; it is HTML-escaped here. A graph without nodes is a small SVG that
/// says "empty graph", so the caller never needs a special case.
pub(crate) fn graph_svg(out: &mut String, graph: &NeuronGraph, search_href: &dyn Fn(&str) -> String) {
    if graph.nodes.is_empty() {
        out.push_str(
            "<svg class=\"n2g\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 160 32\" width=\"160\" \
             height=\"32\" role=\"img\" aria-label=\"Empty Neuron2Graph graph\"><text class=\"n2g-note\" x=\"80\" \
             y=\"20\" text-anchor=\"middle\" fill=\"currentColor\">empty graph</text></svg>",
        );
        return;
    }
    let layout = layout(graph);
    let note = layout.omitted_nodes > 0 || layout.omitted_edges > 0;
    let height = layout.height + if note { HEADER } else { 0.0 };
    out.push_str("<svg class=\"n2g\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 ");
    coordinate(out, layout.width);
    out.push(' ');
    coordinate(out, height);
    out.push_str("\" width=\"");
    coordinate(out, layout.width);
    out.push_str("\" height=\"");
    coordinate(out, height);
    // role=group, not img: an img's children are hidden from assistive technology, and the nodes are links.
    let _ = write!(
        out,
        "\" style=\"max-width:100%;height:auto;white-space:pre\" role=\"group\" aria-label=\"Neuron2Graph graph, {} \
         nodes, {} edges; activating tokens: ",
        layout.nodes.len(),
        layout.edges.len()
    );
    let activating = layout.nodes.iter().filter(|p| p.kind == Kind::Activating).take(8);
    for (i, placed) in activating.enumerate() {
        out.push_str(if i == 0 { "" } else { ", " });
        escape(out, &placed.label);
    }
    out.push_str("\" font-family=\"ui-monospace,SFMono-Regular,Menlo,Consolas,monospace\" font-size=\"12\">");

    out.push_str(
        "<g class=\"n2g-note\" fill=\"currentColor\" fill-opacity=\"0.7\" font-size=\"11\" text-anchor=\"middle\">",
    );
    for &(centre, kind) in &layout.columns {
        out.push_str("<text x=\"");
        coordinate(out, centre);
        out.push_str("\" y=\"");
        coordinate(out, MARGIN + 8.0);
        out.push_str("\">");
        out.push_str(kind.heading());
        out.push_str("</text>");
    }
    out.push_str("</g>");

    out.push_str(
        "<g class=\"n2g-edge\" fill=\"none\" stroke=\"currentColor\" stroke-opacity=\"0.6\" stroke-width=\"1.2\">",
    );
    for &(source, target) in &layout.edges {
        if let (Some(from), Some(to)) = (layout.nodes.get(source), layout.nodes.get(target)) {
            edge_path(out, from, to);
        }
    }
    out.push_str("</g>");

    out.push_str("<g fill=\"currentColor\" text-anchor=\"middle\">");
    for placed in &layout.nodes {
        let Some(node) = graph.nodes.get(placed.node) else { continue };
        out.push_str("<a href=\"");
        escape(out, &search_href(&node.token));
        out.push_str("\"><title>");
        escape(out, &node.token);
        out.push_str(" — importance ");
        number(out, f64::from(node.importance), 3);
        if let Some(activation) = node.activation {
            out.push_str(", activation ");
            number(out, f64::from(activation), 3);
        }
        if node.is_end {
            out.push_str(", a pattern may end here");
        }
        out.push_str("</title><rect class=\"n2g-node ");
        out.push_str(placed.kind.class());
        if node.is_end {
            // The original's bold outline.
            out.push_str(" n2g-end\" stroke-width=\"2.5");
        }
        out.push_str("\" x=\"");
        coordinate(out, placed.x);
        out.push_str("\" y=\"");
        coordinate(out, placed.y);
        out.push_str("\" width=\"");
        coordinate(out, placed.width);
        let _ = write!(out, "\" height=\"{NODE_HEIGHT}\" rx=\"4\" ");
        if placed.kind == Kind::Other {
            out.push_str("fill=\"none\"/>");
        } else {
            // Never fully transparent (the kind must stay visible) nor opaque (the text must stay readable).
            let importance = if node.importance.is_finite() { f64::from(node.importance).clamp(0.0, 1.0) } else { 0.0 };
            out.push_str("fill-opacity=\"");
            number(out, 0.15 + 0.7 * importance, 2);
            out.push_str("\"/>");
        }
        out.push_str("<text x=\"");
        coordinate(out, placed.x + placed.width / 2.0);
        out.push_str("\" y=\"");
        coordinate(out, placed.y + NODE_HEIGHT / 2.0);
        out.push_str("\" dy=\"0.35em\">");
        escape(out, &placed.label);
        out.push_str("</text></a>");
    }
    out.push_str("</g>");

    if note {
        out.push_str("<text class=\"n2g-note\" fill=\"currentColor\" font-size=\"11\" x=\"");
        coordinate(out, MARGIN);
        out.push_str("\" y=\"");
        coordinate(out, height - MARGIN);
        let _ = write!(out, "\">{} nodes and {} edges not shown</text>", layout.omitted_nodes, layout.omitted_edges);
    }
    out.push_str("</svg>");
}

/// Appends one edge: a cubic Bézier between facing sides, with an open arrowhead at `to`.
fn edge_path(out: &mut String, from: &Placed, to: &Placed) {
    let (start_y, end_y) = (from.y + NODE_HEIGHT / 2.0, to.y + NODE_HEIGHT / 2.0);
    let (start_x, end_x, control_1, control_2) = if from.column == to.column {
        // Same column: leave and enter on the right, bulging into the gap, further for longer spans.
        let (a, b) = (from.x + from.width, to.x + to.width);
        let bulge = a.max(b) + 16.0 + ((end_y - start_y).abs() * 0.1).min(COLUMN_GAP / 2.0);
        (a, b, bulge, bulge)
    } else {
        let (a, b) = if from.column < to.column { (from.x + from.width, to.x) } else { (from.x, to.x + to.width) };
        let middle = (a + b) / 2.0;
        (a, b, middle, middle)
    };
    // The curve ends horizontally, so the arrowhead points from the second control point to the end.
    let back = if control_2 > end_x { 5.0 } else { -5.0 };
    out.push_str("<path d=\"M");
    for (i, value) in [start_x, start_y].into_iter().enumerate() {
        out.push_str(if i == 0 { "" } else { " " });
        coordinate(out, value);
    }
    out.push('C');
    for (i, value) in [control_1, start_y, control_2, end_y, end_x, end_y].into_iter().enumerate() {
        out.push_str(if i == 0 { "" } else { " " });
        coordinate(out, value);
    }
    out.push('M');
    for (i, value) in [end_x + back, end_y - 4.0, end_x, end_y, end_x + back, end_y + 4.0].into_iter().enumerate() {
        out.push_str(match i {
            0 => "",
            2 | 4 => "L",
            _ => " ",
        });
        coordinate(out, value);
    }
    out.push_str("\"/>");
}

/// The display form of a token: whitespace made visible, truncated to [`LABEL_CHARS`].
fn label(token: &str) -> String {
    let mut label: String = token
        .chars()
        .take(LABEL_CHARS)
        .map(|c| match c {
            '\n' => '⏎',
            '\t' => '⇥',
            c if c.is_control() => '�',
            // A space-only token would otherwise be an empty-looking box.
            ' ' if token.trim().is_empty() => '␣',
            c => c,
        })
        .collect();
    if token.chars().nth(LABEL_CHARS).is_some() {
        label.push('…');
    }
    if label.is_empty() {
        label.push_str("\"\"");
    }
    label
}

/// Estimated width of `label` in monospace cells: East Asian and emoji characters take two.
fn cells(label: &str) -> usize {
    label.chars().map(|c| if u32::from(c) >= 0x1100 && !('\u{2000}'..='\u{2bff}').contains(&c) { 2 } else { 1 }).sum()
}

/// Lays the graph out: capped, in columns by depth, ordered by barycenter, with coordinates.
fn layout(graph: &NeuronGraph) -> Layout {
    let n = graph.nodes.len();
    let depths = graph.node_clusters();
    let depth_key = |i: usize| depths.get(i).copied().flatten().unwrap_or(usize::MAX);
    // DeepDecipher's graphs start with the root's empty cluster, which puts the activating tokens at depth 1.
    let depth_0_empty = !depths.contains(&Some(0));
    // Depth order first, so a capped graph keeps the activating tokens and the context nearest them.
    let mut kept: Vec<usize> = (0..n).collect();
    kept.sort_by_key(|&i| (depth_key(i), i));
    kept.truncate(MAX_NODES);
    let mut keys: Vec<usize> = kept.iter().map(|&i| depth_key(i)).collect();
    keys.dedup();
    keys.reverse();

    let mut slot = vec![None; n];
    let mut nodes = Vec::with_capacity(kept.len());
    for &i in &kept {
        let key = depth_key(i);
        let kind = match key {
            usize::MAX => Kind::Other,
            0 => Kind::Activating,
            1 if depth_0_empty => Kind::Activating,
            _ => Kind::Context,
        };
        let label = label(graph.nodes.get(i).map_or("", |node| &node.token));
        let width = (cells(&label) as f64 * CELL_WIDTH + 2.0 * PADDING).max(NODE_HEIGHT + 6.0);
        let column = keys.iter().position(|&k| k == key).unwrap_or(0);
        if let Some(slot) = slot.get_mut(i) {
            *slot = Some(nodes.len());
        }
        nodes.push(Placed { node: i, column, x: 0.0, y: 0.0, width, label, kind });
    }

    let mut edges = Vec::new();
    let mut seen = HashSet::new();
    let mut omitted_edges = 0;
    for (target, node) in graph.nodes.iter().enumerate() {
        for &required in &node.required {
            let source = required as usize;
            // Out-of-range references are damage and self-references say nothing about order: neither is drawn.
            if source >= n || source == target || !seen.insert((source, target)) {
                continue;
            }
            match (slot.get(source).copied().flatten(), slot.get(target).copied().flatten()) {
                (Some(from), Some(to)) if edges.len() < MAX_EDGES => edges.push((from, to)),
                _ => omitted_edges += 1,
            }
        }
    }

    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); keys.len()];
    for (p, placed) in nodes.iter().enumerate() {
        if let Some(column) = columns.get_mut(placed.column) {
            column.push(p);
        }
    }
    order_columns(&mut columns, &nodes, &edges);

    let tallest = columns.iter().map(Vec::len).max().unwrap_or(0) as f64;
    let body_height = tallest * (NODE_HEIGHT + NODE_GAP) - NODE_GAP;
    let mut x = MARGIN;
    let mut column_info = Vec::with_capacity(columns.len());
    for column in &columns {
        let width = column.iter().filter_map(|&p| nodes.get(p)).map(|p| p.width).fold(0.0, f64::max);
        let height = column.len() as f64 * (NODE_HEIGHT + NODE_GAP) - NODE_GAP;
        let top = MARGIN + HEADER + (body_height - height) / 2.0;
        let mut kind = Kind::Other;
        for (rank, &p) in column.iter().enumerate() {
            if let Some(placed) = nodes.get_mut(p) {
                placed.x = x + (width - placed.width) / 2.0;
                placed.y = top + rank as f64 * (NODE_HEIGHT + NODE_GAP);
                kind = placed.kind;
            }
        }
        column_info.push((x + width / 2.0, kind));
        x += width + COLUMN_GAP;
    }
    Layout {
        nodes,
        edges,
        columns: column_info,
        width: x - COLUMN_GAP + LOOP_ROOM + MARGIN,
        height: MARGIN + HEADER + body_height + MARGIN,
        omitted_nodes: n - kept.len(),
        omitted_edges,
    }
}

/// Orders each column by the mean position of its neighbours, sweeping right then left, and keeps the best.
///
/// Long edges count towards every column they span without dummy nodes: cheaper, and N2G graphs are shallow.
fn order_columns(columns: &mut [Vec<usize>], nodes: &[Placed], edges: &[(usize, usize)]) {
    let mut neighbours = vec![Vec::new(); nodes.len()];
    for &(a, b) in edges {
        if let Some(list) = neighbours.get_mut(a) {
            list.push(b);
        }
        if let Some(list) = neighbours.get_mut(b) {
            list.push(a);
        }
    }
    let column_of = |p: usize| nodes.get(p).map_or(0, |placed| placed.column);
    // Fractional position in the column, so columns of different heights compare.
    let mut position = vec![0.0; nodes.len()];
    let place = |column: &[usize], position: &mut [f64]| {
        for (rank, &p) in column.iter().enumerate() {
            if let Some(slot) = position.get_mut(p) {
                *slot = (rank as f64 + 0.5) / column.len() as f64;
            }
        }
    };
    for column in columns.iter() {
        place(column, &mut position);
    }
    let mut best = columns.to_vec();
    let mut best_crossings = crossings(columns, nodes, edges);
    for sweep in 0..SWEEPS {
        if best_crossings == 0 {
            break;
        }
        let rightwards = sweep % 2 == 0;
        let order: Vec<usize> = if rightwards {
            (1..columns.len()).collect()
        } else {
            (0..columns.len().saturating_sub(1)).rev().collect()
        };
        for c in order {
            let Some(column) = columns.get_mut(c) else { continue };
            let barycenter = |p: usize| {
                let fixed = neighbours.get(p).into_iter().flatten().filter(|&&q| {
                    let other = column_of(q);
                    if rightwards { other < c } else { other > c }
                });
                let (sum, count) =
                    fixed.fold((0.0, 0), |(sum, count), &q| (sum + position.get(q).unwrap_or(&0.0), count + 1));
                // A node with no fixed neighbour keeps its place rather than drifting to an end.
                if count == 0 { position.get(p).copied().unwrap_or(0.0) } else { sum / f64::from(count) }
            };
            let mut keyed: Vec<(f64, usize)> = column.iter().map(|&p| (barycenter(p), p)).collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            *column = keyed.into_iter().map(|(_, p)| p).collect();
            place(column, &mut position);
        }
        let count = crossings(columns, nodes, edges);
        if count < best_crossings {
            best_crossings = count;
            best = columns.to_vec();
        }
    }
    columns.clone_from_slice(&best);
}

/// Pairs of edges between the same two columns whose ends are in opposite orders.
fn crossings(columns: &[Vec<usize>], nodes: &[Placed], edges: &[(usize, usize)]) -> usize {
    let mut rank = vec![0; nodes.len()];
    for column in columns {
        for (r, &p) in column.iter().enumerate() {
            if let Some(slot) = rank.get_mut(p) {
                *slot = r;
            }
        }
    }
    let ends: Vec<(usize, usize, usize, usize)> = edges
        .iter()
        .filter_map(|&(a, b)| {
            let (ca, cb) = (nodes.get(a)?.column, nodes.get(b)?.column);
            let (ra, rb) = (*rank.get(a)?, *rank.get(b)?);
            match ca.cmp(&cb) {
                std::cmp::Ordering::Less => Some((ca, cb, ra, rb)),
                std::cmp::Ordering::Greater => Some((cb, ca, rb, ra)),
                std::cmp::Ordering::Equal => None,
            }
        })
        .collect();
    let mut count = 0;
    for (i, e) in ends.iter().enumerate() {
        for f in ends.iter().skip(i + 1) {
            if e.0 == f.0 && e.1 == f.1 && ((e.2 < f.2 && e.3 > f.3) || (e.2 > f.2 && e.3 < f.3)) {
                count += 1;
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use dd_data::GraphNode;

    use super::*;

    /// A node requiring `required`.
    fn node(token: &str, required: &[u32], importance: f32) -> GraphNode {
        GraphNode {
            token: token.into(),
            token_id: None,
            required: required.to_vec(),
            importance,
            activation: None,
            is_end: false,
        }
    }

    /// The SVG of `graph`, with links to `/search?q=`.
    fn svg(graph: &NeuronGraph) -> String {
        let mut out = String::new();
        graph_svg(&mut out, graph, &|token| format!("/search?q={token}"));
        out
    }

    /// Checks that tags balance, attribute quotes pair up, and no raw `<`, `>` or bare `&` is left in text.
    fn assert_well_formed(svg: &str) {
        let mut stack = Vec::new();
        let mut rest = svg;
        let check_text = |text: &str| {
            assert!(!text.contains('>'), "raw > in text {text:?}");
            for (i, _) in text.match_indices('&') {
                let entity = text.get(i..).unwrap_or("");
                let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].iter().any(|e| entity.starts_with(e));
                assert!(ok, "bare & in {text:?}");
            }
        };
        while let Some(open) = rest.find('<') {
            check_text(rest.get(..open).unwrap_or(""));
            let after = rest.get(open + 1..).unwrap_or("");
            let close = after.find('>').expect("unclosed tag");
            let tag = after.get(..close).unwrap_or("");
            assert!(!tag.contains('<') && tag.matches('"').count() % 2 == 0, "bad tag <{tag}>");
            check_text(&tag.split('"').skip(1).step_by(2).collect::<String>());
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name), "mismatched </{name}>");
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap_or(""));
            }
            rest = after.get(close + 1..).unwrap_or("");
        }
        check_text(rest);
        assert!(stack.is_empty(), "unclosed {stack:?}");
    }

    /// DeepDecipher's shape: an empty root depth, three activating tokens, then two context depths.
    fn sample() -> NeuronGraph {
        NeuronGraph {
            scores: None,
            subgraph_indices: vec![0, 0, 3, 6],
            nodes: vec![
                node(" Paris", &[3], 1.0),
                node("London", &[4, 5], 0.8),
                node("Rome", &[], 0.6),
                node("in", &[6], 0.9),
                node("to", &[], 0.4),
                node("from", &[6], 0.5),
                node("flew", &[], 0.3),
            ],
        }
    }

    #[test]
    fn counts_nodes_and_edges() {
        let out = svg(&sample());
        assert_well_formed(&out);
        assert_eq!(out.matches("<rect").count(), 7);
        assert_eq!(out.matches("<a href=").count(), 7);
        assert_eq!(out.matches("<path").count(), 5);
        assert_eq!(out.matches("n2g-act").count(), 3);
        assert_eq!(out.matches("n2g-ctx").count(), 4);
        assert!(out.contains("href=\"/search?q= Paris\""));
        assert!(out.contains("<title> Paris — importance 1</title>"));
        assert!(!out.contains("not shown"));
    }

    #[test]
    fn activating_column_is_right_of_context() {
        let layout = layout(&sample());
        let rightmost_context = layout.nodes.iter().filter(|p| p.kind == Kind::Context).map(|p| p.x + p.width);
        let leftmost_activating = layout.nodes.iter().filter(|p| p.kind == Kind::Activating).map(|p| p.x);
        assert!(rightmost_context.fold(f64::MIN, f64::max) < leftmost_activating.fold(f64::MAX, f64::min));
        // The deeper context ("flew", depth 3) is further left than depth 2.
        let x_of = |token: &str| layout.nodes.iter().find(|p| p.label == token).map(|p| p.x).unwrap_or(f64::NAN);
        assert!(x_of("flew") < x_of("in"));
        assert_eq!(
            layout.columns.iter().map(|c| c.1).collect::<Vec<_>>(),
            [Kind::Context, Kind::Context, Kind::Activating]
        );
    }

    #[test]
    fn escapes_tokens_and_links() {
        let graph = NeuronGraph {
            scores: None,
            subgraph_indices: vec![0],
            nodes: vec![node("<script>alert(\"x\")</script>&'", &[], 1.0), node("a\"b", &[0], 0.5)],
        };
        let out = svg(&graph);
        assert_well_formed(&out);
        assert!(!out.contains("<script"));
        assert!(out.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"));
        assert!(out.contains("href=\"/search?q=a&quot;b\""));
    }

    #[test]
    fn long_and_blank_tokens_get_readable_labels() {
        let long = "x".repeat(100);
        let graph = NeuronGraph {
            subgraph_indices: vec![0],
            nodes: vec![node(&long, &[], 1.0), node("  ", &[], 1.0)],
            scores: None,
        };
        let out = svg(&graph);
        assert!(out.contains(&format!(">{}…</text>", "x".repeat(LABEL_CHARS))));
        assert!(out.contains(&format!("<title>{long} — ")));
        assert!(out.contains(">␣␣</text>"));
        assert_eq!(label("a\nb\u{7}"), "a⏎b�");
        assert_eq!(label(""), "\"\"");
        assert_eq!(cells("ab漢😀"), 6);
    }

    #[test]
    fn barycenter_removes_crossings() {
        // Each context node hangs off the activating node in the mirrored position: input order crosses 3 times.
        let graph = NeuronGraph {
            scores: None,
            subgraph_indices: vec![0, 3],
            nodes: vec![
                node("a0", &[5], 1.0),
                node("a1", &[4], 1.0),
                node("a2", &[3], 1.0),
                node("c0", &[], 0.5),
                node("c1", &[], 0.5),
                node("c2", &[], 0.5),
            ],
        };
        let layout = layout(&graph);
        let y = |p: usize| layout.nodes.get(p).map_or(f64::NAN, |placed| placed.y);
        let mut crossed = 0;
        for (i, &(a, b)) in layout.edges.iter().enumerate() {
            for &(c, d) in layout.edges.iter().skip(i + 1) {
                crossed += usize::from((y(a) - y(c)) * (y(b) - y(d)) < 0.0);
            }
        }
        let input: Vec<Vec<usize>> = vec![vec![3, 4, 5], vec![0, 1, 2]];
        assert_eq!(crossings(&input, &layout.nodes, &layout.edges), 3);
        assert_eq!(layout.edges.len(), 3);
        assert_eq!(crossed, 0);
    }

    #[test]
    fn damaged_graphs_never_panic() {
        let graph = NeuronGraph {
            scores: None,
            subgraph_indices: vec![2, 1, 99, u32::MAX, 0],
            nodes: vec![
                node("self", &[0, 0, u32::MAX, 1000], f32::NAN),
                node("back", &[3, 2], -4.0),
                node("same", &[1], f32::INFINITY),
                node("late", &[0, 1], 2.0),
            ],
        };
        let out = svg(&graph);
        assert_well_formed(&out);
        assert_eq!(out.matches("<rect").count(), 4);
        // Edges 3→1, 2→1, 1→2, 0→3 and 1→3: the self and out-of-range references are dropped.
        assert_eq!(out.matches("<path").count(), 5);
        // No subgraph covering a node at all: every node lands in the "no depth" column, unfilled.
        let orphans = NeuronGraph {
            subgraph_indices: vec![],
            nodes: vec![node("x", &[0], 1.0), node("y", &[0], 1.0)],
            scores: None,
        };
        let out = svg(&orphans);
        assert_well_formed(&out);
        assert_eq!(out.matches("n2g-other").count(), 2);
        assert!(out.contains(">no depth</text>"));
    }

    #[test]
    fn nodes_before_the_first_depth_go_left() {
        let graph = NeuronGraph {
            subgraph_indices: vec![1],
            nodes: vec![node("orphan", &[], 1.0), node("act", &[0], 1.0)],
            scores: None,
        };
        let layout = layout(&graph);
        let kinds: Vec<(Kind, f64)> = layout.nodes.iter().map(|p| (p.kind, p.x)).collect();
        assert_eq!(kinds.len(), 2);
        let (orphan, act) = (kinds.iter().find(|k| k.0 == Kind::Other), kinds.iter().find(|k| k.0 == Kind::Activating));
        assert!(orphan.zip(act).is_some_and(|(o, a)| o.1 < a.1));
    }

    #[test]
    fn huge_graphs_are_capped() {
        let nodes =
            (0..1000u32).map(|i| node(&format!("t{i}"), &[(i + 1) % 1000, (i + 7) % 1000, (i * 13) % 1000], 0.5));
        let graph =
            NeuronGraph { subgraph_indices: (0..1000).step_by(100).collect(), nodes: nodes.collect(), scores: None };
        let out = svg(&graph);
        assert_well_formed(&out);
        assert_eq!(out.matches("<rect").count(), MAX_NODES);
        let edges = out.matches("<path").count();
        assert!(edges <= MAX_EDGES && edges > 0);
        let layout = layout(&graph);
        assert_eq!(layout.omitted_nodes, 800);
        assert!(out.contains(&format!(">800 nodes and {} edges not shown</text>", layout.omitted_edges)));
    }

    #[test]
    fn many_edges_are_capped() {
        // A complete bipartite graph: 100 × 100 = 10,000 edges.
        let mut nodes: Vec<GraphNode> = (0..100).map(|i| node(&format!("a{i}"), &[], 1.0)).collect();
        let context: Vec<u32> = (100..200).collect();
        for node in &mut nodes {
            node.required.clone_from(&context);
        }
        nodes.extend((0..100).map(|i| node(&format!("c{i}"), &[], 0.5)));
        let out = svg(&NeuronGraph { subgraph_indices: vec![0, 100], nodes, scores: None });
        assert_eq!(out.matches("<path").count(), MAX_EDGES);
        assert!(out.contains(">0 nodes and 9000 edges not shown</text>"));
    }

    #[test]
    fn empty_graph_says_so() {
        let out = svg(&NeuronGraph::default());
        assert_well_formed(&out);
        assert!(out.contains(">empty graph</text>"));
        assert!(!out.contains("<rect"));
    }
}
