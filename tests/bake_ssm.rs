//! `--publish-ssm`: a successful bake writes its AMI id to the SSM parameter (a later bake overwrites it
//! as a new version); a failed bake publishes nothing and leaves an existing value alone.

use crate::common;

use bakery_lab::Lab;
use common::*;

async fn parameter(c: &bakery_core::aws::Clients, name: &str) -> Option<(String, i64)> {
    match c.ssm.get_parameter().name(name).send().await {
        Ok(o) => o
            .parameter()
            .map(|p| (p.value().unwrap_or_default().to_string(), p.version())),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_parameter_not_found()) =>
        {
            None
        }
        Err(e) => panic!("GetParameter {name}: {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_ssm_writes_the_new_ami_overwrites_on_the_next_bake_and_never_on_failure() {
    let lab = Lab::shared();
    let _serial = SERIAL.lock().await;
    let c = clients(lab).await;
    let s = Scratch::new(lab, "ssm");
    let vars = lab.var_file();
    let param = "/app/primal";
    let bake = |name: &str, script: &str| {
        let tpl = s.write(
            &format!("{name}.json"),
            &template(
                name,
                "",
                &format!(r#"[{{"type":"shell","inline":["{script}"]}}]"#),
            ),
        );
        let out = s.run(
            lab,
            lab.moto_url(),
            &[
                "-color=false",
                "-var-file",
                vars.to_str().unwrap(),
                "--publish-ssm",
                param,
                tpl.to_str().unwrap(),
            ],
        );
        (out.status.code(), text(&out))
    };

    // A failed bake publishes nothing.
    let failed = lab.unique("ssm-fail");
    let (code, t) = bake(&failed, "exit 4");
    assert_eq!(code, Some(1), "{t}");
    assert!(!t.contains("Published"), "{t}");
    assert_eq!(parameter(&c, param).await, None, "{t}");

    // The first success creates the parameter with the AMI id.
    let first = lab.unique("ssm-first");
    let (code, t) = bake(&first, "true");
    assert_eq!(code, Some(0), "{t}");
    let ami1 = amis_named(&c, &first).await[0]
        .image_id()
        .unwrap()
        .to_string();
    assert_eq!(parameter(&c, param).await, Some((ami1.clone(), 1)), "{t}");
    assert!(
        t.contains(&format!(
            "Published {ami1} to SSM parameter {param} in us-east-1 (version 1)"
        )),
        "{t}"
    );

    // A second bake overwrites it: a new version holding the new AMI.
    let second = lab.unique("ssm-second");
    let (code, t) = bake(&second, "true");
    assert_eq!(code, Some(0), "{t}");
    let ami2 = amis_named(&c, &second).await[0]
        .image_id()
        .unwrap()
        .to_string();
    assert_ne!(ami1, ami2);
    assert_eq!(parameter(&c, param).await, Some((ami2.clone(), 2)), "{t}");
    assert!(t.contains("(version 2)"), "{t}");

    // A failing bake leaves the published value as it was.
    let (code, t) = bake(&lab.unique("ssm-fail2"), "exit 5");
    assert_eq!(code, Some(1), "{t}");
    assert_eq!(parameter(&c, param).await, Some((ami2, 2)), "{t}");
    assert_nothing_left(&c, "after the publish-ssm bakes").await;
}
