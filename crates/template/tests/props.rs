//! Property tests: no input makes the JSON parser, the template engine or
//! a load panic. `cargo test` runs a few hundred cases per property; the
//! ignored `long_*` tests run for BAKERY_PROPTEST_SECS seconds each (the
//! cargo-fuzz targets in fuzz/ do the same with coverage guidance).

use bakery_template::engine::{Template, Value};
use bakery_template::funcs::{FuncContext, PackerFuncs};
use bakery_template::load::load_template;
use bakery_template::template::parse_text;
use bakery_template::{LoadOptions, json};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Strings made of template and JSON fragments, so the generator reaches
/// deep into both grammars.
fn fragments() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "{{",
        "}}",
        "{{-",
        "-}}",
        " ",
        "|",
        "`a`",
        "\"b\"",
        "(",
        ")",
        ".Path",
        ".",
        "$x",
        ":=",
        "=",
        "user",
        "env",
        "build",
        "isotime",
        "strftime",
        "split",
        "replace",
        "upper",
        "clean_resource_name",
        "printf",
        "index",
        "len",
        "if",
        "else",
        "end",
        "range",
        "with",
        "define",
        "template",
        "block",
        "1",
        "-2",
        "1.5",
        "'c'",
        "nil",
        "true",
        "\"%s\"",
        "\"x\"",
        "`,`",
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"builders\"",
        "\"type\"",
        "\"amazon-ebs\"",
        "\"provisioners\"",
        "\"variables\"",
        "\"shell\"",
        "\"inline\"",
        "null",
        "\n",
        "\\",
        "é",
        "\u{0}",
    ]);
    prop::collection::vec(atoms, 0..40).prop_map(|v| v.concat())
}

fn engine(text: &str) {
    let cx = FuncContext {
        user_vars: BTreeMap::from([("a".into(), "A".into())]),
        template_path: Some("/tmp/t.json".into()),
        amazon: true,
        ..Default::default()
    };
    let funcs = PackerFuncs::new(&cx);
    if let Ok(t) = Template::parse(text, &funcs) {
        let _ = t.execute(&funcs, &Value::Missing);
    }
}

fn load(text: &str) {
    let p = Path::new("/nonexistent/t.json");
    let _ = json::parse(text);
    if let Ok(t) = parse_text(p, p, text.to_string()) {
        let _ = load_template(t, &LoadOptions::default());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn engine_never_panics(s in fragments()) {
        engine(&s);
    }

    #[test]
    fn engine_never_panics_on_any_string(s in ".{0,200}") {
        engine(&s);
    }

    #[test]
    fn json_and_load_never_panic(s in fragments()) {
        load(&s);
    }

    #[test]
    fn load_never_panics_on_templates_with_random_values(
        v in fragments(), k in "[a-z_]{1,12}", t in prop::sample::select(vec!["amazon-ebs", "shell", "file", "manifest", "docker"])
    ) {
        let value = serde_like_quote(&v);
        let text = format!(
            r#"{{"variables":{{"v":{value}}},"builders":[{{"type":"{t}","{k}":{value},"ami_name":{value}}}],"provisioners":[{{"type":"{t}","{k}":{value}}}],"post-processors":[{{"type":"{t}","{k}":{value}}}]}}"#
        );
        load(&text);
    }
}

/// A JSON string literal for `s`.
fn serde_like_quote(s: &str) -> String {
    let mut out = String::new();
    bakery_template::json::write_json_string(s, &mut out);
    out
}

fn run_for(mut f: impl FnMut(&mut proptest::test_runner::TestRunner)) {
    let secs: u64 = std::env::var("BAKERY_PROPTEST_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut runner = proptest::test_runner::TestRunner::default();
    while Instant::now() < deadline {
        f(&mut runner);
    }
}

#[test]
#[ignore = "long-running: BAKERY_PROPTEST_SECS=600 cargo test -p bakery-template --test tests -- --ignored props::"]
fn long_engine_and_load_never_panic() {
    run_for(|runner| {
        runner
            .run(&fragments(), |s| {
                engine(&s);
                load(&s);
                Ok(())
            })
            .unwrap();
    });
}
