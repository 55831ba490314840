//! Tag convergence shared by every resource setup manages: which of the environment's steady tags a
//! resource lacks or holds with another value (setup adds or corrects those, never removes any), and how
//! they read before and after, for the diff.

use crate::context::Ctx;
use std::collections::BTreeMap;

/// The steady tags a resource lacks or holds with another value, and how they read.
pub(super) struct TagFix {
    /// The tags to write (the environment's values).
    pub tags: Vec<(String, String)>,
    /// `tags team unset, owner=ops`: those keys as the resource has them.
    pub before: String,
    /// `tags team=web, owner=web`: as they will be.
    pub after: String,
}

/// What of the environment's steady tags a resource that has `have` lacks; None when it has them all.
pub(super) fn fix<'h>(
    cx: &Ctx,
    have: impl IntoIterator<Item = (&'h str, &'h str)>,
) -> Option<TagFix> {
    let have: BTreeMap<&str, &str> = have.into_iter().collect();
    let tags: Vec<(String, String)> = cx
        .steady_tags()
        .into_iter()
        .filter(|(k, v)| have.get(k.as_str()) != Some(&v.as_str()))
        .collect();
    if tags.is_empty() {
        return None;
    }
    let before = tags
        .iter()
        .map(|(k, _)| match have.get(k.as_str()) {
            Some(v) => format!("{k}={v}"),
            None => format!("{k} unset"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let after = tags
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(TagFix {
        before: format!("tags {before}"),
        after: format!("tags {after}"),
        tags,
    })
}
