"""The lab's realism layer: makes moto (instant and forgiving) answer more like AWS (slow and strict).

A WSGI middleware in moto's process (wired in by moto_lab.py), plus an optional TCP front in front of the
lab's sshd that plays a booting instance. What it does is chosen by a named profile (PROFILES below), with
parameters that can be overridden; docs/lab.md describes every behaviour and profile.

    GET    /bakery-lab/realism          {"profile", "seed", "settings", "injected", "ssh_front", "profiles"}
    PUT    /bakery-lab/realism          {"profile": NAME, "seed": N, "set": ["holds.jitter_s=0", ...]}
                                        or a settings dict {"holds": {...}, "throttle": null, ...}
    DELETE /bakery-lab/realism          resets the injected counts
    POST   /bakery-lab/realism/reboot   drops SSH connections, as an instance reboot does (body: optional
                                        {"ssh_connection": "$SSH_CONNECTION"} to drop only that one)

Requests whose User-Agent starts with `bakery-lab` (the lab's own) and unsigned requests are never
faulted. The module imports only the standard library at load time: lab/up (Debian's python, no venv)
imports it to resolve a profile; moto is imported lazily, inside moto's process.
"""

import copy
import io
import json
import random
import re
import select
import socket
import struct
import threading
import time
import traceback
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from collections import Counter

PATH = "/bakery-lab/realism"
LAB_AGENT = "bakery-lab"
# SigV4: Credential=<key>/<date>/<region>/<service>/aws4_request
SCOPE = re.compile(r"Credential=[^/,]*/[^/,]*/([^/,]*)/([^/,]*)/")

# ------------------------------------------------------------------------------------------ profiles

# Each behaviour's parameters, as a profile turns it on without saying more. A behaviour set to None is off.
BEHAVIOURS = {
    # NotFound for the first `uses` (a [min, max] range, drawn per resource) describes/uses of a resource just
    # created, within `window_s` of its creation; a Describe* by filter leaves it out of the list instead.
    "consistency": {"uses": [1, 2], "window_s": 5.0},
    # State holds after a transition (moto makes them instant), each base +- uniform(jitter_s), >= 0.
    "holds": {
        "instance_pending_s": 2.0,
        "instance_stopping_s": 2.0,
        "instance_shutting_down_s": 2.0,
        "image_pending_s": 2.5,
        "jitter_s": 1.0,
    },
    # DeleteSecurityGroup -> DependencyViolation while an instance that uses the group is not terminated
    # (shutting-down included), and `linger_s` more (its network interface goes a little after it).
    "dependency": {"linger_s": 1.0},
    # DeleteSnapshot -> InvalidSnapshot.InUse for a while after DeregisterImage of an image using it.
    "snapshot_in_use": {"after_deregister_s": 2.0},
    # A request starts a throttling burst with probability `rate`: it and the next ones, `burst` ([min, max])
    # in all, are throttled. `services`: SigV4 signing names (null: all). `spare_last_attempt`: never fault
    # an SDK's last attempt (its `amz-sdk-request: attempt=N; max=N` header), so that every call can
    # succeed with the SDK's retries.
    "throttle": {"rate": 0.01, "burst": [1, 2], "services": None, "spare_last_attempt": True},
    # 5xx at `rate` (InternalError 500 or ServiceUnavailable 503); a share `after_effect` of them come after
    # moto did the work (the call took effect, the answer is an error).
    "errors": {"rate": 0.005, "after_effect": 0.0, "services": None, "spare_last_attempt": True},
    # InsufficientInstanceCapacity (HTTP 500) for RunInstances/CreateFleet/RequestSpotInstances of these types.
    "capacity": {"instance_types": ["c5.metal"]},
    # Let moto do the work, then answer this many seconds late.
    "late": {"actions": {"RunInstances": 0.5, "CreateImage": 0.5}},
    # An account that enforces IMDSv2: HttpTokens=optional is refused (refuse_unset: also a launch that does
    # not say, as an SCP on ec2:MetadataHttpTokens would).
    "imdsv2": {"code": "InvalidParameterValue", "refuse_unset": False},
    # The sshd plays a booting instance after each RunInstances (needs the lab's SSH front): connections
    # refused until `refused_s` after it runs, then `drop_banners` connections closed before the banner, then
    # a first-boot sshd with other host keys for `host_key_s`; the launch's key pair is not authorized until
    # `auth_delay_s` after it runs; `reboot`/`shutdown` on the instance drop the connection and refuse new
    # ones for `reboot_down_s`.
    "boot": {
        "refused_s": 1.5,
        "drop_banners": 1,
        "host_key_s": 1.5,
        "auth_delay_s": 3.0,
        "reboot_down_s": 2.0,
    },
}

# Profiles: behaviour -> parameter overrides ({} = the defaults above); a behaviour not named is off.
PROFILES = {
    "off": {},
    # Everything, with short timings for a test suite: every path can succeed with retries. Not `imdsv2`:
    # an account setting, whose refusal no retry gets past (a test that sends HttpTokens=optional on
    # purpose would always fail); `--realism-set imdsv2={}` adds it.
    "real-aws": {name: {} for name in BEHAVIOURS if name != "imdsv2"},
    # Realistic EC2 delays only (scripts/bench --wait), and the refusal they imply.
    "bench": {
        "holds": {
            "instance_pending_s": 20.0,
            "instance_stopping_s": 10.0,
            "instance_shutting_down_s": 10.0,
            "image_pending_s": 45.0,
            "jitter_s": 15.0,
        },
        "dependency": {"linger_s": 0.0},
    },
    "consistency": {"consistency": {"uses": [1, 2], "window_s": 30.0}},
    "holds": {"holds": {"jitter_s": 0.5}},
    "refusals": {
        "dependency": {"linger_s": 0.0},
        "snapshot_in_use": {"after_deregister_s": 3.0},
        "holds": {
            "instance_pending_s": 0.0,
            "instance_stopping_s": 0.0,
            "instance_shutting_down_s": 2.0,
            "image_pending_s": 0.0,
            "jitter_s": 0.0,
        },
    },
    "throttle": {
        "throttle": {"rate": 0.2, "burst": [2, 4], "spare_last_attempt": False},
        "errors": {"rate": 0.05, "spare_last_attempt": False},
    },
    "capacity": {"capacity": {}},
    "imdsv2": {"imdsv2": {}},
    "late": {"late": {"actions": {"RunInstances": 1.0, "CreateImage": 1.0}}},
    "boot": {"boot": {}},
}


class RealismError(ValueError):
    pass


def parse_value(text):
    """A `--realism-set` value: JSON, or else the text as a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def resolve(profile, seed=None, sets=(), settings=None):
    """The full settings of `profile` (or of a settings dict) with `sets` ("path=value") applied.
    Raises RealismError naming what is wrong."""
    if settings is None:
        if profile not in PROFILES:
            raise RealismError(
                f"unknown realism profile `{profile}` (profiles: {', '.join(PROFILES)})"
            )
        settings = PROFILES[profile]
    out = {"seed": None}
    for name, defaults in BEHAVIOURS.items():
        given = settings.get(name)
        out[name] = None if given is None else merge(name, defaults, given)
    unknown = set(settings) - set(BEHAVIOURS) - {"seed"}
    if unknown:
        raise RealismError(f"unknown realism behaviour(s) {sorted(unknown)} (known: {', '.join(BEHAVIOURS)})")
    if settings.get("seed") is not None:
        out["seed"] = settings["seed"]
    for item in sets or ():
        path, sep, text = item.partition("=")
        if not sep:
            raise RealismError(f"realism setting `{item}` is not PATH=VALUE")
        apply_set(out, path.strip(), parse_value(text.strip()))
    if seed is not None:
        out["seed"] = seed
    if out["seed"] is None:
        out["seed"] = random.SystemRandom().randrange(1, 2**31)
    if not isinstance(out["seed"], int):
        raise RealismError(f"realism seed `{out['seed']}` is not an integer")
    return out


def merge(name, defaults, given):
    if not isinstance(given, dict):
        raise RealismError(f"realism behaviour `{name}` wants an object of parameters, got {given!r}")
    unknown = set(given) - set(defaults)
    if unknown and defaults:
        raise RealismError(
            f"unknown parameter(s) {sorted(unknown)} of realism behaviour `{name}` "
            f"(parameters: {', '.join(defaults) or 'none'})"
        )
    out = copy.deepcopy(defaults)
    out.update(copy.deepcopy(given))
    return out


def apply_set(settings, path, value):
    parts = path.split(".")
    if parts == ["seed"]:
        settings["seed"] = value
        return
    name = parts[0]
    if name not in BEHAVIOURS:
        raise RealismError(f"unknown realism behaviour `{name}` in `{path}` (known: {', '.join(BEHAVIOURS)})")
    if len(parts) == 1:
        # `throttle=null` turns a behaviour off, `throttle={}` (or `on`) on with its defaults.
        if value is None or value in ("off", False):
            settings[name] = None
        elif value in ("on", True):
            settings[name] = merge(name, BEHAVIOURS[name], {})
        else:
            settings[name] = merge(name, BEHAVIOURS[name], value)
        return
    if len(parts) != 2 or parts[1] not in BEHAVIOURS[name]:
        raise RealismError(
            f"unknown realism parameter `{path}` (parameters of {name}: "
            f"{', '.join(BEHAVIOURS[name]) or 'none'})"
        )
    if settings[name] is None:  # setting a parameter of a behaviour that is off turns it on
        settings[name] = merge(name, BEHAVIOURS[name], {})
    settings[name][parts[1]] = value


def wants_ssh_front(settings):
    return settings.get("boot") is not None


# ------------------------------------------------------------------------------------------ requests


def read_body(environ):
    """Reads the request body and puts it back for moto."""
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    if length:
        body = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def service_of(environ):
    match = SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(2) if match else "-"


class Request:
    """What the layer needs to know of an AWS call: service, region, action and (query protocol) params."""

    def __init__(self, environ):
        auth = SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        self.region, self.service = (auth.group(1), auth.group(2)) if auth else ("-", "-")
        self.json = bool(environ.get("HTTP_X_AMZ_TARGET"))
        params = {}
        for key, values in urllib.parse.parse_qs(
            environ.get("QUERY_STRING", ""), keep_blank_values=True
        ).items():
            params[key] = values[0]
        if environ.get("REQUEST_METHOD") == "POST" and environ.get("CONTENT_TYPE", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            form = urllib.parse.parse_qs(
                read_body(environ).decode("utf-8", "replace"), keep_blank_values=True
            )
            for key, values in form.items():
                params[key] = values[0]
        self.params = params
        # amz-sdk-request: attempt=2; max=3 (sent by the AWS SDKs, the same across one call's attempts)
        attempt = dict(
            part.strip().split("=", 1) for part in environ.get("HTTP_AMZ_SDK_REQUEST", "").split(";")
            if "=" in part
        )
        self.last_attempt = attempt.get("attempt", "").isdigit() and attempt.get("attempt") == attempt.get("max")
        target = environ.get("HTTP_X_AMZ_TARGET")
        if "Action" in params:
            self.action = params["Action"]
        elif target:
            self.action = target.rsplit(".", 1)[-1]
        else:
            self.action = f"{environ.get('REQUEST_METHOD', 'GET')} {environ.get('PATH_INFO', '/')}"

    def values(self, pattern):
        """Values of the params whose name matches `pattern` (a segment `N` stands for any list index)."""
        parts = pattern.split(".")
        if "N" not in parts:
            value = self.params.get(pattern)
            return [value] if value else []
        regex = re.compile("^" + r"\.".join(r"\d+" if p == "N" else re.escape(p) for p in parts) + "$")
        return [v for k, v in sorted(self.params.items()) if regex.match(k) and v]


def error_response(req, status, code, message):
    """(status line, headers, body) of an AWS error in the request's protocol."""
    request_id = str(uuid.uuid4())
    if req.json:
        body = json.dumps({"__type": code, "message": message}).encode()
        ctype = "application/x-amz-json-1.1"
    elif req.service == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{xml_escape(code)}</Code><Message>{xml_escape(message)}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        ).encode()
        ctype = "text/xml"
    else:
        kind = "Receiver" if status >= 500 else "Sender"
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{xml_escape(code)}</Code>"
            f"<Message>{xml_escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        ctype = "text/xml"
    reason = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error",
              503: "Service Unavailable"}.get(status, "Error")
    headers = [("Content-Type", ctype), ("Content-Length", str(len(body))),
               ("x-amzn-RequestId", request_id)]
    return f"{status} {reason}", headers, body


def xml_escape(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ------------------------------------------------------------------------------------------ XML editing


def local(tag):
    return tag.rsplit("}", 1)[-1]


def child(el, name):
    for c in el:
        if local(c.tag) == name:
            return c
    return None


def child_text(el, name):
    c = child(el, name)
    return (c.text or "") if c is not None else None


def edit_xml(body, edit):
    """Runs `edit(root)` on the parsed body; re-serializes it if `edit` says it changed something."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return body
    if not edit(root):
        return body
    ns = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else None
    text = ET.tostring(root, encoding="unicode", default_namespace=ns) if ns else ET.tostring(
        root, encoding="unicode"
    )
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + text).encode()


# ------------------------------------------------------------------------------------------ resources

# NotFound answers per kind of reference: (code, HTTP status, message).
NOT_FOUND = {
    "instance": ("InvalidInstanceID.NotFound", 400, "The instance ID '{}' does not exist"),
    "sg": ("InvalidGroup.NotFound", 400, "The security group '{}' does not exist"),
    "sg_name": ("InvalidGroup.NotFound", 400, "The security group '{}' does not exist in default VPC"),
    "key": ("InvalidKeyPair.NotFound", 400, "The key pair '{}' does not exist"),
    "key_id": ("InvalidKeyPair.NotFound", 400, "The key pair '{}' does not exist"),
    "image": ("InvalidAMIID.NotFound", 400, "The image id '[{}]' does not exist"),
    "lt": ("InvalidLaunchTemplateId.NotFound", 400,
           "The specified launch template, with template ID {}, does not exist."),
    "lt_name": ("InvalidLaunchTemplateName.NotFoundException", 400,
                "The specified launch template, with template name {}, does not exist."),
    "asg": ("ValidationError", 400, "AutoScalingGroup name not found - AutoScalingGroup '{}' not found"),
    "asg_lt": ("ValidationError", 400,
               "You must use a valid fully-formed launch template. The specified launch template, "
               "with template ID {}, does not exist."),
    "asg_lt_name": ("ValidationError", 400,
                    "You must use a valid fully-formed launch template. The specified launch template, "
                    "with template name {}, does not exist."),
    "profile": ("NoSuchEntity", 404, "Instance Profile {} cannot be found."),
    "run_profile": ("InvalidParameterValue", 400,
                    "Value ({}) for parameter iamInstanceProfile.name is invalid. "
                    "Invalid IAM Instance Profile name"),
}
# The tracked kind each reference kind looks up.
TRACKED_AS = {"asg_lt": "lt", "asg_lt_name": "lt_name", "run_profile": "profile"}

ASG_TEMPLATE_REFS = [
    ("LaunchTemplate.LaunchTemplateId", "asg_lt"),
    ("LaunchTemplate.LaunchTemplateName", "asg_lt_name"),
    ("MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification.LaunchTemplateId", "asg_lt"),
    ("MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification.LaunchTemplateName", "asg_lt_name"),
]
# (service, action) -> [(param pattern, reference kind)]: references to resources that a just-created
# resource fails (AWS's eventual consistency). CreateTags/DeleteTags are handled by id prefix.
USES = {
    ("ec2", "DescribeInstances"): [("InstanceId.N", "instance")],
    ("ec2", "DescribeInstanceStatus"): [("InstanceId.N", "instance")],
    ("ec2", "DescribeInstanceAttribute"): [("InstanceId", "instance")],
    ("ec2", "ModifyInstanceAttribute"): [("InstanceId", "instance")],
    ("ec2", "ModifyInstanceMetadataOptions"): [("InstanceId", "instance")],
    ("ec2", "GetConsoleOutput"): [("InstanceId", "instance")],
    ("ec2", "StopInstances"): [("InstanceId.N", "instance")],
    ("ec2", "StartInstances"): [("InstanceId.N", "instance")],
    ("ec2", "RebootInstances"): [("InstanceId.N", "instance")],
    ("ec2", "TerminateInstances"): [("InstanceId.N", "instance")],
    ("ec2", "CreateImage"): [("InstanceId", "instance")],
    ("ec2", "DescribeSecurityGroups"): [("GroupId.N", "sg"), ("GroupName.N", "sg_name")],
    ("ec2", "AuthorizeSecurityGroupIngress"): [("GroupId", "sg"), ("GroupName", "sg_name")],
    ("ec2", "AuthorizeSecurityGroupEgress"): [("GroupId", "sg")],
    ("ec2", "RevokeSecurityGroupIngress"): [("GroupId", "sg"), ("GroupName", "sg_name")],
    ("ec2", "RevokeSecurityGroupEgress"): [("GroupId", "sg")],
    ("ec2", "DeleteSecurityGroup"): [("GroupId", "sg"), ("GroupName", "sg_name")],
    ("ec2", "DescribeKeyPairs"): [("KeyName.N", "key"), ("KeyPairId.N", "key_id")],
    ("ec2", "DescribeImages"): [("ImageId.N", "image")],
    ("ec2", "DescribeImageAttribute"): [("ImageId", "image")],
    ("ec2", "ModifyImageAttribute"): [("ImageId", "image")],
    ("ec2", "EnableImageDeprecation"): [("ImageId", "image")],
    ("ec2", "DisableImageDeprecation"): [("ImageId", "image")],
    ("ec2", "DeregisterImage"): [("ImageId", "image")],
    ("ec2", "CopyImage"): [("SourceImageId", "image")],
    ("ec2", "DescribeLaunchTemplates"): [("LaunchTemplateId.N", "lt"), ("LaunchTemplateName.N", "lt_name")],
    ("ec2", "DescribeLaunchTemplateVersions"): [("LaunchTemplateId", "lt"), ("LaunchTemplateName", "lt_name")],
    ("ec2", "CreateLaunchTemplateVersion"): [("LaunchTemplateId", "lt"), ("LaunchTemplateName", "lt_name")],
    ("ec2", "ModifyLaunchTemplate"): [("LaunchTemplateId", "lt"), ("LaunchTemplateName", "lt_name")],
    ("ec2", "DeleteLaunchTemplate"): [("LaunchTemplateId", "lt"), ("LaunchTemplateName", "lt_name")],
    ("ec2", "RunInstances"): [
        ("ImageId", "image"),
        ("KeyName", "key"),
        ("SecurityGroupId.N", "sg"),
        ("SecurityGroup.N", "sg_name"),
        ("LaunchTemplate.LaunchTemplateId", "lt"),
        ("LaunchTemplate.LaunchTemplateName", "lt_name"),
        ("IamInstanceProfile.Name", "run_profile"),
    ],
    ("autoscaling", "CreateAutoScalingGroup"): ASG_TEMPLATE_REFS,
    ("autoscaling", "UpdateAutoScalingGroup"): ASG_TEMPLATE_REFS,
    ("iam", "GetInstanceProfile"): [("InstanceProfileName", "profile")],
    ("iam", "AddRoleToInstanceProfile"): [("InstanceProfileName", "profile")],
    ("iam", "RemoveRoleFromInstanceProfile"): [("InstanceProfileName", "profile")],
    ("iam", "DeleteInstanceProfile"): [("InstanceProfileName", "profile")],
    ("iam", "TagInstanceProfile"): [("InstanceProfileName", "profile")],
}
TAG_PREFIXES = {"i-": "instance", "sg-": "sg", "ami-": "image", "lt-": "lt", "key-": "key_id"}

# Describe* by filter (no ids given): a young resource is left out of the list. action -> (list element,
# id element, kind, the params that make it a describe by id).
LISTED = {
    ("ec2", "DescribeInstances"): ("instancesSet", "instanceId", "instance", ("InstanceId.N",)),
    ("ec2", "DescribeInstanceStatus"): ("instanceStatusSet", "instanceId", "instance", ("InstanceId.N",)),
    ("ec2", "DescribeSecurityGroups"): ("securityGroupInfo", "groupId", "sg", ("GroupId.N", "GroupName.N")),
    ("ec2", "DescribeKeyPairs"): ("keySet", "keyName", "key", ("KeyName.N", "KeyPairId.N")),
    ("ec2", "DescribeImages"): ("imagesSet", "imageId", "image", ("ImageId.N",)),
    ("ec2", "DescribeLaunchTemplates"): (
        "launchTemplates", "launchTemplateId", "lt", ("LaunchTemplateId.N", "LaunchTemplateName.N")),
    # AWS answers an empty list, not an error, for a group name it does not know.
    ("autoscaling", "DescribeAutoScalingGroups"): ("AutoScalingGroups", "AutoScalingGroupName", "asg", ()),
}

INSTANCE_STATES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64,
                   "stopped": 80}


class Young:
    """A resource just created: references to it fail `left` more times, until `until`."""

    def __init__(self, label, left, until):
        self.label, self.left, self.until = label, left, until

    def alive(self, now):
        return self.left > 0 and now < self.until


# ------------------------------------------------------------------------------------------ the middleware


class Realism:
    """WSGI middleware in front of moto's app; see the module doc."""

    def __init__(self, app, doc, state_dir=None, rewrite_keys=None, ssh_front=False):
        self.app = app
        self.state_dir = state_dir
        self.rewrite_keys = rewrite_keys or (lambda: None)
        self.ssh_front = ssh_front
        self.front = None
        self.lock = threading.RLock()
        self.injected = Counter()
        self.young = {}  # (kind, key) -> Young
        self.holds = {}  # (kind, id) -> (shown state, real state, until, since)
        # Notice lags: for each held instance or image, how long after its hold ended a Describe first
        # showed its real state to the code under test (the time a tool lost noticing the change).
        self.noticed = {}  # "kind:id:real state" -> seconds
        self.snapshots_in_use = {}  # snapshot id -> (image id, until)
        self.terminated = {}  # instance id -> when TerminateInstances answered
        # Groups of instances a fleet launched from a launch template: moto gives them the default group
        # only, AWS the template's (DeleteSecurityGroup must see them).
        self.fleet_groups = {}  # instance id -> {group id}
        self.withheld = {}  # key pair name -> until (boot: not yet "installed" on the instance)
        self.launch = None  # (launched at, running at) of the most recent RunInstances
        self.banner_drops = 0
        self.reboot_until = 0.0
        self.burst_left = 0
        self.profile, self.settings, self.rng = "off", resolve("off", seed=0), random.Random(0)
        # Not rewriting the keys file here: that would load moto's EC2 backend before moto is up.
        self.configure(doc.get("profile", "custom"), doc["settings"], rewrite=False)

    # ---- settings

    def configure(self, profile, settings, rewrite=True):
        with self.lock:
            self.profile = profile
            self.settings = settings
            self.rng = random.Random(settings["seed"])
            self.burst_left = 0
            self.active = any(settings[name] is not None for name in BEHAVIOURS)
            # A new profile starts with no instance booting.
            self.withheld.clear()
            self.launch = None
            self.banner_drops = 0
            self.reboot_until = 0.0
        if rewrite:
            self.rewrite_keys()

    def state(self):
        with self.lock:
            return {
                "profile": self.profile,
                "seed": self.settings["seed"],
                "settings": self.settings,
                "injected": dict(sorted(self.injected.items())),
                "notice_lags": dict(sorted(self.noticed.items())),
                "ssh_front": self.ssh_front,
                "profiles": list(PROFILES),
            }

    def count(self, behaviour, action, n=1):
        with self.lock:
            self.injected[f"{behaviour}:{action}"] += n

    # ---- WSGI

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == PATH or path.startswith(PATH + "/"):
            return self.serve(environ, start_response)
        if (
            not self.active
            or path.startswith("/bakery-lab/")
            or path.startswith("/moto-api")
            or environ.get("HTTP_USER_AGENT", "").startswith(LAB_AGENT)
            # A test's own checks (the SDK with app name `bakery-lab-…`) see the truth.
            or f"app/{LAB_AGENT}" in environ.get("HTTP_USER_AGENT", "")
            or f"app/{LAB_AGENT}" in environ.get("HTTP_X_AMZ_USER_AGENT", "")
        ):
            return self.app(environ, start_response)
        req = Request(environ)
        if req.service == "-":
            return self.app(environ, start_response)
        status, headers, body = self.handle(req, environ)
        start_response(status, headers)
        return [body]

    def serve(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        path = environ.get("PATH_INFO", "")
        try:
            if path == PATH + "/reboot" and method == "POST":
                body = read_body(environ)
                doc = json.loads(body) if body.strip() else {}
                dropped = self.reboot(doc.get("ssh_connection"))
                return reply(start_response, "200 OK", {"dropped": dropped, "ssh_front": self.ssh_front})
            if path != PATH:
                return reply(start_response, "404 Not Found", {"error": f"no {path}"})
            if method == "GET":
                return reply(start_response, "200 OK", self.state())
            if method == "DELETE":
                with self.lock:
                    self.injected.clear()
                    self.noticed.clear()
                return reply(start_response, "200 OK", self.state())
            if method != "PUT":
                return reply(start_response, "405 Method Not Allowed", {"error": "GET, PUT, DELETE"})
            doc = json.loads(read_body(environ) or b"{}")
            if not isinstance(doc, dict):
                raise RealismError("PUT wants a JSON object")
            if not isinstance(doc.get("set", []), list):
                raise RealismError('"set" wants a list of "PATH=VALUE" strings')
            if "profile" in doc:
                name = doc["profile"]
                settings = resolve(name, seed=doc.get("seed"), sets=doc.get("set", ()))
            else:
                name = "custom"
                settings = resolve(None, settings=doc)
            if settings.get("boot") is not None and not self.ssh_front:
                return reply(start_response, "409 Conflict", {
                    "error": "this lab has no SSH front, so `boot` cannot be switched on: start the lab "
                             "with it (lab/up --realism boot, or --ssh-front)"})
            self.configure(name, settings)
            return reply(start_response, "200 OK", self.state())
        except (RealismError, ValueError) as err:
            return reply(start_response, "400 Bad Request", {"error": str(err)})

    # ---- one AWS call

    def handle(self, req, environ):
        s = self.settings
        now = time.monotonic()
        after_fault = None
        fault = self.draw_fault(s, req)
        if fault is not None:
            behaviour, after, response = fault
            if not after:
                self.count(behaviour, req.action)
                return error_response(req, *response)
            after_fault = (behaviour, response)
        for check in (self.check_capacity, self.check_imdsv2, self.check_young, self.check_dependency,
                      self.check_snapshot):
            try:
                refused = check(s, req, now)
            except Exception:  # a bug here must not take moto down with it: logged, and no refusal
                traceback.print_exc()
                refused = None
            if refused is not None:
                behaviour, response = refused
                self.count(behaviour, req.action)
                return error_response(req, *response)
        before = self.before(s, req, now)
        status, headers, body = self.call_app(environ)
        if status.startswith("2"):
            try:
                new_body = self.after(s, req, body, before)
            except Exception:  # as above: moto's answer as it is
                traceback.print_exc()
                new_body = body
            if new_body is not body:
                body = new_body
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                headers.append(("Content-Length", str(len(body))))
        elif before.get("withheld"):
            self.release_keys(before["withheld"])
        if after_fault is not None:
            self.count(after_fault[0] + "_after_effect", req.action)
            return error_response(req, *after_fault[1])
        late = s["late"]["actions"].get(req.action) if s["late"] is not None else None
        if late:
            self.count("late", req.action)
            time.sleep(float(late))
        return status, headers, body

    def call_app(self, environ):
        captured = {}
        chunks = []

        def start_response(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return chunks.append

        result = self.app(environ, start_response)
        try:
            for chunk in result:
                chunks.append(chunk)
        finally:
            if hasattr(result, "close"):
                result.close()
        return captured["status"], list(captured["headers"]), b"".join(chunks)

    # ---- faults

    def draw_fault(self, s, req):
        """(behaviour, after moto?, (status, code, message)) or None."""
        throttle, errors = s["throttle"], s["errors"]
        if throttle is not None and throttle["spare_last_attempt"] and req.last_attempt:
            throttle = None
        if errors is not None and errors["spare_last_attempt"] and req.last_attempt:
            errors = None
        with self.lock:
            if throttle is not None and (throttle["services"] is None or req.service in throttle["services"]):
                if self.burst_left > 0 or self.rng.random() < float(throttle["rate"]):
                    if self.burst_left == 0:
                        low, high = burst_range(throttle["burst"])
                        self.burst_left = self.rng.randint(low, high)
                    self.burst_left -= 1
                    if req.service == "ec2" and not req.json:
                        response = (503, "RequestLimitExceeded", "Request limit exceeded.")
                    elif req.json:
                        response = (400, "ThrottlingException", "Rate exceeded")
                    else:
                        response = (400, "Throttling", "Rate exceeded")
                    return "throttle", False, response
            if errors is not None and (errors["services"] is None or req.service in errors["services"]):
                if self.rng.random() < float(errors["rate"]):
                    after = self.rng.random() < float(errors["after_effect"])
                    if self.rng.random() < 0.5:
                        code = "InternalServerError" if req.json else "InternalError"
                        response = (500, code, "An internal error has occurred")
                    else:
                        response = (503, "ServiceUnavailable",
                                    "The service is unavailable. Please try again shortly.")
                    return "errors", after, response
        return None

    # ---- refusals before moto

    def check_capacity(self, s, req, now):
        if s["capacity"] is None or req.service != "ec2":
            return None
        types = []
        if req.action == "RunInstances":
            types = req.values("InstanceType") or [self.template_value(req, "LaunchTemplate", "InstanceType")]
        elif req.action == "CreateFleet":
            types = req.values("LaunchTemplateConfigs.N.Overrides.N.InstanceType")
            if not types:
                types = [self.template_value(req, "LaunchTemplateConfigs.1.LaunchTemplateSpecification",
                                             "InstanceType")]
        elif req.action == "RequestSpotInstances":
            types = req.values("LaunchSpecification.InstanceType")
        short = [t for t in types if t and t in s["capacity"]["instance_types"]]
        if not short:
            return None
        zone = req.params.get("Placement.AvailabilityZone") or f"{req.region}a"
        return "capacity", (
            500,
            "InsufficientInstanceCapacity",
            f"We currently do not have sufficient {short[0]} capacity in the Availability Zone you "
            f"requested ({zone}). Our system will be working on provisioning additional capacity. You can "
            f"currently get {short[0]} capacity by not specifying an Availability Zone in your request or "
            "choosing a different Availability Zone.",
        )

    def check_imdsv2(self, s, req, now):
        rule = s["imdsv2"]
        if rule is None or req.service != "ec2":
            return None
        if req.action == "RunInstances":
            tokens = req.params.get("MetadataOptions.HttpTokens") or self.template_value(
                req, "LaunchTemplate", "MetadataOptions", "HttpTokens")
        elif req.action in ("CreateLaunchTemplate", "CreateLaunchTemplateVersion"):
            tokens = req.params.get("LaunchTemplateData.MetadataOptions.HttpTokens")
            if req.action == "CreateLaunchTemplateVersion" and not tokens and req.params.get("SourceVersion"):
                return None  # inherits the source version's, which was checked when it was made
        elif req.action == "ModifyInstanceMetadataOptions":
            tokens = req.params.get("HttpTokens")
            if not tokens:
                return None
        else:
            return None
        if tokens == "required" or (not tokens and not rule["refuse_unset"]):
            return None
        code = rule["code"]
        status = 403 if code == "UnauthorizedOperation" else 400
        shown = tokens or "unset"
        return "imdsv2", (
            status,
            code,
            f"The value '{shown}' for HttpTokens is not allowed: this account enforces IMDSv2 "
            "(instance metadata defaults: HttpTokensEnforced=enabled); set MetadataOptions.HttpTokens "
            "to 'required'.",
        )

    def check_young(self, s, req, now):
        if s["consistency"] is None:
            return None
        refs = []
        for pattern, kind in USES.get((req.service, req.action), ()):
            refs += [(kind, v) for v in req.values(pattern)]
        if req.service == "ec2" and req.action in ("CreateTags", "DeleteTags"):
            for value in req.values("ResourceId.N"):
                kind = next((k for p, k in TAG_PREFIXES.items() if value.startswith(p)), None)
                if kind:
                    refs.append((kind, value))
        if req.service == "autoscaling" and req.action != "CreateAutoScalingGroup":
            if not req.action.startswith("Describe"):
                refs += [("asg", v) for v in req.values("AutoScalingGroupName")]
                if req.action in ("CreateOrUpdateTags", "DeleteTags"):
                    refs += [("asg", v) for v in req.values("Tags.member.N.ResourceId")]
        with self.lock:
            for kind, value in refs:
                if kind == "run_profile" and value.startswith("arn:"):
                    value = value.rsplit("/", 1)[-1]
                young = self.young.get((TRACKED_AS.get(kind, kind), value))
                if young is not None and young.alive(now):
                    young.left -= 1
                    code, status, message = NOT_FOUND[kind]
                    return "consistency", (status, code, message.format(value))
        return None

    def check_dependency(self, s, req, now):
        if s["dependency"] is None or req.service != "ec2" or req.action != "DeleteSecurityGroup":
            return None
        backend = self.ec2_backend(req)
        group_id = req.params.get("GroupId")
        if not group_id and req.params.get("GroupName"):
            group = backend.get_security_group_by_name_or_id(req.params["GroupName"])
            group_id = group.id if group else None
        if not group_id:
            return None
        for instance in list(backend.all_instances()):
            groups = {getattr(g, "id", g) for g in (instance.security_groups or [])}
            for nic in list(getattr(instance, "nics", {}).values()):
                groups |= {getattr(g, "id", g) for g in (getattr(nic, "group_set", None) or [])}
            with self.lock:
                groups |= self.fleet_groups.get(instance.id, set())
            if group_id not in groups:
                continue
            since = self.terminated_since(instance.id, now)
            if instance.state != "terminated" or since < float(s["dependency"]["linger_s"]):
                return "dependency", (
                    400, "DependencyViolation", f"resource {group_id} has a dependent object")
            if since != float("inf"):
                # Free since `linger_s` after the instance was shown terminated: the deletion's notice lag.
                lag = since - float(s["dependency"]["linger_s"])
                with self.lock:
                    mark = f"sg:{group_id}:deletable"
                    self.noticed[mark] = round(min(lag, self.noticed.get(mark, lag)), 3)
        return None

    def check_snapshot(self, s, req, now):
        if s["snapshot_in_use"] is None or req.service != "ec2" or req.action != "DeleteSnapshot":
            return None
        snapshot = req.params.get("SnapshotId")
        with self.lock:
            image, until = self.snapshots_in_use.get(snapshot, (None, 0.0))
        if image and now < until:
            return "snapshot_in_use", (
                400, "InvalidSnapshot.InUse", f"The snapshot {snapshot} is currently in use by {image}")
        return None

    # ---- around moto

    def before(self, s, req, now):
        """What must happen before moto answers (or be known of the state before it acts)."""
        out = {}
        if req.service != "ec2":
            return out
        if req.action == "RunInstances" and s["boot"] is not None and req.params.get("KeyName"):
            # Not authorized before the call answers: a login right after RunInstances must not get in.
            key = req.params["KeyName"]
            with self.lock:
                self.withheld[key] = float("inf")
            self.rewrite_keys()
            out["withheld"] = [key]
        if req.action == "DeregisterImage" and s["snapshot_in_use"] is not None:
            out["snapshots"] = self.image_snapshots(req, req.params.get("ImageId"))
        return out

    def after(self, s, req, body, before):
        """Tracks what moto created and rewrites what it answered. Returns the (maybe new) body."""
        now = time.monotonic()
        text = body.decode("utf-8", "replace")
        if req.service == "ec2":
            self.track_ec2(s, req, text, now, before)
        elif req.service == "autoscaling" and req.action == "CreateAutoScalingGroup":
            self.make_young(s, now, [("asg", req.params.get("AutoScalingGroupName"))])
        elif req.service == "iam" and req.action == "CreateInstanceProfile":
            self.make_young(s, now, [("profile", req.params.get("InstanceProfileName"))])
        listed = LISTED.get((req.service, req.action))
        if listed and s["consistency"] is not None and not any(req.values(p) for p in listed[3]):
            body = self.leave_out_young(req, body, listed, now)
        if s["holds"] is not None and req.service == "ec2":
            body = self.show_holds(req, body, now)
        return body

    def track_ec2(self, s, req, text, now, before):
        action = req.action
        if action == "RunInstances":
            ids = re.findall(r"<instanceId>(i-[0-9a-f]+)</instanceId>", text)
            self.make_young(s, now, [("instance", i) for i in ids])
            running = now
            for i in ids:
                running = max(running, self.hold(s, ("instance", i), "pending", "running",
                                                 "instance_pending_s", now))
            if s["boot"] is not None:
                self.launched(s, now, running, before.get("withheld", []))
        elif action == "CreateFleet":
            spec = "LaunchTemplateConfigs.1.LaunchTemplateSpecification"
            groups = []
            for key in ("SecurityGroupIds", "SecurityGroupId"):
                found = self.template_value(req, spec, key) or []
                groups += [found] if isinstance(found, str) else list(found)
            for nic in self.template_value(req, spec, "NetworkInterfaces") or []:
                if isinstance(nic, dict):
                    for key in ("Groups", "SecurityGroupIds", "SecurityGroupId"):
                        found = nic.get(key) or []
                        groups += [found] if isinstance(found, str) else list(found)
            ids = re.findall(r"<item>(i-[0-9a-f]+)</item>", text)
            with self.lock:
                for i in ids:
                    self.fleet_groups[i] = set(groups)
        elif action == "StartInstances":
            for i in req.values("InstanceId.N"):
                self.hold(s, ("instance", i), "pending", "running", "instance_pending_s", now)
        elif action == "StopInstances":
            for i in req.values("InstanceId.N"):
                self.hold(s, ("instance", i), "stopping", "stopped", "instance_stopping_s", now)
        elif action == "TerminateInstances":
            for i in req.values("InstanceId.N"):
                with self.lock:
                    self.terminated[i] = now
                    if len(self.terminated) > 5000:  # forget the old ones now and then
                        self.terminated = {k: t for k, t in self.terminated.items() if now - t < 600}
                self.hold(s, ("instance", i), "shutting-down", "terminated", "instance_shutting_down_s", now)
        elif action == "CreateSecurityGroup":
            group = re.search(r"<groupId>(sg-[0-9a-f]+)</groupId>", text)
            if group:
                self.make_young(s, now, [("sg", group.group(1)), ("sg_name", req.params.get("GroupName"))])
        elif action in ("CreateKeyPair", "ImportKeyPair"):
            key_id = re.search(r"<keyPairId>([^<]+)</keyPairId>", text)
            self.make_young(s, now, [("key", req.params.get("KeyName")),
                                     ("key_id", key_id.group(1) if key_id else None)])
        elif action in ("CreateImage", "CopyImage", "RegisterImage"):
            image = re.search(r"<imageId>(ami-[0-9a-f]+)</imageId>", text)
            if image:
                image_id = image.group(1)
                self.make_young(s, now, [("image", image_id)])
                if s["holds"] is not None:
                    snapshots = self.image_snapshots(req, image_id)
                    until = self.hold(s, ("image", image_id), "pending", "available", "image_pending_s", now)
                    for snapshot in snapshots:
                        with self.lock:
                            self.holds[("snapshot", snapshot)] = ("pending", "completed", until, now)
        elif action == "CreateLaunchTemplate":
            lt = re.search(r"<launchTemplateId>(lt-[0-9a-f]+)</launchTemplateId>", text)
            if lt:
                self.make_young(s, now, [("lt", lt.group(1)), ("lt_name", req.params.get("LaunchTemplateName"))])
        elif action == "DeregisterImage" and s["snapshot_in_use"] is not None:
            until = now + float(s["snapshot_in_use"]["after_deregister_s"])
            with self.lock:
                for snapshot in before.get("snapshots", []):
                    self.snapshots_in_use[snapshot] = (req.params.get("ImageId"), until)

    def make_young(self, s, now, keys):
        rule = s["consistency"]
        keys = [(k, v) for k, v in keys if v]
        if rule is None or not keys:
            return
        low, high = burst_range(rule["uses"])
        with self.lock:
            left = self.rng.randint(low, high)
            if left <= 0:
                return
            young = Young(keys[0][1], left, now + float(rule["window_s"]))
            for key in keys:
                self.young[key] = young
            if len(self.young) > 5000:  # forget the expired ones now and then
                self.young = {k: y for k, y in self.young.items() if y.alive(now)}

    def hold(self, s, key, shown, real, param, now):
        """Shows `key` as `shown` instead of `real` for the hold time; returns when the hold ends."""
        rule = s["holds"]
        if rule is None:
            return now
        with self.lock:
            jitter = float(rule["jitter_s"])
            duration = max(0.0, float(rule[param]) + (self.rng.uniform(-jitter, jitter) if jitter else 0.0))
            if duration <= 0:
                return now
            until = now + duration
            self.holds[key] = (shown, real, until, now)
        return until

    def terminated_since(self, instance_id, now):
        """Seconds since the instance is shown terminated (negative while held in shutting-down); a large
        number for one the layer did not see terminate."""
        with self.lock:
            shown, _, until, _ = self.holds.get(("instance", instance_id), (None, None, 0.0, 0.0))
            terminated = self.terminated.get(instance_id)
        if shown == "shutting-down":
            return now - until
        return now - terminated if terminated is not None else float("inf")

    def leave_out_young(self, req, body, listed, now):
        list_tag, id_tag, kind, _ = listed
        with self.lock:
            young = {key for (k, key), y in self.young.items() if k == kind and y.alive(now)}
        text = body.decode("utf-8", "replace")
        if not young or not any(y in text for y in young):
            return body
        left_out = []

        def edit(root):
            for parent in list(root.iter()):
                if local(parent.tag) != list_tag:
                    continue
                for item in list(parent):
                    value = child_text(item, id_tag)
                    if value in young:
                        parent.remove(item)
                        left_out.append(value)
            if left_out and local(root.tag) == "DescribeInstancesResponse":
                reservations = child(root, "reservationSet")
                for reservation in list(reservations if reservations is not None else []):
                    instances = child(reservation, "instancesSet")
                    if instances is not None and len(instances) == 0:
                        reservations.remove(reservation)
            return bool(left_out)

        body = edit_xml(body, edit)
        with self.lock:
            for value in left_out:
                y = self.young.get((kind, value))
                if y is not None:
                    y.left -= 1
                self.injected[f"consistency:{req.action}"] += 1
        return body

    def show_holds(self, req, body, now):
        action = req.action
        kinds = {
            "RunInstances": "instance", "DescribeInstances": "instance", "DescribeInstanceStatus": "instance",
            "DescribeImages": "image", "DescribeSnapshots": "snapshot",
        }
        kind = kinds.get(action)
        if kind is None:
            return body
        text = body.decode("utf-8", "replace")
        with self.lock:
            if kind in ("instance", "image"):
                for (k, key), (_, real, until, _) in self.holds.items():
                    mark = f"{k}:{key}:{real}"
                    if k == kind and now >= until and mark not in self.noticed and key in text:
                        self.noticed[mark] = round(now - until, 3)
            active = {key: h for (k, key), h in self.holds.items() if k == kind and now < h[2]}
            if len(self.holds) > 5000:
                self.holds = {k: h for k, h in self.holds.items() if now < h[2]}
        if not active or not any(key in text for key in active):
            return body
        changed = []
        include_all = req.params.get("IncludeAllInstances", "").lower() == "true"

        def edit(root):
            for el in list(root.iter()):
                if kind == "instance":
                    instance_id = child_text(el, "instanceId")
                    state = child(el, "instanceState")
                    if instance_id not in active or state is None:
                        continue
                    shown, real, _, _ = active[instance_id]
                    if child_text(state, "name") != real:
                        continue
                    if action == "DescribeInstanceStatus" and shown != "running" and not include_all:
                        for parent in root.iter():
                            if el in list(parent):
                                parent.remove(el)
                                break
                    else:
                        child(state, "name").text = shown
                        child(state, "code").text = str(INSTANCE_STATES[shown])
                    changed.append(instance_id)
                elif kind == "image":
                    image_id = child_text(el, "imageId")
                    state = child(el, "imageState")
                    if image_id in active and state is not None and state.text == active[image_id][1]:
                        state.text = active[image_id][0]
                        changed.append(image_id)
                else:
                    snapshot_id = child_text(el, "snapshotId")
                    status = child(el, "status")
                    if snapshot_id in active and status is not None and status.text == active[snapshot_id][1]:
                        shown, _, until, began = active[snapshot_id]
                        status.text = shown
                        progress = child(el, "progress")
                        if progress is not None:
                            done = (now - began) / max(until - began, 0.001)
                            progress.text = f"{min(99, int(done * 100))}%"
                        changed.append(snapshot_id)
            return bool(changed)

        body = edit_xml(body, edit)
        if changed:
            self.count("holds", action)
        return body

    # ---- moto lookups (in this process)

    def ec2_backend(self, req):
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ec2.models import ec2_backends

        region = req.region if req.region not in ("-", "") else "us-east-1"
        return ec2_backends[DEFAULT_ACCOUNT_ID][region]

    def image_snapshots(self, req, image_id):
        try:
            ami = self.ec2_backend(req).amis.get(image_id)
        except Exception:
            return []
        snapshots = []
        if ami is not None:
            snapshot = getattr(ami, "ebs_snapshot", None)
            if snapshot is not None:
                snapshots.append(snapshot.id)
        return snapshots

    def template_value(self, req, prefix, *path):
        """A value of the launch template a request names (`prefix`.LaunchTemplateId/Name, .Version)."""
        template_id = req.params.get(f"{prefix}.LaunchTemplateId")
        name = req.params.get(f"{prefix}.LaunchTemplateName")
        if not template_id and not name:
            return None
        try:
            backend = self.ec2_backend(req)
            template = (backend.get_launch_template(template_id) if template_id
                        else backend.get_launch_template_by_name(name))
            data = template.get_version(req.params.get(f"{prefix}.Version") or "$Default").data
        except Exception:
            return None
        for part in path:
            data = data.get(part) if isinstance(data, dict) else None
        return data

    # ---- boot (the SSH side)

    def launched(self, s, now, running, keys):
        boot = s["boot"]
        until = running + float(boot["auth_delay_s"])
        def change():
            with self.lock:
                self.launch = (now, running)
                self.banner_drops = int(boot["drop_banners"])
                for key in keys:
                    self.withheld[key] = until
                    self.injected["boot_auth:RunInstances"] += 1
                if self.front is not None:
                    self.injected["boot_refused:ssh"] += 1

        if self.front is not None:
            self.front.while_closed(change)
        else:
            change()
        timer = threading.Timer(max(0.0, until - time.monotonic()) + 0.01, self.rewrite_keys)
        timer.daemon = True
        timer.start()

    def release_keys(self, keys):
        with self.lock:
            for key in keys:
                if self.withheld.get(key) == float("inf"):
                    del self.withheld[key]
        self.rewrite_keys()

    def withheld_keys(self):
        now = time.monotonic()
        with self.lock:
            return {k for k, until in self.withheld.items() if now < until}

    def ssh_refusing(self, now):
        with self.lock:
            if now < self.reboot_until:
                return True
            boot = self.settings["boot"]
            if boot is None or self.launch is None:
                return False
            launched, running = self.launch
            return launched <= now < running + float(boot["refused_s"])

    def console_empty(self):
        """With `boot`: GetConsoleOutput shows nothing until the most recent launch's host key is final (its
        first-boot window over), as AWS's console is empty for a while and cloud-init prints the keys last."""
        now = time.monotonic()
        with self.lock:
            boot = self.settings["boot"]
            if boot is None or self.launch is None:
                return False
            _, running = self.launch
            if now < running + float(boot["refused_s"]) + float(boot["host_key_s"]):
                self.injected["boot_console:GetConsoleOutput"] += 1
                return True
            return False

    def ssh_route(self, now):
        """Where a new SSH connection goes: "drop" (closed before the banner), "boot" (the first-boot sshd,
        other host keys) or "main"."""
        with self.lock:
            boot = self.settings["boot"]
            if boot is None or self.launch is None:
                return "main"
            if self.banner_drops > 0:
                self.banner_drops -= 1
                self.injected["boot_dropped:ssh"] += 1
                return "drop"
            _, running = self.launch
            if now < running + float(boot["refused_s"]) + float(boot["host_key_s"]):
                self.injected["boot_host_key:ssh"] += 1
                return "boot"
            return "main"

    def reboot(self, ssh_connection=None):
        if self.front is None:
            return 0
        def change():
            with self.lock:
                boot = self.settings["boot"]
                down = float(boot["reboot_down_s"]) if boot is not None else 0.0
                self.reboot_until = time.monotonic() + down

        self.front.while_closed(change)
        dropped = self.front.drop(ssh_connection)
        self.count("reboot", "ssh", dropped)
        return dropped

    def start_front(self, listener, state_dir):
        self.front = SshFront(self, listener, state_dir)
        self.front.start()


def burst_range(value):
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[-1])
    return int(value), int(value)


def reply(start_response, status, doc):
    body = (json.dumps(doc, indent=1) + "\n").encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


# ------------------------------------------------------------------------------------------ the SSH front


class SshFront(threading.Thread):
    """A TCP front on the lab's advertised SSH port, in front of the lab's sshd (and, for the first
    connections after a launch, of a second sshd with other host keys). While an instance "boots" its port
    is really closed (connections are refused); on a reboot its connections are dropped."""

    POLL = 0.05

    def __init__(self, realism, listener, state_dir):
        super().__init__(name="ssh-front", daemon=True)
        self.realism = realism
        self.listener = listener
        self.port = listener.getsockname()[1]
        self.state_dir = state_dir
        self.backends = None
        self.lock = threading.RLock()
        self.conns = {}  # backend local port -> (client socket, backend socket)

    def backend_ports(self):
        """{"main": port, "boot": port}, written by lab/up once both sshds listen."""
        deadline = time.monotonic() + 60
        while self.backends is None:
            try:
                with open(f"{self.state_dir}/ssh_backends.json") as f:
                    self.backends = json.load(f)
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(self.POLL)
        return self.backends

    def run(self):
        while True:
            if self.realism.ssh_refusing(time.monotonic()):
                self.close_listener()  # truly refused: nothing listens on the port
                time.sleep(self.POLL)
                continue
            with self.lock:  # rebinding under the lock: see while_closed
                if self.listener is None and not self.realism.ssh_refusing(time.monotonic()):
                    self.listener = self.rebind()
                listener = self.listener
            if listener is None:  # the port is taken for now (see rebind): refused meanwhile
                time.sleep(self.POLL)
                continue
            try:
                ready, _, _ = select.select([listener], [], [], self.POLL)
                if not ready:
                    continue
                conn, _ = listener.accept()
            except (OSError, ValueError):  # closed meanwhile by close_listener
                continue
            threading.Thread(target=self.serve, args=(conn,), name="ssh-front-conn", daemon=True).start()

    def close_listener(self):
        with self.lock:
            if self.listener is not None:
                # shutdown first: it stops the listening at once, even while the accept loop's select() still
                # holds the socket (close alone would leave it listening until select returns)
                try:
                    self.listener.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.listener.close()
                self.listener = None

    def while_closed(self, change):
        """Runs `change` (which starts a refusal) and closes the port, with no rebind in between."""
        with self.lock:
            change()
            self.close_listener()

    def rebind(self):
        """Listens on the port again. While it was closed, the kernel may have given it to an outgoing
        connection as its local port; then this fails until that connection ends."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self.port))
            sock.listen(128)
            return sock
        except OSError:
            sock.close()
            return None

    def serve(self, client):
        if self.realism.ssh_refusing(time.monotonic()):
            # Accepted just as the port closed: reset, as a port that is not listening would.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            return
        route = self.realism.ssh_route(time.monotonic())
        if route == "drop":
            client.close()  # accepted, then closed before the banner
            return
        try:
            backend = socket.create_connection(("127.0.0.1", self.backend_ports()[route]), timeout=10)
            backend.settimeout(None)
        except OSError:
            client.close()
            return
        key = backend.getsockname()[1]
        with self.lock:
            self.conns[key] = (client, backend)
        pump = threading.Thread(target=copy_stream, args=(backend, client), daemon=True)
        pump.start()
        copy_stream(client, backend)
        pump.join()
        with self.lock:
            self.conns.pop(key, None)
        client.close()
        backend.close()

    def drop(self, ssh_connection=None):
        """Drops the connection sshd knows as `ssh_connection` ($SSH_CONNECTION: client ip, client port,
        ...), or every connection. Returns how many."""
        with self.lock:
            if ssh_connection:
                fields = str(ssh_connection).split()
                port = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else -1
                victims = [self.conns[port]] if port in self.conns else []
            else:
                victims = list(self.conns.values())
        for pair in victims:
            for sock in pair:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        return len(victims)


def copy_stream(source, target):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    try:
        target.shutdown(socket.SHUT_WR)
    except OSError:
        pass
