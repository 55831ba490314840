//! Step 12: the AMIs' attributes, in every region they exist in: sharing (`ami_users`, `ami_groups`,
//! `ami_org_arns`, `ami_ou_arns`, `snapshot_users`, `snapshot_groups`), `ami_product_codes`,
//! `imds_support`, `deprecate_at`, and last of all `deregistration_protection` (a protected AMI cannot be
//! deregistered, so nothing that could still fail comes after it).

use super::state::{Ctx, State};
use async_trait::async_trait;
use aws_sdk_ec2::types::{
    AttributeValue, CreateVolumePermission, CreateVolumePermissionModifications, LaunchPermission,
    LaunchPermissionModifications, PermissionGroup,
};
use bakery_core::aws_err::AwsResultExt;
use bakery_core::pipeline::{Step, StepError};

/// Sets launch and create-volume permissions.
pub struct Attributes;

#[async_trait]
impl Step<Ctx, State> for Attributes {
    fn name(&self) -> &'static str {
        "modify-attributes"
    }

    async fn plan(&self, cx: &Ctx, _st: &mut State) -> Result<Vec<String>, StepError> {
        let a = &cx.cfg.ami;
        if cx.cfg.skip_create_ami {
            return Ok(vec![]);
        }
        let listed = |what: &str, v: &[String]| {
            let v: Vec<&str> = v
                .iter()
                .map(String::as_str)
                .filter(|s| !s.is_empty())
                .collect();
            (!v.is_empty()).then(|| format!("{what} {}", v.join(", ")))
        };
        Ok([
            (
                "AMIs",
                listed("accounts", &a.ami_users),
                listed("groups", &a.ami_groups),
            ),
            (
                "snapshots",
                listed("accounts", &a.snapshot_users),
                listed("groups", &a.snapshot_groups),
            ),
        ]
        .into_iter()
        .filter_map(|(what, users, groups)| {
            let with: Vec<String> = users.into_iter().chain(groups).collect();
            (!with.is_empty())
                .then(|| format!("would share the {what} with {}", with.join(" and ")))
        })
        .chain(
            listed("organizations", &a.ami_org_arns)
                .map(|o| format!("would share the AMIs with {o}")),
        )
        .chain(
            listed("organizational units", &a.ami_ou_arns)
                .map(|o| format!("would share the AMIs with {o}")),
        )
        .chain(listed("product codes", &a.ami_product_codes).map(|p| format!("would attach {p}")))
        .chain(a.imds_support.map(|_| {
            "would make instances of the AMIs require IMDSv2 (imds_support v2.0)".to_string()
        }))
        .chain(
            a.deprecate_at
                .as_ref()
                .filter(|t| !t.is_empty())
                .map(|t| format!("would deprecate the AMIs at {t}")),
        )
        .chain(a.deregistration_protection.enabled.then(|| {
            format!(
                "would protect the AMIs against deregistration{}",
                if a.deregistration_protection.with_cooldown {
                    " (with a 24-hour cooldown)"
                } else {
                    ""
                }
            )
        }))
        .collect())
    }

    async fn run(&mut self, cx: &Ctx, st: &mut State) -> Result<(), StepError> {
        let a = &cx.cfg.ami;
        let given =
            |v: &[String]| -> Vec<String> { v.iter().filter(|s| !s.is_empty()).cloned().collect() };
        let launch: Vec<LaunchPermission> = given(&a.ami_users)
            .into_iter()
            .map(|u| LaunchPermission::builder().user_id(u).build())
            .chain(given(&a.ami_groups).into_iter().map(|g| {
                LaunchPermission::builder()
                    .group(PermissionGroup::from(g.as_str()))
                    .build()
            }))
            .chain(
                given(&a.ami_org_arns)
                    .into_iter()
                    .map(|o| LaunchPermission::builder().organization_arn(o).build()),
            )
            .chain(given(&a.ami_ou_arns).into_iter().map(|o| {
                LaunchPermission::builder()
                    .organizational_unit_arn(o)
                    .build()
            }))
            .collect();
        let volume: Vec<CreateVolumePermission> = given(&a.snapshot_users)
            .into_iter()
            .map(|u| CreateVolumePermission::builder().user_id(u).build())
            .chain(given(&a.snapshot_groups).into_iter().map(|g| {
                CreateVolumePermission::builder()
                    .group(PermissionGroup::from(g.as_str()))
                    .build()
            }))
            .collect();
        let product_codes = given(&a.ami_product_codes);
        let deprecate_at = match a.deprecate_at.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => Some(
                aws_smithy_types::DateTime::from_str(
                    t,
                    aws_smithy_types::date_time::Format::DateTime,
                )
                .map_err(|e| StepError::msg(format!("deprecate_at {t}: {e}")))?,
            ),
            None => None,
        };
        for (region, ami) in &st.amis {
            let c = cx.clients_in(region);
            let modify = || c.ec2.modify_image_attribute().image_id(ami);
            if !launch.is_empty() {
                cx.ui.say(
                    &cx.name,
                    &format!("Modifying attributes on AMI ({ami}) in {region}..."),
                );
                modify()
                    .launch_permission(
                        LaunchPermissionModifications::builder()
                            .set_add(Some(launch.clone()))
                            .build(),
                    )
                    .send()
                    .await
                    .aws("ModifyImageAttribute")?;
            }
            if !product_codes.is_empty() {
                modify()
                    .set_product_codes(Some(product_codes.clone()))
                    .send()
                    .await
                    .aws("ModifyImageAttribute")?;
            }
            if a.imds_support.is_some() {
                modify()
                    .imds_support(AttributeValue::builder().value("v2.0").build())
                    .send()
                    .await
                    .aws("ModifyImageAttribute")?;
            }
            if !volume.is_empty() {
                for snap in st.snapshots.get(region).into_iter().flatten() {
                    c.ec2
                        .modify_snapshot_attribute()
                        .snapshot_id(snap)
                        .create_volume_permission(
                            CreateVolumePermissionModifications::builder()
                                .set_add(Some(volume.clone()))
                                .build(),
                        )
                        .send()
                        .await
                        .aws("ModifySnapshotAttribute")?;
                }
            }
            if let Some(at) = deprecate_at {
                cx.ui.say(
                    &cx.name,
                    &format!("Enabling deprecation on AMI ({ami}) in {region}..."),
                );
                c.ec2
                    .enable_image_deprecation()
                    .image_id(ami)
                    .deprecate_at(at)
                    .send()
                    .await
                    .aws("EnableImageDeprecation")?;
            }
        }
        if a.deregistration_protection.enabled {
            for (region, ami) in &st.amis {
                cx.ui.say(
                    &cx.name,
                    &format!("Enabling deregistration protection on AMI ({ami}) in {region}..."),
                );
                cx.clients_in(region)
                    .ec2
                    .enable_image_deregistration_protection()
                    .image_id(ami)
                    .with_cooldown(a.deregistration_protection.with_cooldown)
                    .send()
                    .await
                    .aws("EnableImageDeregistrationProtection")?;
            }
        }
        Ok(())
    }
}
