//! Script text: `inline` commands assembled into one script, and the
//! Unix line endings Packer gives every non-`binary` script.

use bakery_template::late::{LateContext, LateTemplate};

use crate::error::ProvisionError;

/// Renders the `inline` lines (each is a late template) and joins them into
/// one script: `#!<shebang>` first, unless the shebang is empty or the first
/// line already is a `#!` line; every line ends with `\n`.
pub fn assemble_inline(
    provisioner: &'static str,
    lines: &[LateTemplate],
    shebang: &str,
    late: &LateContext,
) -> Result<String, ProvisionError> {
    let mut rendered = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        rendered.push(line.render(late).map_err(|e| ProvisionError::Render {
            provisioner,
            field: format!("inline[{i}]"),
            message: e.message,
        })?);
    }
    Ok(inline_script(&rendered, shebang))
}

/// [`assemble_inline`] for already rendered lines.
pub fn inline_script<S: AsRef<str>>(lines: &[S], shebang: &str) -> String {
    let mut script = String::new();
    let has_own = lines.first().is_some_and(|l| l.as_ref().starts_with("#!"));
    if !shebang.is_empty() && !has_own {
        script.push_str("#!");
        script.push_str(shebang);
        script.push('\n');
    }
    for line in lines {
        script.push_str(line.as_ref());
        script.push('\n');
    }
    script
}

/// Packer's `UnixReader`: every line ends with `\n` (a `\r\n` ending
/// loses its `\r`; a last line without newline gains one).
pub fn unix_line_endings(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 1);
    for line in data.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        out.extend_from_slice(body);
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_gets_the_default_shebang_and_newlines() {
        assert_eq!(
            inline_script(&["echo a", "echo b"], "/bin/sh -e"),
            "#!/bin/sh -e\necho a\necho b\n"
        );
    }

    #[test]
    fn inline_with_its_own_shebang_keeps_it_alone() {
        assert_eq!(
            inline_script(&["#!/bin/bash", "echo a"], "/bin/sh -e"),
            "#!/bin/bash\necho a\n"
        );
        // Only the first line counts.
        assert_eq!(
            inline_script(&["echo a", "#!/bin/bash"], "/bin/sh -x"),
            "#!/bin/sh -x\necho a\n#!/bin/bash\n"
        );
        // An empty shebang (shell-local `inline_shebang: ""`) adds none.
        assert_eq!(inline_script(&["echo a"], ""), "echo a\n");
    }

    #[test]
    fn inline_lines_are_rendered_with_the_build_data() {
        let p = crate::testutil::provisioner(
            r#"{"type":"shell","inline":["echo {{ build `ID` }}","echo {{ build_name }}"],"inline_shebang":"/bin/bash -eu"}"#,
        );
        let bakery_template::ProvisionerConfig::Shell(cfg) = p else {
            panic!("not shell: {p:?}")
        };
        let mut late = LateContext::default();
        late.build.insert("ID".into(), "i-42".into());
        let script = assemble_inline(
            "shell",
            cfg.inline.as_deref().unwrap(),
            &cfg.inline_shebang,
            &late,
        )
        .unwrap();
        assert_eq!(script, "#!/bin/bash -eu\necho i-42\necho amazon-ebs\n");
    }

    #[test]
    fn unix_reader_semantics() {
        assert_eq!(unix_line_endings(b"a\r\nb\r\n"), b"a\nb\n");
        assert_eq!(unix_line_endings(b"a\nb"), b"a\nb\n");
        assert_eq!(unix_line_endings(b""), b"");
        assert_eq!(unix_line_endings(b"\n\n"), b"\n\n");
        // A lone \r inside a line is content, not a line ending.
        assert_eq!(unix_line_endings(b"a\rb\n"), b"a\rb\n");
    }
}
