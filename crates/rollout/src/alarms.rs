//! The alarm gates' one read: the manifest's CloudWatch alarms (`gates.alarms`) and their states, by one
//! DescribeAlarms of at most 100 names (metric and composite alarms). ALARM trips a gate; OK and
//! INSUFFICIENT_DATA do not (as for instance refresh's alarm specification); an alarm that does not exist
//! cannot vouch for anything, so it trips too.

use crate::context::Ctx;
use crate::error::{AwsResultExt, RolloutError};
use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use serde::Serialize;

/// One alarm as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlarmState {
    /// The alarm's name.
    pub name: String,
    /// `OK`, `ALARM`, `INSUFFICIENT_DATA`, or `missing` when CloudWatch does not know it.
    pub state: String,
    /// CloudWatch's reason for the state, when it gave one.
    pub reason: Option<String>,
}

impl AlarmState {
    /// True when this alarm stops a rollout: in ALARM, or missing.
    pub fn trips(&self) -> bool {
        self.state == StateValue::Alarm.as_str() || self.state == MISSING
    }

    /// `shop-5xx is ALARM (Threshold Crossed: …)` / `shop-5xx does not exist`.
    pub fn describe(&self) -> String {
        if self.state == MISSING {
            return format!("{} does not exist in this region", self.name);
        }
        format!(
            "{} is {}{}",
            self.name,
            self.state,
            self.reason
                .as_deref()
                .filter(|r| !r.is_empty())
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        )
    }
}

/// The state of an alarm CloudWatch did not list.
pub const MISSING: &str = "missing";

/// The states of `names`, in their order (at most 100: config checks that).
pub async fn read(cx: &Ctx, names: &[String]) -> Result<Vec<AlarmState>, RolloutError> {
    let out = cx
        .clients
        .cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(names.to_vec()))
        .alarm_types(AlarmType::MetricAlarm)
        .alarm_types(AlarmType::CompositeAlarm)
        .max_records(100)
        .send()
        .await
        .aws("DescribeAlarms")?;
    let mut found: Vec<(String, String, Option<String>)> = out
        .metric_alarms()
        .iter()
        .map(|a| {
            (
                a.alarm_name().unwrap_or_default().to_string(),
                a.state_value().map(|s| s.as_str().to_string()),
                a.state_reason().map(str::to_string),
            )
        })
        .chain(out.composite_alarms().iter().map(|a| {
            (
                a.alarm_name().unwrap_or_default().to_string(),
                a.state_value().map(|s| s.as_str().to_string()),
                a.state_reason().map(str::to_string),
            )
        }))
        .map(|(n, s, r)| (n, s.unwrap_or_else(|| "INSUFFICIENT_DATA".into()), r))
        .collect();
    Ok(names
        .iter()
        .map(|name| match found.iter().position(|(n, ..)| n == name) {
            Some(i) => {
                let (name, state, reason) = found.swap_remove(i);
                AlarmState {
                    name,
                    state,
                    reason,
                }
            }
            None => AlarmState {
                name: name.clone(),
                state: MISSING.into(),
                reason: None,
            },
        })
        .collect())
}

/// Preflight: every named alarm exists and none is in ALARM before anything changes — a gate that is
/// already tripped could not tell the new release from what is wrong now.
pub async fn preflight_problems(cx: &Ctx) -> Result<Vec<String>, RolloutError> {
    let names = &cx.cfg.gates.alarms;
    if names.is_empty() {
        return Ok(Vec::new());
    }
    Ok(read(cx, names)
        .await?
        .iter()
        .filter(|a| a.trips())
        .map(|a| {
            if a.state == MISSING {
                format!(
                    "gates.alarms: {}: name an existing CloudWatch alarm",
                    a.describe()
                )
            } else {
                format!(
                    "gates.alarms: {} before the rollout: the gate could not tell the new release from what is wrong now (resolve it, or leave it out of gates.alarms for this rollout)",
                    a.describe()
                )
            }
        })
        .collect())
}
