//! Every kind of AWS resource bake creates, in one table: its name in output, the order `bake cleanup`
//! removes it in, how it is removed and how it is found by bakery's run tag. The steps' cleanups,
//! `bake cleanup` and the run journal all go through it, so a new kind is one entry here.
//!
//! Removal is idempotent: a resource already gone counts as removed.

use crate::ec2::{image_snapshots, judge_instance};
use aws_sdk_ec2::types::{Filter, InstanceStateName};
use bakery_core::aws::{Clients, ErrorClass};
use bakery_core::aws_err::{AwsError, AwsResultExt};
use bakery_core::pipeline::StepError;
use bakery_core::poll::{Poll, PollError, Poller};
use bakery_core::propagation::{NOT_FOUND_CONFIRMATION, retry_propagation};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The `bakery:role` of bake's temporary resources (the builder instance and its volumes, the temporary
/// key pair and security group, a spot builder's launch template, fleet and request, the temporary IAM
/// role and instance profile). Rollout's resources carry other roles, so a search by these never finds
/// them.
pub const TEMPORARY_ROLES: [&str; 9] = [
    "builder-instance",
    "builder-volume",
    "temporary-key-pair",
    "temporary-security-group",
    "builder-launch-template",
    "builder-fleet",
    "builder-spot-request",
    "temporary-iam-role",
    "temporary-instance-profile",
];

/// The region the journal gives IAM resources, which are global: `bake cleanup` looks for them once per
/// run (with the IAM client of the run's default region, which picks the partition), not once per region
/// the run worked in.
pub const GLOBAL: &str = "global";

/// The IAM path of bake's temporary roles and instance profiles. IAM lists by path, not by tag: a search
/// for a run's IAM resources lists this path and reads their tags.
pub const IAM_PATH: &str = "/bakery/";

/// When a temporary resource was created (RFC 3339, UTC).
pub const CREATED_TAG: &str = "bakery:created";

/// Now, as [`CREATED_TAG`] holds it.
pub fn now_tag() -> String {
    aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// What kind of resource something bake created is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// An EC2 instance (terminate).
    Instance,
    /// A temporary EC2 key pair (delete); its id is its name.
    KeyPair,
    /// A temporary security group (delete).
    SecurityGroup,
    /// An AMI (deregister, with exactly the snapshots of its block-device mappings), kept on success.
    Image,
    /// An EBS snapshot (delete), kept on success.
    Snapshot,
    /// The temporary launch template of a spot builder instance (delete).
    LaunchTemplate,
    /// The instant EC2 fleet that launched a spot builder instance (delete, with its instances).
    Fleet,
    /// The temporary instance profile of `temporary_iam_instance_profile_policy_document` (its role
    /// removed from it, then deleted); its id is its name, its region [`GLOBAL`].
    InstanceProfile,
    /// The temporary IAM role of that profile (its inline policies deleted, then the role); its id is its
    /// name, its region [`GLOBAL`].
    IamRole,
}

impl Kind {
    /// Every kind, in the order `bake cleanup` removes them: instances first (they hold the security
    /// groups, key pairs and instance profiles), AMIs before their snapshots, an instance profile before
    /// its role.
    pub const REMOVAL_ORDER: [Kind; 9] = [
        Kind::Fleet,
        Kind::Instance,
        Kind::Image,
        Kind::Snapshot,
        Kind::SecurityGroup,
        Kind::KeyPair,
        Kind::LaunchTemplate,
        Kind::InstanceProfile,
        Kind::IamRole,
    ];

    /// IAM's kinds: global, journaled in [`GLOBAL`].
    pub fn is_global(self) -> bool {
        matches!(self, Kind::InstanceProfile | Kind::IamRole)
    }

    /// Where this kind comes in [`Kind::REMOVAL_ORDER`].
    pub fn removal_rank(self) -> usize {
        Self::REMOVAL_ORDER
            .iter()
            .position(|k| *k == self)
            .expect("every kind is in REMOVAL_ORDER")
    }

    /// The kind's name in output (`removed key pair bakery_… (us-east-1)`).
    pub fn label(self) -> &'static str {
        match self {
            Kind::Instance => "instance",
            Kind::KeyPair => "key pair",
            Kind::SecurityGroup => "security group",
            Kind::Image => "AMI",
            Kind::Snapshot => "snapshot",
            Kind::LaunchTemplate => "launch template",
            Kind::Fleet => "fleet",
            Kind::InstanceProfile => "instance profile",
            Kind::IamRole => "IAM role",
        }
    }

    /// Removes the resource `id` of this kind and waits until it is gone (an instance terminated, a
    /// security group free of its network interface). `cancel` stops the waiting.
    pub async fn remove(
        self,
        clients: &Clients,
        id: &str,
        cancel: &CancellationToken,
    ) -> Result<(), StepError> {
        let ec2 = &clients.ec2;
        match self {
            Kind::Instance => {
                if terminate_instance(ec2, id).await? != InstanceStateName::Terminated {
                    wait_terminated(ec2, id, cancel).await?;
                }
                Ok(())
            }
            Kind::KeyPair => Ok(gone_when_confirmed(|| async {
                ec2.delete_key_pair()
                    .key_name(id)
                    .send()
                    .await
                    .aws("DeleteKeyPair")
            })
            .await?),
            Kind::SecurityGroup => Ok(delete_security_group(ec2, id, cancel).await?),
            Kind::Image => remove_image(ec2, id, &[], cancel).await.map(|_| ()),
            Kind::Snapshot => Ok(delete_snapshot(ec2, id, cancel).await?),
            Kind::LaunchTemplate => Ok(gone_when_confirmed(|| async {
                ec2.delete_launch_template()
                    .launch_template_id(id)
                    .send()
                    .await
                    .aws("DeleteLaunchTemplate")
            })
            .await?),
            Kind::Fleet => Ok(gone_when_confirmed(|| async {
                ec2.delete_fleets()
                    .fleet_ids(id)
                    .terminate_instances(true)
                    .send()
                    .await
                    .aws("DeleteFleets")
            })
            .await?),
            Kind::InstanceProfile => Ok(remove_instance_profile(&clients.iam, id, cancel).await?),
            Kind::IamRole => Ok(remove_role(&clients.iam, id, cancel).await?),
        }
    }

    /// The ids of this kind's resources tagged with `run_id` that are still there. AMIs and snapshots
    /// carry the same tags when they are a build's result: the caller leaves out what the run's journal
    /// says it kept, and without a journal does not search them.
    pub async fn tagged(self, clients: &Clients, run_id: &str) -> Result<Vec<String>, AwsError> {
        let ec2 = &clients.ec2;
        let f = Filter::builder()
            .name(format!("tag:{}", bakery_core::tags::RUN_ID))
            .values(run_id)
            .build();
        let ids = match self {
            Kind::Instance => {
                let out = ec2
                    .describe_instances()
                    .filters(f)
                    .send()
                    .await
                    .aws("DescribeInstances")?;
                out.reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .filter(|i| {
                        i.state().and_then(|s| s.name()) != Some(&InstanceStateName::Terminated)
                    })
                    .filter_map(|i| i.instance_id().map(str::to_string))
                    .collect()
            }
            Kind::SecurityGroup => {
                let out = ec2
                    .describe_security_groups()
                    .filters(f)
                    .send()
                    .await
                    .aws("DescribeSecurityGroups")?;
                out.security_groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_string))
                    .collect()
            }
            Kind::KeyPair => {
                let out = ec2
                    .describe_key_pairs()
                    .filters(f)
                    .send()
                    .await
                    .aws("DescribeKeyPairs")?;
                out.key_pairs()
                    .iter()
                    .filter_map(|k| k.key_name().map(str::to_string))
                    .collect()
            }
            Kind::LaunchTemplate => {
                let out = ec2
                    .describe_launch_templates()
                    .filters(f)
                    .send()
                    .await
                    .aws("DescribeLaunchTemplates")?;
                out.launch_templates()
                    .iter()
                    .filter_map(|t| t.launch_template_id().map(str::to_string))
                    .collect()
            }
            Kind::Image => {
                let out = ec2
                    .describe_images()
                    .owners("self")
                    .filters(f)
                    .send()
                    .await
                    .aws("DescribeImages")?;
                out.images()
                    .iter()
                    .filter_map(|i| i.image_id().map(str::to_string))
                    .collect()
            }
            Kind::Snapshot => {
                let out = ec2
                    .describe_snapshots()
                    .owner_ids("self")
                    .filters(f)
                    .send()
                    .await
                    .aws("DescribeSnapshots")?;
                out.snapshots()
                    .iter()
                    .filter_map(|s| s.snapshot_id().map(str::to_string))
                    .collect()
            }
            Kind::Fleet => {
                // DescribeFleets takes no tag filter: pick ours by tag, still active.
                let out = ec2.describe_fleets().send().await.aws("DescribeFleets")?;
                out.fleets()
                    .iter()
                    .filter(|fl| {
                        fl.tags().iter().any(|t| {
                            t.key() == Some(bakery_core::tags::RUN_ID) && t.value() == Some(run_id)
                        }) && !fl
                            .fleet_state()
                            .is_some_and(|s| s.as_str().starts_with("deleted"))
                    })
                    .filter_map(|fl| fl.fleet_id().map(str::to_string))
                    .collect()
            }
            Kind::InstanceProfile | Kind::IamRole => {
                let mut ids = Vec::new();
                for (name, tags) in iam_tagged(&clients.iam, self).await? {
                    if tags
                        .iter()
                        .any(|(k, v)| k == bakery_core::tags::RUN_ID && run_matches(v, run_id))
                    {
                        ids.push(name);
                    }
                }
                ids
            }
        };
        Ok(ids)
    }
}

/// Whether a run-id tag's value is `run_id`, or starts with it when it ends in `*` (a short id's search,
/// as EC2's tag filters match it).
fn run_matches(tag: &str, run_id: &str) -> bool {
    match run_id.strip_suffix('*') {
        Some(prefix) => tag.starts_with(prefix),
        None => tag == run_id,
    }
}

/// The roles or instance profiles (`kind`) under [`IAM_PATH`], each with its tags. IAM's list calls
/// filter by path only (moto not even that: the path is checked here too) and do not return tags, so
/// each one's tags are asked for.
pub async fn iam_tagged(
    iam: &aws_sdk_iam::Client,
    kind: Kind,
) -> Result<Vec<(String, Vec<(String, String)>)>, AwsError> {
    let pairs = |tags: &[aws_sdk_iam::types::Tag]| -> Vec<(String, String)> {
        tags.iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()
    };
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let (names, next) = if kind == Kind::IamRole {
            let page = iam
                .list_roles()
                .path_prefix(IAM_PATH)
                .set_marker(marker.clone())
                .send()
                .await
                .aws("ListRoles")?;
            let names: Vec<String> = page
                .roles()
                .iter()
                .filter(|r| r.path().starts_with(IAM_PATH))
                .map(|r| r.role_name().to_string())
                .collect();
            (
                names,
                page.is_truncated()
                    .then(|| page.marker().map(str::to_string))
                    .flatten(),
            )
        } else {
            let page = iam
                .list_instance_profiles()
                .path_prefix(IAM_PATH)
                .set_marker(marker.clone())
                .send()
                .await
                .aws("ListInstanceProfiles")?;
            let names: Vec<String> = page
                .instance_profiles()
                .iter()
                .filter(|p| p.path().starts_with(IAM_PATH))
                .map(|p| p.instance_profile_name().to_string())
                .collect();
            (
                names,
                page.is_truncated()
                    .then(|| page.marker().map(str::to_string))
                    .flatten(),
            )
        };
        for name in names {
            // One deleted meanwhile is simply not there.
            let tags = if kind == Kind::IamRole {
                match iam.get_role().role_name(&name).send().await.aws("GetRole") {
                    Ok(o) => o.role().map(|r| pairs(r.tags())),
                    Err(e) if e.is_not_found() => None,
                    Err(e) => return Err(e),
                }
            } else {
                match iam
                    .get_instance_profile()
                    .instance_profile_name(&name)
                    .send()
                    .await
                    .aws("GetInstanceProfile")
                {
                    Ok(o) => o.instance_profile().map(|p| pairs(p.tags())),
                    Err(e) if e.is_not_found() => None,
                    Err(e) => return Err(e),
                }
            };
            if let Some(tags) = tags {
                out.push((name, tags));
            }
        }
        match next {
            Some(m) => marker = Some(m),
            None => return Ok(out),
        }
    }
}

/// Removes an instance profile: every role is taken out of it, then it is deleted. A profile (or role)
/// already gone counts as removed, once "not found" has lasted (IAM is eventually consistent).
async fn remove_instance_profile(
    iam: &aws_sdk_iam::Client,
    name: &str,
    cancel: &CancellationToken,
) -> Result<(), StepError> {
    let got = retry_propagation(NOT_FOUND_CONFIRMATION, cancel, || async {
        iam.get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .aws("GetInstanceProfile")
    })
    .await;
    let roles: Vec<String> = match got {
        Ok(o) => o
            .instance_profile()
            .map(|p| {
                p.roles()
                    .iter()
                    .map(|r| r.role_name().to_string())
                    .collect()
            })
            .unwrap_or_default(),
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for role in roles {
        gone_is_done(
            iam.remove_role_from_instance_profile()
                .instance_profile_name(name)
                .role_name(&role)
                .send()
                .await
                .aws("RemoveRoleFromInstanceProfile"),
        )?;
    }
    delete_while_busy(
        &format!("instance profile {name}"),
        "DeleteConflict",
        true,
        Duration::from_secs(2 * 60),
        cancel,
        || async {
            iam.delete_instance_profile()
                .instance_profile_name(name)
                .send()
                .await
                .aws("DeleteInstanceProfile")
                .map(|_| ())
        },
    )
    .await?;
    Ok(())
}

/// Removes an IAM role: its inline policies, then the role (`DeleteConflict` while IAM still sees it in
/// an instance profile is waited out). A role already gone counts as removed once that has lasted.
async fn remove_role(
    iam: &aws_sdk_iam::Client,
    name: &str,
    cancel: &CancellationToken,
) -> Result<(), StepError> {
    let listed = retry_propagation(NOT_FOUND_CONFIRMATION, cancel, || async {
        iam.list_role_policies()
            .role_name(name)
            .send()
            .await
            .aws("ListRolePolicies")
    })
    .await;
    let policies: Vec<String> = match listed {
        Ok(o) => o.policy_names().to_vec(),
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for policy in policies {
        gone_is_done(
            iam.delete_role_policy()
                .role_name(name)
                .policy_name(&policy)
                .send()
                .await
                .aws("DeleteRolePolicy"),
        )?;
    }
    delete_while_busy(
        &format!("IAM role {name}"),
        "DeleteConflict",
        true,
        Duration::from_secs(2 * 60),
        cancel,
        || async {
            iam.delete_role()
                .role_name(name)
                .send()
                .await
                .aws("DeleteRole")
                .map(|_| ())
        },
    )
    .await?;
    Ok(())
}

/// A delete call's result, with "already gone" counted as done.
/// Sends a delete call; "not found" counts as deleted once it has lasted [`NOT_FOUND_CONFIRMATION`] (a
/// resource just made may not be visible yet: believing it gone would leak it).
async fn gone_when_confirmed<T, F, Fut>(call: F) -> Result<(), AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    gone_is_done(retry_propagation(NOT_FOUND_CONFIRMATION, &CancellationToken::new(), call).await)
}

fn gone_is_done<T>(r: Result<T, AwsError>) -> Result<(), AwsError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.class() == ErrorClass::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Asks EC2 to terminate an instance; returns the state it is in now (an instance already gone counts as
/// terminated). Waiting for `terminated` is the caller's choice.
pub async fn terminate_instance(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
) -> Result<InstanceStateName, AwsError> {
    let answer = retry_propagation(
        NOT_FOUND_CONFIRMATION,
        &CancellationToken::new(),
        || async {
            ec2.terminate_instances()
                .instance_ids(id)
                .send()
                .await
                .aws("TerminateInstances")
        },
    )
    .await;
    match answer {
        Ok(out) => Ok(out
            .terminating_instances()
            .first()
            .and_then(|c| c.current_state())
            .and_then(|s| s.name())
            .cloned()
            .unwrap_or(InstanceStateName::ShuttingDown)),
        Err(e) if e.class() == ErrorClass::NotFound => Ok(InstanceStateName::Terminated),
        Err(e) => Err(e),
    }
}

/// Waits until an instance is terminated (or no longer listed).
async fn wait_terminated(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    cancel: &CancellationToken,
) -> Result<(), bakery_core::poll::WaitError> {
    Poller::instance_terminated()
        .wait(
            &format!("instance {id} to terminate"),
            cancel,
            |_, _| {},
            || {
                let ec2 = ec2.clone();
                let id = id.to_string();
                async move {
                    let out = match ec2
                        .describe_instances()
                        .instance_ids(&id)
                        .send()
                        .await
                        .aws("DescribeInstances")
                    {
                        Ok(out) => out,
                        Err(e) if e.class() == ErrorClass::NotFound => return Ok(Poll::Ready(())),
                        Err(e) => return Err(PollError::from(e)),
                    };
                    let inst = out
                        .reservations()
                        .iter()
                        .flat_map(|r| r.instances())
                        .next()
                        .cloned();
                    Ok(match inst {
                        None => Poll::Ready(()),
                        Some(i) => match judge_instance(i, InstanceStateName::Terminated) {
                            Poll::Ready(_) => Poll::Ready(()),
                            Poll::Pending(s) => Poll::Pending(s),
                            Poll::Failed(s) => Poll::Failed(s),
                        },
                    })
                }
            },
        )
        .await
}

/// Sends a delete call (`delete`) until it succeeds or the resource is gone, waiting out `busy` — AWS's
/// answer while something still holds the resource — for up to `limit`.
async fn delete_while_busy<F, Fut>(
    what: &str,
    busy: &'static str,
    confirm_not_found: bool,
    limit: Duration,
    cancel: &CancellationToken,
    delete: F,
) -> Result<(), bakery_core::poll::WaitError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), AwsError>>,
{
    let first_not_found = std::sync::Mutex::new(None::<tokio::time::Instant>);
    Poller::new(Duration::from_secs(2), limit)
        .wait(
            &format!("{what} to be deletable"),
            cancel,
            |_, _| {},
            || {
                let call = delete();
                let first_not_found = &first_not_found;
                async move {
                    match call.await {
                        Ok(()) => Ok(Poll::Ready(())),
                        // Believed once it lasts: a resource just made may not be visible yet.
                        Err(e) if e.class() == ErrorClass::NotFound && !confirm_not_found => {
                            Ok(Poll::Ready(()))
                        }
                        Err(e) if e.class() == ErrorClass::NotFound => {
                            let mut first =
                                first_not_found.lock().unwrap_or_else(|p| p.into_inner());
                            let since = *first.get_or_insert_with(tokio::time::Instant::now);
                            if since.elapsed() >= NOT_FOUND_CONFIRMATION {
                                Ok(Poll::Ready(()))
                            } else {
                                Ok(Poll::Pending("not found yet".into()))
                            }
                        }
                        Err(e) if e.is(busy) => Ok(Poll::Pending("in use".into())),
                        Err(e) => Err(PollError::from(e)),
                    }
                }
            },
        )
        .await
}

/// Deletes a security group, retrying while a network interface still holds it (`DependencyViolation`,
/// while its instance shuts down), for up to 15 minutes; a group already gone counts as deleted.
async fn delete_security_group(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    cancel: &CancellationToken,
) -> Result<(), bakery_core::poll::WaitError> {
    let what = format!("security group {id}");
    delete_while_busy(
        &what,
        "DependencyViolation",
        true,
        Duration::from_secs(15 * 60),
        cancel,
        || {
            let (ec2, id) = (ec2.clone(), id.to_string());
            async move {
                ec2.delete_security_group()
                    .group_id(&id)
                    .send()
                    .await
                    .aws("DeleteSecurityGroup")
                    .map(|_| ())
            }
        },
    )
    .await
}

/// Deletes a snapshot, retrying while AWS still counts it in use (`InvalidSnapshot.InUse`, for a while
/// after its AMI is deregistered) for up to 5 minutes; one already gone counts as deleted.
async fn delete_snapshot(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    cancel: &CancellationToken,
) -> Result<(), bakery_core::poll::WaitError> {
    let what = format!("snapshot {id}");
    delete_while_busy(
        &what,
        "InvalidSnapshot.InUse",
        // AWS deletes an image's snapshots with it (`DeleteAssociatedSnapshots`): gone is expected.
        false,
        Duration::from_secs(5 * 60),
        cancel,
        || {
            let (ec2, id) = (ec2.clone(), id.to_string());
            async move {
                ec2.delete_snapshot()
                    .snapshot_id(&id)
                    .send()
                    .await
                    .aws("DeleteSnapshot")
                    .map(|_| ())
            }
        },
    )
    .await
}

/// The snapshots an AMI's block-device mappings name, asked of AWS now (a pending AMI lists them too);
/// none when the AMI is gone.
pub async fn snapshots_of(ec2: &aws_sdk_ec2::Client, ami: &str) -> Result<Vec<String>, AwsError> {
    // An AMI made moments ago may not be visible yet: "not found" is believed once it lasts.
    let answer = retry_propagation(
        NOT_FOUND_CONFIRMATION,
        &CancellationToken::new(),
        || async {
            ec2.describe_images()
                .image_ids(ami)
                .send()
                .await
                .aws("DescribeImages")
        },
    )
    .await;
    match answer {
        Ok(o) => Ok(o.images().first().map(image_snapshots).unwrap_or_default()),
        Err(e) if e.class() == ErrorClass::NotFound => Ok(vec![]),
        Err(e) => Err(e),
    }
}

/// Deregisters an AMI and deletes exactly its snapshots: those `known` to the caller plus those the AMI
/// lists when it is looked up again now (a run interrupted while the AMI was pending may know none),
/// never "all my snapshots" (moto and real accounts hold others). Returns the snapshots deleted. A
/// missing AMI or snapshot counts as done.
pub async fn remove_image(
    ec2: &aws_sdk_ec2::Client,
    ami: &str,
    known: &[String],
    cancel: &CancellationToken,
) -> Result<Vec<String>, StepError> {
    let mut snapshots = snapshots_of(ec2, ami).await?;
    for s in known {
        if !snapshots.contains(s) {
            snapshots.push(s.clone());
        }
    }
    deregister_with_snapshots(ec2, ami, &snapshots, cancel).await?;
    Ok(snapshots)
}

/// Deregisters an AMI and deletes exactly `snapshots`. A missing AMI or snapshot counts as done.
pub async fn deregister_with_snapshots(
    ec2: &aws_sdk_ec2::Client,
    ami: &str,
    snapshots: &[String],
    cancel: &CancellationToken,
) -> Result<(), StepError> {
    gone_when_confirmed(|| async {
        ec2.deregister_image()
            .image_id(ami)
            // AWS removes the image's snapshots with it where it can; the loop below covers the rest (and
            // moto, which ignores the flag).
            .delete_associated_snapshots(true)
            .send()
            .await
            .aws("DeregisterImage")
    })
    .await?;
    for s in snapshots {
        delete_snapshot(ec2, s, cancel).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_place_in_the_removal_order() {
        let mut ranks: Vec<usize> = Kind::REMOVAL_ORDER
            .iter()
            .map(|k| k.removal_rank())
            .collect();
        ranks.dedup();
        assert_eq!(ranks, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(Kind::Instance.removal_rank() < Kind::SecurityGroup.removal_rank());
        // The instance holds the profile; a role cannot go while a profile holds it.
        assert!(Kind::Instance.removal_rank() < Kind::InstanceProfile.removal_rank());
        assert!(Kind::InstanceProfile.removal_rank() < Kind::IamRole.removal_rank());
        assert!(Kind::Image.removal_rank() < Kind::Snapshot.removal_rank());
    }

    #[test]
    fn kinds_keep_their_journal_names() {
        assert_eq!(
            serde_json::to_string(&Kind::LaunchTemplate).unwrap(),
            "\"launch-template\""
        );
        assert_eq!(
            serde_json::from_str::<Kind>("\"security-group\"").unwrap(),
            Kind::SecurityGroup
        );
    }
}
