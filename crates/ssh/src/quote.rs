//! Quoting for remote POSIX shells. SSH carries a command as one string that
//! the remote login shell parses, so every path we put into a command is
//! single-quoted here.

/// Quotes `s` as one POSIX shell word: `it's` becomes `'it'\''s'`.
pub fn shell_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Quotes a remote path, keeping a leading `~` or `~/` meaning the remote
/// home directory (Packer's scp commands pass the destination through the
/// remote shell unquoted, so `~/x` works in templates and must keep working).
/// Everything else, including `$` and spaces, is literal.
pub fn remote_path_word(path: &str) -> String {
    if path == "~" {
        "\"$HOME\"".to_string()
    } else if let Some(rest) = path.strip_prefix("~/") {
        format!("\"$HOME\"{}", shell_quote(&format!("/{rest}")))
    } else {
        shell_quote(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// What `sh` makes of `word`, as one argument.
    fn sh_eval(word: &str) -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s' {word}"))
            .env("HOME", "/home/someone")
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn quotes_plain_and_hostile_strings() {
        assert_eq!(shell_quote("abc"), "'abc'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        for s in [
            "plain",
            "with space",
            "it's",
            "''",
            "$HOME `id` $(id) \\ \" ; & | > < * ? [a] ~",
            "line\nbreak",
            "ünïcødé",
            "-n",
        ] {
            assert_eq!(sh_eval(&shell_quote(s)), s, "round trip of {s:?}");
        }
    }

    #[test]
    fn remote_paths_expand_only_leading_tilde() {
        assert_eq!(sh_eval(&remote_path_word("~")), "/home/someone");
        assert_eq!(
            sh_eval(&remote_path_word("~/a b/it's")),
            "/home/someone/a b/it's"
        );
        assert_eq!(sh_eval(&remote_path_word("/tmp/~x")), "/tmp/~x");
        assert_eq!(sh_eval(&remote_path_word("~other/x")), "~other/x");
        assert_eq!(sh_eval(&remote_path_word("/tmp/$HOME")), "/tmp/$HOME");
    }
}
