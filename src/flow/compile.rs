//! The compile step: a [`RawDefinition`] becomes a validated [`Flow`], and every problem found on
//! the way is reported at once as a [`Diagnostic`] naming the block and parameter (spec §1.7).
//! The block tree is walked breadth-first with an explicit queue; nothing recurses over it.

use super::analysis;
use super::expr::Expr;
use super::load::RawDefinition;
use super::model::{
    Block, BlockIdx, Branch, Flow, InputDecl, KvEntry, KvPart, Param, ParamSource, Periodic,
    ReleasePolicy, BRANCH_COUNT,
};
use crate::blocks::{self, Family, KindSpec, ParamType};
use crate::limits::{
    BLOCK_DEPTH_MAX, DEFINITION_BYTES_MAX, DIAGNOSTICS_MAX, FLOW_BLOCKS_MAX, PARALLEL_REPEAT_MAX,
    PERIOD_MS_MIN, REPEAT_NUM_MAX,
};
use crate::value::{self, Map, Value};
use std::collections::{HashMap, VecDeque};

/// Default period and first delay of periodic definitions created without them (spec §1.2).
pub const DEFAULT_PERIOD_MS: i64 = 3_000;
/// See [`DEFAULT_PERIOD_MS`].
pub const DEFAULT_DELAY_MS: i64 = 1_000;

/// How bad a diagnostic is: errors stop a definition from running, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// The block a diagnostic is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRef {
    pub name: String,
    pub id: String,
    pub block_type: String,
}

/// One problem in a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub block: Option<BlockRef>,
    pub param: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    /// `bN (BlockType) param: message`, with the parts that do not apply left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if let Some(b) = &self.block {
            write!(f, "{} ({}) ", b.name, b.block_type)?;
        }
        if let Some(p) = &self.param {
            write!(f, "{p}: ")?;
        }
        write!(f, "{level}: {}", self.message)
    }
}

/// The result of compiling one definition.
#[derive(Debug)]
pub struct Compiled {
    /// Present when there is no error.
    pub flow: Option<Flow>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Compiled {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// Collects diagnostics up to `DIAGNOSTICS_MAX`.
#[derive(Default)]
pub(super) struct Diags {
    pub list: Vec<Diagnostic>,
    dropped: usize,
}

impl Diags {
    pub fn push(
        &mut self,
        severity: Severity,
        block: Option<&Block>,
        param: Option<&str>,
        msg: String,
    ) {
        if self.list.len() >= DIAGNOSTICS_MAX {
            self.dropped += 1;
            return;
        }
        self.list.push(Diagnostic {
            severity,
            block: block.map(block_ref),
            param: param.map(str::to_string),
            message: msg,
        });
    }

    pub fn error(&mut self, block: Option<&Block>, param: Option<&str>, msg: String) {
        self.push(Severity::Error, block, param, msg);
    }

    pub fn warn(&mut self, block: Option<&Block>, param: Option<&str>, msg: String) {
        self.push(Severity::Warning, block, param, msg);
    }

    fn finish(mut self) -> Vec<Diagnostic> {
        if self.dropped > 0 {
            self.list.push(Diagnostic {
                severity: Severity::Warning,
                block: None,
                param: None,
                message: format!(
                    "{} more diagnostics not shown (DIAGNOSTICS_MAX is {DIAGNOSTICS_MAX})",
                    self.dropped
                ),
            });
        }
        self.list
    }
}

fn block_ref(b: &Block) -> BlockRef {
    BlockRef {
        name: b.name.clone(),
        id: b.id.to_string(),
        block_type: b.block_type.clone(),
    }
}

/// The kind given to blocks whose type is unknown, so compilation can go on and report more.
static UNKNOWN: KindSpec = KindSpec {
    name: "?",
    family: Family::Control,
    params: &[],
    branches: &[],
    behaviour: None,
};

/// Compiles one definition, collecting every diagnostic.
pub fn compile(raw: &RawDefinition) -> Compiled {
    let mut diags = Diags::default();
    // The stored body is exactly this JSON, so the store's own check agrees.
    let size = crate::value::to_json_truncated(&raw.to_json(), DEFINITION_BYTES_MAX + 1).len();
    if size > DEFINITION_BYTES_MAX {
        diags.error(
            None,
            None,
            format!("the definition is over DEFINITION_BYTES_MAX ({DEFINITION_BYTES_MAX}) bytes"),
        );
        return Compiled {
            flow: None,
            diagnostics: diags.finish(),
        };
    }
    let inputs = input_decls(raw.detail.get("inputParams"), &mut diags);
    let blocks = match raw.detail.get("rootBlock") {
        Some(Value::Object(root)) => build_blocks(root, &mut diags),
        _ => {
            diags.error(None, None, "detail has no rootBlock object".into());
            Vec::new()
        }
    };
    let periodic = periodic(raw, &mut diags);
    if !blocks.is_empty() {
        analysis::check(&blocks, &mut diags);
    }
    let diagnostics = diags.finish();
    let has_errors = diagnostics.iter().any(|d| d.severity == Severity::Error);
    let uses = |family| blocks.iter().any(|b: &Block| b.kind.family == family);
    let (uses_sites, uses_robots) = (uses(Family::Site), uses(Family::Robot));
    let flow = (!has_errors).then(|| Flow {
        id: raw.id.clone().unwrap_or_else(|| raw.label.clone()),
        label: raw.label.clone(),
        version: raw.version.unwrap_or(1),
        inputs,
        blocks,
        periodic,
        release: ReleasePolicy::from_flags(raw.release_sites, raw.release_always),
        uses_sites,
        uses_robots,
    });
    Compiled { flow, diagnostics }
}

fn periodic(raw: &RawDefinition, diags: &mut Diags) -> Option<Periodic> {
    if !raw.periodic_task {
        return None;
    }
    let period_ms = raw.period_ms.unwrap_or(DEFAULT_PERIOD_MS);
    if period_ms < PERIOD_MS_MIN {
        diags.error(
            None,
            Some("period"),
            format!("period {period_ms} ms is below PERIOD_MS_MIN ({PERIOD_MS_MIN} ms)"),
        );
    }
    Some(Periodic {
        enabled: raw.if_enable,
        period_ms,
        delay_ms: raw.delay_ms.unwrap_or(DEFAULT_DELAY_MS).max(0),
    })
}

fn input_decls(v: Option<&Value>, diags: &mut Diags) -> Vec<InputDecl> {
    let items = match v {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => {
            diags.error(
                None,
                Some("inputParams"),
                "detail.inputParams must be an array".into(),
            );
            return Vec::new();
        }
    };
    let mut decls = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim();
        if name.is_empty() {
            let msg = format!("global input #{} has no name", i + 1);
            diags.error(None, Some("inputParams"), msg);
            continue;
        }
        if decls.iter().any(|d: &InputDecl| d.name == name) {
            diags.warn(
                None,
                Some(name),
                "global input declared twice; the first wins".into(),
            );
            continue;
        }
        decls.push(InputDecl {
            name: name.to_string(),
            type_name: item
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("String")
                .to_string(),
            default_value: item.get("defaultValue").cloned().unwrap_or(Value::Null),
            raw: item.clone(),
        });
    }
    decls
}

/// One block waiting in the walk queue.
struct Pending<'a> {
    json: &'a Map,
    parent: Option<(BlockIdx, Branch)>,
    depth: u32,
}

fn build_blocks(root: &Map, diags: &mut Diags) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut queue: VecDeque<Pending<'_>> = VecDeque::new();
    queue.push_back(Pending {
        json: root,
        parent: None,
        depth: 0,
    });
    while let Some(p) = queue.pop_front() {
        if blocks.len() >= FLOW_BLOCKS_MAX {
            let msg = format!("more than FLOW_BLOCKS_MAX ({FLOW_BLOCKS_MAX}) blocks");
            diags.error(None, None, msg);
            break;
        }
        let idx = blocks.len() as BlockIdx;
        let block = header(p.json, p.parent, p.depth, diags);
        if let Some((parent, branch)) = p.parent {
            blocks[parent as usize].children[branch as usize].push(idx);
        }
        let children = children(p.json, &block, diags);
        blocks.push(block);
        let ps = params(p.json, &blocks[idx as usize], diags);
        blocks[idx as usize].params = ps;
        if p.depth as usize >= BLOCK_DEPTH_MAX && children.iter().any(|(_, c)| !c.is_empty()) {
            let msg = format!("nesting deeper than BLOCK_DEPTH_MAX ({BLOCK_DEPTH_MAX})");
            diags.error(Some(&blocks[idx as usize]), None, msg);
            continue;
        }
        for (branch, items) in children {
            for item in items {
                match item {
                    Value::Object(json) => queue.push_back(Pending {
                        json,
                        parent: Some((idx, branch)),
                        depth: p.depth + 1,
                    }),
                    _ => diags.error(
                        Some(&blocks[idx as usize]),
                        Some(branch.key()),
                        "a child is not a block object".into(),
                    ),
                }
            }
        }
    }
    if let Some(root) = blocks.first() {
        if root.block_type != "RootBp" {
            diags.error(
                Some(root),
                None,
                "rootBlock must have blockType RootBp".into(),
            );
        }
    }
    duplicates(&blocks, diags);
    blocks
}

fn header(json: &Map, parent: Option<(BlockIdx, Branch)>, depth: u32, diags: &mut Diags) -> Block {
    let id = json.get("id").and_then(super::load::loose_int);
    let name = match json.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let block_type = json
        .get("blockType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_string();
    let kind = blocks::lookup(&block_type).unwrap_or(&UNKNOWN);
    let mut block = Block {
        id: id.unwrap_or(i64::MIN),
        name,
        block_type,
        kind,
        params: Vec::new(),
        children: Default::default(),
        parent: parent.map(|(p, _)| p),
        depth,
        remark: json.get("remark").and_then(value::to_java_string),
    };
    if block.name.is_empty() {
        block.name = format!("#{}", id.map_or("?".to_string(), |i| i.to_string()));
        diags.error(Some(&block), None, "block has no name".into());
    }
    if id.is_none() {
        diags.error(
            Some(&block),
            None,
            "block id is missing or not an integer".into(),
        );
    } else if parent.is_some() && block.name != format!("b{}", block.id) {
        let msg = format!(
            "name is not \"b{}\"; RDS derives names from ids in places",
            block.id
        );
        diags.warn(Some(&block), None, msg);
    }
    kind_diagnostics(&block, diags);
    block
}

fn kind_diagnostics(block: &Block, diags: &mut Diags) {
    if block.block_type.is_empty() {
        diags.error(Some(block), None, "block has no blockType".into());
    } else if std::ptr::eq(block.kind, &UNKNOWN) {
        let msg = format!("unknown block type {}", block.block_type);
        diags.error(Some(block), None, msg);
    } else if block.block_type == "SubTask::" {
        diags.error(
            Some(block),
            None,
            "SubTask:: without a definition id".into(),
        );
    } else if block.kind.behaviour.is_none() {
        let msg = format!(
            "block type {} is not supported yet ({} blocks come in a later version)",
            block.block_type,
            block.kind.family.name()
        );
        diags.error(Some(block), None, msg);
    }
}

fn children<'a>(json: &'a Map, block: &Block, diags: &mut Diags) -> Vec<(Branch, &'a Vec<Value>)> {
    let mut out: Vec<(Branch, &'a Vec<Value>)> = Vec::new();
    let Some(children) = json.get("children") else {
        return out;
    };
    let Value::Object(children) = children else {
        if !children.is_null() {
            diags.error(Some(block), None, "children must be an object".into());
        }
        return out;
    };
    for (key, items) in children {
        let branch = match (Branch::from_key(key), key.as_str()) {
            (Some(b), _) => b,
            (None, "submodules") if !children.contains_key("default") => {
                let msg = "children under \"submodules\" are read as \"default\"".into();
                diags.warn(Some(block), None, msg);
                Branch::Default
            }
            _ => {
                let msg = format!("children under \"{key}\" are ignored");
                diags.warn(Some(block), None, msg);
                continue;
            }
        };
        let Value::Array(items) = items else {
            let msg = format!("children.{key} must be an array");
            diags.error(Some(block), None, msg);
            continue;
        };
        let known = std::ptr::eq(block.kind, &UNKNOWN) || block.kind.branches.contains(&branch);
        if !known && !items.is_empty() {
            let msg = format!("{} does not run children under \"{key}\"", block.block_type);
            diags.warn(Some(block), None, msg);
            continue;
        }
        out.push((branch, items));
    }
    if block.kind.branches.len() > 1 {
        for branch in block.kind.branches {
            if !children.contains_key(branch.key()) {
                let msg = format!("branch \"{}\" is missing and runs as empty", branch.key());
                diags.warn(Some(block), None, msg);
            }
        }
    }
    debug_assert!(out.len() <= BRANCH_COUNT + 1);
    out
}

fn duplicates(blocks: &[Block], diags: &mut Diags) {
    let mut ids: HashMap<i64, usize> = HashMap::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, b) in blocks.iter().enumerate() {
        if b.id != i64::MIN {
            if let Some(first) = ids.insert(b.id, i) {
                let msg = format!("duplicate block id {} (also {})", b.id, blocks[first].name);
                diags.error(Some(b), None, msg);
            }
        }
        if let Some(first) = names.insert(&b.name, i) {
            let msg = format!("duplicate block name (also id {})", blocks[first].id);
            diags.error(Some(b), None, msg);
        }
    }
}

/// Java `String.trim`: removes every char ≤ U+0020 at both ends.
pub fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= '\u{20}')
}

fn params(json: &Map, block: &Block, diags: &mut Diags) -> Vec<Param> {
    let mut out = Vec::new();
    match json.get("inputParams") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, entry) in map {
                let source = param_source(entry, block, name, diags);
                out.push(Param {
                    name: name.clone(),
                    source,
                });
            }
        }
        Some(_) => diags.error(Some(block), None, "inputParams must be an object".into()),
    }
    check_param_specs(block, &out, diags);
    out
}

fn param_source(entry: &Value, block: &Block, name: &str, diags: &mut Diags) -> ParamSource {
    let Value::Object(entry) = entry else {
        diags.error(
            Some(block),
            Some(name),
            "parameter must be {type, value}".into(),
        );
        return ParamSource::Null;
    };
    let kind = entry.get("type").and_then(Value::as_str).unwrap_or("");
    let text = entry
        .get("value")
        .and_then(value::to_java_string)
        .map(|s| java_trim(&s).to_string())
        .filter(|s| !s.is_empty());
    let Some(text) = text else {
        if !matches!(kind, "Simple" | "Expression" | "Key-Value") {
            diags.error(
                Some(block),
                Some(name),
                format!("unknown parameter type \"{kind}\""),
            );
        }
        return ParamSource::Null;
    };
    match kind {
        "Simple" => ParamSource::Simple(text),
        "Expression" => match Expr::parse(&text) {
            Ok(e) => ParamSource::Expr(e),
            Err(e) => {
                let msg = format!("expression `{}` does not parse: {e}", value::clip(&text));
                diags.error(Some(block), Some(name), msg);
                ParamSource::Null
            }
        },
        "Key-Value" => match key_value(&text) {
            Ok(entries) => ParamSource::KeyValue(entries),
            Err(e) => {
                diags.error(Some(block), Some(name), format!("Key-Value: {e}"));
                ParamSource::Null
            }
        },
        other => {
            let msg = format!("unknown parameter type \"{other}\" (Simple, Expression, Key-Value)");
            diags.error(Some(block), Some(name), msg);
            ParamSource::Null
        }
    }
}

/// Parses a `Key-Value` parameter (spec §2.1 step 4): a JSON array of objects whose fields are
/// taken by position (key, value, type); texts starting with `=` are expressions.
fn key_value(text: &str) -> Result<Vec<KvEntry>, String> {
    let Value::Array(items) =
        serde_json::from_str::<Value>(text).map_err(|e| format!("not a JSON array: {e}"))?
    else {
        return Err("not a JSON array".into());
    };
    let with_exprs = text.contains('=');
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(obj) = item else {
            return Err("every entry must be an object".into());
        };
        let mut fields = obj.into_iter().map(|(_, v)| v);
        let key = fields.next().unwrap_or(Value::Null);
        let value = fields.next().unwrap_or(Value::Null);
        let object = fields.next().is_some_and(|t| t.as_str() == Some("object"));
        entries.push(KvEntry {
            key: kv_part(key, with_exprs)?,
            value: kv_part(value, with_exprs)?,
            object,
        });
    }
    Ok(entries)
}

fn kv_part(v: Value, with_exprs: bool) -> Result<KvPart, String> {
    if with_exprs {
        if let Some(rest) = v.as_str().and_then(|s| s.strip_prefix('=')) {
            return Expr::parse(rest)
                .map(KvPart::Expr)
                .map_err(|e| format!("expression `{}` does not parse: {e}", value::clip(rest)));
        }
    }
    Ok(KvPart::Literal(v))
}

fn check_param_specs(block: &Block, params: &[Param], diags: &mut Diags) {
    let kind = block.kind;
    if kind.behaviour.is_none() {
        return;
    }
    for spec in kind.params {
        let given = params.iter().find(|p| p.name == spec.name);
        let missing = given.is_none_or(|p| matches!(p.source, ParamSource::Null));
        if spec.required && missing {
            diags.error(
                Some(block),
                Some(spec.name),
                "required parameter is missing or empty".into(),
            );
        }
        if let Some(Param {
            source: ParamSource::Simple(text),
            ..
        }) = given
        {
            simple_value(block, spec.name, spec.ty, text, diags);
        }
    }
    for p in params {
        if !kind.accepts_param(&p.name) {
            let msg = format!("{} has no parameter of this name; it is ignored", kind.name);
            diags.warn(Some(block), Some(&p.name), msg);
        }
    }
}

fn simple_value(block: &Block, name: &str, ty: ParamType, text: &str, diags: &mut Diags) {
    let number = match ty {
        ParamType::Int | ParamType::Long => match value::parse_java_long(text) {
            Some(n) => Some(n),
            None => {
                diags.error(
                    Some(block),
                    Some(name),
                    format!("\"{text}\" is not an integer"),
                );
                return;
            }
        },
        ParamType::Double if value::parse_java_double(text).is_none() => {
            diags.error(
                Some(block),
                Some(name),
                format!("\"{text}\" is not a number"),
            );
            return;
        }
        _ => None,
    };
    let cap = match (block.kind.name, name) {
        ("RepeatNumBp", "num") => Some(("REPEAT_NUM_MAX", REPEAT_NUM_MAX)),
        ("ParallelRepeatNBp", "num") => Some(("PARALLEL_REPEAT_MAX", PARALLEL_REPEAT_MAX)),
        _ => None,
    };
    if let (Some(n), Some((limit, max))) = (number, cap) {
        if n > max {
            diags.error(
                Some(block),
                Some(name),
                format!("{n} is over {limit} ({max})"),
            );
        }
    }
}
