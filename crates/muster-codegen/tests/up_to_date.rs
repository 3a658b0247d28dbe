//! The committed `muster-aws/src/wire/ssm_contacts.rs` is exactly what the generator makes of
//! the model, formatted the same way (`generate_formatted` is what the CLI writes).

use std::path::{Path, PathBuf};

const MODEL: &str = "ssm-contacts-2021-05-03.smithy.json";

#[test]
fn generated_wire_types_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model_path: PathBuf = root.join("../shared/spec/aws-models/smithy").join(MODEL);
    let output_path = root.join("crates/muster-aws/src/wire/ssm_contacts.rs");

    if !model_path.exists() {
        let in_ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        assert!(
            !in_ci,
            "CI is set but the model {} is missing: the up-to-date check of the generated wire types cannot run",
            model_path.display()
        );
        println!(
            "skipped: ../shared/spec not found (the generated wire types are committed; the check runs in CI where shared/ is present)"
        );
        return;
    }

    let model = std::fs::read_to_string(&model_path).expect("read the model");
    let committed =
        std::fs::read_to_string(&output_path).expect("read the committed ssm_contacts.rs");
    let config_dir = output_path.parent().expect("output has a parent directory");
    let generated = muster_codegen::generate_formatted(&model, MODEL, config_dir)
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

    let bad = tiny.replace("\"type\": \"enum\"", "\"type\": \"union\"");
    let e = muster_codegen::generate(&bad, "bad.json").unwrap_err();
    assert!(
        e.to_string()
            .contains("ex#Color of type union is not supported"),
        "{e}"
    );
    assert!(muster_codegen::generate("{", "x").is_err());
    assert!(muster_codegen::generate(r#"{"shapes": {}}"#, "x").is_err());
}
