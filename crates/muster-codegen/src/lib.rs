//! `muster-codegen`: turns a Smithy JSON AST (an AWS service model) into Muster's wire module:
//! one struct per structure shape, one enum per enum shape and per union (externally tagged
//! with the member names), `Validate` impls enforcing the model's constraint traits, the
//! `Operation` list, the handler trait (named after the service) and `dispatch`. The protocol
//! comes from the service's traits: `awsJson1_1` dispatches on `X-Amz-Target`; `restJson1`
//! also gets `ROUTES` (each operation's `@http`) and a `dispatch` that assembles the input
//! from URI labels, query and body.
//!
//! The output is meant to be committed; `check` (and the `up_to_date` test) fail when the
//! committed file differs from what the model generates.

pub mod json;
mod names;
mod pattern;

use json::Json;
use std::collections::{BTreeSet, HashMap};
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// Why generation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn err<T>(msg: impl Into<String>) -> Result<T, Error> {
    Err(Error(msg.into()))
}

/// Generates the module source (not yet run through rustfmt).
///
/// `source_name` is written into the header (use the model's file name, not a path, so the
/// output does not depend on where the model lives).
pub fn generate(model_json: &str, source_name: &str) -> Result<String, Error> {
    let root =
        Json::parse(model_json).map_err(|e| Error(format!("model is not valid JSON: {e}")))?;
    let model = Model::new(&root)?;
    Generator::new(&model).run(source_name)
}

/// Generates the module and formats it with `rustfmt`, exactly as `muster-codegen generate`
/// writes it. `config_dir` is where rustfmt starts looking for `rustfmt.toml` (the directory
/// of the output file), so the result matches what `cargo fmt` would produce there.
pub fn generate_formatted(
    model_json: &str,
    source_name: &str,
    config_dir: &Path,
) -> Result<String, Error> {
    let code = generate(model_json, source_name)?;
    rustfmt(&code, config_dir)
}

/// Runs `rustfmt --edition 2024` over `code` (stdin to stdout).
pub fn rustfmt(code: &str, config_dir: &Path) -> Result<String, Error> {
    let rustfmt = std::env::var_os("RUSTFMT").unwrap_or_else(|| "rustfmt".into());
    let mut child = Command::new(&rustfmt)
        .args(["--edition", "2024", "--emit", "stdout", "--quiet"])
        .current_dir(config_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error(format!(
                "could not run {}: {e} (is rustfmt installed?)",
                rustfmt.to_string_lossy()
            ))
        })?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| Error("rustfmt has no stdin".into()))?;
    let input = code.to_owned();
    // Write from another thread so a large output cannot dead-lock against a full stdout pipe.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|e| Error(format!("rustfmt failed: {e}")))?;
    writer
        .join()
        .map_err(|_| Error("rustfmt writer thread panicked".into()))?
        .map_err(|e| Error(format!("could not write to rustfmt: {e}")))?;
    if !output.status.success() {
        return err(format!(
            "rustfmt rejected the generated code ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout).map_err(|_| Error("rustfmt printed invalid UTF-8".into()))
}

// ---------------------------------------------------------------------------------------------
// The model

struct Shape<'a> {
    id: &'a str,
    name: &'a str,
    kind: &'a str,
    json: &'a Json,
}

impl<'a> Shape<'a> {
    fn trait_(&self, name: &str) -> Option<&'a Json> {
        self.json.get("traits").and_then(|t| t.get(name))
    }

    fn members(&self) -> &'a [(String, Json)] {
        self.json
            .get("members")
            .and_then(Json::as_object)
            .unwrap_or(&[])
    }

    fn target_of(&self, member: &str) -> Option<&'a str> {
        self.json
            .get(member)
            .and_then(|m| m.get("target"))
            .and_then(Json::as_str)
    }
}

struct Model<'a> {
    shapes: Vec<Shape<'a>>,
    by_id: HashMap<&'a str, usize>,
}

const UNIT: &str = "smithy.api#Unit";

/// The wire protocol of the service, from its protocol trait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `aws.protocols#awsJson1_1`: `POST /` with `X-Amz-Target` (also the default when the
    /// model has no service shape).
    AwsJson1_1,
    /// `aws.protocols#restJson1`: one HTTP method and URI per operation (`@http`).
    RestJson1,
}

impl Protocol {
    fn of(service: Option<&Shape>) -> Result<Protocol, Error> {
        let Some(svc) = service else {
            return Ok(Protocol::AwsJson1_1);
        };
        let json11 = svc.trait_("aws.protocols#awsJson1_1").is_some();
        let rest = svc.trait_("aws.protocols#restJson1").is_some();
        match (json11, rest) {
            (true, false) => Ok(Protocol::AwsJson1_1),
            (false, true) => Ok(Protocol::RestJson1),
            (true, true) => err(format!(
                "service {} has both awsJson1_1 and restJson1; only one protocol is supported",
                svc.id
            )),
            (false, false) => err(format!(
                "service {} has no supported protocol trait (aws.protocols#awsJson1_1 or aws.protocols#restJson1)",
                svc.id
            )),
        }
    }

    fn title(self) -> &'static str {
        match self {
            Protocol::AwsJson1_1 => "AWS JSON 1.1",
            Protocol::RestJson1 => "AWS restJson1",
        }
    }
}

impl<'a> Model<'a> {
    fn new(root: &'a Json) -> Result<Self, Error> {
        match root.get("smithy").and_then(Json::as_str) {
            Some(v) if v.starts_with("2") || v.starts_with("1") => {}
            other => return err(format!("not a Smithy JSON AST (smithy version {other:?})")),
        }
        let Some(shape_map) = root.get("shapes").and_then(Json::as_object) else {
            return err("the model has no `shapes` object");
        };
        let mut shapes = Vec::with_capacity(shape_map.len());
        let mut by_id = HashMap::new();
        for (id, json) in shape_map {
            let Some(kind) = json.get("type").and_then(Json::as_str) else {
                return err(format!("shape {id} has no type"));
            };
            let name = id.rsplit_once('#').map_or(id.as_str(), |(_, n)| n);
            by_id.insert(id.as_str(), shapes.len());
            shapes.push(Shape {
                id,
                name,
                kind,
                json,
            });
        }
        Ok(Model { shapes, by_id })
    }

    fn shape(&self, id: &str) -> Option<&Shape<'a>> {
        self.by_id.get(id).map(|&i| &self.shapes[i])
    }

    fn of_kind<'s>(&'s self, kind: &'s str) -> impl Iterator<Item = &'s Shape<'a>> + 's {
        self.shapes.iter().filter(move |s| s.kind == kind)
    }

    fn service(&self) -> Option<&Shape<'a>> {
        self.of_kind("service").next()
    }
}

/// A Smithy string shape with the (Smithy 1) `@enum` trait or a Smithy 2 `enum` shape.
fn enum_values(shape: &Shape) -> Option<Vec<(String, String)>> {
    if shape.kind == "enum" {
        let values = shape
            .members()
            .iter()
            .map(|(name, m)| {
                let value = m
                    .get("traits")
                    .and_then(|t| t.get("smithy.api#enumValue"))
                    .and_then(Json::as_str)
                    .unwrap_or(name)
                    .to_owned();
                (name.clone(), value)
            })
            .collect();
        return Some(values);
    }
    if shape.kind == "string" {
        let defs = shape.trait_("smithy.api#enum")?.as_array()?;
        let values = defs
            .iter()
            .filter_map(|d| {
                let value = d.get("value")?.as_str()?.to_owned();
                let name = d
                    .get("name")
                    .and_then(Json::as_str)
                    .unwrap_or(&value)
                    .to_owned();
                Some((name, value))
            })
            .collect();
        return Some(values);
    }
    None
}

fn docs_of(json: &Json) -> Option<String> {
    let html = json
        .get("traits")?
        .get("smithy.api#documentation")?
        .as_str()?;
    let summary = names::doc_summary(html);
    (!summary.is_empty()).then_some(summary)
}

/// Formats a Smithy numeric constraint bound as a Rust integer literal.
fn int_bound(json: Option<&Json>, what: &str) -> Result<Option<i64>, Error> {
    match json {
        None | Some(Json::Null) => Ok(None),
        Some(j) => match j.as_f64() {
            Some(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Ok(Some(n as i64)),
            _ => err(format!(
                "{what}: unsupported bound {j:?} (only integers are supported)"
            )),
        },
    }
}

fn opt_lit(v: Option<i64>) -> String {
    match v {
        Some(n) => format!("Some({n})"),
        None => "None".to_owned(),
    }
}

/// A raw string literal for `s`.
fn raw_lit(s: &str) -> String {
    let mut hashes = String::new();
    while s.contains(&format!("\"{hashes}")) {
        hashes.push('#');
    }
    format!("r{hashes}\"{s}\"{hashes}")
}

// ---------------------------------------------------------------------------------------------
// Generation

/// Names the generated code itself relies on; a shape with one of these names would shadow it.
const RESERVED_TYPE_NAMES: &[&str] = &[
    "Option",
    "Some",
    "None",
    "String",
    "Vec",
    "Result",
    "Ok",
    "Err",
    "Default",
    "Send",
    "Sync",
    "Box",
    "Validate",
    "FieldError",
    "EpochSeconds",
    "ApiError",
    "RequestContext",
    "Operation",
    "Regex",
    "LazyLock",
    "Route",
    "HttpBinding",
    "RestOutput",
];

/// One `static` regex of the output.
struct PatternStatic {
    /// The static's name (`CONTACT_ALIAS_PATTERN`).
    name: String,
    /// The model's pattern.
    original: String,
    /// The pattern in `regex` syntax (without a leading negative lookahead, if it had one).
    translated: String,
    /// `X` of a leading `^(?!X)`, in `regex` syntax: a value must not match `^(?:X)`.
    excluded: Option<String>,
}

struct Generator<'m, 'a> {
    model: &'m Model<'a>,
    /// Helper functions and types of `super` that the output uses.
    uses: BTreeSet<&'static str>,
    /// Pattern statics, first use first.
    patterns: Vec<PatternStatic>,
    /// Extra `fn default_*` items for members whose default is not Rust's `Default`.
    default_fns: Vec<String>,
    needs_checks_memo: HashMap<String, bool>,
    protocol: Protocol,
    /// The generated module's file stem (`ssm_contacts`), from the service name.
    module: String,
    /// The handler trait (`SsmContacts`), from the service name.
    trait_name: String,
}

impl<'m, 'a> Generator<'m, 'a> {
    fn new(model: &'m Model<'a>) -> Self {
        Generator {
            model,
            uses: BTreeSet::new(),
            patterns: Vec::new(),
            default_fns: Vec::new(),
            needs_checks_memo: HashMap::new(),
            protocol: Protocol::AwsJson1_1,
            module: "service".to_owned(),
            trait_name: "Service".to_owned(),
        }
    }

    fn shape(&self, id: &str) -> Result<&'m Shape<'a>, Error> {
        self.model
            .shape(id)
            .ok_or_else(|| Error(format!("shape {id} is referenced but not defined")))
    }

    fn run(mut self, source_name: &str) -> Result<String, Error> {
        let model = self.model;
        let service = model.service();
        self.protocol = Protocol::of(service)?;
        if let Some(svc) = service {
            self.module = names::snake_case(svc.name);
            self.trait_name = names::variant_ident(&self.module);
        }
        let mut seen = HashMap::new();
        for s in model.shapes.iter().filter(|s| emits_type(s)) {
            if RESERVED_TYPE_NAMES.contains(&s.name) || s.name == self.trait_name {
                return err(format!(
                    "shape {} would shadow `{}` in the generated code",
                    s.id, s.name
                ));
            }
            if let Some(prev) = seen.insert(s.name, s.id) {
                return err(format!("shapes {prev} and {} have the same name", s.id));
            }
        }

        let mut body = String::new();

        // Service-wide constants.
        if let Some(svc) = service {
            let signing = svc
                .trait_("aws.auth#sigv4")
                .and_then(|t| t.get("name"))
                .and_then(Json::as_str);
            if self.protocol == Protocol::AwsJson1_1 {
                let _ = writeln!(
                    body,
                    "/// The `X-Amz-Target` header of a request is this prefix followed by the operation name.\n\
                     pub const TARGET_PREFIX: &str = \"{}.\";\n",
                    svc.name
                );
            }
            if let Some(signing) = signing {
                let _ = writeln!(
                    body,
                    "/// The SigV4 signing name (the service part of the credential scope).\n\
                     pub const SIGNING_NAME: &str = \"{signing}\";\n"
                );
            }
        }

        // Enums.
        for s in model.shapes.iter() {
            if let Some(values) = enum_values(s) {
                body.push_str(&self.gen_enum(s, &values)?);
            }
        }
        // Structures and their validation.
        for s in model.of_kind("structure") {
            body.push_str(&self.gen_struct(s)?);
            body.push_str(&self.gen_validate(s)?);
        }
        // Unions (enums with one variant per member) and their validation.
        for s in model.of_kind("union") {
            body.push_str(&self.gen_union(s)?);
        }
        for f in std::mem::take(&mut self.default_fns) {
            body.push_str(&f);
        }
        body.push_str(&self.gen_error_table()?);
        body.push_str(&self.gen_operations(service)?);

        // Now that all uses are known: the header, imports and pattern statics.
        let mut out = String::new();
        let title = service
            .and_then(|s| s.trait_("smithy.api#title"))
            .and_then(Json::as_str)
            .unwrap_or("the service");
        let _ = writeln!(
            out,
            "//! Wire types, validation and dispatch for {title} ({protocol}).\n\
             //!\n\
             //! @generated by `muster-codegen` from `{source_name}`. Do not edit by hand:\n\
             //! change the generator and run\n\
             //! `cargo run -p muster-codegen -- generate <model.json> crates/muster-aws/src/wire/{module}.rs`.\n",
            protocol = self.protocol.title(),
            module = self.module,
        );
        let mut uses: Vec<&str> = self.uses.iter().copied().collect();
        uses.push("Validate");
        uses.push("FieldError");
        uses.sort_unstable();
        uses.dedup();
        let _ = writeln!(out, "use super::{{{}}};", uses.join(", "));
        out.push_str("use crate::context::RequestContext;\nuse crate::error::ApiError;\n");
        if !self.patterns.is_empty() {
            out.push_str("use regex::Regex;\nuse std::sync::LazyLock;\n");
        }
        out.push('\n');
        for p in &self.patterns {
            let name = &p.name;
            let _ = writeln!(
                out,
                "/// The model's pattern {}, as written there (ECMA-262 syntax).\n\
                 const {name}_SOURCE: &str = {};\n\
                 static {name}: LazyLock<Regex> = LazyLock::new(|| compile_pattern({}));\n",
                names_code(&p.original),
                raw_lit(&p.original),
                raw_lit(&p.translated)
            );
            if let Some(excluded) = &p.excluded {
                let _ = writeln!(
                    out,
                    "/// What the leading negative lookahead of {name}_SOURCE rules out.\n\
                     static {name}_EXCLUDED: LazyLock<Regex> = LazyLock::new(|| compile_pattern({}));\n",
                    raw_lit(&format!("^(?:{excluded})"))
                );
            }
        }
        out.push_str(&body);
        if !self.patterns.is_empty() {
            out.push_str("\n#[cfg(test)]\nmod generated_tests {\n");
            out.push_str(
                "    /// Every pattern of the model compiles (they are compiled lazily at first use).\n\
                 #[test]\n    fn every_pattern_compiles() {\n",
            );
            for p in &self.patterns {
                let _ = writeln!(
                    out,
                    "        std::sync::LazyLock::force(&super::{});",
                    p.name
                );
                if p.excluded.is_some() {
                    let _ = writeln!(
                        out,
                        "        std::sync::LazyLock::force(&super::{}_EXCLUDED);",
                        p.name
                    );
                }
            }
            out.push_str("    }\n}\n");
        }
        Ok(out)
    }

    // --- types ---------------------------------------------------------------------------

    fn rust_type(&self, target: &str) -> Result<String, Error> {
        if let Some(prelude) = target.strip_prefix("smithy.api#") {
            return Ok(match prelude {
                "String" => "String",
                "Boolean" | "PrimitiveBoolean" => "bool",
                "Integer" | "PrimitiveInteger" => "i32",
                "Long" | "PrimitiveLong" => "i64",
                "Short" | "PrimitiveShort" => "i16",
                "Byte" | "PrimitiveByte" => "i8",
                "Float" | "PrimitiveFloat" => "f32",
                "Double" | "PrimitiveDouble" => "f64",
                "Timestamp" => {
                    return Ok("EpochSeconds".to_owned());
                }
                other => return err(format!("prelude shape smithy.api#{other} is not supported")),
            }
            .to_owned());
        }
        let s = self.shape(target)?;
        if enum_values(s).is_some() {
            return Ok(s.name.to_owned());
        }
        Ok(match s.kind {
            "string" => "String".to_owned(),
            "boolean" => "bool".to_owned(),
            "integer" => "i32".to_owned(),
            "long" => "i64".to_owned(),
            "short" => "i16".to_owned(),
            "byte" => "i8".to_owned(),
            "float" => "f32".to_owned(),
            "double" => "f64".to_owned(),
            "timestamp" => "EpochSeconds".to_owned(),
            "structure" | "union" => s.name.to_owned(),
            "list" | "set" => {
                let member = s
                    .target_of("member")
                    .ok_or_else(|| Error(format!("{} has no member", s.id)))?;
                format!("Vec<{}>", self.rust_type(member)?)
            }
            "map" => {
                let k = s
                    .target_of("key")
                    .ok_or_else(|| Error(format!("{} has no key", s.id)))?;
                let v = s
                    .target_of("value")
                    .ok_or_else(|| Error(format!("{} has no value", s.id)))?;
                format!(
                    "std::collections::BTreeMap<{}, {}>",
                    self.rust_type(k)?,
                    self.rust_type(v)?
                )
            }
            other => return err(format!("shape {} of type {other} is not supported", s.id)),
        })
    }

    fn gen_enum(&self, s: &Shape, values: &[(String, String)]) -> Result<String, Error> {
        let mut out = String::new();
        if let Some(doc) = docs_of(s.json) {
            let _ = writeln!(out, "/// {doc}");
        }
        out.push_str(
            "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]\n",
        );
        let _ = writeln!(out, "pub enum {} {{", s.name);
        let mut idents = BTreeSet::new();
        let mut arms = String::new();
        let mut parse_arms = String::new();
        for (name, value) in values {
            let ident = names::variant_ident(name);
            if !idents.insert(ident.clone()) {
                return err(format!(
                    "enum {}: two members map to the variant {ident}",
                    s.id
                ));
            }
            let _ = writeln!(out, "    #[serde(rename = {value:?})]\n    {ident},");
            let _ = writeln!(arms, "            Self::{ident} => {value:?},");
            let _ = writeln!(parse_arms, "            {value:?} => Some(Self::{ident}),");
        }
        out.push_str("}\n\n");
        let list: Vec<String> = values.iter().map(|(_, v)| format!("{v:?}")).collect();
        let _ = write!(
            out,
            "impl {name} {{\n\
             \x20   /// Every wire value, in model order.\n\
             \x20   pub const VALUES: &[&str] = &[{list}];\n\n\
             \x20   /// The wire value.\n\
             \x20   pub fn as_str(&self) -> &'static str {{\n\
             \x20       match self {{\n{arms}        }}\n    }}\n\n\
             \x20   /// The variant whose wire value is `value` (case-sensitive).\n\
             \x20   pub fn from_value(value: &str) -> Option<Self> {{\n\
             \x20       match value {{\n{parse_arms}            _ => None,\n        }}\n    }}\n\
             }}\n\n\
             impl std::fmt::Display for {name} {{\n\
             \x20   fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{\n\
             \x20       f.write_str(self.as_str())\n    }}\n}}\n\n",
            name = s.name,
            list = list.join(", "),
        );
        Ok(out)
    }

    fn gen_struct(&mut self, s: &Shape) -> Result<String, Error> {
        let mut out = String::new();
        if let Some(doc) = docs_of(s.json) {
            let _ = writeln!(out, "/// {doc}");
        }
        out.push_str(
            "#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]\n",
        );
        let _ = writeln!(out, "pub struct {} {{", s.name);
        let mut idents = BTreeSet::new();
        for (member, m) in s.members() {
            let ident = names::field_ident(member);
            if !idents.insert(ident.clone()) {
                return err(format!("{}: two members map to the field {ident}", s.id));
            }
            let target = member_target(s, member, m)?;
            let ty = self.rust_type(target)?;
            if self.uses_timestamp(&ty) {
                self.uses.insert("EpochSeconds");
            }
            if let Some(doc) = docs_of(m) {
                let _ = writeln!(out, "    /// {doc}");
            }
            match member_default(m) {
                Some(default) => {
                    let default_attr = self.default_attr(s, member, &ty, default)?;
                    let _ = writeln!(
                        out,
                        "    #[serde(rename = {member:?}, {default_attr})]\n    pub {ident}: {ty},"
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "    #[serde(rename = {member:?}, default, skip_serializing_if = \"Option::is_none\")]\n    pub {ident}: Option<{ty}>,"
                    );
                }
            }
        }
        out.push_str("}\n\n");
        Ok(out)
    }

    /// A Smithy union as a Rust enum, serialised externally tagged with the member names
    /// (`{"chatbotSns": [...]}`), and its `Validate` (the chosen variant's checks).
    fn gen_union(&mut self, s: &Shape) -> Result<String, Error> {
        let mut out = String::new();
        if let Some(doc) = docs_of(s.json) {
            let _ = writeln!(out, "/// {doc}");
        }
        out.push_str("#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]\n");
        let _ = writeln!(out, "pub enum {} {{", s.name);
        let mut idents = BTreeSet::new();
        let mut arms = String::new();
        let mut any_checks = false;
        if s.members().is_empty() {
            return err(format!("union {} has no members", s.id));
        }
        for (member, m) in s.members() {
            let ident = names::variant_ident(member);
            if !idents.insert(ident.clone()) {
                return err(format!(
                    "union {}: two members map to the variant {ident}",
                    s.id
                ));
            }
            let target = member_target(s, member, m)?;
            if target == UNIT {
                return err(format!(
                    "union {}: member {member} targets smithy.api#Unit, which is not supported",
                    s.id
                ));
            }
            let ty = self.rust_type(target)?;
            if self.uses_timestamp(&ty) {
                self.uses.insert("EpochSeconds");
            }
            if let Some(doc) = docs_of(m) {
                let _ = writeln!(out, "    /// {doc}");
            }
            let _ = writeln!(out, "    #[serde(rename = {member:?})]\n    {ident}({ty}),");
            let owner = format!("{}${member}", s.id);
            let mut checks = String::new();
            self.value_checks(target, Some((&owner, m)), "v", "&p", 0, &mut checks)?;
            if checks.is_empty() {
                let _ = writeln!(arms, "Self::{ident}(_) => {{}}");
            } else {
                any_checks = true;
                self.uses.insert("field_path");
                let _ = write!(
                    arms,
                    "Self::{ident}(v) => {{\nlet p = field_path(path, {member:?});\n{checks}}}\n"
                );
            }
        }
        out.push_str("}\n\n");
        if any_checks {
            let _ = write!(
                out,
                "impl Validate for {name} {{\n\
                 fn validate(&self, path: &str, errors: &mut Vec<FieldError>) {{\n\
                 match self {{\n{arms}}}\n}}\n}}\n\n",
                name = s.name
            );
        } else {
            let _ = write!(
                out,
                "impl Validate for {name} {{\n\
                 fn validate(&self, _path: &str, _errors: &mut Vec<FieldError>) {{}}\n}}\n\n",
                name = s.name
            );
        }
        Ok(out)
    }

    fn uses_timestamp(&self, ty: &str) -> bool {
        ty.contains("EpochSeconds")
    }

    /// `default` when the model's default is Rust's `Default::default()`, otherwise a
    /// `default = "fn"` attribute with a generated function.
    fn default_attr(
        &mut self,
        s: &Shape,
        member: &str,
        ty: &str,
        default: &Json,
    ) -> Result<String, Error> {
        let (is_zero, lit) = match (ty, default) {
            ("i8" | "i16" | "i32" | "i64", Json::Number(n)) if n.fract() == 0.0 => {
                (*n == 0.0, format!("{}", *n as i64))
            }
            ("f32" | "f64", Json::Number(n)) => (*n == 0.0, format!("{n:?}")),
            ("bool", Json::Bool(b)) => (!b, b.to_string()),
            ("String", Json::String(v)) => (v.is_empty(), format!("{v:?}.to_owned()")),
            (t, Json::Array(a)) if t.starts_with("Vec<") && a.is_empty() => (true, String::new()),
            (t, Json::Object(o))
                if t.starts_with("std::collections::BTreeMap<") && o.is_empty() =>
            {
                (true, String::new())
            }
            _ => {
                return err(format!(
                    "{}${member}: default value {default:?} for a {ty} is not supported",
                    s.id
                ));
            }
        };
        if is_zero {
            return Ok("default".to_owned());
        }
        let fn_name = format!(
            "default_{}_{}",
            names::snake_case(s.name),
            names::snake_case(member)
        );
        self.default_fns.push(format!(
            "/// The model's default for `{}.{member}`.\nfn {fn_name}() -> {ty} {{\n    {lit}\n}}\n\n",
            s.name
        ));
        Ok(format!("default = {:?}", fn_name))
    }

    // --- validation ----------------------------------------------------------------------

    /// Whether a value of shape `target` has anything to check.
    fn needs_checks(&mut self, target: &str) -> Result<bool, Error> {
        if target.starts_with("smithy.api#") {
            return Ok(false);
        }
        if let Some(&known) = self.needs_checks_memo.get(target) {
            return Ok(known);
        }
        // Recursive shapes: assume yes while computing (the answer is only an optimisation).
        self.needs_checks_memo.insert(target.to_owned(), true);
        let s = self.shape(target)?;
        let has_trait = |t: &str| s.trait_(t).is_some();
        let result = match s.kind {
            _ if enum_values(s).is_some() => false,
            "string" => has_trait("smithy.api#length") || has_trait("smithy.api#pattern"),
            "integer" | "long" | "short" | "byte" | "float" | "double" => {
                has_trait("smithy.api#range")
            }
            "list" | "set" => {
                has_trait("smithy.api#length")
                    || has_trait("smithy.api#uniqueItems")
                    || self.needs_member_checks(s.json.get("member"))?
            }
            "map" => {
                has_trait("smithy.api#length")
                    || self.needs_member_checks(s.json.get("key"))?
                    || self.needs_member_checks(s.json.get("value"))?
            }
            "structure" => {
                let mut any = false;
                for (name, m) in s.members() {
                    let required = m
                        .get("traits")
                        .and_then(|t| t.get("smithy.api#required"))
                        .is_some();
                    member_target(s, name, m)?;
                    if (required && member_default(m).is_none())
                        || self.needs_member_checks(Some(m))?
                    {
                        any = true;
                    }
                }
                any
            }
            "union" => {
                let mut any = false;
                for (_, m) in s.members() {
                    if self.needs_member_checks(Some(m))? {
                        any = true;
                    }
                }
                any
            }
            _ => false,
        };
        self.needs_checks_memo.insert(target.to_owned(), result);
        Ok(result)
    }

    /// Whether a member (of a structure, union, list or map) has anything to check: its own
    /// constraint traits or its target's.
    fn needs_member_checks(&mut self, member: Option<&Json>) -> Result<bool, Error> {
        let Some(m) = member else {
            return Ok(false);
        };
        let own = m
            .get("traits")
            .is_some_and(|t| CONSTRAINT_TRAITS.iter().any(|name| t.get(name).is_some()));
        let target = m.get("target").and_then(Json::as_str).unwrap_or(UNIT);
        Ok(own || self.needs_checks(target)?)
    }

    /// The static for `pattern` and whether it has an excluded prefix. `owner` names the
    /// shape (or shape and member) for error messages and the static's name.
    fn pattern_static(&mut self, owner: &str, pattern: &str) -> Result<(String, bool), Error> {
        if let Some(p) = self.patterns.iter().find(|p| p.original == pattern) {
            return Ok((p.name.clone(), p.excluded.is_some()));
        }
        let translate =
            |p: &str| pattern::ecma_to_rust(p).map_err(|e| Error(format!("{owner}: {e}")));
        let (translated, excluded) = match pattern::split_leading_negative_lookahead(pattern) {
            Some((excluded, rest)) => (translate(&rest)?, Some(translate(&excluded)?)),
            None => (translate(pattern)?, None),
        };
        let short = owner.rsplit_once('#').map_or(owner, |(_, n)| n);
        let short: String = short
            .split('$')
            .map(names::variant_ident)
            .collect::<Vec<_>>()
            .concat();
        let mut name = format!("{}_PATTERN", names::screaming_snake(&short));
        while self.patterns.iter().any(|p| p.name == name) {
            name.push('_');
        }
        let has_excluded = excluded.is_some();
        self.patterns.push(PatternStatic {
            name: name.clone(),
            original: pattern.to_owned(),
            translated,
            excluded,
        });
        Ok((name, has_excluded))
    }

    /// Statements checking the value `v` (an expression of type `&T`) of shape `target`,
    /// reported at path `p` (an expression of type `&str`). `member` is the member through
    /// which the value is reached, if any: its constraint traits override the target's.
    /// `depth` keeps loop variables apart.
    fn value_checks(
        &mut self,
        target: &str,
        member: Option<(&str, &Json)>,
        v: &str,
        p: &str,
        depth: usize,
        out: &mut String,
    ) -> Result<(), Error> {
        let member_traits = member.and_then(|(_, m)| m.get("traits"));
        let own_constraints = member_traits
            .is_some_and(|t| CONSTRAINT_TRAITS.iter().any(|name| t.get(name).is_some()));
        if !own_constraints && !self.needs_checks(target)? {
            return Ok(());
        }
        let prelude;
        let s: &Shape = match self.model.shape(target) {
            Some(s) => s,
            None if target.starts_with("smithy.api#") => {
                prelude = prelude_shape(target)?;
                &prelude
            }
            None => return err(format!("shape {target} is referenced but not defined")),
        };
        let owner = match member {
            Some((owner, _)) => owner.to_owned(),
            None => s.id.to_owned(),
        };
        // Statics are named after the shape that carries the pattern.
        let pattern_owner = if member_traits.is_some_and(|t| t.get("smithy.api#pattern").is_some())
        {
            owner.clone()
        } else {
            s.id.to_owned()
        };
        let trait_of = |name: &str| {
            member_traits
                .and_then(|t| t.get(name))
                .or_else(|| s.trait_(name))
        };
        let length = trait_of("smithy.api#length");
        let (min_len, max_len) = match length {
            Some(l) => (
                int_bound(l.get("min"), &owner)?,
                int_bound(l.get("max"), &owner)?,
            ),
            None => (None, None),
        };
        match s.kind {
            _ if enum_values(s).is_some() => {}
            "string" => {
                if length.is_some() {
                    self.uses.insert("check_chars");
                    let _ = writeln!(
                        out,
                        "check_chars({v}, {}, {}, {p}, errors);",
                        opt_lit(min_len),
                        opt_lit(max_len)
                    );
                }
                if let Some(pattern) = trait_of("smithy.api#pattern").and_then(Json::as_str) {
                    let (name, excluded) = self.pattern_static(&pattern_owner, pattern)?;
                    self.uses.insert("compile_pattern");
                    if excluded {
                        self.uses.insert("check_pattern_excluding");
                        let _ = writeln!(
                            out,
                            "check_pattern_excluding({v}, &{name}, &{name}_EXCLUDED, {name}_SOURCE, {p}, errors);"
                        );
                    } else {
                        self.uses.insert("check_pattern");
                        let _ = writeln!(
                            out,
                            "check_pattern({v}, &{name}, {name}_SOURCE, {p}, errors);"
                        );
                    }
                }
            }
            "integer" | "long" | "short" | "byte" => {
                if let Some(range) = trait_of("smithy.api#range") {
                    let min = int_bound(range.get("min"), &owner)?;
                    let max = int_bound(range.get("max"), &owner)?;
                    self.uses.insert("check_range");
                    let _ = writeln!(
                        out,
                        "check_range(i64::from(*{v}), {}, {}, {p}, errors);",
                        opt_lit(min),
                        opt_lit(max)
                    );
                }
            }
            "float" | "double" if trait_of("smithy.api#range").is_some() => {
                return err(format!(
                    "{owner}: @range on floating point shapes is not supported"
                ));
            }
            "list" | "set" => {
                if length.is_some() {
                    self.uses.insert("check_items");
                    let _ = writeln!(
                        out,
                        "check_items({v}.len(), {}, {}, {p}, errors);",
                        opt_lit(min_len),
                        opt_lit(max_len)
                    );
                }
                if s.kind == "set" || trait_of("smithy.api#uniqueItems").is_some() {
                    self.uses.insert("check_unique");
                    let _ = writeln!(out, "check_unique({v}, {p}, errors);");
                }
                let item = s.json.get("member");
                let item_target = item
                    .and_then(|m| m.get("target"))
                    .and_then(Json::as_str)
                    .unwrap_or(UNIT);
                if self.needs_member_checks(item)? {
                    let item_owner = format!("{}$member", s.id);
                    self.uses.insert("index_path");
                    let _ = writeln!(out, "for (i, item{depth}) in {v}.iter().enumerate() {{");
                    let _ = writeln!(out, "let p{depth} = index_path({p}, i);");
                    self.value_checks(
                        item_target,
                        item.map(|m| (item_owner.as_str(), m)),
                        &format!("item{depth}"),
                        &format!("&p{depth}"),
                        depth + 1,
                        out,
                    )?;
                    out.push_str("}\n");
                }
            }
            "map" => {
                if length.is_some() {
                    self.uses.insert("check_items");
                    let _ = writeln!(
                        out,
                        "check_items({v}.len(), {}, {}, {p}, errors);",
                        opt_lit(min_len),
                        opt_lit(max_len)
                    );
                }
                let key = s.json.get("key");
                let value = s.json.get("value");
                let k = key
                    .and_then(|m| m.get("target"))
                    .and_then(Json::as_str)
                    .unwrap_or(UNIT);
                let val = value
                    .and_then(|m| m.get("target"))
                    .and_then(Json::as_str)
                    .unwrap_or(UNIT);
                let key_checks = self.needs_member_checks(key)?;
                let item_checks = self.needs_member_checks(value)?;
                if key_checks || item_checks {
                    let key_is_enum = self
                        .model
                        .shape(k)
                        .is_some_and(|ks| enum_values(ks).is_some());
                    let key_str = if key_is_enum {
                        format!("key{depth}.as_str()")
                    } else {
                        format!("key{depth}")
                    };
                    let key_owner = format!("{}$key", s.id);
                    let value_owner = format!("{}$value", s.id);
                    self.uses.insert("field_path");
                    if item_checks {
                        let _ = writeln!(out, "for (key{depth}, item{depth}) in {v} {{");
                    } else {
                        let _ = writeln!(out, "for key{depth} in {v}.keys() {{");
                    }
                    let _ = writeln!(out, "let p{depth} = field_path({p}, {key_str});");
                    if key_checks {
                        self.value_checks(
                            k,
                            key.map(|m| (key_owner.as_str(), m)),
                            &format!("key{depth}"),
                            &format!("&p{depth}"),
                            depth + 1,
                            out,
                        )?;
                    }
                    if item_checks {
                        self.value_checks(
                            val,
                            value.map(|m| (value_owner.as_str(), m)),
                            &format!("item{depth}"),
                            &format!("&p{depth}"),
                            depth + 1,
                            out,
                        )?;
                    }
                    out.push_str("}\n");
                }
            }
            "structure" | "union" => {
                let _ = writeln!(out, "{v}.validate({p}, errors);");
            }
            _ => {}
        }
        Ok(())
    }

    fn gen_validate(&mut self, s: &Shape) -> Result<String, Error> {
        let mut body = String::new();
        for (member, m) in s.members() {
            let ident = names::field_ident(member);
            let target = member_target(s, member, m)?;
            let required = m
                .get("traits")
                .and_then(|t| t.get("smithy.api#required"))
                .is_some();
            let mut checks = String::new();
            let owner = format!("{}${member}", s.id);
            self.value_checks(target, Some((&owner, m)), "v", "&p", 0, &mut checks)?;
            let has_default = member_default(m).is_some();
            if has_default {
                if !checks.is_empty() {
                    self.uses.insert("field_path");
                    let _ = write!(
                        body,
                        "{{\nlet v = &self.{ident};\nlet p = field_path(path, {member:?});\n{checks}}}\n"
                    );
                }
                continue;
            }
            match (required, checks.is_empty()) {
                (true, false) => {
                    self.uses.insert("field_path");
                    let _ = write!(
                        body,
                        "match &self.{ident} {{\n\
                         Some(v) => {{\nlet p = field_path(path, {member:?});\n{checks}}}\n\
                         None => errors.push(FieldError::required(field_path(path, {member:?}))),\n}}\n"
                    );
                }
                (true, true) => {
                    self.uses.insert("field_path");
                    let _ = write!(
                        body,
                        "if self.{ident}.is_none() {{\n\
                         errors.push(FieldError::required(field_path(path, {member:?})));\n}}\n"
                    );
                }
                (false, false) => {
                    self.uses.insert("field_path");
                    let _ = write!(
                        body,
                        "if let Some(v) = &self.{ident} {{\nlet p = field_path(path, {member:?});\n{checks}}}\n"
                    );
                }
                (false, true) => {}
            }
        }
        let (path, errors) = if body.is_empty() {
            ("_path", "_errors")
        } else {
            ("path", "errors")
        };
        Ok(format!(
            "impl Validate for {name} {{\n\
             fn validate(&self, {path}: &str, {errors}: &mut Vec<FieldError>) {{\n{body}}}\n}}\n\n",
            name = s.name
        ))
    }

    // --- errors and operations -----------------------------------------------------------

    fn gen_error_table(&self) -> Result<String, Error> {
        let mut rows = String::new();
        for s in self.model.of_kind("structure") {
            let Some(kind) = s.trait_("smithy.api#error").and_then(Json::as_str) else {
                continue;
            };
            let status = match s.trait_("smithy.api#httpError").and_then(Json::as_f64) {
                Some(n) if (100.0..600.0).contains(&n) && n.fract() == 0.0 => n as u16,
                Some(n) => return err(format!("{}: invalid httpError {n}", s.id)),
                None if kind == "server" => 500,
                None => 400,
            };
            let _ = writeln!(rows, "    ({:?}, {status}),", s.name);
        }
        let carrier = match self.protocol {
            Protocol::AwsJson1_1 => "its `__type`",
            Protocol::RestJson1 => "its `X-Amzn-ErrorType`",
        };
        Ok(format!(
            "/// Every error shape of the model ({carrier}) with its HTTP status code.\n\
             pub const ERROR_HTTP_STATUS: &[(&str, u16)] = &[\n{rows}];\n\n"
        ))
    }

    fn gen_operations(&mut self, service: Option<&Shape>) -> Result<String, Error> {
        struct Op {
            name: String,
            method: String,
            input: Option<String>,
            output: Option<String>,
            doc: Option<String>,
            /// restJson1 only: the `@http` binding and the input members bound to the URI.
            http: Option<HttpTrait>,
            bindings: Vec<String>,
        }
        let mut ops = Vec::new();
        for s in self.model.of_kind("operation") {
            let io = |key: &str| -> Result<Option<String>, Error> {
                match s
                    .json
                    .get(key)
                    .and_then(|j| j.get("target"))
                    .and_then(Json::as_str)
                {
                    None | Some(UNIT) => Ok(None),
                    Some(t) => {
                        let shape = self.shape(t)?;
                        if shape.kind != "structure" {
                            return err(format!("{}: {key} {t} is not a structure", s.id));
                        }
                        Ok(Some(shape.name.to_owned()))
                    }
                }
            };
            let (http, bindings) = match self.protocol {
                Protocol::AwsJson1_1 => (None, Vec::new()),
                Protocol::RestJson1 => {
                    let http = HttpTrait::of(s)?;
                    let bindings = self.http_bindings(s, &http)?;
                    (Some(http), bindings)
                }
            };
            ops.push(Op {
                name: s.name.to_owned(),
                method: names::field_ident(s.name),
                input: io("input")?,
                output: io("output")?,
                doc: docs_of(s.json),
                http,
                bindings,
            });
        }
        let service_name = service.map_or("Service", |s| s.name);
        let mut out = String::new();

        // enum Operation
        let about_name = match self.protocol {
            Protocol::AwsJson1_1 => "the name is the part of `X-Amz-Target` after the dot",
            Protocol::RestJson1 => "each is one HTTP method and URI, see [`ROUTES`]",
        };
        out.push_str(&format!(
            "/// The operations of `{service_name}`; {about_name}.\n\
             #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\npub enum Operation {{\n"
        ));
        for op in &ops {
            if let Some(doc) = &op.doc {
                let _ = writeln!(out, "    /// {doc}");
            }
            let _ = writeln!(out, "    {},", op.name);
        }
        out.push_str("}\n\nimpl Operation {\n    /// Every operation, in model order.\n    pub const ALL: &[Operation] = &[\n");
        for op in &ops {
            let _ = writeln!(out, "        Operation::{},", op.name);
        }
        out.push_str("    ];\n\n    /// The operation called `name` (case-sensitive), e.g. `\"CreateContact\"`.\n");
        out.push_str(
            "    pub fn from_name(name: &str) -> Option<Operation> {\n        match name {\n",
        );
        for op in &ops {
            let _ = writeln!(
                out,
                "            {:?} => Some(Operation::{}),",
                op.name, op.name
            );
        }
        out.push_str("            _ => None,\n        }\n    }\n\n    /// The operation's name.\n");
        out.push_str("    pub fn name(&self) -> &'static str {\n        match self {\n");
        for op in &ops {
            let _ = writeln!(out, "            Operation::{} => {:?},", op.name, op.name);
        }
        out.push_str("        }\n    }\n");
        if self.protocol == Protocol::RestJson1 {
            out.push_str("\n    /// The operation's HTTP binding (`@http`).\n    pub fn http(&self) -> Route {\n        match self {\n");
            for (i, op) in ops.iter().enumerate() {
                let _ = writeln!(out, "            Operation::{} => ROUTES[{i}],", op.name);
            }
            out.push_str("        }\n    }\n");
        }
        out.push_str("}\n\n");
        if self.protocol == Protocol::RestJson1 {
            out.push_str(
                "/// The HTTP binding (`@http`) of an operation.\n\
                 #[derive(Debug, Clone, Copy, PartialEq, Eq)]\n\
                 pub struct Route {\n\
                 \x20   pub operation: Operation,\n\
                 \x20   /// The HTTP method, e.g. `\"POST\"`.\n\
                 \x20   pub method: &'static str,\n\
                 \x20   /// The URI pattern: `/`-separated literal segments and `{label}` segments, each label\n\
                 \x20   /// the name of an input member bound with `@httpLabel`.\n\
                 \x20   pub uri: &'static str,\n\
                 \x20   /// The status code of a successful response.\n\
                 \x20   pub code: u16,\n}\n\n\
                 /// Every operation's HTTP binding, in model order.\n\
                 pub const ROUTES: &[Route] = &[\n",
            );
            for op in &ops {
                if let Some(h) = &op.http {
                    let _ = writeln!(
                        out,
                        "    Route {{ operation: Operation::{}, method: {:?}, uri: {:?}, code: {} }},",
                        op.name, h.method, h.uri, h.code
                    );
                }
            }
            out.push_str("];\n\n");
        }
        out.push_str(
            "impl std::fmt::Display for Operation {\n    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {\n        f.write_str(self.name())\n    }\n}\n\n",
        );

        // The handler trait.
        let _ = write!(
            out,
            "/// The server side of `{service_name}`: one method per operation. Every method has a default\n\
             /// that answers a 400 \"not implemented\" error, so an implementation can grow one\n\
             /// operation at a time. Inputs reaching a method have passed `Validate`.\n\
             pub trait {trait_name}: Send + Sync {{\n",
            trait_name = self.trait_name,
        );
        for op in &ops {
            let input_param = op
                .input
                .as_ref()
                .map(|i| format!(", input: {i}"))
                .unwrap_or_default();
            let output_ty = op.output.clone().unwrap_or_else(|| "()".to_owned());
            let ignore = if op.input.is_some() {
                "let _ = (ctx, input);"
            } else {
                "let _ = ctx;"
            };
            if let Some(doc) = &op.doc {
                let _ = writeln!(out, "    /// {doc}");
            }
            let _ = write!(
                out,
                "    fn {method}(&self, ctx: &RequestContext{input_param}) -> impl std::future::Future<Output = Result<{output_ty}, ApiError>> + Send {{\n\
                 \x20       {ignore}\n\
                 \x20       async {{ Err(ApiError::not_implemented({name:?})) }}\n    }}\n\n",
                method = op.method,
                name = op.name,
            );
        }
        out.push_str("}\n\n");

        if self.protocol == Protocol::RestJson1 {
            self.gen_rest_dispatch(
                &mut out,
                ops.iter().map(|op| RestOp {
                    name: &op.name,
                    method: &op.method,
                    input: op.input.as_deref(),
                    has_output: op.output.is_some(),
                    code: op.http.as_ref().map_or(200, |h| h.code),
                    bindings: &op.bindings,
                }),
            );
            return Ok(out);
        }

        // dispatch
        out.push_str(
            &"/// Runs one operation: parses `body` (an empty body counts as `{}`), checks types and\n\
             /// constraints, calls `handler` and serialises its result.\n\
             ///\n\
             /// Errors: a body that is not a JSON object is `CANNOT_PARSE`; a member of the wrong type\n\
             /// or an unknown enum value, and every constraint violation, is `FIELD_VALIDATION_FAILED`\n\
             /// with the members' paths (`Plan.Stages[0].DurationInMinutes`).\n\
             pub async fn dispatch<H: {trait_name}>(\n    handler: &H,\n    ctx: &RequestContext,\n    op: Operation,\n    body: &[u8],\n) -> Result<serde_json::Value, ApiError> {\n    match op {\n"
                .replace("{trait_name}", &self.trait_name),
        );
        for op in &ops {
            let call_input = match &op.input {
                Some(input) => {
                    self.uses.insert("decode_input");
                    format!("let input: {input} = decode_input(body)?;\n")
                }
                None => {
                    self.uses.insert("decode_unit");
                    "decode_unit(body)?;\n".to_owned()
                }
            };
            let args = if op.input.is_some() {
                "ctx, input"
            } else {
                "ctx"
            };
            let result = match &op.output {
                Some(_) => {
                    self.uses.insert("encode_output");
                    format!("encode_output(&handler.{}({args}).await?)", op.method)
                }
                None => format!(
                    "{{\nhandler.{}({args}).await?;\nOk(serde_json::Value::Object(serde_json::Map::new()))\n}}",
                    op.method
                ),
            };
            let _ = write!(
                out,
                "        Operation::{} => {{\n{call_input}{result}\n}}\n",
                op.name
            );
        }
        out.push_str("    }\n}\n");
        Ok(out)
    }
}

fn emits_type(s: &Shape) -> bool {
    s.kind == "structure" || s.kind == "union" || enum_values(s).is_some()
}

/// The constraint traits a member may carry itself (overriding its target's).
const CONSTRAINT_TRAITS: &[&str] = &[
    "smithy.api#length",
    "smithy.api#range",
    "smithy.api#pattern",
    "smithy.api#uniqueItems",
];

/// The JSON of a shape without traits (what a prelude shape is, for validation).
static BARE_SHAPE: Json = Json::Object(Vec::new());

/// A prelude simple shape (`smithy.api#String`) as a [`Shape`], so a member's own constraint
/// traits can be checked on it.
fn prelude_shape(id: &str) -> Result<Shape<'static>, Error> {
    let name = id.strip_prefix("smithy.api#").unwrap_or(id);
    let kind = match name {
        "String" => "string",
        "Boolean" | "PrimitiveBoolean" => "boolean",
        "Integer" | "PrimitiveInteger" => "integer",
        "Long" | "PrimitiveLong" => "long",
        "Short" | "PrimitiveShort" => "short",
        "Byte" | "PrimitiveByte" => "byte",
        "Float" | "PrimitiveFloat" => "float",
        "Double" | "PrimitiveDouble" => "double",
        "Timestamp" => "timestamp",
        _ => return err(format!("prelude shape {id} is not supported")),
    };
    Ok(Shape {
        id: "smithy.api#prelude",
        name: "Prelude",
        kind,
        json: &BARE_SHAPE,
    })
}

fn member_target<'j>(s: &Shape, name: &str, m: &'j Json) -> Result<&'j str, Error> {
    m.get("target")
        .and_then(Json::as_str)
        .ok_or_else(|| Error(format!("{}${name} has no target", s.id)))
}

/// The member's `@default`, unless absent or `null` (a `null` default removes the target's).
fn member_default(m: &Json) -> Option<&Json> {
    match m.get("traits").and_then(|t| t.get("smithy.api#default")) {
        None | Some(Json::Null) => None,
        Some(d) => Some(d),
    }
}

/// The pattern as an inline code span for a doc comment.
fn names_code(pattern: &str) -> String {
    let ticks = if pattern.contains('`') { "``" } else { "`" };
    format!("{ticks}{pattern}{ticks}")
}

/// An operation's `@http` trait.
struct HttpTrait {
    method: String,
    uri: String,
    code: u16,
}

impl HttpTrait {
    fn of(op: &Shape) -> Result<HttpTrait, Error> {
        let Some(http) = op.trait_("smithy.api#http") else {
            return err(format!("{}: a restJson1 operation needs @http", op.id));
        };
        let method = http
            .get("method")
            .and_then(Json::as_str)
            .ok_or_else(|| Error(format!("{}: @http has no method", op.id)))?;
        let uri = http
            .get("uri")
            .and_then(Json::as_str)
            .ok_or_else(|| Error(format!("{}: @http has no uri", op.id)))?;
        let code = match http.get("code").and_then(Json::as_f64) {
            None => 200,
            Some(n) if (200.0..300.0).contains(&n) && n.fract() == 0.0 => n as u16,
            Some(n) => return err(format!("{}: unsupported @http code {n}", op.id)),
        };
        if !method.bytes().all(|b| b.is_ascii_uppercase()) || method.is_empty() {
            return err(format!("{}: unsupported @http method {method:?}", op.id));
        }
        if !uri.starts_with('/') || uri.contains('?') || uri.contains("//") {
            return err(format!(
                "{}: unsupported @http uri {uri:?} (a query literal or empty segment)",
                op.id
            ));
        }
        for segment in uri.split('/').skip(1) {
            let is_label = segment.starts_with('{') && segment.ends_with('}');
            if is_label && (segment.len() < 3 || segment.contains('+')) {
                return err(format!(
                    "{}: unsupported label {segment} in {uri:?} (greedy or empty)",
                    op.id
                ));
            }
            if !is_label && (segment.contains('{') || segment.contains('}')) {
                return err(format!(
                    "{}: a label must be a whole segment in {uri:?}",
                    op.id
                ));
            }
        }
        Ok(HttpTrait {
            method: method.to_owned(),
            uri: uri.to_owned(),
            code,
        })
    }

    fn labels(&self) -> impl Iterator<Item = &str> {
        self.uri
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    }
}

/// HTTP binding traits this generator does not implement (Muster's restJson1 models bind
/// members to the URI and the query only).
const UNSUPPORTED_BINDINGS: &[&str] = &[
    "smithy.api#httpHeader",
    "smithy.api#httpPayload",
    "smithy.api#httpPrefixHeaders",
    "smithy.api#httpQueryParams",
    "smithy.api#httpResponseCode",
];

/// What `gen_rest_dispatch` needs of an operation.
struct RestOp<'o> {
    name: &'o str,
    method: &'o str,
    input: Option<&'o str>,
    has_output: bool,
    code: u16,
    /// `HttpBinding` expressions for the input members bound to the URI or query.
    bindings: &'o [String],
}

impl Generator<'_, '_> {
    /// The `HttpBinding` expressions of the operation's input members.
    fn http_bindings(&self, op: &Shape, http: &HttpTrait) -> Result<Vec<String>, Error> {
        let target_of = |key: &str| {
            op.json
                .get(key)
                .and_then(|j| j.get("target"))
                .and_then(Json::as_str)
                .filter(|t| *t != UNIT)
        };
        if let Some(output) = target_of("output") {
            let shape = self.shape(output)?;
            if http.code == 204 && !shape.members().is_empty() {
                return err(format!(
                    "{}: answers 204 (no body) but its output {} has members",
                    op.id, shape.id
                ));
            }
            for (name, m) in shape.members() {
                let traits = m.get("traits");
                for t in UNSUPPORTED_BINDINGS {
                    if traits.and_then(|tr| tr.get(t)).is_some() {
                        return err(format!("{}${name}: {t} is not supported", shape.id));
                    }
                }
            }
        }
        let mut bindings = Vec::new();
        let mut labels_bound = BTreeSet::new();
        if let Some(input) = target_of("input") {
            let shape = self.shape(input)?;
            for (name, m) in shape.members() {
                let traits = m.get("traits");
                for t in UNSUPPORTED_BINDINGS {
                    if traits.and_then(|tr| tr.get(t)).is_some() {
                        return err(format!("{}${name}: {t} is not supported", shape.id));
                    }
                }
                let target = member_target(shape, name, m)?;
                if traits.and_then(|t| t.get("smithy.api#httpLabel")).is_some() {
                    if !http.labels().any(|l| l == name) {
                        return err(format!(
                            "{}${name} is an @httpLabel but {} has no {{{name}}}",
                            shape.id, http.uri
                        ));
                    }
                    if !self.is_string_like(target) {
                        return err(format!(
                            "{}${name}: only string labels are supported",
                            shape.id
                        ));
                    }
                    labels_bound.insert(name.clone());
                    bindings.push(format!("HttpBinding::Label({name:?})"));
                } else if let Some(q) = traits.and_then(|t| t.get("smithy.api#httpQuery")) {
                    let Some(query_name) = q.as_str() else {
                        return err(format!("{}${name}: @httpQuery needs a name", shape.id));
                    };
                    let list_item = self
                        .model
                        .shape(target)
                        .filter(|s| s.kind == "list" || s.kind == "set")
                        .and_then(|s| s.target_of("member"));
                    match list_item {
                        Some(item) if self.is_string_like(item) => bindings.push(format!(
                            "HttpBinding::QueryList {{ member: {name:?}, name: {query_name:?} }}"
                        )),
                        None if self.is_string_like(target) => bindings.push(format!(
                            "HttpBinding::Query {{ member: {name:?}, name: {query_name:?} }}"
                        )),
                        _ => {
                            return err(format!(
                                "{}${name}: only string (and list of string) query members are supported",
                                shape.id
                            ));
                        }
                    }
                }
            }
        }
        for label in http.labels() {
            if !labels_bound.contains(label) {
                return err(format!(
                    "{}: the label {{{label}}} of {} is bound to no input member",
                    op.id, http.uri
                ));
            }
        }
        Ok(bindings)
    }

    /// A string or an enum (both are JSON strings).
    fn is_string_like(&self, target: &str) -> bool {
        target == "smithy.api#String"
            || self
                .model
                .shape(target)
                .is_some_and(|s| s.kind == "string" || s.kind == "enum")
    }

    fn gen_rest_dispatch<'o>(&mut self, out: &mut String, ops: impl Iterator<Item = RestOp<'o>>) {
        let _ = write!(
            out,
            "/// Runs one operation: assembles its input from the URI labels (`labels`: name and\n\
             /// decoded value), the query (`query`: decoded pairs in order, repeated names kept) and\n\
             /// `body` (a JSON object; empty counts as `{{}}`; a member bound to the URI or the query is\n\
             /// taken from there only), checks types and constraints, calls `handler` and serialises\n\
             /// its result with the operation's success status (no body for 204).\n\
             ///\n\
             /// Errors: a body that is not a JSON object is `CANNOT_PARSE`; a member of the wrong type,\n\
             /// an unknown enum value or union member, and every constraint violation, is\n\
             /// `FIELD_VALIDATION_FAILED` with the members' paths (`incidentTemplate.title`).\n\
             pub async fn dispatch<H: {}>(\n    handler: &H,\n    ctx: &RequestContext,\n    op: Operation,\n    labels: &[(&str, String)],\n    query: &[(String, String)],\n    body: &[u8],\n) -> Result<RestOutput, ApiError> {{\n    match op {{\n",
            self.trait_name
        );
        self.uses.insert("RestOutput");
        for op in ops {
            let call_input = match op.input {
                Some(input) => {
                    self.uses.insert("decode_rest_input");
                    if !op.bindings.is_empty() {
                        self.uses.insert("HttpBinding");
                    }
                    format!(
                        "let input: {input} = decode_rest_input(body, &[{}], labels, query)?;\n",
                        op.bindings.join(", ")
                    )
                }
                None => {
                    self.uses.insert("decode_unit");
                    "decode_unit(body)?;\n".to_owned()
                }
            };
            let args = if op.input.is_some() {
                "ctx, input"
            } else {
                "ctx"
            };
            let result = if op.has_output {
                self.uses.insert("rest_output");
                format!(
                    "rest_output({}, &handler.{}({args}).await?)",
                    op.code, op.method
                )
            } else {
                format!(
                    "{{\nhandler.{}({args}).await?;\nOk(RestOutput::unit({}))\n}}",
                    op.method, op.code
                )
            };
            let _ = write!(
                out,
                "        Operation::{} => {{\n{call_input}{result}\n}}\n",
                op.name
            );
        }
        out.push_str("    }\n}\n");
    }
}
