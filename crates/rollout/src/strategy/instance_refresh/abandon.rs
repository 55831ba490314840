//! `rollout abandon` for an instance-refresh rollout that died while its refresh ran: AWS carries the
//! refresh on without the run, which would have made the new version the group's afterwards. The refresh
//! is found by its desired launch-template version, whose description names the run that created it
//! (`create_version`); it is rolled back (`RollbackInstanceRefresh`: AWS puts back the instances it had
//! replaced), or cancelled where AWS cannot roll it back, and the version is deleted once nothing uses it.

use super::refresh::{Waited, follow};
use super::versions::{Current, delete_versions, template_numbers, versions_in_use};
use crate::context::Ctx;
use crate::error::AwsResultExt;
use crate::live::Group;

/// The run a version made by `create_version` names: "… run RUN_ID".
fn run_of(description: &str) -> Option<&str> {
    description
        .strip_prefix("bakery rollout ")
        .and_then(|d| d.rsplit_once(" run "))
        .map(|(_, run)| run.trim())
        .filter(|r| !r.is_empty())
}

/// What undoing one refresh did: the run it belonged to, what was done, what failed.
pub(crate) struct Undone {
    pub(crate) run: String,
    pub(crate) removed: Vec<String>,
    pub(crate) failures: Vec<String>,
}

/// Undoes `g`'s running refresh when a bakery rollout (of `wanted` runs) started it; `None` when the group
/// has no such refresh.
pub(crate) async fn abandon_refresh(
    cx: &Ctx,
    g: &Group,
    wanted: impl Fn(Option<&str>) -> bool,
) -> Result<Option<Undone>, crate::error::RolloutError> {
    let out = cx
        .clients
        .autoscaling
        .describe_instance_refreshes()
        .auto_scaling_group_name(&g.name)
        .max_records(5)
        .send()
        .await
        .aws("DescribeInstanceRefreshes")?;
    let Some(r) = out
        .instance_refreshes()
        .iter()
        .find(|r| !r.status().is_some_and(super::refresh::is_terminal))
    else {
        return Ok(None);
    };
    let id = r.instance_refresh_id().unwrap_or_default().to_string();
    let Some(lt) = r.desired_configuration().and_then(|d| d.launch_template()) else {
        return Ok(None);
    };
    let (Some(template_id), Some(version)) = (
        lt.launch_template_id(),
        lt.version().and_then(|v| v.parse::<i64>().ok()),
    ) else {
        return Ok(None);
    };
    let described = cx
        .clients
        .ec2
        .describe_launch_template_versions()
        .launch_template_id(template_id)
        .versions(version.to_string())
        .send()
        .await
        .aws("DescribeLaunchTemplateVersions")?;
    let Some(v) = described.launch_template_versions().first() else {
        return Ok(None);
    };
    let Some(run) = v.version_description().and_then(run_of) else {
        return Ok(None);
    };
    if !wanted(Some(run)) {
        return Ok(None);
    }
    let mut undone = Undone {
        run: run.to_string(),
        removed: Vec::new(),
        failures: Vec::new(),
    };
    let what = format!("instance refresh {id} of {}", g.name);
    cx.warn(&format!("Rolling back {what} (run {run})"));
    let rolled_back = cx
        .clients
        .autoscaling
        .rollback_instance_refresh()
        .auto_scaling_group_name(&g.name)
        .send()
        .await
        .aws("RollbackInstanceRefresh");
    let how = match rolled_back {
        Ok(_) => "rolled back",
        Err(e) if e.is_not_found() => "ended meanwhile",
        // Not reversible (or not offered): stop it where it is.
        Err(_) => match cx
            .clients
            .autoscaling
            .cancel_instance_refresh()
            .auto_scaling_group_name(&g.name)
            .send()
            .await
            .aws("CancelInstanceRefresh")
        {
            Ok(_) => "cancelled",
            Err(e) if e.is_not_found() => "ended meanwhile",
            Err(e) => {
                undone.failures.push(format!(
                    "{what}: {e}: cancel it with `aws autoscaling cancel-instance-refresh --auto-scaling-group-name {}`",
                    g.name
                ));
                return Ok(Some(undone));
            }
        },
    };
    match follow(
        cx,
        &g.name,
        &id,
        cx.cfg.timeouts.rollback,
        &cx.cancel_cleanup,
    )
    .await
    {
        Waited::Ended(s) => undone
            .removed
            .push(format!("{what}: {how} ({})", s.describe())),
        Waited::TimedOut(_) | Waited::Interrupted(_) | Waited::Broken(..) => {
            undone
                .failures
                .push(format!("{what}: {how} but had not ended"));
            return Ok(Some(undone));
        }
    }
    // The run's version, unless a group references it (the run never made it the group's).
    let c = Current {
        template_id: template_id.to_string(),
        template_name: lt.launch_template_name().unwrap_or(template_id).to_string(),
        version,
        image_id: None,
    };
    let (latest, default) = template_numbers(cx, template_id).await?;
    if default == version
        || versions_in_use(cx, &c, latest, default)
            .await?
            .contains(&version)
    {
        undone.removed.push(format!(
            "kept launch template {} version {version}: in use",
            c.template_name
        ));
    } else {
        match delete_versions(cx, template_id, &[version]).await {
            Ok(()) => undone.removed.push(format!(
                "launch template {} version {version}",
                c.template_name
            )),
            Err(e) => undone.failures.push(format!(
                "launch template {} version {version}: {e}",
                c.template_name
            )),
        }
    }
    Ok(Some(undone))
}

#[cfg(test)]
mod tests {
    use super::run_of;

    #[test]
    fn the_run_is_read_from_the_version_description() {
        assert_eq!(
            run_of("bakery rollout ami-1 (shop-staging) run 0a1b-2c"),
            Some("0a1b-2c")
        );
        assert_eq!(run_of("made by hand"), None);
        assert_eq!(run_of("bakery rollout ami-1 (x) run "), None);
    }
}
