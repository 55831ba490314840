//! `--ami`: an AMI id, an SSM parameter (`ssm:/name`), or a bake manifest file (Packer's manifest
//! post-processor format: the last build of the last run, its artifact for the region).

use crate::error::{AwsResultExt, RolloutError};
pub use crate::observed::ResolvedAmi;
use bakery_core::aws::Clients;
use bakery_core::packer_manifest::ManifestFile;
use std::path::{Path, PathBuf};

/// Where the AMI comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmiSource {
    /// `ami-0123...`.
    Id(String),
    /// `ssm:/app/ami`: the parameter's value.
    Ssm(String),
    /// A bake (Packer) manifest file.
    BakeManifest(PathBuf),
}

impl AmiSource {
    /// Reads the `--ami` argument.
    pub fn parse(given: &str) -> Result<Self, RolloutError> {
        let bad = |reason: &str| RolloutError::Ami {
            given: given.to_string(),
            reason: reason.to_string(),
        };
        if let Some(name) = given.strip_prefix("ssm:") {
            if name.is_empty() {
                return Err(bad("ssm: needs a parameter name (ssm:/app/ami)"));
            }
            return Ok(AmiSource::Ssm(name.to_string()));
        }
        if is_ami_id(given) {
            return Ok(AmiSource::Id(given.to_string()));
        }
        let path = Path::new(given);
        if path.is_file() {
            return Ok(AmiSource::BakeManifest(path.to_path_buf()));
        }
        Err(bad(
            "expected an AMI id (ami-...), an SSM parameter (ssm:/name) or a bake manifest file (no such file)",
        ))
    }
}

/// `ami-` followed by 8 or 17 hex digits.
pub fn is_ami_id(s: &str) -> bool {
    s.strip_prefix("ami-").is_some_and(|h| {
        (h.len() == 8 || h.len() == 17) && h.chars().all(|c| c.is_ascii_hexdigit())
    })
}

/// Resolves `given` to an available AMI in `clients.region`.
pub async fn resolve(clients: &Clients, given: &str) -> Result<ResolvedAmi, RolloutError> {
    let bad = |reason: String| RolloutError::Ami {
        given: given.to_string(),
        reason,
    };
    let id = match AmiSource::parse(given)? {
        AmiSource::Id(id) => id,
        AmiSource::Ssm(name) => {
            let out = clients
                .ssm
                .get_parameter()
                .name(&name)
                .send()
                .await
                .aws("GetParameter");
            let out = match out {
                Ok(o) => o,
                Err(e) if e.is_not_found() => {
                    return Err(bad(format!("SSM parameter {name} does not exist")));
                }
                Err(e) => return Err(e.into()),
            };
            let value = out
                .parameter()
                .and_then(|p| p.value())
                .unwrap_or_default()
                .trim()
                .to_string();
            if !is_ami_id(&value) {
                return Err(bad(format!(
                    "SSM parameter {name} holds `{value}`, not an AMI id"
                )));
            }
            value
        }
        AmiSource::BakeManifest(path) => {
            let text = std::fs::read_to_string(&path).map_err(|source| RolloutError::Io {
                path: path.clone(),
                source,
            })?;
            ami_from_bake_manifest(&text, &clients.region).map_err(bad)?
        }
    };
    let out = clients
        .ec2
        .describe_images()
        .image_ids(&id)
        .send()
        .await
        .aws("DescribeImages");
    let images = match out {
        Ok(o) => o.images.unwrap_or_default(),
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let Some(image) = images
        .into_iter()
        .find(|i| i.image_id() == Some(id.as_str()))
    else {
        return Err(bad(format!("{id} does not exist in {}", clients.region)));
    };
    let state = image.state().map(|s| s.as_str().to_string());
    if state.as_deref() != Some("available") {
        return Err(bad(format!(
            "{id} is {} in {}, not available",
            state.as_deref().unwrap_or("in an unknown state"),
            clients.region
        )));
    }
    Ok(ResolvedAmi {
        id,
        source: given.to_string(),
        name: image.name().map(str::to_string),
    })
}

/// The AMI for `region` from the last build of the last run in a Packer/bake manifest
/// (`artifact_id` is `us-east-1:ami-123,us-west-2:ami-456`).
pub fn ami_from_bake_manifest(text: &str, region: &str) -> Result<String, String> {
    let m: ManifestFile = serde_json::from_str(text)
        .map_err(|e| format!("not a bake manifest (builds, last_run_uuid): {e}"))?;
    let build = m.last_run_build()?;
    build.ami_in(region).map(str::to_string).ok_or_else(|| {
        format!(
            "build {} of the last run has no AMI for {region} (artifacts: {})",
            if build.name.is_empty() {
                "?"
            } else {
                &build.name
            },
            if build.artifact_id.is_empty() {
                "none"
            } else {
                &build.artifact_id
            }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"{
      "builds": [
        {"name": "primal", "builder_type": "amazon-ebs", "build_time": 1, "files": null,
         "artifact_id": "us-east-1:ami-11111111", "packer_run_uuid": "run-1", "custom_data": null},
        {"name": "carnivore", "builder_type": "amazon-ebs", "build_time": 2, "files": null,
         "artifact_id": "us-east-1:ami-22222222,us-west-2:ami-33333333", "packer_run_uuid": "run-2", "custom_data": null},
        {"name": "carnivore", "builder_type": "amazon-ebs", "build_time": 3, "files": null,
         "artifact_id": "us-east-1:ami-44444444", "packer_run_uuid": "run-1", "custom_data": null}
      ],
      "last_run_uuid": "run-2"
    }"#;

    #[test]
    fn takes_the_last_runs_build_for_the_region() {
        assert_eq!(
            ami_from_bake_manifest(MANIFEST, "us-west-2").unwrap(),
            "ami-33333333"
        );
        // The later build belongs to an older run: not it.
        assert_eq!(
            ami_from_bake_manifest(MANIFEST, "us-east-1").unwrap(),
            "ami-22222222"
        );
        let e = ami_from_bake_manifest(MANIFEST, "eu-west-1").unwrap_err();
        assert!(e.contains("no AMI for eu-west-1"), "{e}");
    }

    #[test]
    fn sources_are_told_apart() {
        assert_eq!(
            AmiSource::parse("ami-0123456789abcdef0").unwrap(),
            AmiSource::Id("ami-0123456789abcdef0".into())
        );
        assert_eq!(
            AmiSource::parse("ssm:/shop/ami").unwrap(),
            AmiSource::Ssm("/shop/ami".into())
        );
        let e = AmiSource::parse("ami-nothex!").unwrap_err().to_string();
        assert!(e.contains("expected an AMI id"), "{e}");
        let e = AmiSource::parse("ssm:").unwrap_err().to_string();
        assert!(e.contains("needs a parameter name"), "{e}");
    }
}
