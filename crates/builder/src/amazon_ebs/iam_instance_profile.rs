//! Step: the instance profile the builder launches with. The template's `iam_instance_profile` as it is;
//! else, with `temporary_iam_instance_profile_policy_document`, a temporary one, as Packer's amazon plugin
//! makes it (`StepIamInstanceProfile`): an IAM role EC2 may assume, the document as its inline policy, an
//! instance profile of the same name holding the role, both tagged with `run_tags`. Both are created under the path
//! [`IAM_PATH`](crate::resource::IAM_PATH), tagged as bakery's at creation, journaled in
//! [`GLOBAL`](crate::resource::GLOBAL) (IAM is global), and removed on cleanup, after the instance is gone:
//! this step comes before the security group's, whose cleanup waits for the instance to terminate.
//!
//! IAM is eventually consistent: the new role and profile may be invisible to the next calls for seconds,
//! so those calls (and RunInstances, in its step) retry "not found" and "Invalid IAM Instance Profile" for
//! a bounded time.

use super::state::{Ctx, State};
use crate::resource::{GLOBAL, IAM_PATH, Kind};
use async_trait::async_trait;
use aws_sdk_iam::types::Tag;
use bakery_core::aws_err::{AwsError, AwsResultExt};
use bakery_core::pipeline::{Outcome, Step, StepError};
use bakery_core::propagation::{PROPAGATION_TIMEOUT, retry_propagation};
use bakery_template::schema::amazon_ebs::PolicyDocument;
use serde::Serialize;

/// The role's trust policy: EC2 may assume it (what an instance profile's role needs).
pub const TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// The policy language version when the document does not say (Packer's documented value).
const DEFAULT_VERSION: &str = "2012-10-17";

#[derive(Serialize)]
struct DocumentJson<'a> {
    #[serde(rename = "Version")]
    version: &'a str,
    #[serde(rename = "Statement")]
    statement: Vec<StatementJson<'a>>,
}

#[derive(Serialize)]
struct StatementJson<'a> {
    #[serde(rename = "Effect")]
    effect: &'a str,
    #[serde(rename = "Action")]
    action: &'a [String],
    #[serde(rename = "Resource")]
    resource: &'a [String],
}

/// The inline policy's JSON, as Packer writes it: `Version`, then each statement's `Effect`, `Action`
/// and `Resource` (lists).
pub fn policy_json(doc: &PolicyDocument) -> String {
    let d = DocumentJson {
        version: doc.version.as_deref().unwrap_or(DEFAULT_VERSION),
        statement: doc
            .statement
            .iter()
            .map(|s| StatementJson {
                effect: s.effect.as_deref().unwrap_or("Allow"),
                action: &s.action,
                resource: &s.resource,
            })
            .collect(),
    };
    serde_json::to_string(&d).expect("a policy document serialises")
}

/// The temporary role's and profile's name: the temporary key pair's naming, within IAM's 64 characters
/// for a role name.
fn temporary_name(cx: &Ctx) -> String {
    cx.temp_name().chars().take(64).collect()
}

/// `run_tags` (as Packer tags the role and profile) with bakery's ownership tags, which win.
fn with_ownership(cx: &Ctx, run_tags: &[(String, String)], role: &str) -> Vec<(String, String)> {
    let own = cx.ownership_tags(role);
    let mut tags: Vec<(String, String)> = run_tags
        .iter()
        .filter(|(k, _)| !own.iter().any(|(o, _)| o == k))
        .cloned()
        .collect();
    tags.extend(own);
    tags
}

fn iam_tags(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

/// What the step does, as the template says.
#[derive(Debug, PartialEq)]
enum Profile<'a> {
    /// No instance profile.
    None,
    /// The template's `iam_instance_profile`.
    Given(&'a str),
    /// A temporary profile with this policy.
    Temporary(&'a PolicyDocument),
}

fn profile(run: &bakery_template::schema::amazon_ebs::RunConfig) -> Profile<'_> {
    if let Some(p) = run
        .iam_instance_profile
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        return Profile::Given(p);
    }
    match &run.temporary_iam_instance_profile_policy_document {
        Some(doc) => Profile::Temporary(doc),
        None => Profile::None,
    }
}

/// The instance profile step; it remembers what it created until its cleanup removes it.
#[derive(Default)]
pub struct IamInstanceProfile {
    role: Option<String>,
    profile: Option<String>,
}

impl IamInstanceProfile {
    /// Creates the role, or adopts one of this name that this run already made (an answer lost to a
    /// retry); another's is an error.
    async fn create_role(
        &mut self,
        cx: &Ctx,
        name: &str,
        run_tags: &[(String, String)],
    ) -> Result<(), StepError> {
        let iam = &cx.clients.iam;
        let req = iam
            .create_role()
            .role_name(name)
            .path(IAM_PATH)
            .assume_role_policy_document(TRUST_POLICY)
            .description(format!("bakery temporary role of run {}", cx.run_id))
            .set_tags(Some(iam_tags(&with_ownership(
                cx,
                run_tags,
                "temporary-iam-role",
            ))));
        let made = cx
            .create(Kind::IamRole, GLOBAL, None, async {
                req.send().await.aws("CreateRole")
            })
            .await;
        match made {
            Ok(_) => {}
            Err(e) if e.is("EntityAlreadyExists") && self.ours_role(cx, name).await? => {}
            Err(e) => return Err(e.into()),
        }
        cx.created(Kind::IamRole, GLOBAL, name);
        self.role = Some(name.to_string());
        Ok(())
    }

    /// Whether the role `name` carries this run's id.
    async fn ours_role(&self, cx: &Ctx, name: &str) -> Result<bool, AwsError> {
        let out = cx
            .clients
            .iam
            .get_role()
            .role_name(name)
            .send()
            .await
            .aws("GetRole")?;
        Ok(out.role().is_some_and(|r| {
            r.tags()
                .iter()
                .any(|t| t.key() == bakery_core::tags::RUN_ID && t.value() == cx.run_id)
        }))
    }

    /// Creates the instance profile (or adopts this run's own of that name).
    async fn create_profile(
        &mut self,
        cx: &Ctx,
        name: &str,
        run_tags: &[(String, String)],
    ) -> Result<(), StepError> {
        let iam = &cx.clients.iam;
        let req = iam
            .create_instance_profile()
            .instance_profile_name(name)
            .path(IAM_PATH)
            .set_tags(Some(iam_tags(&with_ownership(
                cx,
                run_tags,
                "temporary-instance-profile",
            ))));
        let made = cx
            .create(Kind::InstanceProfile, GLOBAL, None, async {
                req.send().await.aws("CreateInstanceProfile")
            })
            .await;
        match made {
            Ok(_) => {}
            Err(e) if e.is("EntityAlreadyExists") => {
                let out = retry_propagation(PROPAGATION_TIMEOUT, &cx.cancel, || async {
                    iam.get_instance_profile()
                        .instance_profile_name(name)
                        .send()
                        .await
                        .aws("GetInstanceProfile")
                })
                .await?;
                let ours = out.instance_profile().is_some_and(|p| {
                    p.tags()
                        .iter()
                        .any(|t| t.key() == bakery_core::tags::RUN_ID && t.value() == cx.run_id)
                });
                if !ours {
                    return Err(e.into());
                }
            }
            Err(e) => return Err(e.into()),
        }
        cx.created(Kind::InstanceProfile, GLOBAL, name);
        self.profile = Some(name.to_string());
        Ok(())
    }
}

#[async_trait]
impl Step<Ctx, State> for IamInstanceProfile {
    fn name(&self) -> &'static str {
        "iam-instance-profile"
    }

    async fn plan(&self, cx: &Ctx, _st: &mut State) -> Result<Vec<String>, StepError> {
        Ok(match profile(&cx.cfg.run) {
            Profile::Temporary(doc) => vec![format!(
                "would create (IAM, global): temporary role and instance profile {} under {IAM_PATH}, with an inline policy of {} statement(s)",
                temporary_name(cx),
                doc.statement.len()
            )],
            Profile::None | Profile::Given(_) => vec![],
        })
    }

    async fn run(&mut self, cx: &Ctx, st: &mut State) -> Result<(), StepError> {
        let doc = match profile(&cx.cfg.run) {
            Profile::None => return Ok(()),
            Profile::Given(p) => {
                st.iam_instance_profile = Some(p.to_string());
                return Ok(());
            }
            Profile::Temporary(doc) => doc,
        };
        let name = temporary_name(cx);
        let iam = &cx.clients.iam;
        let run_tags: Vec<(String, String)> = cx
            .cfg
            .run
            .run_tags
            .render(&st.late)
            .map_err(|e| StepError::msg(format!("run_tags: {e}")))?
            .into_iter()
            .collect();
        cx.ui.say(
            &cx.name,
            &format!("Creating temporary instance profile for this instance: {name}"),
        );
        self.create_role(cx, &name, &run_tags).await?;
        cx.ui.say(
            &cx.name,
            &format!("Attaching policy to the temporary role: {name}"),
        );
        let policy = policy_json(doc);
        retry_propagation(PROPAGATION_TIMEOUT, &cx.cancel, || async {
            iam.put_role_policy()
                .role_name(&name)
                .policy_name(&name)
                .policy_document(&policy)
                .send()
                .await
                .aws("PutRolePolicy")
        })
        .await?;
        self.create_profile(cx, &name, &run_tags).await?;
        retry_propagation(PROPAGATION_TIMEOUT, &cx.cancel, || async {
            iam.add_role_to_instance_profile()
                .instance_profile_name(&name)
                .role_name(&name)
                .send()
                .await
                .aws("AddRoleToInstanceProfile")
        })
        .await
        .map(|_| ())
        .or_else(|e| {
            // The role is already in it: a retried call whose first answer was lost.
            if e.is("LimitExceeded") {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        // Packer waits until IAM shows the profile; EC2 may take longer still, which RunInstances retries.
        retry_propagation(PROPAGATION_TIMEOUT, &cx.cancel, || async {
            iam.get_instance_profile()
                .instance_profile_name(&name)
                .send()
                .await
                .aws("GetInstanceProfile")
        })
        .await?;
        st.iam_instance_profile = Some(name);
        Ok(())
    }

    async fn cleanup(&mut self, cx: &Ctx, _st: &mut State, _o: Outcome) -> Result<(), StepError> {
        if let Some(name) = self.profile.clone() {
            cx.ui.say(
                &cx.name,
                &format!("Deleting temporary instance profile {name}..."),
            );
            Kind::InstanceProfile
                .remove(&cx.clients, &name, &cx.cancel_cleanup)
                .await?;
            cx.removed(Kind::InstanceProfile, GLOBAL, &name);
            self.profile = None;
        }
        if let Some(name) = self.role.clone() {
            cx.ui
                .say(&cx.name, &format!("Deleting temporary role {name}..."));
            Kind::IamRole
                .remove(&cx.clients, &name, &cx.cancel_cleanup)
                .await?;
            cx.removed(Kind::IamRole, GLOBAL, &name);
            self.role = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trust policy lets EC2 assume the role; the inline policy is the template's document, in
    /// Packer's JSON form (a missing Version is 2012-10-17).
    #[test]
    fn the_trust_and_inline_policies_are_the_documents_iam_expects() {
        let trust: serde_json::Value = serde_json::from_str(TRUST_POLICY).unwrap();
        assert_eq!(
            trust,
            serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        );
        let cfg = crate::amazon_ebs::state::test_config(
            r#","temporary_iam_instance_profile_policy_document":{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","ssm:*"],"Resource":["*"]},{"Effect":"Deny","Action":["ec2:TerminateInstances"],"Resource":["arn:aws:ec2:*:*:instance/*"]}]}"#,
        );
        let Profile::Temporary(doc) = profile(&cfg.run) else {
            panic!("a temporary profile");
        };
        assert_eq!(
            policy_json(doc),
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","ssm:*"],"Resource":["*"]},{"Effect":"Deny","Action":["ec2:TerminateInstances"],"Resource":["arn:aws:ec2:*:*:instance/*"]}]}"#
        );
        let unversioned = PolicyDocument {
            version: None,
            statement: doc.statement[..1].to_vec(),
        };
        assert_eq!(
            policy_json(&unversioned),
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","ssm:*"],"Resource":["*"]}]}"#
        );
    }

    /// iam_instance_profile wins (as in Packer, where the document is then ignored); without either, none.
    #[test]
    fn the_template_chooses_the_profile() {
        let given = crate::amazon_ebs::state::test_config(
            r#","iam_instance_profile":"mine","temporary_iam_instance_profile_policy_document":{"Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["*"]}]}"#,
        );
        assert_eq!(profile(&given.run), Profile::Given("mine"));
        let none = crate::amazon_ebs::state::test_config("");
        assert_eq!(profile(&none.run), Profile::None);
    }
}
