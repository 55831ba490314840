//! Tag convergence shared by every resource setup manages: which of the environment's steady tags a
//! resource lacks (setup adds those, never removes any).

use crate::context::Ctx;
use std::collections::BTreeMap;

/// The steady tags of the environment that `have` lacks or holds with another value.
pub(super) fn missing<'h>(
    cx: &Ctx,
    have: impl IntoIterator<Item = (&'h str, &'h str)>,
) -> Vec<(String, String)> {
    let have: BTreeMap<&str, &str> = have.into_iter().collect();
    cx.steady_tags()
        .into_iter()
        .filter(|(k, v)| have.get(k.as_str()) != Some(&v.as_str()))
        .collect()
}

/// `k1, k2`: the keys of `tags`, as the report names them.
pub(super) fn keys(tags: &[(String, String)]) -> String {
    tags.iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
