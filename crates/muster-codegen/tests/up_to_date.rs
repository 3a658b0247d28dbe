//! The committed `muster-aws/src/wire/ssm_contacts.rs` and `ssm_incidents.rs` are exactly
//! what the generator makes of the models, formatted the same way (`generate_formatted` is
//! what the CLI writes).

use std::path::{Path, PathBuf};

/// (model file, generated module) pairs.
const GENERATED: &[(&str, &str)] = &[
    ("ssm-contacts-2021-05-03.smithy.json", "ssm_contacts.rs"),
    ("ssm-incidents-2018-05-10.smithy.json", "ssm_incidents.rs"),
];

#[test]
fn generated_wire_types_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let models = root.join("../shared/spec/aws-models/smithy");
    let in_ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    for (model, module) in GENERATED {
        let model_path: PathBuf = models.join(model);
        let output_path = root.join("crates/muster-aws/src/wire").join(module);
        if !model_path.exists() {
            assert!(
                !in_ci,
                "CI is set but the model {} is missing: the up-to-date check of the generated wire types cannot run",
                model_path.display()
            );
            println!(
                "skipped {module}: {} not found (the generated wire types are committed; the check runs in CI where shared/ is present)",
                model_path.display()
            );
            continue;
        }
        let text = std::fs::read_to_string(&model_path).expect("read the model");
        let committed = std::fs::read_to_string(&output_path)
            .unwrap_or_else(|e| panic!("read the committed {module}: {e}"));
        let config_dir = output_path.parent().expect("output has a parent directory");
        let generated = muster_codegen::generate_formatted(&text, model, config_dir)
            .expect("generate from the model");
        if generated != committed {
            let line = generated
                .lines()
                .zip(committed.lines())
                .position(|(a, b)| a != b)
                .map_or_else(
                    || generated.lines().count().min(committed.lines().count()) + 1,
                    |i| i + 1,
                );
            panic!(
                "{} is out of date (first difference at line {line}); regenerate it with\n  \
                 cargo run -p muster-codegen -- generate {} {}",
                output_path.display(),
                model_path.display(),
                output_path.display()
            );
        }
    }
}

#[test]
fn generation_is_deterministic_and_rejects_bad_models() {
    let tiny = r#"{
      "smithy": "2.0",
      "shapes": {
        "ex#Name": {"type": "string", "traits": {"smithy.api#length": {"min": 1, "max": 3}, "smithy.api#pattern": "^\\w+$"}},
        "ex#Size": {"type": "integer", "traits": {"smithy.api#range": {"min": 1}}},
        "ex#Color": {"type": "enum", "members": {
          "DARK_RED": {"target": "smithy.api#Unit", "traits": {"smithy.api#enumValue": "dark-red"}}}},
        "ex#Names": {"type": "list", "member": {"target": "ex#Name"}, "traits": {"smithy.api#length": {"max": 2}}},
        "ex#ThingInput": {"type": "structure", "members": {
          "Name": {"target": "ex#Name", "traits": {"smithy.api#required": {}}},
          "Others": {"target": "ex#Names"},
          "Size": {"target": "ex#Size", "traits": {"smithy.api#default": 7}},
          "Color": {"target": "ex#Color"},
          "type": {"target": "smithy.api#String"}}},
        "ex#Oops": {"type": "structure", "members": {}, "traits": {"smithy.api#error": "server"}},
        "ex#PutThing": {"type": "operation", "input": {"target": "ex#ThingInput"}, "output": {"target": "smithy.api#Unit"}},
        "ex#Ping": {"type": "operation"}
      }
    }"#;
    let a = muster_codegen::generate(tiny, "tiny.json").expect("generates");
    let b = muster_codegen::generate(tiny, "tiny.json").expect("generates");
    assert_eq!(a, b);
    for expected in [
        "pub struct ThingInput {",
        "pub name: Option<String>,",
        "pub others: Option<Vec<String>>,",
        "#[serde(rename = \"Size\", default = \"default_thing_input_size\")]",
        "pub size: i32,",
        "pub r#type: Option<String>,",
        "#[serde(rename = \"dark-red\")]\n    DarkRed,",
        "check_chars(v, Some(1), Some(3), &p, errors);",
        "check_items(v.len(), None, Some(2), &p, errors);",
        "let p0 = index_path(&p, i);",
        "check_range(i64::from(*v), Some(1), None, &p, errors);",
        // ECMA `\w` is ASCII-only; the regex crate's is Unicode.
        "compile_pattern(r\"^[0-9A-Za-z_]+$\")",
        "(\"Oops\", 500),",
        "decode_unit(body)?;\n{\nhandler.ping(ctx).await?;",
        "let input: ThingInput = decode_input(body)?;\n{\nhandler.put_thing(ctx, input).await?;\nOk(serde_json::Value::Object(serde_json::Map::new()))",
        "fn put_thing(&self, ctx: &RequestContext, input: ThingInput)",
    ] {
        assert!(a.contains(expected), "missing {expected:?} in:\n{a}");
    }

    let bad = tiny.replace("\"type\": \"enum\"", "\"type\": \"document\"");
    let e = muster_codegen::generate(&bad, "bad.json").unwrap_err();
    assert!(
        e.to_string()
            .contains("ex#Color of type document is not supported"),
        "{e}"
    );
    // A union member without a value (smithy.api#Unit) has no serde form here.
    let unit_union = tiny.replace("\"type\": \"enum\"", "\"type\": \"union\"");
    let e = muster_codegen::generate(&unit_union, "bad.json").unwrap_err();
    assert!(e.to_string().contains("targets smithy.api#Unit"), "{e}");
    assert!(muster_codegen::generate("{", "x").is_err());
    assert!(muster_codegen::generate(r#"{"shapes": {}}"#, "x").is_err());
}

/// A tiny restJson1 service: a union, a label, a query list, a 204 operation.
const TINY_REST: &str = r#"{
  "smithy": "2.0",
  "shapes": {
    "ex#Svc": {"type": "service", "version": "1", "operations": [],
      "traits": {"aws.protocols#restJson1": {}, "aws.auth#sigv4": {"name": "ex-svc"}, "smithy.api#title": "Ex"}},
    "ex#Key": {"type": "string", "traits": {"smithy.api#length": {"min": 1, "max": 3}, "smithy.api#pattern": "^(?!aws:)[a-z:]+$"}},
    "ex#Keys": {"type": "list", "member": {"target": "ex#Key"}, "traits": {"smithy.api#uniqueItems": {}}},
    "ex#Choice": {"type": "union", "members": {
      "names": {"target": "ex#Keys"},
      "at": {"target": "smithy.api#Timestamp"},
      "empty": {"target": "ex#Nothing"}}},
    "ex#Nothing": {"type": "structure", "members": {}},
    "ex#UntagInput": {"type": "structure", "members": {
      "arn": {"target": "smithy.api#String", "traits": {"smithy.api#httpLabel": {}, "smithy.api#required": {}}},
      "keys": {"target": "ex#Keys", "traits": {"smithy.api#httpQuery": "tagKeys"}},
      "title": {"target": "smithy.api#String", "traits": {"smithy.api#length": {"max": 5}}},
      "choice": {"target": "ex#Choice"}}},
    "ex#UntagOutput": {"type": "structure", "members": {}},
    "ex#Untag": {"type": "operation", "input": {"target": "ex#UntagInput"}, "output": {"target": "ex#UntagOutput"},
      "traits": {"smithy.api#http": {"method": "DELETE", "uri": "/tags/{arn}", "code": 204}}}
  }
}"#;

#[test]
fn rest_json1_models_get_routes_bindings_and_unions() {
    let code = muster_codegen::generate(TINY_REST, "tiny-rest.json").expect("generates");
    for expected in [
        "(AWS restJson1)",
        "crates/muster-aws/src/wire/svc.rs",
        "pub trait Svc: Send + Sync {",
        "Route { operation: Operation::Untag, method: \"DELETE\", uri: \"/tags/{arn}\", code: 204 },",
        "Operation::Untag => ROUTES[0],",
        "decode_rest_input(body, &[HttpBinding::Label(\"arn\"), HttpBinding::QueryList { member: \"keys\", name: \"tagKeys\" }], labels, query)?;",
        "rest_output(204, &handler.untag(ctx, input).await?)",
        "labels: &[(&str, String)],\n    query: &[(String, String)],",
        // The union: externally tagged with the member names, recursing into the variant.
        "pub enum Choice {",
        "#[serde(rename = \"names\")]\n    Names(Vec<String>),",
        "#[serde(rename = \"at\")]\n    At(EpochSeconds),",
        "#[serde(rename = \"empty\")]\n    Empty(Nothing),",
        "Self::Names(v) => {\nlet p = field_path(path, \"names\");\ncheck_unique(v, &p, errors);",
        "Self::At(_) => {}",
        // The member's own @length on a prelude string.
        "check_chars(v, None, Some(5), &p, errors);",
        // The leading negative lookahead is checked as an excluded prefix.
        "compile_pattern(r\"^[a-z:]+$\")",
        "compile_pattern(r\"^(?:aws:)\")",
        "check_pattern_excluding(item0, &KEY_PATTERN, &KEY_PATTERN_EXCLUDED, KEY_PATTERN_SOURCE, &p0, errors);",
    ] {
        assert!(code.contains(expected), "missing {expected:?} in:\n{code}");
    }
    assert!(
        !code.contains("TARGET_PREFIX"),
        "restJson1 has no X-Amz-Target"
    );

    // A label with no bound member, a 204 with a body and a header binding are refused.
    let unbound = TINY_REST.replace("\"/tags/{arn}\"", "\"/tags/{other}\"");
    let e = muster_codegen::generate(&unbound, "x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("has no {arn}"), "{e}");
    let body_204 = TINY_REST.replace(
        "\"ex#UntagOutput\": {\"type\": \"structure\", \"members\": {}}",
        "\"ex#UntagOutput\": {\"type\": \"structure\", \"members\": {\"x\": {\"target\": \"smithy.api#String\"}}}",
    );
    let e = muster_codegen::generate(&body_204, "x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("answers 204"), "{e}");
    let header = TINY_REST.replace(
        "\"traits\": {\"smithy.api#length\": {\"max\": 5}}",
        "\"traits\": {\"smithy.api#httpHeader\": \"x-title\"}",
    );
    let e = muster_codegen::generate(&header, "x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("httpHeader is not supported"), "{e}");
    // Both protocols at once cannot be served.
    let both = TINY_REST.replace(
        "\"aws.protocols#restJson1\": {}",
        "\"aws.protocols#restJson1\": {}, \"aws.protocols#awsJson1_1\": {}",
    );
    assert!(muster_codegen::generate(&both, "x").is_err());
}

#[test]
fn aws_json_models_keep_their_target_prefix_and_trait_name() {
    let json11 = TINY_REST
        .replace(
            "\"aws.protocols#restJson1\": {}",
            "\"aws.protocols#awsJson1_1\": {}",
        )
        .replace("\"ex#Svc\"", "\"ex#SSMThings\"");
    let code = muster_codegen::generate(&json11, "x").expect("generates");
    assert!(code.contains("pub const TARGET_PREFIX: &str = \"SSMThings.\";"));
    assert!(code.contains("pub trait SsmThings: Send + Sync {"));
    assert!(code.contains("(AWS JSON 1.1)"));
    assert!(code.contains("crates/muster-aws/src/wire/ssm_things.rs"));
    assert!(!code.contains("ROUTES"));
}
