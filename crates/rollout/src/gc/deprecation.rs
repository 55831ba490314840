//! Deprecating before deregistering (`deprecate_after`, `delete_after`): an AMI that would go is first
//! deprecated (`EnableImageDeprecation`, tagged `bakery:deprecated-by=gc` so that gc knows it did it),
//! and deregistered once its deprecation time plus `delete_after` has passed. An AMI gc deprecated that
//! is kept again (newest N, in use, shared: after a `rollout undo`, say) has its deprecation cancelled.

use super::report::{Action, AmiDecision};
use crate::context::Ctx;
use crate::error::AwsResultExt;
use aws_sdk_ec2::types::{Image, Tag};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Marks an AMI gc deprecated.
pub(super) const DEPRECATED_BY_TAG: &str = "bakery:deprecated-by";
/// Its value.
const DEPRECATED_BY_GC: &str = "gc";

/// How an AMI that may go goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Removal {
    /// Deregistered at once (neither `deprecate_after` nor `delete_after`).
    Now,
    /// Deprecated `deprecate_after` from now; deregistered `delete_after` after its deprecation time
    /// (never, without `delete_after`).
    Staged {
        /// From now to the deprecation time (0 with `delete_after` alone).
        deprecate_after: Duration,
        /// From the deprecation time to the deregistration.
        delete_after: Option<Duration>,
    },
}

impl Removal {
    /// The mode `deprecate_after` / `delete_after` make.
    pub(super) fn of(deprecate_after: Option<Duration>, delete_after: Option<Duration>) -> Self {
        if deprecate_after.is_none() && delete_after.is_none() {
            Removal::Now
        } else {
            Removal::Staged {
                deprecate_after: deprecate_after.unwrap_or_default(),
                delete_after,
            }
        }
    }
}

/// What becomes of an AMI that may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fate {
    /// Deregister it (with its snapshots).
    Remove,
    /// Deprecate it at this time (whole minutes, in the future).
    Deprecate(SystemTime),
    /// Deprecated already (or soon enough): wait; the reason says until when.
    Wait(String),
}

/// An AWS time (`2026-12-07T04:06:00.000Z`).
pub(super) fn parse_time(s: &str) -> Option<SystemTime> {
    aws_smithy_types::DateTime::from_str(s, aws_smithy_types::date_time::Format::DateTime)
        .ok()
        .and_then(|d| SystemTime::try_from(d).ok())
}

/// The next whole minute after `t` (AWS rounds a deprecation time to the minute and refuses one in the
/// past).
pub(super) fn next_minute(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs((secs / 60 + 1) * 60)
}

/// `2026-12-07T04:06:00Z`.
pub(super) fn show(t: SystemTime) -> String {
    bakery_core::ui::rfc3339(t)
}

/// True when gc deprecated `image` (its tag).
pub(super) fn deprecated_by_gc(image: &Image) -> bool {
    image
        .tags()
        .iter()
        .any(|t| t.key() == Some(DEPRECATED_BY_TAG) && t.value() == Some(DEPRECATED_BY_GC))
}

/// The fate of `image`, which may go, with `deprecate_after` and `delete_after`, decided at `now` (`clock`
/// is the real time, which a deprecation time gc sets must be after).
pub(super) fn fate(
    image: &Image,
    deprecate_after: Duration,
    delete_after: Option<Duration>,
    now: SystemTime,
    clock: SystemTime,
) -> Fate {
    let since = image.deprecation_time().and_then(parse_time);
    let delete = |t: SystemTime| {
        delete_after.map_or_else(
            || {
                format!(
                    "deprecated {} {}; deregistered once gc is given --delete-after (gc.delete_after)",
                    if t <= now { "since" } else { "from" },
                    show(t)
                )
            },
            |d| {
                format!(
                    "deprecated {} {}; deregistered from {} (delete_after {})",
                    if t <= now { "since" } else { "from" },
                    show(t),
                    show(t + d),
                    crate::durations::human(d)
                )
            },
        )
    };
    // What gc would set now: never earlier than a time it set before, as the clock only moves on.
    let target = next_minute(now.max(clock) + deprecate_after);
    match since {
        Some(t) if delete_after.is_some_and(|d| t + d <= now) => Fate::Remove,
        // Deprecated already, or by a time no later than gc would set: left as it is.
        Some(t) if t <= target => Fate::Wait(delete(t)),
        _ => Fate::Deprecate(target),
    }
}

/// The reason a just-deprecated AMI stays, with until when.
pub(super) fn deprecating_reason(at: SystemTime, delete_after: Option<Duration>) -> String {
    match delete_after {
        Some(d) => format!(
            "deprecation at {}; deregistered from {} (delete_after {})",
            show(at),
            show(at + d),
            crate::durations::human(d)
        ),
        None => format!(
            "deprecation at {}; deregistered once gc is given --delete-after (gc.delete_after)",
            show(at)
        ),
    }
}

/// Deprecates `d`'s AMI at `at`: tags it `bakery:deprecated-by=gc` first (an interrupted gc leaves a
/// tag without a deprecation, which the next gc completes or removes), then EnableImageDeprecation.
pub(super) async fn deprecate(
    cx: &Ctx,
    d: &mut AmiDecision,
    at: SystemTime,
    problems: &mut Vec<String>,
) {
    let id = d.id.clone();
    cx.say(&format!("Deprecating {id} from {}", show(at)));
    let out = async {
        cx.clients
            .ec2
            .create_tags()
            .resources(&id)
            .tags(
                Tag::builder()
                    .key(DEPRECATED_BY_TAG)
                    .value(DEPRECATED_BY_GC)
                    .build(),
            )
            .send()
            .await
            .aws("CreateTags")?;
        cx.clients
            .ec2
            .enable_image_deprecation()
            .image_id(&id)
            .deprecate_at(aws_smithy_types::DateTime::from(at))
            .send()
            .await
            .aws("EnableImageDeprecation")
    }
    .await;
    match out {
        Ok(_) => d.action = Action::Deprecated,
        Err(e) => {
            d.action = Action::Failed;
            d.reasons.push(e.to_string());
            problems.push(format!("{id}: {e}"));
        }
    }
}

/// Cancels the deprecation gc set on `d`'s AMI (kept again): DisableImageDeprecation (when it has a
/// deprecation time), then the tag goes.
pub(super) async fn undeprecate(
    cx: &Ctx,
    image: &Image,
    d: &mut AmiDecision,
    problems: &mut Vec<String>,
) {
    let id = d.id.clone();
    cx.say(&format!("Cancelling the deprecation of {id}: it is kept"));
    let out = async {
        if image.deprecation_time().is_some() {
            cx.clients
                .ec2
                .disable_image_deprecation()
                .image_id(&id)
                .send()
                .await
                .aws("DisableImageDeprecation")?;
        }
        cx.clients
            .ec2
            .delete_tags()
            .resources(&id)
            .tags(Tag::builder().key(DEPRECATED_BY_TAG).build())
            .send()
            .await
            .aws("DeleteTags")
    }
    .await;
    match out {
        Ok(_) => {
            d.action = Action::Undeprecated;
            d.deprecation = None;
        }
        Err(e) => {
            d.action = Action::Failed;
            d.reasons.push(e.to_string());
            problems.push(format!("{id}: {e}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn image(deprecation: Option<&str>) -> Image {
        Image::builder()
            .image_id("ami-12345678")
            .set_deprecation_time(deprecation.map(str::to_string))
            .build()
    }

    #[test]
    fn the_mode_follows_the_two_durations() {
        assert_eq!(Removal::of(None, None), Removal::Now);
        let day = Duration::from_secs(86_400);
        assert_eq!(
            Removal::of(None, Some(day)),
            Removal::Staged {
                deprecate_after: Duration::ZERO,
                delete_after: Some(day)
            }
        );
        assert_eq!(
            Removal::of(Some(day), None),
            Removal::Staged {
                deprecate_after: day,
                delete_after: None
            }
        );
    }

    #[test]
    fn times_are_aws_times_and_deprecation_is_on_a_whole_minute_ahead() {
        // 2026-12-07T04:05:30Z
        let t = parse_time("2026-12-07T04:05:30.000Z").unwrap();
        assert_eq!(parse_time("2026-12-07T04:05:30Z"), Some(t));
        assert_eq!(show(t), "2026-12-07T04:05:30Z");
        assert_eq!(show(next_minute(t)), "2026-12-07T04:06:00Z");
        assert_eq!(
            show(next_minute(parse_time("2026-12-07T04:06:00Z").unwrap())),
            "2026-12-07T04:07:00Z"
        );
        assert_eq!(parse_time("soon"), None);
    }

    #[test]
    fn an_ami_is_deprecated_then_waits_then_goes() {
        let hour = Duration::from_secs(3600);
        let now = at(1_800_000_000); // 2027-01-15T08:00:00Z
        // Not deprecated: deprecated an hour from now, on the minute.
        match fate(&image(None), hour, Some(hour), now, now) {
            Fate::Deprecate(t) => assert_eq!(t, at(1_800_003_660)),
            other => panic!("{other:?}"),
        }
        // A later deprecation time (a bake's deprecate_at) is brought forward.
        let later = show(now + Duration::from_secs(86_400 * 365));
        assert!(matches!(
            fate(&image(Some(&later)), hour, Some(hour), now, now),
            Fate::Deprecate(_)
        ));
        // Deprecated half an hour ago: waits until an hour after it.
        let since = show(now - hour / 2);
        match fate(&image(Some(&since)), hour, Some(hour), now, now) {
            Fate::Wait(why) => assert_eq!(
                why,
                "deprecated since 2027-01-15T07:30:00Z; deregistered from 2027-01-15T08:30:00Z (delete_after 1h)"
            ),
            other => panic!("{other:?}"),
        }
        // An hour and a half later it goes.
        assert_eq!(
            fate(&image(Some(&since)), hour, Some(hour), now + hour, now),
            Fate::Remove
        );
        // Without delete_after it stays deprecated.
        match fate(&image(Some(&since)), hour, None, now + 10 * hour, now) {
            Fate::Wait(why) => assert!(why.contains("--delete-after"), "{why}"),
            other => panic!("{other:?}"),
        }
        // A deprecation gc set a moment ago (the next minute) is left as it is.
        let soon = show(next_minute(now));
        assert!(matches!(
            fate(&image(Some(&soon)), Duration::ZERO, Some(hour), now, now),
            Fate::Wait(_)
        ));
        // A decision time in the past still deprecates after the real clock.
        match fate(&image(None), Duration::ZERO, Some(hour), now - hour, now) {
            Fate::Deprecate(t) => assert!(t > now),
            other => panic!("{other:?}"),
        }
        assert!(
            deprecating_reason(at(1_800_003_660), Some(hour)).starts_with(
                "deprecation at 2027-01-15T09:01:00Z; deregistered from 2027-01-15T10:01:00Z"
            )
        );
    }
}
