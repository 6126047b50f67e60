//! A reader of the DOT subset the original wrote: a lexer with line numbers, a recursive-descent
//! parser of one digraph with flat clusters, and the conversion of its nodes and edges into a graph.

use std::collections::HashMap;

use dd_data::{GraphNode, NeuronGraph};

use super::label::{KEYWORDS, decode_label};

/// The graph a DOT text describes, or a message naming the line where it went wrong.
pub(super) fn parse(text: &str) -> Result<NeuronGraph, String> {
    let tokens = lex(text)?;
    let parsed = Parser { tokens, at: 0, clusters: Vec::new(), edges: Vec::new() }.parse()?;
    parsed.into_graph()
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Id(String),
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Equals,
    Separator,
    Arrow,
}

/// A token and its line (1-based).
type Lexed = (Tok, usize);

fn lex(text: &str) -> Result<Vec<Lexed>, String> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let start = line;
        let simple = match c {
            '{' => Some(Tok::Open),
            '}' => Some(Tok::Close),
            '[' => Some(Tok::OpenBracket),
            ']' => Some(Tok::CloseBracket),
            '=' => Some(Tok::Equals),
            ';' | ',' => Some(Tok::Separator),
            _ => None,
        };
        if let Some(tok) = simple {
            out.push((tok, line));
            continue;
        }
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => skip_line(&mut chars, &mut line),
            '/' if chars.peek() == Some(&'/') => skip_line(&mut chars, &mut line),
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                loop {
                    match chars.next() {
                        Some('/') if previous == '*' => break,
                        Some(c) => {
                            line += usize::from(c == '\n');
                            previous = c;
                        }
                        None => return Err(format!("line {start}: unterminated comment")),
                    }
                }
            }
            '"' => {
                let mut id = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some('"') => {
                                chars.next();
                                id.push('"');
                            }
                            Some('\\') => {
                                chars.next();
                                id.push_str("\\\\");
                            }
                            Some('\n') => {
                                chars.next();
                                line += 1;
                            }
                            _ => id.push('\\'),
                        },
                        Some(c) => {
                            line += usize::from(c == '\n');
                            id.push(c);
                        }
                        None => return Err(format!("line {start}: unterminated string")),
                    }
                }
                out.push((Tok::Id(id), start));
            }
            '-' if chars.peek() == Some(&'>') => {
                chars.next();
                out.push((Tok::Arrow, line));
            }
            '-' if chars.peek() == Some(&'-') => return Err(format!("line {line}: undirected edge ('--')")),
            '<' => return Err(format!("line {line}: HTML-like labels are not supported")),
            c if is_id_char(c) || c == '-' => {
                let mut id = String::from(c);
                while let Some(&c) = chars.peek().filter(|&&c| is_id_char(c)) {
                    id.push(c);
                    chars.next();
                }
                out.push((Tok::Id(id), line));
            }
            c => return Err(format!("line {line}: unexpected character {c:?}")),
        }
    }
    Ok(out)
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.' || !c.is_ascii()
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, line: &mut usize) {
    for c in chars.by_ref() {
        if c == '\n' {
            *line += 1;
            return;
        }
    }
}

/// A node statement inside a cluster.
struct NodeDecl {
    id: String,
    attributes: Vec<(String, String)>,
    line: usize,
}

/// An edge statement: its two ends, its `dir` and line.
struct EdgeDecl {
    from: String,
    to: String,
    dir: Option<String>,
    line: usize,
}

/// A recursive-descent reader of the DOT subset the original wrote.
struct Parser {
    tokens: Vec<Lexed>,
    at: usize,
    clusters: Vec<Vec<NodeDecl>>,
    edges: Vec<EdgeDecl>,
}

fn is_keyword(id: &str, keyword: &str) -> bool {
    id.eq_ignore_ascii_case(keyword)
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at).map(|(tok, _)| tok)
    }

    /// The line of the next token, or of the last one at the end of the file.
    fn line(&self) -> usize {
        self.tokens.get(self.at).or(self.tokens.last()).map_or(1, |&(_, line)| line)
    }

    fn next(&mut self, expected: &str) -> Result<Tok, String> {
        match self.tokens.get(self.at) {
            Some((tok, _)) => {
                self.at += 1;
                Ok(tok.clone())
            }
            None => Err(format!("line {}: unexpected end of file, expected {expected}", self.line())),
        }
    }

    fn expect(&mut self, want: Tok, expected: &str) -> Result<(), String> {
        let line = self.line();
        match self.next(expected)? {
            tok if tok == want => Ok(()),
            tok => Err(format!("line {line}: expected {expected}, found {}", describe(&tok))),
        }
    }

    fn id(&mut self, expected: &str) -> Result<String, String> {
        let line = self.line();
        match self.next(expected)? {
            Tok::Id(id) => Ok(id),
            tok => Err(format!("line {line}: expected {expected}, found {}", describe(&tok))),
        }
    }

    fn parse(mut self) -> Result<Self, String> {
        let mut head = self.id("'digraph'")?;
        if is_keyword(&head, "strict") {
            head = self.id("'digraph'")?;
        }
        if !is_keyword(&head, "digraph") {
            return Err(format!("line {}: expected 'digraph', found {head:?}", self.line()));
        }
        if let Some(Tok::Id(_)) = self.peek() {
            self.at += 1;
        }
        self.expect(Tok::Open, "'{'")?;
        self.statements(None)?;
        if self.at < self.tokens.len() {
            return Err(format!("line {}: text after the graph's closing '}}'", self.line()));
        }
        Ok(self)
    }

    /// Statements up to and including the closing brace; `cluster` is the one being read, if any.
    fn statements(&mut self, cluster: Option<usize>) -> Result<(), String> {
        loop {
            let line = self.line();
            match self.next("'}'")? {
                Tok::Close => return Ok(()),
                Tok::Separator => {}
                Tok::Id(id) if ["graph", "node", "edge"].iter().any(|k| is_keyword(&id, k)) => {
                    self.attributes()?;
                }
                Tok::Id(id) if is_keyword(&id, "subgraph") => {
                    if cluster.is_some() {
                        return Err(format!("line {line}: nested subgraphs are not supported"));
                    }
                    let name = match self.peek() {
                        Some(Tok::Id(_)) => self.id("a subgraph name")?,
                        _ => String::new(),
                    };
                    if !name.starts_with("cluster") {
                        return Err(format!("line {line}: subgraph {name:?} is not a cluster"));
                    }
                    self.expect(Tok::Open, "'{'")?;
                    self.clusters.push(Vec::new());
                    self.statements(Some(self.clusters.len() - 1))?;
                }
                Tok::Id(id) => self.node_or_edge(id, cluster, line)?,
                tok => return Err(format!("line {line}: unexpected {}", describe(&tok))),
            }
        }
    }

    fn node_or_edge(&mut self, id: String, cluster: Option<usize>, line: usize) -> Result<(), String> {
        match self.peek() {
            Some(Tok::Equals) => {
                self.at += 1;
                self.id("an attribute value")?;
            }
            Some(Tok::Arrow) => {
                let mut ends = vec![id];
                while self.peek() == Some(&Tok::Arrow) {
                    self.at += 1;
                    let end = self.id("a node id")?;
                    if KEYWORDS.iter().any(|k| is_keyword(&end, k)) {
                        return Err(format!("line {line}: edges must join two nodes"));
                    }
                    ends.push(end);
                }
                let attributes = self.attributes()?;
                let dir = lookup(&attributes, "dir").map(str::to_string);
                for pair in ends.windows(2) {
                    let (from, to) = (pair[0].clone(), pair[1].clone());
                    self.edges.push(EdgeDecl { from, to, dir: dir.clone(), line });
                }
            }
            _ => {
                let attributes = self.attributes()?;
                let Some(cluster) = cluster else {
                    return Err(format!("line {line}: node {id:?} is outside any cluster"));
                };
                self.clusters[cluster].push(NodeDecl { id, attributes, line });
            }
        }
        Ok(())
    }

    /// Zero or more `[key=value …]` lists.
    fn attributes(&mut self) -> Result<Vec<(String, String)>, String> {
        let mut attributes = Vec::new();
        while self.peek() == Some(&Tok::OpenBracket) {
            self.at += 1;
            loop {
                let line = self.line();
                match self.next("']'")? {
                    Tok::CloseBracket => break,
                    Tok::Separator => {}
                    Tok::Id(key) => {
                        self.expect(Tok::Equals, "'='")?;
                        attributes.push((key, self.id("an attribute value")?));
                    }
                    tok => return Err(format!("line {line}: unexpected {} in an attribute list", describe(&tok))),
                }
            }
        }
        Ok(attributes)
    }

    fn into_graph(self) -> Result<NeuronGraph, String> {
        let mut index_of = HashMap::new();
        let mut nodes = Vec::new();
        let mut subgraph_indices = Vec::new();
        for cluster in &self.clusters {
            subgraph_indices.push(nodes.len() as u32);
            for decl in cluster {
                if index_of.insert(decl.id.clone(), nodes.len()).is_some() {
                    return Err(format!("line {}: node {:?} is declared twice", decl.line, decl.id));
                }
                nodes.push(graph_node(decl)?);
            }
        }
        for edge in &self.edges {
            let (requirer, required) = match edge.dir.as_deref() {
                Some("back") => (&edge.from, &edge.to),
                Some("forward") | None => (&edge.to, &edge.from),
                Some(other) => return Err(format!("line {}: edge direction {other:?} is not supported", edge.line)),
            };
            let find = |id: &String| {
                index_of.get(id).copied().ok_or_else(|| format!("line {}: edge to unknown node {id:?}", edge.line))
            };
            let (requirer, required) = (find(requirer)?, find(required)? as u32);
            if !nodes[requirer].required.contains(&required) {
                nodes[requirer].required.push(required);
            }
        }
        Ok(NeuronGraph { subgraph_indices, nodes, scores: None })
    }
}

/// The last value given for `key` (DOT lets a later value override).
fn lookup<'a>(attributes: &'a [(String, String)], key: &str) -> Option<&'a str> {
    attributes.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn graph_node(decl: &NodeDecl) -> Result<GraphNode, String> {
    let (line, id) = (decl.line, &decl.id);
    let label = lookup(&decl.attributes, "label").ok_or_else(|| format!("line {line}: node {id:?} has no label"))?;
    let fill =
        lookup(&decl.attributes, "fillcolor").ok_or_else(|| format!("line {line}: node {id:?} has no fillcolor"))?;
    let green = green(fill).ok_or_else(|| format!("line {line}: node {id:?} has a bad fillcolor {fill:?}"))?;
    let is_end = match lookup(&decl.attributes, "penwidth") {
        None => false,
        Some(width) => {
            let width: f32 = width
                .parse()
                .ok()
                .filter(|w: &f32| w.is_finite())
                .ok_or_else(|| format!("line {line}: node {id:?} has a bad penwidth {width:?}"))?;
            // The original wrote 7 for ends and 3 otherwise.
            width > 5.0
        }
    };
    Ok(GraphNode {
        token: decode_label(label),
        token_id: None,
        required: Vec::new(),
        importance: 1.0 - f32::from(green) / 255.0,
        activation: None,
        is_end,
    })
}

/// The green byte of `#rrggbb` or `#rrggbbaa`.
fn green(colour: &str) -> Option<u8> {
    let hex = colour.strip_prefix('#')?;
    if !(hex.len() == 6 || hex.len() == 8) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(&hex[2..4], 16).ok()
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Id(id) => format!("{id:?}"),
        Tok::Open => "'{'".into(),
        Tok::Close => "'}'".into(),
        Tok::OpenBracket => "'['".into(),
        Tok::CloseBracket => "']'".into(),
        Tok::Equals => "'='".into(),
        Tok::Separator => "a separator".into(),
        Tok::Arrow => "'->'".into(),
    }
}
