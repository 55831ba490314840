//! The Packer manifest file (`packer-manifest.json`): written by bake's `manifest` post-processor, read by
//! `rollout --ami FILE`. One definition of its shape — `{"builds": [...], "last_run_uuid": ...}`, each build
//! `{name, builder_type, build_time, files, artifact_id, packer_run_uuid, custom_data}` in that order — and
//! of how Packer prints it: Go's `json.MarshalIndent(v, "", "  ")`, including Go's escaping of `<`, `>` and
//! `&`. Reading is Go's too: unknown keys are ignored, and a `null` list of builds or run id is empty.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::io;

/// One entry of `builds`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestBuild {
    /// The build name.
    #[serde(default)]
    pub name: String,
    /// The builder type.
    #[serde(default)]
    pub builder_type: String,
    /// Unix seconds; omitted when 0 (Go's `omitempty`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub build_time: i64,
    /// `null` when the artifact has no files.
    #[serde(default)]
    pub files: Option<Vec<ManifestArtifactFile>>,
    /// The artifact id (amazon: see [`amazon_artifact_id`]).
    #[serde(default)]
    pub artifact_id: String,
    /// The run that wrote this entry.
    #[serde(default)]
    pub packer_run_uuid: String,
    /// Rendered `custom_data`; `null` when none is configured.
    #[serde(default)]
    pub custom_data: Option<BTreeMap<String, String>>,
}

/// One file of an artifact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestArtifactFile {
    /// Path (or base name with `strip_path`).
    #[serde(default)]
    pub name: String,
    /// Size in bytes (0 when the file cannot be read).
    #[serde(default)]
    pub size: i64,
}

/// The whole manifest file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Every build recorded, oldest first.
    #[serde(default, deserialize_with = "null_as_default")]
    pub builds: Vec<ManifestBuild>,
    /// The run that wrote the file last.
    #[serde(default, deserialize_with = "null_as_default")]
    pub last_run_uuid: String,
}

impl ManifestFile {
    /// The last build of the last run (without a `last_run_uuid`: the last build). `Err` says why there is
    /// none.
    pub fn last_run_build(&self) -> Result<&ManifestBuild, String> {
        if self.last_run_uuid.is_empty() {
            return self
                .builds
                .last()
                .ok_or_else(|| "the manifest has no builds".to_string());
        }
        self.builds
            .iter()
            .rev()
            .find(|b| b.packer_run_uuid == self.last_run_uuid)
            .ok_or_else(|| format!("no build of the last run ({})", self.last_run_uuid))
    }
}

impl ManifestBuild {
    /// The AMI this build made in `region`, from an amazon artifact id (`us-east-1:ami-1,us-west-2:ami-2`).
    pub fn ami_in(&self, region: &str) -> Option<&str> {
        self.artifact_id
            .split(',')
            .filter_map(|a| a.trim().split_once(':'))
            .find(|(r, _)| *r == region)
            .map(|(_, ami)| ami)
    }
}

/// Packer's Amazon artifact id: `region:ami` pairs, sorted, comma-joined.
pub fn amazon_artifact_id<'a>(amis: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut parts: Vec<String> = amis
        .into_iter()
        .map(|(region, ami)| format!("{region}:{ami}"))
        .collect();
    parts.sort();
    parts.join(",")
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Go's decoder leaves a field at its zero value for `null`.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `json.MarshalIndent(v, "", "  ")`.
pub fn to_go_json<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter::default());
    value.serialize(&mut ser)?;
    // The formatter only ever writes UTF-8.
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// Two-space indentation plus Go's string escaping: `<`, `>`, `&`, U+2028
/// and U+2029 as `\u003c`…, and `\b`/`\f` as `\u0008`/`\u000c` (Go before 1.22,
/// which Packer 1.6.6 was built with).
struct GoFormatter {
    pretty: serde_json::ser::PrettyFormatter<'static>,
}

impl Default for GoFormatter {
    fn default() -> Self {
        GoFormatter {
            pretty: serde_json::ser::PrettyFormatter::with_indent(b"  "),
        }
    }
}

macro_rules! delegate {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $name<W: ?Sized + io::Write>(&mut self, w: &mut W $(, $arg: $ty)*) -> io::Result<()> {
            self.pretty.$name(w $(, $arg)*)
        })*
    };
}

impl serde_json::ser::Formatter for GoFormatter {
    delegate! {
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        begin_object_value();
        end_object_value();
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            w.write_all(&fragment.as_bytes()[start..i])?;
            w.write_all(esc.as_bytes())?;
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> io::Result<()> {
        use serde_json::ser::CharEscape;
        let s: &[u8] = match escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"/",
            CharEscape::Backspace => b"\\u0008",
            CharEscape::FormFeed => b"\\u000c",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::AsciiControl(b) => {
                return write!(w, "\\u{b:04x}");
            }
        };
        w.write_all(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_last_run_the_last_build_counts() {
        let m: ManifestFile = serde_json::from_str(
            r#"{"builds":[{"artifact_id":"us-east-1:ami-1"},{"artifact_id":"us-east-1:ami-2, eu-west-1:ami-3"}],"last_run_uuid":null}"#,
        )
        .unwrap();
        let b = m.last_run_build().unwrap();
        assert_eq!(b.ami_in("us-east-1"), Some("ami-2"));
        assert_eq!(b.ami_in("eu-west-1"), Some("ami-3"));
        assert_eq!(b.ami_in("us-west-2"), None);
        let e = ManifestFile::default().last_run_build().unwrap_err();
        assert_eq!(e, "the manifest has no builds");
    }
}
