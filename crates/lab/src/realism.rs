//! The lab's realism layer (lab/py/realism.py, docs/lab.md): which profile a lab runs, and what it
//! injected. Profiles and their parameters live in the Python module; this side names them.

use std::collections::BTreeMap;

use crate::error::{INSTALL_HINT, LabError};
use crate::http;
use crate::json::{Json, quote};

pub(crate) const PATH: &str = "/bakery-lab/realism";

/// A realism profile, with optional overrides: what [`crate::Lab::start_with`] starts a lab with and
/// [`crate::Lab::set_realism`] switches a running lab to.
///
/// ```
/// use bakery_lab::Realism;
/// let realism = Realism::profile("real-aws")
///     .seed(7)
///     .set("holds.image_pending_s", "5")
///     .set("capacity", "null");
/// assert_eq!(realism.name(), "real-aws");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Realism {
    profile: String,
    seed: Option<u64>,
    sets: Vec<String>,
    ssh_front: bool,
}

impl Realism {
    /// A named profile: `off`, `real-aws`, `bench`, `consistency`, `holds`, `refusals`, `throttle`,
    /// `capacity`, `imdsv2`, `late`, `boot` (docs/lab.md has their parameters). An unknown name fails
    /// when the lab starts or switches, with the list of profiles.
    pub fn profile(name: &str) -> Realism {
        Realism {
            profile: name.to_owned(),
            seed: None,
            sets: Vec::new(),
            ssh_front: false,
        }
    }

    /// The lab as it always was: no behaviour on.
    pub fn off() -> Realism {
        Realism::profile("off")
    }

    /// The seed of the layer's draws (throttles, 5xx, jitter, NotFound counts): the same seed and the
    /// same requests in the same order give the same faults. Default: random (reported by
    /// [`crate::Lab::realism`]).
    pub fn seed(mut self, seed: u64) -> Realism {
        self.seed = Some(seed);
        self
    }

    /// Overrides a parameter: `path` is `behaviour.parameter` (`holds.jitter_s`) or a behaviour
    /// (`throttle`: `null` turns it off, `{}` on with its defaults); `json_value` is JSON (a bare word
    /// is taken as a string).
    pub fn set(mut self, path: &str, json_value: &str) -> Realism {
        self.sets.push(format!("{path}={json_value}"));
        self
    }

    /// Starts the lab with the SSH front even if the profile has no `boot` behaviour, so that a test
    /// can switch to one later ([`crate::Lab::set_realism`] refuses `boot` on a lab without a front).
    pub fn with_ssh_front(mut self) -> Realism {
        self.ssh_front = true;
        self
    }

    /// `BAKERY_LAB_REALISM` (profile), `BAKERY_LAB_REALISM_SEED`, `BAKERY_LAB_REALISM_SET`
    /// (space-separated `path=value`), or None when `BAKERY_LAB_REALISM` is unset or empty.
    pub fn from_env() -> Option<Realism> {
        Realism::from_vars(|name| std::env::var(name).ok())
    }

    /// [`Realism::from_env`] over any source of variables.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<Realism> {
        let profile = var("BAKERY_LAB_REALISM").filter(|p| !p.trim().is_empty())?;
        let mut realism = Realism::profile(profile.trim());
        // A seed that is not a number is passed on as is: lab/up refuses it with a message.
        realism.sets = var("BAKERY_LAB_REALISM_SET")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if let Some(seed) = var("BAKERY_LAB_REALISM_SEED").filter(|s| !s.trim().is_empty()) {
            match seed.trim().parse() {
                Ok(n) => realism.seed = Some(n),
                Err(_) => realism.sets.push(format!("seed={}", seed.trim())),
            }
        }
        Some(realism)
    }

    /// The profile's name.
    pub fn name(&self) -> &str {
        &self.profile
    }

    /// `lab/up` options.
    pub(crate) fn up_args(&self) -> Vec<String> {
        let mut args = vec!["--realism".to_owned(), self.profile.clone()];
        if let Some(seed) = self.seed {
            args.extend(["--realism-seed".to_owned(), seed.to_string()]);
        }
        for set in &self.sets {
            args.extend(["--realism-set".to_owned(), set.clone()]);
        }
        if self.ssh_front {
            args.push("--ssh-front".to_owned());
        }
        args
    }

    /// The body of `PUT /bakery-lab/realism`.
    pub(crate) fn put_body(&self) -> String {
        let sets: Vec<String> = self.sets.iter().map(|s| quote(s)).collect();
        let seed = self
            .seed
            .map_or_else(|| "null".to_owned(), |s| s.to_string());
        format!(
            "{{\"profile\":{},\"seed\":{seed},\"set\":[{}]}}",
            quote(&self.profile),
            sets.join(",")
        )
    }
}

/// What the realism layer answers at `GET /bakery-lab/realism`: the profile it runs, its settings and
/// what it injected so far.
#[derive(Debug, Clone, PartialEq)]
pub struct RealismState {
    /// The profile's name (`custom` after a `PUT` of a settings object).
    pub profile: String,
    /// The seed of the layer's draws.
    pub seed: u64,
    /// Whether the lab has the SSH front (needed by `boot`).
    pub ssh_front: bool,
    /// `"behaviour:Action"` (or `"behaviour:ssh"`) -> how many times it was injected.
    pub injected: BTreeMap<String, u64>,
    /// Every behaviour's parameters (`null`: off), and `seed`.
    pub settings: Json,
    /// The profiles the layer knows.
    pub profiles: Vec<String>,
}

impl RealismState {
    pub(crate) fn parse(body: &str) -> Result<RealismState, String> {
        let doc = Json::parse(body)?;
        let field = |name: &str| {
            doc.get(name)
                .ok_or_else(|| format!("no `{name}` in {body}"))
        };
        let injected = field("injected")?
            .as_object()
            .ok_or("`injected` is not an object")?
            .iter()
            .map(|(k, v)| {
                v.as_u64()
                    .map(|n| (k.clone(), n))
                    .ok_or_else(|| format!("count `{k}` is not a number"))
            })
            .collect::<Result<_, _>>()?;
        Ok(RealismState {
            profile: field("profile")?
                .as_str()
                .ok_or("`profile` is not a string")?
                .to_owned(),
            seed: field("seed")?.as_u64().ok_or("`seed` is not a number")?,
            ssh_front: field("ssh_front")?.as_bool().unwrap_or(false),
            injected,
            settings: field("settings")?.clone(),
            profiles: doc
                .get("profiles")
                .and_then(Json::as_array)
                .unwrap_or_default()
                .iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect(),
        })
    }

    /// How many times `behaviour` was injected into `action` (`"ssh"` for the SSH side).
    pub fn injected(&self, behaviour: &str, action: &str) -> u64 {
        self.injected
            .get(&format!("{behaviour}:{action}"))
            .copied()
            .unwrap_or(0)
    }

    /// How many times `behaviour` was injected, over all actions. A behaviour's name is the prefix of
    /// its counts: `consistency`, `holds`, `dependency`, `snapshot_in_use`, `throttle`, `errors`,
    /// `errors_after_effect`, `capacity`, `late`, `imdsv2`, `boot_refused`, `boot_dropped`,
    /// `boot_host_key`, `boot_auth`, `reboot`.
    pub fn injected_total(&self, behaviour: &str) -> u64 {
        let prefix = format!("{behaviour}:");
        self.injected
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// How many `action` requests the layer refused with an error (consistency, dependency, snapshot
    /// InUse, throttling, 5xx, capacity, IMDSv2): each is a request a correct caller sends again, so a
    /// test counting requests adds these to what it expects.
    pub fn refused(&self, action: &str) -> u64 {
        [
            "consistency",
            "dependency",
            "snapshot_in_use",
            "throttle",
            "errors",
            "errors_after_effect",
            "capacity",
            "imdsv2",
        ]
        .iter()
        .map(|b| self.injected(b, action))
        .sum()
    }

    /// Whether `behaviour` is on (its settings are not `null`).
    pub fn is_on(&self, behaviour: &str) -> bool {
        self.settings.get(behaviour).is_some_and(|b| !b.is_null())
    }
}

fn missing(host_port: &str, detail: String) -> LabError {
    LabError::Moto {
        detail: format!(
            "the lab at {host_port} has no realism layer ({detail}): {INSTALL_HINT}, \
             then restart the lab (lab/up --realism PROFILE)"
        ),
    }
}

pub(crate) fn fetch(host_port: &str) -> Result<RealismState, LabError> {
    let (status, body) = http::request(host_port, "GET", PATH, None)?;
    if status != 200 {
        return Err(missing(host_port, format!("GET {PATH} answered {status}")));
    }
    RealismState::parse(&body).map_err(|e| missing(host_port, e))
}

pub(crate) fn put(host_port: &str, realism: &Realism) -> Result<RealismState, LabError> {
    let body = realism.put_body();
    let (status, answer) = http::request(host_port, "PUT", PATH, Some(&body))?;
    if status == 404 {
        return Err(missing(host_port, format!("PUT {PATH} answered 404")));
    }
    if status != 200 {
        let reason = Json::parse(&answer)
            .ok()
            .and_then(|doc| doc.get("error").and_then(Json::as_str).map(str::to_owned))
            .unwrap_or(answer);
        return Err(LabError::Moto {
            detail: format!(
                "realism profile `{}` refused ({status}): {reason}",
                realism.name()
            ),
        });
    }
    RealismState::parse(&answer).map_err(|e| missing(host_port, e))
}

pub(crate) fn reset(host_port: &str) -> Result<(), LabError> {
    http::request_ok(host_port, "DELETE", PATH, None).map(drop)
}

/// `POST /bakery-lab/realism/reboot`: how many SSH connections the front dropped.
pub(crate) fn reboot(host_port: &str) -> Result<u64, LabError> {
    let body = http::request_ok(host_port, "POST", &format!("{PATH}/reboot"), Some("{}"))?;
    Json::parse(&body)
        .ok()
        .and_then(|doc| doc.get("dropped").and_then(Json::as_u64))
        .ok_or_else(|| LabError::Moto {
            detail: format!("POST {PATH}/reboot answered `{}`", body.trim()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_lab_up_options_and_the_put_body() {
        let realism = Realism::profile("real-aws")
            .seed(7)
            .set("holds.jitter_s", "0")
            .with_ssh_front();
        assert_eq!(
            realism.up_args(),
            [
                "--realism",
                "real-aws",
                "--realism-seed",
                "7",
                "--realism-set",
                "holds.jitter_s=0",
                "--ssh-front"
            ]
        );
        let body = Json::parse(&realism.put_body()).unwrap();
        assert_eq!(body.get("profile").and_then(Json::as_str), Some("real-aws"));
        assert_eq!(body.get("seed").and_then(Json::as_u64), Some(7));
        assert_eq!(
            body.get("set").and_then(Json::as_array).unwrap()[0].as_str(),
            Some("holds.jitter_s=0")
        );
        assert!(
            Json::parse(&Realism::off().put_body())
                .unwrap()
                .get("seed")
                .unwrap()
                .is_null()
        );
    }

    #[test]
    fn reads_the_environment() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Realism::from_vars(vars(&[])), None);
        assert_eq!(
            Realism::from_vars(vars(&[("BAKERY_LAB_REALISM", " ")])),
            None
        );
        let realism = Realism::from_vars(vars(&[
            ("BAKERY_LAB_REALISM", "bench"),
            ("BAKERY_LAB_REALISM_SEED", "42"),
            (
                "BAKERY_LAB_REALISM_SET",
                "holds.jitter_s=0  dependency=null",
            ),
        ]))
        .unwrap();
        assert_eq!(
            realism,
            Realism::profile("bench")
                .seed(42)
                .set("holds.jitter_s", "0")
                .set("dependency", "null")
        );
    }

    #[test]
    fn parses_the_get_answer() {
        let state = RealismState::parse(
            r#"{"profile": "throttle", "seed": 7, "settings": {"seed": 7, "throttle": {"rate": 0.2},
                "holds": null}, "injected": {"throttle:DescribeRegions": 3, "throttle:RunInstances": 1,
                "errors:DescribeRegions": 2}, "ssh_front": true, "profiles": ["off", "throttle"]}"#,
        )
        .unwrap();
        assert_eq!(state.profile, "throttle");
        assert_eq!(state.seed, 7);
        assert!(state.ssh_front);
        assert_eq!(state.injected("throttle", "DescribeRegions"), 3);
        assert_eq!(state.injected_total("throttle"), 4);
        assert_eq!(state.injected_total("errors"), 2);
        assert!(state.is_on("throttle") && !state.is_on("holds") && !state.is_on("boot"));
        assert_eq!(state.profiles, ["off", "throttle"]);
        assert!(RealismState::parse(r#"{"profile": "x"}"#).is_err());
    }
}
