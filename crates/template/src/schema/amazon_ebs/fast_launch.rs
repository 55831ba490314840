//! `fast_launch`: Windows fast launch of the AMI. Decoded and checked; bakery does not set it up.

use crate::decode::{Decoder, Fields};

/// The `fast_launch` block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FastLaunchConfig {
    /// Turn on fast launch for the AMI (Windows only).
    pub enable_fast_launch: bool,
    /// Launch template (by id) fast launch uses in the build region.
    pub template_id: Option<String>,
    /// Launch template (by name) fast launch uses in the build region.
    pub template_name: Option<String>,
    /// Version of that launch template (default: its default version).
    pub template_version: Option<i64>,
    /// The launch template for each copy region.
    pub region_launch_templates: Vec<FastLaunchTemplate>,
    /// How many instances may prepare snapshots at once (AWS's minimum: 6).
    pub max_parallel_launches: Option<i64>,
    /// How many pre-provisioned snapshots to keep ready.
    pub target_resource_count: Option<i64>,
}

/// One entry of `fast_launch.region_launch_templates`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FastLaunchTemplate {
    /// The copy region this template is for.
    pub region: Option<String>,
    /// Launch template id in that region.
    pub template_id: Option<String>,
    /// Launch template name in that region.
    pub template_name: Option<String>,
    /// Version of that launch template.
    pub template_version: Option<i64>,
}

/// Decodes the body of `fast_launch`.
pub fn decode(d: &mut Decoder, f: &mut Fields) -> FastLaunchConfig {
    FastLaunchConfig {
        enable_fast_launch: d.bool(f, "enable_fast_launch"),
        template_id: d.opt_string(f, "template_id"),
        template_name: d.opt_string(f, "template_name"),
        template_version: d.int(f, "template_version"),
        region_launch_templates: d.objects(f, "region_launch_templates", |d, f| {
            FastLaunchTemplate {
                region: d.opt_string(f, "region"),
                template_id: d.opt_string(f, "template_id"),
                template_name: d.opt_string(f, "template_name"),
                template_version: d.int(f, "template_version"),
            }
        }),
        max_parallel_launches: d.int(f, "max_parallel_launches"),
        target_resource_count: d.int(f, "target_resource_count"),
    }
}
