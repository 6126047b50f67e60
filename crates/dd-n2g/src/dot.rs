//! The original N2G's graph files (spec §9): the DOT source its `build` wrote with Python's
//! graphviz package to `{layer}_{neuron}/graph`, written from and read into a [`NeuronGraph`].
//!
//! The layout, as graphviz printed it: graph and node defaults, then every edge, then one
//! `cluster_{max_depth − depth}` subgraph per depth in breadth-first order, the first (depth −1,
//! the root) empty. Node ids are counters from 1 (the root took 0). Activating nodes are red
//! (`#ffgggg`), context nodes blue (`#ggggff`), and `importance = 1 − g/255` either way, which is
//! how DeepDecipher read these files. Ends have `penwidth=7`. Edges run from a node to the context
//! it requires, drawn reversed (`dir=back`).
//!
//! Labels went through three encodings, undone in reverse when reading: a token without `"` was
//! JSON-escaped (`\n`, `\\`, `\u00e9`), one of spaces only was wrapped in `'…'`, then graphviz's
//! `escape` doubled every backslash, then DOT quoting escaped `"`.
//!
//! Choices:
//! - We write the importance itself as the shade for every node. The original shaded context nodes
//!   by `adjust(importance, 0.55)`, so its blue nodes read back with that adjusted value; ours read
//!   back as the importance, to within 1/255.
//! - We write non-ASCII as UTF-8 rather than `\uXXXX` (both read back), and keep a token's leading
//!   or trailing brackets, which the original's `strip('[]"')` dropped. A token that is itself
//!   `'` spaces `'` has its quotes written as `\u0027`, so it does not read back as spaces.
//! - Reading accepts edges without `dir=back` as DeepDecipher's own graphviz wrote them
//!   (`required -> node`); it refuses what the original never wrote and could be misread: nodes
//!   outside clusters, nested or non-cluster subgraphs, ports, HTML labels, `dir=both`.

mod label;
mod parse;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use dd_data::{GraphNode, NeuronGraph, NeuronIndex};

use crate::N2gError;
use label::{display_label, quote};

/// The graph as the original N2G's `graph` DOT file (graph attributes, clusters per depth, colours, penwidth 7 for ends, dir=back edges), readable by the original's tools and by `from_dot`.
pub fn to_dot(graph: &NeuronGraph) -> String {
    let clusters = clusters(graph);
    let mut dot = String::from("digraph {\n");
    dot.push_str("\tgraph [nodesep=0.2 rankdir=RL ranksep=1.5 splines=spline]\n");
    dot.push_str("\tnode [fixedsize=true height=0.75 width=2]\n");
    let n_nodes = graph.nodes.len();
    for (index, node) in graph.nodes.iter().enumerate() {
        let mut written = HashSet::new();
        for &required in node.required.iter().filter(|&&r| (r as usize) < n_nodes) {
            if written.insert(required) {
                let _ = writeln!(dot, "\t{} -> {} [dir=back penwidth=3]", index + 1, required as usize + 1);
            }
        }
    }
    let n_clusters = clusters.len();
    for (cluster, members) in clusters.iter().enumerate() {
        let _ = writeln!(dot, "\tsubgraph cluster_{} {{", n_clusters - 1 - cluster);
        dot.push_str("\t\tpencolor=white penwidth=3\n");
        for &index in members {
            write_node(&mut dot, index, &graph.nodes[index], cluster <= 1);
        }
        dot.push_str("\t}\n");
    }
    dot.push_str("}\n");
    dot
}

/// The nodes of each cluster: the ranges of `subgraph_indices`, clipped, a node in the first range
/// that covers it; nodes no range covers (damaged indices) go in one extra cluster so none is lost.
fn clusters(graph: &NeuronGraph) -> Vec<Vec<usize>> {
    let n = graph.nodes.len();
    let mut placed = vec![false; n];
    let mut clusters = Vec::new();
    for (cluster, &start) in graph.subgraph_indices.iter().enumerate() {
        let end = graph.subgraph_indices.get(cluster + 1).map_or(n, |&end| (end as usize).min(n));
        let mut members = Vec::new();
        for (index, placed) in placed.iter_mut().enumerate().take(end).skip(start as usize) {
            if !*placed {
                *placed = true;
                members.push(index);
            }
        }
        clusters.push(members);
    }
    let stray: Vec<usize> = (0..n).filter(|&i| !placed[i]).collect();
    if !stray.is_empty() {
        clusters.push(stray);
    }
    clusters
}

fn write_node(dot: &mut String, index: usize, node: &GraphNode, activating: bool) {
    let importance = if node.importance.is_nan() { 0.0 } else { node.importance.clamp(0.0, 1.0) };
    let shade = ((1.0 - importance) * 255.0).round() as u8;
    let fill = if activating { format!("#ff{shade:02x}{shade:02x}") } else { format!("#{shade:02x}{shade:02x}ff") };
    let fontcolor = if !activating && shade < 130 { "white" } else { "black" };
    let display = display_label(&node.token);
    let fontsize = if display.chars().count() < 12 { 25 } else { 18 };
    let penwidth = if node.is_end { 7 } else { 3 };
    let label = quote(&display.replace('\\', "\\\\"));
    let _ = writeln!(
        dot,
        "\t\t{} [label={label} fillcolor=\"{fill}\" fontcolor={fontcolor} fontsize={fontsize} penwidth={penwidth} shape=box style=\"filled,solid\"]",
        index + 1
    );
}

/// Parses an original N2G `graph` DOT file (graphviz Python output, as DeepDecipher's importer read it: quoted or bare labels, fillcolor → importance = 1 − green/255, clusters → subgraph_indices, edges reversed into `required`).
///
/// Nodes come in cluster order, as the file lists them; `token_id`, `activation` and `scores` are
/// `None`, which the format does not carry; `is_end` is read from `penwidth` (7 for ends).
pub fn from_dot(text: &str) -> Result<NeuronGraph, String> {
    parse::parse(text)
}

/// The neuron a directory name `{layer}_{neuron}` names.
fn neuron_of(name: &str) -> Option<NeuronIndex> {
    let (layer, index) = name.split_once('_')?;
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if !(digits(layer) && digits(index)) {
        return None;
    }
    Some(NeuronIndex { layer: layer.parse().ok()?, index: index.parse().ok()? })
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> N2gError + '_ {
    move |source| N2gError::Io { path: path.to_path_buf(), source }
}

/// The `{layer}_{neuron}/graph` files directly under `dir`.
fn graph_files(dir: &Path, found: &mut Vec<(NeuronIndex, PathBuf)>) -> Result<(), N2gError> {
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let Some(neuron) = entry.file_name().to_str().and_then(neuron_of) else { continue };
        let file = entry.path().join("graph");
        if file.is_file() {
            found.push((neuron, file));
        }
    }
    Ok(())
}

/// Reads every `{layer}_{neuron}/graph` under `root`, sorted by (layer, neuron); a malformed file is an error naming it.
///
/// Both layouts are read: the original's, with the neuron directories directly under `root`, and
/// DeepDecipher's importer's, with them in `layer_{layer}` directories. Directories without a
/// `graph` file (neurons the original failed on) are skipped.
pub fn read_graph_dir(root: &Path) -> Result<Vec<(NeuronIndex, NeuronGraph)>, N2gError> {
    let mut files = Vec::new();
    graph_files(root, &mut files)?;
    for entry in std::fs::read_dir(root).map_err(io_error(root))? {
        let entry = entry.map_err(io_error(root))?;
        let layer_dir = entry.file_name().to_str().and_then(|name| name.strip_prefix("layer_")).is_some();
        if layer_dir && entry.path().is_dir() {
            graph_files(&entry.path(), &mut files)?;
        }
    }
    files.sort();
    if let Some(pair) = files.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        let message =
            format!("neuron {}_{} also has a graph at {}", pair[0].0.layer, pair[0].0.index, pair[0].1.display());
        return Err(N2gError::Format { path: pair[1].1.clone(), message });
    }
    files
        .into_iter()
        .map(|(neuron, path)| {
            let bytes = std::fs::read(&path).map_err(io_error(&path))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| N2gError::Format { path: path.clone(), message: "not UTF-8".into() })?;
            let graph = from_dot(&text).map_err(|message| N2gError::Format { path: path.clone(), message })?;
            Ok((neuron, graph))
        })
        .collect()
}

/// Writes each graph to `root/{layer}_{neuron}/graph`.
pub fn write_graph_dir(root: &Path, graphs: &[(NeuronIndex, NeuronGraph)]) -> Result<(), N2gError> {
    for (neuron, graph) in graphs {
        let dir = root.join(format!("{}_{}", neuron.layer, neuron.index));
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let path = dir.join("graph");
        std::fs::write(&path, to_dot(graph)).map_err(io_error(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A graph file as the original's `build` wrote it with Python's graphviz (0.x): sorted
    /// attributes, tabs, the empty root cluster first, edges before the clusters, a JSON-escaped
    /// label with `\u` and `\n`, and the `'…'` form of a space.
    const ORIGINAL: &str = r##"digraph {
	graph [nodesep=0.2 rankdir=RL ranksep=1.5 splines=spline]
	node [fixedsize=true height=0.75 width=2]
	1 -> 3 [dir=back penwidth=3]
	1 -> 4 [dir=back penwidth=3]
	2 -> 3 [dir=back penwidth=3]
	3 -> 5 [dir=back penwidth=3]
	subgraph cluster_3 {
		pencolor=white penwidth=3
	}
	subgraph cluster_2 {
		pencolor=white penwidth=3
		1 [label=Paris fillcolor="#ff0000" fontcolor=black fontsize=25 penwidth=3 shape=box style="filled,solid"]
		2 [label=" London" fillcolor="#ff4848" fontcolor=black fontsize=25 penwidth=7 shape=box style="filled,solid"]
	}
	subgraph cluster_1 {
		pencolor=white penwidth=3
		3 [label=" in" fillcolor="#0000ff" fontcolor=white fontsize=25 penwidth=7 shape=box style="filled,solid"]
		4 [label="' '" fillcolor="#8e8eff" fontcolor=black fontsize=25 penwidth=7 shape=box style="filled,solid"]
	}
	subgraph cluster_0 {
		pencolor=white penwidth=3
		5 [label="caf\\u00e9\\n" fillcolor="#3333ff" fontcolor=white fontsize=25 penwidth=7 shape=box style="filled,solid"]
	}
}
"##;

    fn node(token: &str, required: Vec<u32>, importance: f32, is_end: bool) -> GraphNode {
        GraphNode { token: token.into(), token_id: None, required, importance, activation: None, is_end }
    }

    #[test]
    fn reads_the_original_format() {
        let graph = from_dot(ORIGINAL).expect("the fixture parses");
        graph.validate().expect("valid graph");
        let want = NeuronGraph {
            subgraph_indices: vec![0, 0, 2, 4],
            nodes: vec![
                node("Paris", vec![2, 3], 1.0, false),
                node(" London", vec![2], 1.0 - 72.0 / 255.0, true),
                node(" in", vec![4], 1.0, true),
                node(" ", vec![], 1.0 - 142.0 / 255.0, true),
                node("café\n", vec![], 1.0 - 51.0 / 255.0, true),
            ],
            scores: None,
        };
        assert_eq!(graph, want);
    }

    /// We write the original's layout byte for byte, except that non-ASCII is written as UTF-8.
    #[test]
    fn writes_the_original_format() {
        let graph = from_dot(ORIGINAL).expect("the fixture parses");
        assert_eq!(to_dot(&graph), ORIGINAL.replace(r"caf\\u00e9", "café"));
    }

    /// DeepDecipher's own graphviz (as served): `required -> node` edges without `dir`, clusters by depth.
    #[test]
    fn reads_deepdeciphers_served_graphviz() {
        let served = "digraph {\n  graph [rankdir=LR splines=spline ranksep=1.5 nodesep=0.2]\n  subgraph cluster_0 {\n  }\n  subgraph cluster_1 {\n    0 [label=\"a \\\"b\\\"\" fillcolor=\"#ff0000\" shape=box style=\"filled,solid\"]\n  }\n  subgraph cluster_2 {\n    1 [label=\"c\" fillcolor=\"#7f7fff\" shape=box style=\"filled,solid\"]\n  }\n  1 -> 0\n}\n";
        let graph = from_dot(served).expect("served graphviz parses");
        assert_eq!(graph.subgraph_indices, vec![0, 0, 1]);
        assert_eq!(graph.nodes[0].token, "a \"b\"");
        assert_eq!(graph.nodes[0].required, vec![1]);
        assert!((graph.nodes[1].importance - 128.0 / 255.0).abs() < 1e-6);
        assert!(!graph.nodes[0].is_end);
    }

    const AWKWARD: [&str; 18] = [
        "",
        " ",
        "   ",
        "\t",
        "\n",
        "'  '",
        "say \"hi\\",
        "\"",
        "\\",
        "\\\"",
        "a\\nb",
        "\\u00e9",
        "é 日本 🙂",
        "[",
        " ]]",
        "node",
        "-1.5",
        "<b>x</b>\u{1}\u{7f}",
    ];

    /// A graph with every awkward token, several depths, shared context and shades across the range.
    fn awkward_graph() -> NeuronGraph {
        let n = AWKWARD.len() as u32;
        let nodes = AWKWARD
            .iter()
            .enumerate()
            .map(|(i, token)| {
                let i = i as u32;
                let required = match i {
                    0..=5 => vec![6 + i, 6 + (i + 1) % 6],
                    6..=11 => vec![12 + i % 6, 12 + (i + 1) % 6],
                    _ => vec![],
                };
                node(token, required, i as f32 / (n - 1) as f32, i % 3 != 1)
            })
            .collect();
        NeuronGraph { subgraph_indices: vec![0, 0, 6, 12], nodes, scores: None }
    }

    #[test]
    fn round_trip_keeps_tokens_depths_edges_ends_and_shades() {
        let graph = awkward_graph();
        let text = to_dot(&graph);
        let back = from_dot(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back.subgraph_indices, graph.subgraph_indices);
        assert_eq!(back.nodes.len(), graph.nodes.len());
        for (got, want) in back.nodes.iter().zip(&graph.nodes) {
            assert_eq!(got.token, want.token);
            assert_eq!(got.required, want.required);
            assert_eq!(got.is_end, want.is_end);
            assert!((got.importance - want.importance).abs() <= 0.5 / 255.0 + 1e-6, "{got:?} vs {want:?}");
        }
        // Reading back what we read is exact: shades are stable.
        assert_eq!(to_dot(&back), text);
        assert_eq!(from_dot(&to_dot(&back)).expect("parses"), back);
    }

    /// A graph the trie builds: ids and activations are not in the format, the rest survives.
    #[test]
    fn round_trip_of_a_built_graph() {
        use crate::trie::{Element, Key, Line, PatternBuilder};
        let e = |t: u32, importance: f32| Element { key: Key::Token(t), importance, activation: 0.7 };
        let mut builder = PatternBuilder::new(0.5);
        builder.insert(&Line { elements: vec![e(1, 1.0), e(2, 0.9), e(3, 0.8)], activation: 0.9 });
        builder.insert(&Line { elements: vec![e(4, 1.0), e(2, 0.6)], activation: 0.6 });
        let graph = builder.finish().graph(&|t| AWKWARD[t as usize].to_string());
        let back = from_dot(&to_dot(&graph)).expect("parses");
        assert_eq!(back.subgraph_indices, graph.subgraph_indices);
        let strip = |g: &NeuronGraph| -> Vec<(String, Vec<u32>, bool)> {
            g.nodes.iter().map(|n| (n.token.clone(), n.required.clone(), n.is_end)).collect()
        };
        assert_eq!(strip(&back), strip(&graph));
        for (got, want) in back.nodes.iter().zip(&graph.nodes) {
            assert!((got.importance - want.importance).abs() <= 0.5 / 255.0 + 1e-6, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn malformed_files_are_errors_naming_the_line() {
        let cases: [(&str, &str); 12] = [
            ("", "line 1: unexpected end of file"),
            ("hello world", "line 1: expected 'digraph'"),
            ("graph { a -- b }", "line 1:"),
            (
                "digraph {\n subgraph cluster_0 {\n 1 [label=a fillcolor=\"#ff00\"]\n }\n}",
                "line 3: node \"1\" has a bad fillcolor",
            ),
            ("digraph {\n subgraph cluster_0 {\n 1 [label=a fillcolor=\"#ffgg00\"]\n }\n}", "line 3:"),
            ("digraph {\n subgraph cluster_0 {\n 1 [label=a fillcolor=red]\n }\n}", "line 3:"),
            (
                "digraph {\n subgraph cluster_0 {\n 1 [label=a fillcolor=\"#ffffff\"]\n }\n 1 -> 2 [dir=back]\n}",
                "line 5: edge to unknown node \"2\"",
            ),
            ("digraph {\n 1 [label=a fillcolor=\"#ffffff\"]\n}", "line 2: node \"1\" is outside any cluster"),
            ("digraph {\n subgraph cluster_0 {\n 1 [label=\"a]\n }\n}", "line 3: unterminated string"),
            ("digraph {\n subgraph cluster_0 {\n 1 [fillcolor=\"#ffffff\"]\n }\n}", "line 3: node \"1\" has no label"),
            (
                "digraph {\n subgraph cluster_0 {\n 1 [label=a fillcolor=\"#ffffff\"]\n 1 [label=b fillcolor=\"#ffffff\"]\n }\n}",
                "line 4: node \"1\" is declared twice",
            ),
            ("digraph {\n}\n}", "line 3: text after"),
        ];
        for (text, want) in cases {
            let err = from_dot(text).expect_err(text);
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
        for text in [
            "digraph { subgraph x { } }",
            "digraph { subgraph cluster_0 { subgraph cluster_1 { } } }",
            "digraph { a -> b [dir=both] }",
            "digraph { a [label=<b>] }",
            "digraph { subgraph cluster_0 { 1 [label=a fillcolor=\"#ffffff\" penwidth=wide] } }",
            "digraph { /* open",
        ] {
            assert!(from_dot(text).is_err(), "{text}");
        }
    }

    /// Every prefix of a valid file, and random edits of it, give an answer, never a panic; a file cut
    /// before its closing brace is an error.
    #[test]
    fn truncated_and_mangled_files_never_panic() {
        let text = to_dot(&awkward_graph());
        let end = text.trim_end().len() - 1;
        for (at, _) in text.char_indices() {
            let result = from_dot(&text[..at]);
            if at <= end {
                assert!(result.is_err(), "prefix of {at} bytes parsed");
            }
        }
        let alphabet: Vec<char> = "{}[]=;,->\"\\ \n\t#/*<a1_.é".chars().collect();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let chars: Vec<char> = text.chars().collect();
        for _ in 0..2000 {
            let mut mangled = chars.clone();
            for _ in 0..1 + next(4) {
                let at = next(mangled.len());
                match next(3) {
                    0 => {
                        mangled.remove(at);
                    }
                    1 => mangled.insert(at, alphabet[next(alphabet.len())]),
                    _ => mangled[at] = alphabet[next(alphabet.len())],
                }
            }
            let _ = from_dot(&mangled.iter().collect::<String>());
            let garbage: String = (0..next(60)).map(|_| alphabet[next(alphabet.len())]).collect();
            let _ = from_dot(&garbage);
        }
    }

    #[test]
    fn graph_directories_round_trip_in_both_layouts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let graph = from_dot(ORIGINAL).expect("parses");
        let neurons = [NeuronIndex { layer: 1, index: 2 }, NeuronIndex { layer: 0, index: 5 }];
        write_graph_dir(root, &neurons.map(|n| (n, graph.clone()))).expect("written");
        // DeepDecipher's layout, a directory without a graph, and names that are no neuron.
        std::fs::create_dir_all(root.join("layer_3/3_1")).expect("dir");
        std::fs::write(root.join("layer_3/3_1/graph"), ORIGINAL).expect("file");
        std::fs::create_dir_all(root.join("4_4")).expect("dir");
        std::fs::create_dir_all(root.join("2_x")).expect("dir");
        std::fs::write(root.join("2_x/graph"), "garbage").expect("file");
        std::fs::write(root.join("notes"), "not a neuron").expect("file");
        let read = read_graph_dir(root).expect("read");
        let got: Vec<(u32, u32)> = read.iter().map(|(n, _)| (n.layer, n.index)).collect();
        assert_eq!(got, vec![(0, 5), (1, 2), (3, 1)]);
        assert!(read.iter().all(|(_, g)| *g == graph));
        assert_eq!(std::fs::read_to_string(root.join("1_2/graph")).expect("file"), to_dot(&graph));

        std::fs::create_dir_all(root.join("layer_1/1_2")).expect("dir");
        std::fs::write(root.join("layer_1/1_2/graph"), ORIGINAL).expect("file");
        let err = read_graph_dir(root).expect_err("a neuron twice");
        assert!(matches!(err, N2gError::Format { .. }), "{err}");
        std::fs::remove_dir_all(root.join("layer_1")).expect("removed");

        std::fs::write(root.join("0_5/graph"), &ORIGINAL[..200]).expect("file");
        match read_graph_dir(root) {
            Err(N2gError::Format { path, message }) => {
                assert_eq!(path, root.join("0_5/graph"));
                assert!(message.starts_with("line "), "{message}");
            }
            other => panic!("expected a format error, got {other:?}"),
        }
        assert!(matches!(read_graph_dir(&root.join("missing")), Err(N2gError::Io { .. })));
    }
}
