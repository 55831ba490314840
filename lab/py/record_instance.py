"""The recording instance stand-in (lab/up --recording): sshd's ForceCommand for every session.

Third-party provisioning scripts (the corpus: amazon-eks-ami, image-builder) install packages as root; they
must never run on a development or CI machine. On a recording lab every command a session asks for is
written to STATE/commands.jsonl and answered with success and no output instead of being run — except
file transfers, which land under STATE/root, a scratch directory standing in for the instance's `/`:

* Packer's scp transfers (`scp -t DIR`, `scp -vt`, `scp -rvt`, …, and `scp -vf FILE` for a download):
  the real `scp`, its path under the root;
* bake's upload and download helpers (`sh -c '<script>' bakery-upload DEST …`, `bakery-download`): the
  same script, its path under the root;
* `chmod MODE PATH…`, `rm -f PATH…`, `mkdir -p PATH…` written alone: applied under the root, so the files'
  modes and presence end as on an instance;
* `umask`: answered `0022` (what bake asks before uploading, as an instance's login shell answers).

A path is mapped by prefixing the root (`~` and relative paths: the login user's home, `/home/USER`, under
the root). Usage (sshd): ForceCommand /usr/bin/python3 -I record_instance.py STATE
"""

import json
import os
import pwd
import shlex
import subprocess
import sys
import time


def home_of_user():
    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return "/home/" + os.environ.get("USER", "user")


def mapped(root, path, home):
    """Where PATH of the instance lands under ROOT."""
    if path == "~" or path.startswith("~/"):
        path = home + path[1:]
    elif not path.startswith("/"):
        path = home.rstrip("/") + "/" + path
    return os.path.join(root, path.lstrip("/"))


def record(state, entry):
    entry["time"] = time.time()
    with open(os.path.join(state, "commands.jsonl"), "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")


def run_scp(words, root, home):
    """`scp [-v] [-r] [-p] [-d] -t TARGET`: the real sink, TARGET under the root; `scp -f SOURCE` (a
    download): the real source."""
    flags = list(words[1:-1])
    target = mapped(root, words[-1], home)
    if any(f.startswith("-") and "f" in f for f in flags):
        return subprocess.call(["scp"] + flags + [target])
    parent = target if ("-d" in flags or target.endswith("/")) else os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    if any("r" in f for f in flags if f.startswith("-")):
        os.makedirs(target, exist_ok=True)
    return subprocess.call(["scp"] + flags + [target])


def run_helper(words, root, home):
    """bake's `sh -c SCRIPT NAME ARG…`: the script, its first argument (the path) under the root."""
    args = list(words[4:])
    if args:
        args[0] = mapped(root, args[0], home)
    return subprocess.call(["sh", "-c", words[2], words[3]] + args, cwd=root)


def run_simple(words, root, home):
    """`chmod MODE PATH…`, `rm -f PATH…`, `mkdir -p PATH…`, on the mapped paths."""
    head = 2
    return subprocess.call(words[:head] + [mapped(root, p, home) for p in words[head:]])


def classify(words):
    if not words:
        return "shell"
    # A compound command (`chmod +x s; s`) is provisioning: recorded, never run.
    plain = not any(c in w for w in words for c in ";&|<>`$(){}*?")
    if words[0] == "scp" and any(w.startswith("-") and ("t" in w or "f" in w) for w in words[1:-1]):
        return "scp"
    if len(words) >= 4 and words[0] == "sh" and words[1] == "-c" and words[3] in ("bakery-upload", "bakery-download"):
        return "helper"
    if plain and len(words) >= 3 and words[:2] in (["rm", "-f"], ["mkdir", "-p"]):
        return "simple"
    if plain and len(words) >= 3 and words[0] == "chmod" and not words[1].startswith("-"):
        return "simple"
    if words == ["umask"]:
        return "umask"
    return "recorded"


def main(argv):
    state = argv[1]
    root = os.path.join(state, "root")
    home = home_of_user()
    command = os.environ.get("SSH_ORIGINAL_COMMAND", "")
    try:
        words = shlex.split(command)
    except ValueError:
        words = None
    kind = "recorded" if words is None else classify(words)
    record(state, {"command": command, "kind": kind, "user": pwd.getpwuid(os.getuid()).pw_name})
    if kind == "scp":
        return run_scp(words, root, home)
    if kind == "helper":
        return run_helper(words, root, home)
    if kind == "simple":
        return run_simple(words, root, home)
    if kind == "umask":
        sys.stdout.write("0022\n")
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
