//! What each fuzz target exercises.

use bakery_template::engine::{Template, Value};
use bakery_template::funcs::{BuildData, FuncContext, PackerFuncs};
use bakery_template::{LoadOptions, json, load::load_template, template::parse_text};
use std::collections::BTreeMap;
use std::path::Path;

pub fn json(text: &str) {
    let _ = json::parse(text);
}

pub fn engine(text: &str) {
    let cx = FuncContext {
        user_vars: BTreeMap::from([("a".to_string(), "A".to_string()), ("list".to_string(), "x,y".to_string())]),
        template_path: Some("/tmp/t.json".into()),
        build_name: Some("b".into()),
        build_type: Some("amazon-ebs".into()),
        packer_version: Some("1.6.6".into()),
        amazon: true,
        build_data: BuildData::Placeholders(["ID".to_string()].into_iter().collect()),
        ..Default::default()
    };
    let funcs = PackerFuncs::new(&cx);
    let data = Value::Map(BTreeMap::from([
        ("Path".to_string(), Value::str("/tmp/x")),
        ("Tags".to_string(), Value::Map(BTreeMap::from([("k".to_string(), Value::str("v"))]))),
    ]));
    if let Ok(t) = Template::parse(text, &funcs) {
        let _ = t.execute(&funcs, &data);
    }
    let vcx = FuncContext {
        in_variables: true,
        ..cx.clone()
    };
    let vfuncs = PackerFuncs::new(&vcx);
    let _ = bakery_template::variables::render_keeping_dot_fields(text, &vfuncs);
}

pub fn load(text: &str) {
    let path = Path::new("/nonexistent/fuzz/template.json");
    if let Ok(tpl) = parse_text(path, path, text.to_string()) {
        let opts = LoadOptions {
            vars: vec![("a".into(), "{{user `b`}}".into())],
            ..Default::default()
        };
        let _ = load_template(tpl.clone(), &opts);
        let _ = load_template(tpl, &LoadOptions { syntax_only: true, ..Default::default() });
    }
}
