//! Packer legacy JSON templates for bakery.
//!
//! [`load()`] parses a template (with positions and duplicate-key detection),
//! resolves its variables (defaults < `-var-file` < `-var`), renders and
//! decodes every plugin's options weakly as Packer does, validates them, and
//! returns the builds to run — or every error at once. Fields Packer renders
//! late (amazon tags, shell `execute_command`, manifest `custom_data`) stay
//! [`LateTemplate`]s for the build pipeline to render.
//!
//! The template engine ([`engine`]) implements Go's text/template
//! semantics and error messages; [`funcs`] has Packer's functions.

pub mod decode;
pub mod diagnostics;
pub mod duration;
pub mod engine;
pub mod funcs;
pub mod gotime;
pub mod json;
pub mod late;
pub mod load;
pub mod render;
pub mod schema;
pub mod secrets;
pub mod template;
pub mod variables;
pub mod version;

pub use diagnostics::{Diagnostic, Diagnostics, Severity};
pub use late::{LateContext, LateMap, LateTemplate, RenderError};
pub use load::{Build, LoadOptions, Loaded, load};
pub use schema::amazon_ebs::{AmazonEbsConfig, BlockDevice};
pub use schema::{
    AnsibleConfig, AnsibleLocalConfig, BuilderConfig, FileConfig, ManifestConfig,
    PostProcessorConfig, ProvisionerConfig, ProvisionerMeta, ShellConfig, ShellLocalConfig,
};
pub use secrets::Secrets;
pub use template::Template;
pub use version::PACKER_COMPAT_VERSION;
