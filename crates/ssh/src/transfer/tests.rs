//! The transfer rules, checked without SSH: the remote helpers run under the
//! local `sh` and `tar`, fed by the same archive code as a real upload.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::paths::{DownloadTarget, download_target, means_contents, remote_basename};
use super::*;

/// Runs a helper command line as sshd would (through a shell), in `home`.
fn run_helper(cmd: &str, home: &Path, stdin: &[u8]) -> (bool, Vec<u8>, String) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(home)
        .env("HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// src/tree: a.txt, run.sh (0755), sub/b.txt (0600), empty/; tree itself 0750.
fn source(root: &Path) -> std::path::PathBuf {
    let tree = root.join("src/tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    fs::create_dir_all(tree.join("empty")).unwrap();
    fs::write(tree.join("a.txt"), "hello\n").unwrap();
    fs::write(tree.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(tree.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(tree.join("sub/b.txt"), "b\n").unwrap();
    fs::set_permissions(tree.join("sub/b.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(&tree, fs::Permissions::from_mode(0o750)).unwrap();
    tree
}

fn upload_dir_locally(src: &Path, contents_only: bool, dst: &str, home: &Path) -> (bool, String) {
    let mut tar = Vec::new();
    archive::write_tree(src, &mut tar, 0).unwrap();
    let cmd = upload_dir_command(dst, "tree", mode(src), contents_only);
    let (ok, _, err) = run_helper(&cmd, home, &tar);
    (ok, err)
}

fn assert_tree_at(dir: &Path) {
    assert_eq!(
        fs::read_to_string(dir.join("a.txt")).unwrap(),
        "hello\n",
        "{}",
        dir.display()
    );
    assert_eq!(mode(&dir.join("run.sh")), 0o755);
    assert_eq!(mode(&dir.join("sub/b.txt")), 0o600);
    assert!(dir.join("empty").is_dir());
}

#[test]
fn dir_to_absent_destination_gets_the_contents_and_the_mode() {
    let t = tempfile::tempdir().unwrap();
    let src = source(t.path());
    let dst = t.path().join("dst");
    let (ok, err) = upload_dir_locally(&src, false, dst.to_str().unwrap(), t.path());
    assert!(ok, "{err}");
    assert_tree_at(&dst);
    assert!(!dst.join("tree").exists());
    assert_eq!(mode(&dst), 0o750);
}

#[test]
fn dir_to_existing_destination_nests_it_with_or_without_slash() {
    for suffix in ["", "/"] {
        let t = tempfile::tempdir().unwrap();
        let src = source(t.path());
        let dst = t.path().join("dst");
        fs::create_dir(&dst).unwrap();
        let (ok, err) =
            upload_dir_locally(&src, false, &format!("{}{suffix}", dst.display()), t.path());
        assert!(ok, "{err}");
        assert_tree_at(&dst.join("tree"));
        assert!(!dst.join("a.txt").exists());
        assert_eq!(mode(&dst.join("tree")), 0o750);
    }
}

#[test]
fn dir_slash_to_existing_destination_fills_it_and_keeps_its_mode() {
    let t = tempfile::tempdir().unwrap();
    let src = source(t.path());
    let dst = t.path().join("dst");
    fs::create_dir(&dst).unwrap();
    fs::set_permissions(&dst, fs::Permissions::from_mode(0o711)).unwrap();
    let (ok, err) = upload_dir_locally(&src, true, dst.to_str().unwrap(), t.path());
    assert!(ok, "{err}");
    assert_tree_at(&dst);
    assert_eq!(mode(&dst), 0o711);
}

#[test]
fn dir_slash_to_absent_destination_creates_it_with_parents() {
    let t = tempfile::tempdir().unwrap();
    let src = source(t.path());
    let dst = t.path().join("no/parent/dst");
    let (ok, err) = upload_dir_locally(&src, true, dst.to_str().unwrap(), t.path());
    assert!(ok, "{err}");
    assert_tree_at(&dst);
}

#[test]
fn tilde_destination_is_the_remote_home_and_odd_names_are_literal() {
    let t = tempfile::tempdir().unwrap();
    let src = source(t.path());
    let (ok, err) = upload_dir_locally(&src, false, "~/it's $HOME dir", t.path());
    assert!(ok, "{err}");
    assert_tree_at(&t.path().join("it's $HOME dir"));
    let (ok, err) = upload_dir_locally(&src, false, "-dash", t.path());
    assert!(ok, "{err}");
    assert_tree_at(&t.path().join("-dash"));
}

#[test]
fn file_destinations() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path();
    let up = |dst: &str, name: Option<&str>| {
        run_helper(&upload_file_command(dst, name, 0o751), home, b"data\n")
    };
    fs::create_dir(home.join("d")).unwrap();

    // file → existing dir with slash, and without: dir/<name>
    for dst in ["d/", "d"] {
        let (ok, _, err) = up(dst, Some("one.txt"));
        assert!(ok, "{dst}: {err}");
        assert_eq!(fs::read(home.join("d/one.txt")).unwrap(), b"data\n");
        assert_eq!(mode(&home.join("d/one.txt")), 0o751);
        fs::remove_file(home.join("d/one.txt")).unwrap();
    }
    // file → path that is not a directory: written as that path (parents created)
    let (ok, _, err) = up("x/y/f", Some("one.txt"));
    assert!(ok, "{err}");
    assert_eq!(fs::read(home.join("x/y/f")).unwrap(), b"data\n");
    // file → absent dir with slash: created
    let (ok, _, err) = up("newdir/", Some("one.txt"));
    assert!(ok, "{err}");
    assert_eq!(fs::read(home.join("newdir/one.txt")).unwrap(), b"data\n");
    // overwrite keeps working and takes the new mode
    fs::write(home.join("f"), "old").unwrap();
    let (ok, _, err) = run_helper(&upload_file_command("f", None, 0o600), home, b"new");
    assert!(ok, "{err}");
    assert_eq!(fs::read(home.join("f")).unwrap(), b"new");
    assert_eq!(mode(&home.join("f")), 0o600);
    // bytes without a name cannot go to a directory
    let (ok, _, err) = run_helper(&upload_file_command("d", None, 0o644), home, b"x");
    assert!(!ok);
    assert!(err.contains("d: Is a directory"), "{err}");
}

#[test]
fn remote_failure_is_reported_on_stderr() {
    let t = tempfile::tempdir().unwrap();
    let src = source(t.path());
    fs::write(t.path().join("plainfile"), "").unwrap();
    let (ok, err) = upload_dir_locally(&src, false, "plainfile/sub", t.path());
    assert!(!ok);
    assert!(err.contains("plainfile"), "{err}");
}

#[test]
fn download_helper_marks_dirs_and_files() {
    let t = tempfile::tempdir().unwrap();
    let src = source(t.path());
    let (ok, out, err) = run_helper(&download_command(src.to_str().unwrap()), t.path(), b"");
    assert!(ok, "{err}");
    assert_eq!(&out[..2], b"D\n");
    let dst = t.path().join("down");
    let stats = extract::extract(&out[..], src.to_str().unwrap(), &dst).unwrap();
    assert_tree_at(&dst);
    assert_eq!(mode(&dst), 0o750);
    assert_eq!((stats.files, stats.dirs), (3, 2));

    let (ok, out, err) = run_helper(&download_command("src/tree/run.sh"), t.path(), b"");
    assert!(ok, "{err}");
    assert_eq!(&out[..2], b"F\n");
    fs::create_dir(t.path().join("into")).unwrap();
    extract::extract(&out[..], "src/tree/run.sh", &t.path().join("into")).unwrap();
    assert_eq!(mode(&t.path().join("into/run.sh")), 0o755);

    let (ok, _, err) = run_helper(&download_command("/nonexistent/x"), t.path(), b"");
    assert!(!ok);
    assert!(
        err.contains("/nonexistent/x: No such file or directory"),
        "{err}"
    );
}

#[test]
fn contents_paths() {
    assert!(means_contents(b"dir/"));
    assert!(means_contents(b"dir/."));
    assert!(means_contents(b"."));
    assert!(!means_contents(b"dir"));
    assert!(!means_contents(b"./dir"));
}

#[test]
fn download_targets_follow_scp() {
    let l = Path::new("/l");
    let t = |remote, local: &str, rdir, ldir| download_target(remote, Path::new(local), rdir, ldir);
    assert_eq!(t("/r/f.txt", "/l", false, false).path, l);
    assert_eq!(t("/r/f.txt", "/l", false, true).path, l.join("f.txt"));
    assert_eq!(
        t("/r/f.txt", "/l/", false, false).path,
        Path::new("/l/f.txt")
    );
    assert_eq!(
        t("/r/dir", "/l", true, false),
        DownloadTarget {
            path: l.into(),
            contents_only: false
        }
    );
    assert_eq!(t("/r/dir", "/l", true, true).path, l.join("dir"));
    assert_eq!(
        t("/r/dir/", "/l", true, true),
        DownloadTarget {
            path: l.into(),
            contents_only: true
        }
    );
    assert_eq!(remote_basename("/a/b//"), "b");
    assert_eq!(remote_basename("b"), "b");
}

/// A download never lands a setuid, setgid, sticky or world-writable mode here, whatever the instance
/// has (the remote side runs the real helper over files with those modes).
#[test]
fn downloads_drop_setuid_setgid_and_world_write() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("remote");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("suid"), "x").unwrap();
    fs::write(src.join("sub/open"), "y").unwrap();
    fs::set_permissions(src.join("suid"), fs::Permissions::from_mode(0o6755)).unwrap();
    fs::set_permissions(src.join("sub/open"), fs::Permissions::from_mode(0o666)).unwrap();
    fs::set_permissions(src.join("sub"), fs::Permissions::from_mode(0o1777)).unwrap();
    // The source modes really are special (a filesystem that drops them would prove nothing).
    assert_eq!(mode(&src.join("suid")), 0o6755);
    let (ok, out, err) = run_helper(&download_command(src.to_str().unwrap()), t.path(), b"");
    assert!(ok, "{err}");
    let dst = t.path().join("local");
    extract::extract(&out[..], src.to_str().unwrap(), &dst).unwrap();
    assert_eq!(mode(&dst.join("suid")), 0o755);
    assert_eq!(mode(&dst.join("sub/open")), 0o664);
    assert_eq!(mode(&dst.join("sub")), 0o775);
    // One file: the same rule.
    let (ok, out, err) = run_helper(&download_command("remote/suid"), t.path(), b"");
    assert!(ok, "{err}");
    let one = t.path().join("one");
    extract::extract(&out[..], "remote/suid", &one).unwrap();
    assert_eq!(mode(&one), 0o755);
    fs::set_permissions(src.join("sub"), fs::Permissions::from_mode(0o755)).unwrap();
}
