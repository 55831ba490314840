//! What a command would change (or changed), as a diff for people and as data for `--json`: one
//! [`DiffLine`] per resource or setting, rendered as a unified diff is — `+` what is (or would be) added,
//! `-` what is removed, a `-`/`+` pair for a setting that goes from one value to another, and a context
//! line (two spaces) for what stays as it is. `rollout setup` and `rollout plan` share it.
//!
//! Colour (`+` green, `-` red) is the caller's choice: the command line asks for it only on a terminal,
//! never with `NO_COLOR` or `--no-color` (bakery-core's `frontend::terminal`).

use serde::Serialize;
use std::fmt;

/// What happens to one resource or setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Op {
    /// Created or added (`+`).
    Add,
    /// Deleted or removed (`-`).
    Remove,
    /// A setting that goes from `from` to `to` (a `-` line, then a `+` line).
    Change {
        /// The value now.
        from: String,
        /// The value after.
        to: String,
    },
    /// Stays as it is (a context line).
    Same,
}

/// One resource or setting in a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffLine {
    /// What happens to it (`op`, and `from`/`to` for a change, in JSON).
    #[serde(flatten)]
    pub op: Op,
    /// `classic load balancer elb-shop-staging`, `group asg-shop-staging-<timestamp>`.
    pub resource: String,
    /// What it is (added, removed, unchanged), or a note on a change (shown after its `+` line).
    pub detail: String,
}

impl DiffLine {
    /// `resource` is (or would be) added.
    pub fn add(resource: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(Op::Add, resource, detail)
    }

    /// `resource` is (or would be) removed.
    pub fn remove(resource: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(Op::Remove, resource, detail)
    }

    /// `resource` goes from `from` to `to`; the same on both sides is no change (a context line).
    pub fn change(
        resource: impl Into<String>,
        from: impl Into<String>,
        to: impl Into<String>,
    ) -> Self {
        let (from, to) = (from.into(), to.into());
        if from == to {
            return Self::same(resource, to);
        }
        Self::new(Op::Change { from, to }, resource, "")
    }

    /// `resource` stays as it is.
    pub fn same(resource: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(Op::Same, resource, detail)
    }

    /// This line with `note` as its detail (a change shows it after the new value).
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.detail = note.into();
        self
    }

    fn new(op: Op, resource: impl Into<String>, detail: impl Into<String>) -> Self {
        DiffLine {
            op,
            resource: resource.into(),
            detail: detail.into(),
        }
    }

    /// True when it changes something (not a context line).
    pub fn changes(&self) -> bool {
        self.op != Op::Same
    }
}

/// How many lines of each kind a diff has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// `+` lines (not halves of a change).
    pub add: usize,
    /// Settings changed (`-`/`+` pairs).
    pub change: usize,
    /// `-` lines (not halves of a change).
    pub remove: usize,
    /// Context lines.
    pub same: usize,
}

impl Counts {
    /// Counts `lines`.
    pub fn of(lines: &[DiffLine]) -> Self {
        let mut c = Counts::default();
        for l in lines {
            match l.op {
                Op::Add => c.add += 1,
                Op::Remove => c.remove += 1,
                Op::Change { .. } => c.change += 1,
                Op::Same => c.same += 1,
            }
        }
        c
    }
}

impl fmt::Display for Counts {
    /// `2 to add, 1 to change, 1 to remove, 5 unchanged`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} to add, {} to change, {} to remove, {} unchanged",
            self.add, self.change, self.remove, self.same
        )
    }
}

/// ANSI green / red, and back to normal.
const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

/// `lines` as text, one line each (two for a change), every one ending in a newline: `+ resource:
/// detail`, `- resource: detail`, `- resource: from` + `+ resource: to (note)`, `  resource: detail`.
/// With `color`, `+` lines are green and `-` lines red (context lines stay plain).
pub fn render(lines: &[DiffLine], color: bool) -> String {
    let mut s = String::new();
    let mut line = |sign: char, resource: &str, text: &str, note: &str| {
        let mut l = format!("{sign} {resource}");
        if !text.is_empty() {
            l.push_str(": ");
            l.push_str(text);
        }
        if !note.is_empty() {
            l.push_str(&format!(" ({note})"));
        }
        match (color, sign) {
            (true, '+') => s.push_str(&format!("{GREEN}{l}{RESET}\n")),
            (true, '-') => s.push_str(&format!("{RED}{l}{RESET}\n")),
            _ => {
                s.push_str(&l);
                s.push('\n');
            }
        }
    };
    for l in lines {
        match &l.op {
            Op::Add => line('+', &l.resource, &l.detail, ""),
            Op::Remove => line('-', &l.resource, &l.detail, ""),
            Op::Same => line(' ', &l.resource, &l.detail, ""),
            Op::Change { from, to } => {
                line('-', &l.resource, from, "");
                line('+', &l.resource, to, &l.detail);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<DiffLine> {
        vec![
            DiffLine::add("security group elb-shop-staging", "in vpc-1"),
            DiffLine::change(
                "health check of elb-shop-staging",
                "HTTP:80/ every 30 s",
                "HTTP:8080/health every 10 s",
            ),
            DiffLine::remove("group asg-shop-staging-1", "ami-old, 2 instance(s)"),
            DiffLine::same("key pair shop-staging", "matches keys/staging.pub"),
            DiffLine::same("VPC vpc-1", ""),
        ]
    }

    #[test]
    fn plain_text_is_a_unified_diff() {
        assert_eq!(
            render(&sample(), false),
            "+ security group elb-shop-staging: in vpc-1\n\
             - health check of elb-shop-staging: HTTP:80/ every 30 s\n\
             + health check of elb-shop-staging: HTTP:8080/health every 10 s\n\
             - group asg-shop-staging-1: ami-old, 2 instance(s)\n\
             \x20 key pair shop-staging: matches keys/staging.pub\n\
             \x20 VPC vpc-1\n"
        );
        assert!(!render(&sample(), false).contains('\x1b'));
        assert_eq!(render(&[], true), "");
    }

    #[test]
    fn colour_marks_added_and_removed_lines_only() {
        let text = render(&sample(), true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "\x1b[32m+ security group elb-shop-staging: in vpc-1\x1b[0m"
        );
        assert_eq!(
            lines[1],
            "\x1b[31m- health check of elb-shop-staging: HTTP:80/ every 30 s\x1b[0m"
        );
        assert_eq!(
            lines[2],
            "\x1b[32m+ health check of elb-shop-staging: HTTP:8080/health every 10 s\x1b[0m"
        );
        assert!(lines[3].starts_with("\x1b[31m- group"));
        assert_eq!(
            lines[4],
            "  key pair shop-staging: matches keys/staging.pub"
        );
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn a_change_to_the_same_value_is_context_and_notes_follow_the_new_value() {
        assert_eq!(
            DiffLine::change("draining", "300 s", "300 s"),
            DiffLine::same("draining", "300 s")
        );
        let l = DiffLine::change(
            "launch template lt-1",
            "version 3: ami-1",
            "version 4: ami-2",
        )
        .with_note("default");
        assert_eq!(
            render(&[l], false),
            "- launch template lt-1: version 3: ami-1\n+ launch template lt-1: version 4: ami-2 (default)\n"
        );
        let c = Counts::of(&sample());
        assert_eq!((c.add, c.change, c.remove, c.same), (1, 1, 1, 2), "{c}");
        assert_eq!(
            c.to_string(),
            "1 to add, 1 to change, 1 to remove, 2 unchanged"
        );
    }

    #[test]
    fn json_carries_the_operation_and_both_values() {
        let v = serde_json::to_value(&sample()[..3]).unwrap();
        assert_eq!(
            v,
            serde_json::json!([
                {"op": "add", "resource": "security group elb-shop-staging", "detail": "in vpc-1"},
                {"op": "change", "from": "HTTP:80/ every 30 s", "to": "HTTP:8080/health every 10 s",
                 "resource": "health check of elb-shop-staging", "detail": ""},
                {"op": "remove", "resource": "group asg-shop-staging-1", "detail": "ami-old, 2 instance(s)"}
            ])
        );
    }
}
