"""Starts, stops and reaps bakery's local lab: moto (EC2 & co.) and an OpenSSH sshd, on 127.0.0.1 only.

    lab/up   [--name NAME | --dir DIR] [--user U] [--parent-pid PID [--keep]] [--quiet]
             [--realism PROFILE] [--realism-seed N] [--realism-set PATH=VALUE ...] [--ssh-front]
    lab/down [--name NAME | --dir DIR] [--purge]
    lab/down --orphans    stop every lab under lab/.state whose --parent-pid process is gone

A lab lives in one state dir (default lab/.state/dev): configs, host keys, logs, pid files, and what
clients need: env.sh (AWS_ENDPOINT_URL & co.), lab.vars.json (a Packer -var-file) and lab.info (key=value,
read by the Rust harness). Ports are picked free at start, so labs run side by side. With --parent-pid a
watcher stops the lab (and removes its dir unless --keep) as soon as that process is gone. `down` stops
only what `up` started: the pids recorded in <dir>/pids and their descendants (sshd's sessions).
--realism PROFILE (default $BAKERY_LAB_REALISM, else off) turns on the realism layer (realism.py,
docs/lab.md); --realism-seed ($BAKERY_LAB_REALISM_SEED) and --realism-set ($BAKERY_LAB_REALISM_SET,
space-separated) override its parameters. A profile with `boot` (or --ssh-front) puts an SSH front on the
advertised SSH port, with a second, first-boot sshd behind it.
Standard library only: this runs before the venv exists and in every test process's start-up.
"""

import argparse
import fcntl
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

LAB = Path(__file__).resolve().parent.parent  # the repo's lab/
STATE_ROOT = LAB / ".state"
VENV_PYTHON = LAB / ".venv" / "bin" / "python"
SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = Path("/usr/bin/ssh-keygen")
SYSTEM_PYTHON = Path("/usr/bin/python3")  # lab/up's interpreter
HOST_KEY_TYPES = ("ed25519", "ecdsa")

REGION = "us-east-1"
# Ubuntu 16.04 HVM EBS from moto's built-in AMIs (seed 000's ami-22de994a, docs/origins.md, is not among them).
SOURCE_AMI = "ami-785db401"
ACCESS_KEY = "bakerylab"
SECRET_KEY = "bakerylab"
DEFAULT_USER = "admin"  # as on Debian AMIs

# Files that exist only while the lab runs (lab.info last: its presence means "up").
RUN_FILES = ("moto.port", "moto.ready", "ssh_front.port", "ssh_backends.json", "env.sh", "lab.vars.json",
             "lab.info")

INSTALL_HINT = "run `make lab` (or lab/install)"
POLL = 0.02
# What a process on an instance runs to reboot it: with the SSH front, these drop the session's connection.
REBOOT_COMMANDS = ("reboot", "shutdown", "poweroff", "halt")


def load_realism():
    """lab/py/realism.py (stdlib at import time); loaded by path, as this runs with python -I."""
    spec = importlib.util.spec_from_file_location("realism", LAB / "py" / "realism.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class LabError(Exception):
    pass


# ---------------------------------------------------------------- processes, by pid and start time


def proc_stat(pid):
    """(state, ppid, start time) of a process, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def start_time(pid):
    """When the process started (clock ticks since boot); None once it is gone or a zombie."""
    stat = proc_stat(pid)
    return None if stat is None or stat[0] in "ZX" else stat[2]


def alive(pid, start):
    # The start time tells a recycled pid from ours.
    return start is not None and start_time(pid) == start


def live_processes():
    """pid -> (ppid, start time) of every live process."""
    table = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = proc_stat(entry.name)
            if stat is not None and stat[0] not in "ZX":
                table[int(entry.name)] = (stat[1], stat[2])
    return table


def with_descendants(roots):
    """{pid: start} of the live `roots` and of all their descendants (sshd's per-login processes)."""
    table = live_processes()
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found = {}
    stack = [pid for pid, start in roots.items() if pid in table and table[pid][1] == start]
    while stack:
        pid = stack.pop()
        if pid not in found:
            found[pid] = table[pid][1]
            stack.extend(children.get(pid, ()))
    return found


def signal_all(procs, sig):
    for pid, start in procs.items():
        if alive(pid, start):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def wait_gone(procs, timeout):
    deadline = time.monotonic() + timeout
    while any(alive(pid, start) for pid, start in procs.items()):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL)
    return True


def record(d, name, pid):
    write_atomic(d / "pids" / f"{name}.pid", f"{pid} {start_time(pid)}\n")


def recorded(d):
    """name -> (pid, start) of the processes `up` started in this lab."""
    procs = {}
    for path in (d / "pids").glob("*.pid"):
        try:
            pid, start = path.read_text().split()
            procs[path.stem] = (int(pid), int(start))
        except (OSError, ValueError):
            pass
    return procs


# ---------------------------------------------------------------- files


def write_atomic(path, text, mode=0o644):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def tail(path, lines=25):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return f"(no {path})"
    return f"--- last lines of {path}:\n" + "\n".join(text[-lines:])


@contextmanager
def locked(d):
    """Serialises up/down/watcher on one lab. Yields False when the lab dir is gone."""
    try:
        fd = os.open(d / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    except FileNotFoundError:
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield True
    finally:
        os.close(fd)


def read_info(d):
    info = {}
    try:
        for line in (d / "lab.info").read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                info[key] = value
    except OSError:
        pass
    return info


# ---------------------------------------------------------------- stop


def stop(d, purge=False):
    """Stops what `up` started in `d` (never this process), then removes its pid and port files."""
    me = os.getpid()
    roots = {pid: start for pid, start in recorded(d).values() if pid != me}
    procs = with_descendants(roots)
    procs.pop(me, None)
    signal_all(procs, signal.SIGTERM)
    if not wait_gone(procs, 5):
        signal_all(procs, signal.SIGKILL)
        wait_gone(procs, 2)
    if purge:
        shutil.rmtree(d, ignore_errors=True)
        return
    # Logs, configs and host keys stay for a look; what would point clients at a dead lab goes.
    for path in list((d / "pids").glob("*.pid")) + [d / n for n in RUN_FILES]:
        path.unlink(missing_ok=True)


def parent_of(d):
    """(pid, start) of the process this lab is tied to, or None for a lab that is not tied."""
    try:
        pid, start = (d / "parent").read_text().split()
        return int(pid), int(start)
    except (OSError, ValueError):
        return None


def stop_if_orphan(d):
    with locked(d) as present:
        parent = parent_of(d) if present else None
        if parent is not None and not alive(*parent):
            stop(d, purge=not (d / "keep").exists())
            return True
    return False


# ---------------------------------------------------------------- up


def require_installed(user):
    missing = [str(p) for p in (VENV_PYTHON, SSHD, SSH_KEYGEN, SYSTEM_PYTHON) if not p.exists()]
    try:
        pwd.getpwnam(user)
    except KeyError:
        missing.append(f"user {user}")
    if missing:
        raise LabError(f"lab not installed (missing: {', '.join(missing)}): {INSTALL_HINT}")
    if os.geteuid() != 0:
        raise LabError("lab/up must run as root: sshd has to switch to the login user")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(d, cmd, log):
    """Starts a lab process in its own session (no terminal signals), output to a log in `d`."""
    with open(d / log, "ab") as out:
        return subprocess.Popen(
            [str(c) for c in cmd],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for(check, what, proc, log, timeout):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        code = proc.poll()
        if code is not None:
            raise LabError(f"{what}: the process exited with status {code}\n{tail(log)}")
        if time.monotonic() > deadline:
            raise LabError(f"{what}: not done after {timeout} s\n{tail(log)}")
        time.sleep(POLL)


def ssh_banner(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def start_sshd(d, user, name="sshd", key_prefix="ssh_host", extra=""):
    """Starts an sshd (`name`: its config, log and pid files) with the host keys `<key_prefix>_*_key`."""
    template = string.Template((LAB / "sshd_config.in").read_text())
    log = d / f"{name}.log"
    for _ in range(5):
        port = free_port()
        config = template.substitute(
            port=port,
            dir=d,
            user=user,
            key_prefix=key_prefix,
            pid_file=f"{name}.pid",
            extra=extra,
        )
        write_atomic(d / f"{name}_config", config)
        sshd = spawn(d, [SSHD, "-D", "-f", d / f"{name}_config", "-E", log], f"{name}.out")
        record(d, name, sshd.pid)
        try:
            wait_for(lambda: ssh_banner(port), f"{name} start", sshd, log, 15)
            return port
        except LabError:
            if "Address already in use" not in log.read_text(errors="replace"):
                raise
            sshd.kill()  # lost the port to someone else between free_port() and sshd's bind: retry
    raise LabError(f"{name}: no free port after 5 tries\n{tail(log)}")


def start_recording(d, user):
    """The recording instance's state dir (commands.jsonl, root/), owned by the login user, and the sshd
    lines that make every session run the recorder instead of the command asked for."""
    state = d / "instance"
    (state / "root").mkdir(parents=True, exist_ok=True)
    entry = pwd.getpwnam(user)
    for path in (state, state / "root"):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    (state / "commands.jsonl").touch()
    os.chown(state / "commands.jsonl", entry.pw_uid, entry.pw_gid)
    return ("\n# lab/up --recording: sessions are recorded, not run (lab/py/record_instance.py).\n"
            f"ForceCommand {SYSTEM_PYTHON} -I {LAB / 'py' / 'record_instance.py'} {state}\n")


def write_reboot_commands(d, moto_port):
    """<dir>/bin/reboot & co. (first on the sessions' PATH with the SSH front): they ask the realism layer
    to drop this session's connection, as a reboot would, and wait for the drop."""
    bin_dir = d / "bin"
    bin_dir.mkdir(mode=0o755, exist_ok=True)
    for command in REBOOT_COMMANDS:
        write_atomic(
            bin_dir / command,
            "#!/bin/sh\n"
            f"# The bakery lab's stand-in for {command} (lab/up): the SSH front drops this session's\n"
            "# connection and refuses new ones for a while, as a rebooting instance does.\n"
            f"/usr/bin/python3 -I - \"$SSH_CONNECTION\" <<'PY'\n"
            "import json, sys, urllib.request\n"
            "body = json.dumps({'ssh_connection': sys.argv[1]}).encode()\n"
            f"req = urllib.request.Request('http://127.0.0.1:{moto_port}/bakery-lab/realism/reboot',\n"
            "    data=body, method='POST', headers={'User-Agent': 'bakery-lab-reboot'})\n"
            "urllib.request.urlopen(req, timeout=10).read()\n"
            "PY\n"
            "sleep 30\n",
            mode=0o755,
        )


def write_client_files(d, user, moto_port, ssh_port, realism_info):
    endpoint = f"http://127.0.0.1:{moto_port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "CHECKPOINT_DISABLE": "1",  # Packer: never phone home
        "BAKERY_LAB_DIR": str(d),
        "BAKERY_LAB_SSH_HOST": "127.0.0.1",
        "BAKERY_LAB_SSH_PORT": str(ssh_port),
        "BAKERY_LAB_SSH_USER": user,
        "BAKERY_LAB_VARS": str(d / "lab.vars.json"),
    }
    write_atomic(
        d / "env.sh",
        f"# Points AWS tools, bakery and Packer at the bakery lab in {d}: . {d}/env.sh\n"
        "unset AWS_PROFILE AWS_SESSION_TOKEN\n"
        + "".join(f"export {k}='{v}'\n" for k, v in env.items()),
    )
    # Packer -var-file: values are strings, as Packer's JSON var-files want.
    lab_vars = {
        "lab_endpoint": endpoint,
        "lab_ssh_host": "127.0.0.1",
        "lab_ssh_port": str(ssh_port),
        "lab_access_key": ACCESS_KEY,
        "lab_secret_key": SECRET_KEY,
        "lab_source_ami": SOURCE_AMI,
    }
    write_atomic(d / "lab.vars.json", json.dumps(lab_vars, indent=2) + "\n")
    info = {
        "dir": d,
        "moto_url": endpoint,
        "ssh_host": "127.0.0.1",
        "ssh_port": ssh_port,
        "ssh_user": user,
        "region": REGION,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "source_ami": SOURCE_AMI,
        **realism_info,
    }
    write_atomic(d / "lab.info", "".join(f"{k}={v}\n" for k, v in info.items()))


def start(d, args, realism):
    began = time.monotonic()
    profile, settings, front = realism
    (d / "pids").mkdir(mode=0o755, exist_ok=True)
    if args.parent_pid:
        parent_start = start_time(args.parent_pid)
        if parent_start is None:
            raise LabError(f"--parent-pid {args.parent_pid}: no such process")
        write_atomic(d / "parent", f"{args.parent_pid} {parent_start}\n")
        if args.keep:
            write_atomic(d / "keep", "")
        watcher = spawn(d, [sys.executable, "-I", __file__, "watch", "--dir", d], "watch.log")
        record(d, "watch", watcher.pid)

    for name in ("ssh_front.port", "ssh_backends.json"):
        (d / name).unlink(missing_ok=True)
    write_atomic(d / "realism.json", json.dumps({"profile": profile, "settings": settings}, indent=1))
    moto_cmd = [VENV_PYTHON, LAB / "py" / "moto_lab.py", "--dir", d, "--region", REGION,
                "--source-ami", SOURCE_AMI, "--realism", d / "realism.json"]
    moto = spawn(d, moto_cmd + (["--ssh-front"] if front else []), "moto.log")
    record(d, "moto", moto.pid)

    # While moto imports: host keys (with the SSH front, the first-boot sshd's too), sshd's
    # privilege-separation dir, the authorized keys files.
    keygens = []
    for prefix in ("ssh_host", "boot_ssh_host") if front else ("ssh_host",):
        for kind in HOST_KEY_TYPES:
            key = d / f"{prefix}_{kind}_key"
            key.unlink(missing_ok=True)
            Path(f"{key}.pub").unlink(missing_ok=True)
            comment = f"bakery-lab-{'first-boot-' if prefix != 'ssh_host' else ''}{kind}"
            keygens.append(
                subprocess.Popen(
                    [SSH_KEYGEN, "-q", "-t", kind, "-N", "", "-C", comment, "-f", key],
                    stdin=subprocess.DEVNULL,
                )
            )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    write_atomic(d / "authorized_keys", "")  # read by sshd as the login user: 0644
    write_atomic(d / "ec2_keys", "")  # moto keeps it: the lab region's key pairs (moto_lab.py)
    for keygen in keygens:
        if keygen.wait() != 0:
            raise LabError(f"ssh-keygen failed with status {keygen.returncode}")

    moto_port = wait_for(
        lambda: (d / "moto.port").exists() and int((d / "moto.port").read_text()),
        "moto start", moto, d / "moto.log", 60,
    )
    realism_info = {"realism": profile, "realism_seed": settings["seed"], "ssh_front": int(front)}
    recording = ""
    if getattr(args, "recording", False):
        recording = start_recording(d, args.user)
        realism_info["recording"] = d / "instance"
    if front:
        # Sessions find the lab's reboot commands first; the first-boot sshd has its own host keys.
        write_reboot_commands(d, moto_port)
        extra = ("\n# The realism layer's SSH front (lab/up): reboot & co. drop the session's connection.\n"
                 f"SetEnv PATH={d / 'bin'}:/usr/local/bin:/usr/bin:/bin\n")
        extra += recording
        sshd_port = start_sshd(d, args.user, extra=extra)
        boot_port = start_sshd(d, args.user, "sshd-boot", "boot_ssh_host", extra)
        write_atomic(d / "ssh_backends.json", json.dumps({"main": sshd_port, "boot": boot_port}))
        ssh_port = wait_for(
            lambda: (d / "ssh_front.port").exists() and int((d / "ssh_front.port").read_text()),
            "moto's SSH front", moto, d / "moto.log", 60,
        )
        realism_info.update(sshd_port=sshd_port, boot_sshd_port=boot_port)
    else:
        ssh_port = start_sshd(d, args.user, extra=recording)
    wait_for(lambda: (d / "moto.ready").exists(), "moto warm-up", moto, d / "moto.log", 90)
    write_client_files(d, args.user, moto_port, ssh_port, realism_info)
    return time.monotonic() - began


def lab_running(d):
    procs = recorded(d)
    return (
        all(name in procs and alive(*procs[name]) for name in ("moto", "sshd"))
        and (d / "moto.ready").exists()
        and (d / "lab.info").exists()
    )


def print_summary(d, took):
    info = read_info(d)
    state = f"up in {took:.1f} s" if took is not None else "already up"
    front = "  (SSH front; sshd behind it)" if info.get("ssh_front") == "1" else ""
    print(
        f"bakery lab {state}: {d}\n"
        f"  moto   {info['moto_url']}  (requests by action: GET {info['moto_url']}/bakery-lab/requests)\n"
        f"  sshd   {info['ssh_host']}:{info['ssh_port']}  login user {info['ssh_user']}{front}\n"
        f"  realism {info.get('realism', 'off')} (seed {info.get('realism_seed', '-')}): "
        f"GET/PUT {info['moto_url']}/bakery-lab/realism\n"
        f"  env    . {d}/env.sh\n"
        f"  Packer -var-file={d}/lab.vars.json"
    )


def resolve_realism(args):
    """(profile, settings, SSH front?) from the options, else the environment."""
    realism = load_realism()
    profile = args.realism or os.environ.get("BAKERY_LAB_REALISM") or "off"
    seed = args.realism_seed
    if seed is None and os.environ.get("BAKERY_LAB_REALISM_SEED"):
        try:
            seed = int(os.environ["BAKERY_LAB_REALISM_SEED"])
        except ValueError:
            raise LabError(f"BAKERY_LAB_REALISM_SEED={os.environ['BAKERY_LAB_REALISM_SEED']}: not an integer")
    sets = args.realism_set
    if sets is None:
        sets = os.environ.get("BAKERY_LAB_REALISM_SET", "").split()
    try:
        settings = realism.resolve(profile, seed=seed, sets=sets)
    except realism.RealismError as err:
        raise LabError(str(err)) from None
    return profile, settings, args.ssh_front or realism.wants_ssh_front(settings)


def cmd_up(args):
    d = state_dir(args)
    require_installed(args.user)
    realism = resolve_realism(args)
    d.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chmod(d, 0o755)  # sshd reads authorized_keys as the login user
    with locked(d):
        if lab_running(d):
            if not args.quiet:
                print_summary(d, None)
            return 0
        stop(d)  # what is left of a lab that died
        for name in ("parent", "keep"):
            (d / name).unlink(missing_ok=True)
        try:
            took = start(d, args, realism)
        except BaseException:
            stop(d)
            raise
    if not args.quiet:
        print_summary(d, took)
    return 0


# ---------------------------------------------------------------- down, watch


def cmd_down(args):
    if args.orphans:
        if STATE_ROOT.is_dir():
            for d in sorted(STATE_ROOT.iterdir()):
                if d.is_dir() and stop_if_orphan(d) and not args.quiet:
                    print(f"stopped orphaned lab {d}")
        return 0
    d = state_dir(args)
    with locked(d) as present:
        if present:
            stop(d, purge=args.purge)
    return 0


def cmd_watch(args):
    """Polls the lab's parent process; stops the lab once it is gone."""
    d = Path(args.dir)
    parent = parent_of(d)
    while parent is not None and alive(*parent):
        time.sleep(0.2)
    stop_if_orphan(d)
    return 0


def state_dir(args):
    if args.dir:
        return Path(args.dir).resolve()
    return STATE_ROOT / args.name


def main(argv):
    os.umask(0o022)
    parser = argparse.ArgumentParser(prog="lab", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "down"):
        p = sub.add_parser(name)
        where = p.add_mutually_exclusive_group()
        where.add_argument("--dir", help="the lab's state dir")
        where.add_argument("--name", default="dev", help="state dir lab/.state/NAME (default: dev)")
        p.add_argument("--quiet", action="store_true")
    up = sub.choices["up"]
    up.add_argument("--user", default=os.environ.get("BAKERY_LAB_USER", DEFAULT_USER),
                    help="login user (default: $BAKERY_LAB_USER or admin)")
    up.add_argument("--parent-pid", type=int, help="stop the lab when this process is gone")
    up.add_argument("--keep", action="store_true", help="with --parent-pid: keep the state dir")
    up.add_argument("--realism", metavar="PROFILE",
                    help="realism profile (default: $BAKERY_LAB_REALISM or off; docs/lab.md)")
    up.add_argument("--realism-seed", type=int, metavar="N",
                    help="seed of the realism layer's draws (default: $BAKERY_LAB_REALISM_SEED or random)")
    up.add_argument("--realism-set", action="append", metavar="PATH=VALUE",
                    help="override a realism parameter, e.g. holds.jitter_s=0 (repeatable; default: "
                         "$BAKERY_LAB_REALISM_SET, space-separated)")
    up.add_argument("--recording", action="store_true",
                    help="instances record commands instead of running them; transfers land under "
                         "STATE/instance/root (lab/py/record_instance.py)")
    up.add_argument("--ssh-front", action="store_true",
                    help="put the SSH front in even if the profile has no `boot` (to switch to it later)")
    down = sub.choices["down"]
    down.add_argument("--purge", action="store_true", help="also remove the state dir")
    down.add_argument("--orphans", action="store_true",
                      help="stop every lab under lab/.state whose --parent-pid process is gone")
    watch = sub.add_parser("watch")
    watch.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    try:
        return {"up": cmd_up, "down": cmd_down, "watch": cmd_watch}[args.command](args)
    except LabError as err:
        print(f"lab {args.command}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
