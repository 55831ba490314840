//! Step 12: share the AMIs and snapshots (`ami_users`, `ami_groups`, `snapshot_users`, `snapshot_groups`)
//! in every region they exist in.

use super::state::{Ctx, State};
use async_trait::async_trait;
use aws_sdk_ec2::types::{
    CreateVolumePermission, CreateVolumePermissionModifications, LaunchPermission,
    LaunchPermissionModifications, PermissionGroup,
};
use bakery_core::aws::Clients;
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
        .collect())
    }

    async fn run(&mut self, cx: &Ctx, st: &mut State) -> Result<(), StepError> {
        let a = &cx.cfg.ami;
        let users: Vec<&String> = a.ami_users.iter().filter(|s| !s.is_empty()).collect();
        let groups: Vec<&String> = a.ami_groups.iter().filter(|s| !s.is_empty()).collect();
        let snap_users: Vec<&String> = a.snapshot_users.iter().filter(|s| !s.is_empty()).collect();
        let snap_groups: Vec<&String> =
            a.snapshot_groups.iter().filter(|s| !s.is_empty()).collect();
        if users.is_empty() && groups.is_empty() && snap_users.is_empty() && snap_groups.is_empty()
        {
            return Ok(());
        }
        for (region, ami) in &st.amis {
            let c = Clients::for_region(
                &cx.sdk,
                Some(region),
                cx.cfg
                    .access
                    .custom_endpoint_ec2
                    .as_deref()
                    .filter(|s| !s.is_empty()),
            );
            if !users.is_empty() || !groups.is_empty() {
                cx.ui.say(
                    &cx.name,
                    &format!("Modifying attributes on AMI ({ami}) in {region}..."),
                );
                let perms: Vec<LaunchPermission> = users
                    .iter()
                    .map(|u| LaunchPermission::builder().user_id(*u).build())
                    .chain(groups.iter().map(|g| {
                        LaunchPermission::builder()
                            .group(PermissionGroup::from(g.as_str()))
                            .build()
                    }))
                    .collect();
                c.ec2
                    .modify_image_attribute()
                    .image_id(ami)
                    .launch_permission(
                        LaunchPermissionModifications::builder()
                            .set_add(Some(perms))
                            .build(),
                    )
                    .send()
                    .await
                    .aws("ModifyImageAttribute")?;
            }
            if !snap_users.is_empty() || !snap_groups.is_empty() {
                let perms: Vec<CreateVolumePermission> = snap_users
                    .iter()
                    .map(|u| CreateVolumePermission::builder().user_id(*u).build())
                    .chain(snap_groups.iter().map(|g| {
                        CreateVolumePermission::builder()
                            .group(PermissionGroup::from(g.as_str()))
                            .build()
                    }))
                    .collect();
                for snap in st.snapshots.get(region).into_iter().flatten() {
                    c.ec2
                        .modify_snapshot_attribute()
                        .snapshot_id(snap)
                        .create_volume_permission(
                            CreateVolumePermissionModifications::builder()
                                .set_add(Some(perms.clone()))
                                .build(),
                        )
                        .send()
                        .await
                        .aws("ModifySnapshotAttribute")?;
                }
            }
        }
        Ok(())
    }
}
