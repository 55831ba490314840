"""moto's server for the bakery lab (runs on lab/.venv's python; started by lab/up).

What it adds to `moto_server`:
* the socket is bound to 127.0.0.1 on a free port *before* moto is imported, and the port is written to
  `<dir>/moto.port` at once, so lab/up can start sshd while moto is still importing (about 1 s);
* the first EC2 call (which loads about 1,300 AMIs: 1-2 s) is made here, then `<dir>/moto.ready` is written;
* requests are counted by (service, Action). `GET /bakery-lab/requests` answers one
  `service<TAB>action<TAB>count` line per pair; `DELETE /bakery-lab/requests` resets the counts (and
  moto's recording). Requests whose User-Agent starts with `bakery-lab` (the warm-up, the sshd keys
  command, the harness) are not counted, so tests count only what the code under test sent;
* moto's own request recorder is on: every request, with headers and body, one JSON line each in
  `<dir>/moto-recording.jsonl` (including the lab's own requests: look at their User-Agent);
* `GetConsoleOutput` shows cloud-init's SSH host key blocks for the lab sshd's host keys (moto answers a
  canned kernel log); `PUT /bakery-lab/console {"host_keys": "lab" | "other" | "none"}` makes it show
  them, keys no sshd of the lab has, or no block at all (`GET` reads the setting);
* the realism layer (realism.py) sits between the counter and moto: with `--realism FILE` (written by
  lab/up) it plays AWS's delays and refusals as the file's profile says, and `--ssh-front` binds the SSH
  front's port here too (written to `<dir>/ssh_front.port`) for the booting-instance behaviour.
Everything else is moto's own server app, unchanged.
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import socket
import struct
import threading
import urllib.parse
from collections import Counter

from cbor_front import CborFront
from realism import LAB_AGENT, Realism, read_body, resolve, service_of

COUNTS_PATH = "/bakery-lab/requests"
CONSOLE_PATH = "/bakery-lab/console"
# What GetConsoleOutput shows: "lab" (the lab sshd's host keys), "other" (keys no sshd of the lab has) or
# "none" (no host key block). Set with PUT CONSOLE_PATH.
CONSOLE = {"host_keys": "lab"}
CONSOLE_MODES = ("lab", "other", "none")


# The instance profile every lab account has (tests name it in `iam_instance_profile`).
LAB_INSTANCE_PROFILE = "bakery-lab-profile"


def write_atomic(path, text):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def action_of(environ):
    """Query protocol: Action (URL or form body); JSON protocol: X-Amz-Target; REST: method and path."""
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    method = environ.get("REQUEST_METHOD", "GET")
    if method == "POST" and environ.get("CONTENT_TYPE", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        form = urllib.parse.parse_qs(read_body(environ).decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0]
    return f"{method} {environ.get('PATH_INFO', '/')}"


class RequestCounter:
    """WSGI middleware in front of moto: counts requests by (service, action)."""

    def __init__(self, app, recorder):
        self.app = app
        self.recorder = recorder
        self.lock = threading.Lock()
        self.counts = Counter()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == COUNTS_PATH:
            return self.serve_counts(environ, start_response)
        if path == CONSOLE_PATH:
            return serve_console(environ, start_response)
        if not environ.get("HTTP_USER_AGENT", "").startswith(LAB_AGENT) and not path.startswith(
            "/bakery-lab/"
        ):
            key = (service_of(environ), action_of(environ))
            with self.lock:
                self.counts[key] += 1
        return self.app(environ, start_response)

    def serve_counts(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        with self.lock:
            if method == "DELETE":
                self.counts.clear()
                self.recorder.reset_recording()
                start_response("204 No Content", [])
                return [b""]
            if method != "GET":
                start_response("405 Method Not Allowed", [("Allow", "GET, DELETE")])
                return [b""]
            lines = "".join(f"{s}\t{a}\t{n}\n" for (s, a), n in sorted(self.counts.items()))
        body = lines.encode()
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]


def serve_console(environ, start_response):
    """GET/PUT CONSOLE_PATH: what GetConsoleOutput shows."""
    method = environ.get("REQUEST_METHOD")
    status = "200 OK"
    if method == "PUT":
        try:
            mode = json.loads(read_body(environ) or b"{}").get("host_keys")
        except (ValueError, AttributeError):
            mode = None
        if mode in CONSOLE_MODES:
            CONSOLE["host_keys"] = mode
        else:
            status = "400 Bad Request"
    elif method != "GET":
        status = "405 Method Not Allowed"
    doc = dict(CONSOLE) if status == "200 OK" else {"error": f"PUT {{\"host_keys\": one of {CONSOLE_MODES}}}"}
    body = (json.dumps(doc) + "\n").encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def ssh_fingerprint(blob_b64):
    """OpenSSH's SHA256 fingerprint of a public key blob: SHA-256 of the decoded blob, base64 unpadded."""
    digest = hashlib.sha256(base64.b64decode(blob_b64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


OTHER_HOST_KEYS = []


def other_host_keys():
    """An ed25519 public key no sshd of the lab has (made once per lab)."""
    if not OTHER_HOST_KEYS:
        name = b"ssh-ed25519"
        blob = struct.pack(">I", len(name)) + name + struct.pack(">I", 32) + os.urandom(32)
        OTHER_HOST_KEYS.append(f"ssh-ed25519 {base64.b64encode(blob).decode()} root@ip-10-0-0-1")
    return list(OTHER_HOST_KEYS)


def lab_host_keys(state_dir):
    """The lab sshd's host public keys (ssh_host_*_key.pub, written by lab/up), OpenSSH lines."""
    keys = []
    for kind in ("ecdsa", "ed25519", "rsa"):
        try:
            with open(os.path.join(state_dir, f"ssh_host_{kind}_key.pub")) as f:
                keys.append(f.read().strip())
        except FileNotFoundError:
            pass
    return keys


def console_text(state_dir, mode):
    """An instance's console as EC2 shows it (CRLF line ends, kernel and cloud-init noise) with, unless
    `mode` is "none", the blocks cloud-init's keys_to_console writes for `mode`'s host keys."""
    lines = [
        "[    0.000000] Linux version 6.1.0-13-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP",
        "[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz-6.1.0-13-cloud-amd64 root=PARTUUID=x ro",
        "[    4.213370] cloud-init[412]: Cloud-init v. 22.4.2 running 'init' at Mon, 07 Dec 2026 00:00:04 +0000.",
        "[   11.204511] cloud-init[612]: Cloud-init v. 22.4.2 running 'modules:final'.",
    ]
    if mode != "none":
        keys = lab_host_keys(state_dir) if mode == "lab" else other_host_keys()
        labels = {"ssh-ed25519": ("256", "ED25519"), "ssh-rsa": ("3072", "RSA")}
        prefix = "[   11.873412] cloud-init[612]: ec2: "
        lines.append(f"{prefix}")
        lines.append(f"{prefix}#############################################################")
        lines.append(f"{prefix}-----BEGIN SSH HOST KEY FINGERPRINTS-----")
        for key in keys:
            alg, blob = key.split()[:2]
            bits, label = labels.get(alg, (alg.rsplit("nistp", 1)[-1], "ECDSA"))
            lines.append(f"{prefix}{bits} {ssh_fingerprint(blob)} root@ip-10-0-0-1 ({label})")
        lines.append(f"{prefix}-----END SSH HOST KEY FINGERPRINTS-----")
        lines.append(f"{prefix}#############################################################")
        lines.append("[   11.902116] random: crng init done")
        lines.append("ec2: -----BEGIN SSH HOST KEY KEYS-----")
        for key in keys:
            alg, blob = key.split()[:2]
            lines.append(f"ec2: {alg} {blob} root@ip-10-0-0-1")
        lines.append("ec2: -----END SSH HOST KEY KEYS-----")
    lines.append("[   12.101994] cloud-init[612]: Cloud-init v. 22.4.2 finished at Mon, 07 Dec 2026 00:00:12 +0000.")
    return "\r\n".join(lines) + "\r\n"


def patch_moto_console_output(state_dir, console_empty):
    """`GetConsoleOutput` shows what cloud-init prints on an instance's first boot, with the lab sshd's host
    keys (moto 5.2.5 answers a canned Xen kernel log): `--host-key-check=console` checks the lab's sshd
    against it. `console_empty()` true (the realism layer's booting instance) answers no output yet, as
    AWS's console is empty for a while after a launch."""
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.ec2.responses.general import General
    from moto.ec2.utils import Base64EncodedString

    def get_console_output(self):
        instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
        result = {"InstanceId": instance.id, "Timestamp": utcnow()}
        if not console_empty():
            text = console_text(state_dir, CONSOLE["host_keys"])
            result["Output"] = Base64EncodedString.from_raw_string(text)
        return ActionResult(result)

    General.get_console_output = get_console_output


def lab_request(conn, params, region, service):
    """One query-protocol request of the lab's own (its User-Agent keeps it out of the counts); the answer."""
    conn.request(
        "POST",
        "/",
        urllib.parse.urlencode(params),
        {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "User-Agent": f"{LAB_AGENT}-warm-up",
            "Authorization": "AWS4-HMAC-SHA256 "
            f"Credential=bakerylab/20000101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0",
        },
    )
    resp = conn.getresponse()
    return resp.status, resp.read()


def warm_up(port, region, source_ami):
    """The first EC2 call loads moto's AMIs; make it here, and check the lab's source AMI exists. Then the
    instance profile an account that launches builders has (`iam_instance_profile`)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    status, data = lab_request(
        conn,
        {"Action": "DescribeImages", "Version": "2016-11-15", "ImageId.1": source_ami},
        region,
        "ec2",
    )
    if status != 200 or f"<imageId>{source_ami}</imageId>".encode() not in data:
        raise SystemExit(
            f"moto warm-up: DescribeImages {source_ami} in {region} answered {status}: {data[:500]!r}"
        )
    status, data = lab_request(
        conn,
        {"Action": "CreateInstanceProfile", "Version": "2010-05-08",
         "InstanceProfileName": LAB_INSTANCE_PROFILE},
        "us-east-1",
        "iam",
    )
    if status != 200:
        raise SystemExit(f"moto warm-up: CreateInstanceProfile answered {status}: {data[:500]!r}")


def patch_moto_shared_classic_elbs():
    """moto 5.2.5 deregisters from a classic ELB every instance that is not in the group being updated, as if
    one ELB served one group; AWS only removes the group's own instances (and instances that no longer run).
    A blue-green rollout needs two groups on one ELB, so the lab makes moto behave as AWS does."""
    from moto.autoscaling.models import ASG_NAME_TAG, AutoScalingBackend
    from moto.elb.exceptions import LoadBalancerNotFoundError

    def update_attached_elbs(self, group_name):
        group = self.autoscaling_groups[group_name]
        active = {s.instance.id for s in group.active_instances()}
        if not group.load_balancer_names:
            return
        try:
            elbs = self.elb_backend.describe_load_balancers(names=group.load_balancer_names)
        except LoadBalancerNotFoundError:
            return

        def stale(instance_id):
            try:
                inst = self.ec2_backend.get_instance(instance_id)
            except Exception:
                return True
            tags = {t["key"]: t["value"] for t in inst.get_tags()}
            return tags.get(ASG_NAME_TAG) == group_name or inst.state == "terminated"

        for elb in elbs:
            registered = set(elb.instance_ids)
            self.elb_backend.register_instances(elb.name, active - registered, from_autoscaling=True)
            gone = {i for i in registered - active if stale(i)}
            self.elb_backend.deregister_instances(elb.name, gone, from_autoscaling=True)

    AutoScalingBackend.update_attached_elbs = update_attached_elbs


def patch_moto_key_pairs_file(path, region, withheld=lambda: ()):
    """cloud-init's job, without a process per login: `path` (`<dir>/ec2_keys`, one of sshd's
    AuthorizedKeysFiles) holds the public key of every EC2 key pair moto holds in the lab's region, rewritten
    whenever one is created, imported or deleted, before the call answers. An EC2 instance reads its
    authorized_keys file at login; the AuthorizedKeysCommand the lab used instead (a Python start and a
    DescribeKeyPairs per run, two runs per login) cost ~70 ms of every login and, in a 10-build bake,
    ~40 % of the lab's sshd CPU.
    `withheld()` names key pairs left out for now (the realism layer's booting instance: a key is "installed"
    a while after the launch); the returned function rewrites the file when that changes."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.key_pairs import KeyPairBackend

    lock = threading.Lock()

    def write(backend):
        if backend.region_name != region:
            return
        with lock:  # the snapshot is taken under the lock: the last writer has seen every change
            keys = []
            left_out = set(withheld())
            for name, pair in list(backend.key_pairs.items()):
                if name in left_out:
                    continue
                key = pair.material_public
                key = key.decode() if isinstance(key, bytes) else str(key or "")
                if key.strip():
                    keys.append(key.strip() + "\n")
            write_atomic(path, "".join(keys))
            os.chmod(path, 0o644)  # sshd reads it as the login user

    for name in ("create_key_pair", "import_key_pair", "delete_key_pair"):
        original = getattr(KeyPairBackend, name)

        def changed(self, *args, _original=original, **kwargs):
            result = _original(self, *args, **kwargs)
            write(self)
            return result

        setattr(KeyPairBackend, name, changed)

    return lambda: write(ec2_backends[DEFAULT_ACCOUNT_ID][region])


def patch_moto_tag_lookup():
    """moto 5.2.5 finds an EC2 resource's tags by scanning every tag of every resource with a regex per tag
    (`TagBackend.describe_tags` with a resource-id filter), once per resource in every response, so the lab
    got slower with each bake it kept (AMIs, snapshots, terminated instances): in a 10-build bake this was
    40 % of moto's CPU. AWS does not slow down with the account's tags; the lab reads the resource's own
    tags directly (same result, same order)."""
    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    def get_tags(self):
        if not self.id:
            return []
        kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
        return [
            {"resource_id": self.id, "key": k, "value": v, "resource_type": kind}
            for k, v in self.ec2_backend.tags.get(self.id, {}).copy().items()
        ]

    TaggedEC2Resource.get_tags = get_tags


def patch_moto_image_tags_and_tokens():
    """What bake relies on to find every AMI and snapshot it makes, which moto 5.2.5 lacks:
    * `CreateImage` with a `snapshot` tag specification tags the AMI's snapshots (moto raises
      NotImplementedError, an HTTP 500);
    * `CopyImage` applies its `TagSpecifications` (image and snapshot) and honours `ClientToken`: a retried
      copy with the same token returns the same AMI instead of a second one (moto ignores both).
    AWS does all three."""
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.responses.amis import AmisResponse

    original_create = AmiBackend.create_image
    original_copy = AmiBackend.copy_image
    tokens = {}  # (account, region, client token) -> AMI id
    lock = threading.Lock()
    request = threading.local()

    def split(specs, kind):
        return [t for s in specs or [] if s.get("ResourceType") == kind for t in s.get("Tags", [])]

    def tag(backend, resource_id, tags):
        if resource_id and tags:
            backend.create_tags([resource_id], {t["Key"]: t["Value"] for t in tags})

    def create_image(self, instance_id, name, description, tag_specifications):
        image_only = [s for s in tag_specifications or [] if s.get("ResourceType") != "snapshot"]
        ami = original_create(self, instance_id, name, description, tag_specifications=image_only)
        tag(self, getattr(getattr(ami, "ebs_snapshot", None), "id", None),
            split(tag_specifications, "snapshot"))
        return ami

    def copy_image(self, source_image_id, source_region, name=None, description=None):
        key = (self.account_id, self.region_name, getattr(request, "token", None))
        with lock:
            if key[2] and key in tokens and tokens[key] in self.amis:
                return self.amis[tokens[key]]
            ami = original_copy(self, source_image_id, source_region, name, description)
            if key[2]:
                tokens[key] = ami.id
        specs = getattr(request, "specs", [])
        tag(self, ami.id, split(specs, "image"))
        tag(self, getattr(getattr(ami, "ebs_snapshot", None), "id", None), split(specs, "snapshot"))
        return ami

    original_copy_response = AmisResponse.copy_image

    def copy_image_response(self):
        request.token = self._get_param("ClientToken")
        request.specs = self._get_param("TagSpecifications", [])
        try:
            return original_copy_response(self)
        finally:
            request.token, request.specs = None, []

    AmiBackend.create_image = create_image
    AmiBackend.copy_image = copy_image
    AmisResponse.copy_image = copy_image_response


def patch_moto_launch_template_pages():
    """`DescribeLaunchTemplates` as AWS pages it: moto 5.2.5 cuts the answer to `MaxResults` (15 when not
    given) and never returns a `NextToken`, so a caller listing every template silently misses the rest
    once a region holds more than 15 (rollout gc then cannot resolve what a group or fleet uses). The lab
    answers every template when `MaxResults` is not given, and pages with `NextToken` when it is."""
    from moto.core.responses import ActionResult
    from moto.ec2.responses.launch_templates import LaunchTemplates

    def describe_launch_templates(self):
        self.error_on_dryrun()
        templates = self.ec2_backend.describe_launch_templates(
            template_names=self._get_param("LaunchTemplateNames", []),
            template_ids=self._get_param("LaunchTemplateIds", []),
            filters=self._filters_from_querystring(),
        )
        max_results = self._get_int_param("MaxResults")
        start = int(self._get_param("NextToken") or 0)
        end = len(templates) if max_results is None else start + max_results
        result = {
            "LaunchTemplates": [
                {
                    "CreateTime": t.create_time,
                    "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
                    "DefaultVersionNumber": t.default_version_number,
                    "LatestVersionNumber": t.latest_version_number,
                    "LaunchTemplateId": t.id,
                    "LaunchTemplateName": t.name,
                    "Tags": t.tags,
                }
                for t in templates[start:end]
            ]
        }
        if end < len(templates):
            result["NextToken"] = str(end)
        return ActionResult(result)

    LaunchTemplates.describe_launch_templates = describe_launch_templates


def patch_moto_image_protection():
    """`EnableImageDeregistrationProtection` and `DisableImageDeregistrationProtection`, which moto 5.2.5
    lacks (it answers them with HTTP 500): the lab keeps what they set on the image and, as AWS does,
    refuses to deregister a protected image."""
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.responses.amis import AmisResponse

    def image(self):
        return self.ec2_backend.describe_images(ami_ids=[self._get_param("ImageId")])[0]

    def enable_image_deregistration_protection(self):
        image(self).bakery_protected = True
        return ActionResult({"Return": "enabled"})

    def disable_image_deregistration_protection(self):
        image(self).bakery_protected = False
        return ActionResult({"Return": "disabled"})

    original_deregister = AmiBackend.deregister_image

    def deregister_image(self, ami_id):
        ami = self.amis.get(ami_id)
        if ami is not None and getattr(ami, "bakery_protected", False):
            raise EC2ClientError(
                "InvalidParameterValue",
                f"Image {ami_id} has deregistration protection enabled; disable it first",
            )
        return original_deregister(self, ami_id)

    AmisResponse.enable_image_deregistration_protection = enable_image_deregistration_protection
    AmisResponse.disable_image_deregistration_protection = disable_image_deregistration_protection
    AmiBackend.deregister_image = deregister_image


def patch_moto_image_deprecation():
    """`EnableImageDeprecation` and `DisableImageDeprecation`, which moto 5.2.5 lacks (HTTP 500), as AWS
    does them: the time is rounded to the minute, one in the past is refused, and `DescribeImages` shows it
    (`deprecationTime`, `2026-12-07T04:06:00.000Z`) until it is disabled. And `DescribeImageReferences`,
    which moto also lacks (HTTP 500, which an SDK retries for seconds): answered `InvalidAction` (400), as
    an endpoint without the action answers, so that callers fall back at once."""
    import datetime

    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses.amis import AmisResponse

    def image(self):
        return self.ec2_backend.describe_images(ami_ids=[self._get_param("ImageId")])[0]

    def enable_image_deprecation(self):
        raw = self._get_param("DeprecateAt")
        try:
            at = datetime.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError:
            raise EC2ClientError("InvalidParameterValue", f"Invalid DeprecateAt: {raw}")
        if at.tzinfo is None:
            at = at.replace(tzinfo=datetime.timezone.utc)
        at = (at + datetime.timedelta(seconds=30)).replace(second=0, microsecond=0)  # nearest minute
        if at < datetime.datetime.now(datetime.timezone.utc):
            raise EC2ClientError(
                "InvalidParameterValue", f"DeprecateAt {raw} is in the past; specify a future time"
            )
        ami = image(self)
        ami.bakery_deprecate_at = raw
        ami.deprecation_time = at.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:00.000Z")
        return ActionResult({"Return": True})

    def disable_image_deprecation(self):
        ami = image(self)
        ami.bakery_deprecate_at = None
        ami.deprecation_time = None
        return ActionResult({"Return": True})

    def describe_image_references(self):
        raise EC2ClientError(
            "InvalidAction", "The action DescribeImageReferences is not valid for this web service."
        )

    AmisResponse.enable_image_deprecation = enable_image_deprecation
    AmisResponse.disable_image_deprecation = disable_image_deprecation
    AmisResponse.describe_image_references = describe_image_references


def patch_moto_spot_fleets():
    """moto 5.2.5's spot fleets lack what a spot-fleet rollout relies on; the lab makes them do what AWS does:
    * `LaunchTemplateConfigs`: every override is a launch spec (moto takes only the first), instances get
      the template's security groups (moto launches them into the default group), and
      `DescribeSpotFleetRequests` returns the configs (moto returns launch specs instead);
    * `LoadBalancersConfig.TargetGroupsConfig`: the fleet registers each instance it launches with the target
      groups (moto ignores it), and `DescribeSpotFleetRequests` returns it, with `Type`;
    * `ActivityStatus`: `fulfilled` once the running instances cover the target capacity, else
      `pending_fulfillment` (moto has none);
    * `CancelSpotFleetRequests` with `TerminateInstances=true` terminates the instances, takes them out of
      their target groups, and leaves the request described as `cancelled` (moto forgets it at once);
    * tags added with `CreateTags` on an `sfr-` id show in `DescribeSpotFleetRequests` (moto shows only the
      tags given at creation)."""
    from moto.ec2.models.spot_requests import SpotFleetRequest, SpotRequestBackend
    from moto.ec2.responses.spot_fleets import SpotFleets
    from moto.elbv2.models import elbv2_backends

    # What RequestSpotFleet's backend call has no parameter for, handed over beside it (per server thread).
    request = threading.local()
    original_init = SpotFleetRequest.__init__

    def init(self, ec2_backend, spot_backend, spot_fleet_request_id, spot_price, target_capacity,
             iam_fleet_role, allocation_strategy, launch_specs, launch_template_config,
             instance_interruption_behaviour, tag_specifications):
        self.target_group_arns = getattr(request, "target_groups", [])
        self.fleet_type = getattr(request, "fleet_type", None) or "maintain"
        specs = list(launch_specs or [])
        for config in launch_template_config or []:
            ref = config["LaunchTemplateSpecification"]
            if "LaunchTemplateId" in ref:
                template = ec2_backend.get_launch_template(template_id=ref["LaunchTemplateId"])
            else:
                template = ec2_backend.get_launch_template_by_name(name=ref["LaunchTemplateName"])
            data = dict(template.get_version(ref.get("Version", "$Default")).data)
            data["SecurityGroups"] = list(data.get("SecurityGroupIds", [])) + list(
                data.get("SecurityGroups", [])
            )
            for override in config.get("Overrides") or [{}]:
                spec = dict(data)
                spec.update(override)
                specs.append(spec)
        self.launch_template_configs = list(launch_template_config or [])
        original_init(self, ec2_backend, spot_backend, spot_fleet_request_id, spot_price,
                      target_capacity, iam_fleet_role, allocation_strategy, specs, None,
                      instance_interruption_behaviour, tag_specifications)

    original_create = SpotFleetRequest.create_spot_requests

    def create_spot_requests(self, weight_to_add):
        before = {r.id for r in self.spot_requests}
        original_create(self, weight_to_add)
        new = [r.instance.id for r in self.spot_requests if r.id not in before]
        elbv2 = elbv2_backends[self.ec2_backend.account_id][self.ec2_backend.region_name]
        for arn in getattr(self, "target_group_arns", []):
            elbv2.register_targets(arn, [{"Id": i} for i in new])

    def running_capacity(self):
        return sum(
            (r.launch_spec.weighted_capacity if r.launch_spec else 1.0)
            for r in self.spot_requests
            if r.instance.state == "running"
        )

    def activity_status(self):
        if self.state != "active":
            return None
        return "fulfilled" if running_capacity(self) >= self.target_capacity else "pending_fulfillment"

    original_config = SpotFleetRequest.spot_fleet_request_config.fget

    def spot_fleet_request_config(self):
        config = original_config(self)
        config["Type"] = self.fleet_type
        if self.launch_template_configs:
            # As AWS: a fleet requested from launch templates describes those, not launch specs.
            config["LaunchTemplateConfigs"] = self.launch_template_configs
            config.pop("LaunchSpecifications", None)
        if self.target_group_arns:
            config["LoadBalancersConfig"] = {
                "TargetGroupsConfig": {"TargetGroups": [{"Arn": a} for a in self.target_group_arns]}
            }
        return config

    def tag_set(self):
        tags = dict(self.tags.get("spot-fleet-request", {}))
        tags.update(self.ec2_backend.tags.get(self.id, {}))
        return [{"Key": k, "Value": v} for k, v in tags.items()]

    def cancel_spot_fleet_requests(self, spot_fleet_request_ids, terminate_instances):
        fleets = []
        for fleet_id in spot_fleet_request_ids:
            fleet = self.spot_fleet_requests[fleet_id]
            if terminate_instances:
                ids = [r.instance.id for r in fleet.spot_requests]
                fleet.spot_requests = []
                fleet.target_capacity = 0
                if ids:
                    self.terminate_instances(ids)
                    # As AWS (and moto's TerminateInstances handler): terminated targets leave their groups.
                    elbv2_backends[self.account_id][self.region_name].notify_terminate_instances(ids)
                fleet.state = "cancelled"
            else:
                fleet.state = "cancelled_running"
            fleets.append(fleet)
        return fleets

    original_request = SpotFleets.request_spot_fleet

    def request_spot_fleet(self):
        config = self._get_param("SpotFleetRequestConfig", {})
        groups = (config.get("LoadBalancersConfig") or {}).get("TargetGroupsConfig") or {}
        request.target_groups = [g["Arn"] for g in groups.get("TargetGroups", [])]
        request.fleet_type = config.get("Type")
        try:
            return original_request(self)
        finally:
            request.target_groups = []
            request.fleet_type = None

    SpotFleetRequest.__init__ = init
    SpotFleetRequest.create_spot_requests = create_spot_requests
    SpotFleetRequest.activity_status = property(activity_status)
    SpotFleetRequest.spot_fleet_request_config = property(spot_fleet_request_config)
    SpotFleetRequest.tag_set = property(tag_set)
    SpotRequestBackend.cancel_spot_fleet_requests = cancel_spot_fleet_requests
    SpotFleets.request_spot_fleet = request_spot_fleet


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True, help="the lab's state dir")
    parser.add_argument("--region", required=True)
    parser.add_argument("--source-ami", required=True)
    parser.add_argument("--realism", help="the realism profile's settings (JSON, written by lab/up)")
    parser.add_argument("--ssh-front", action="store_true", help="serve the SSH front (realism: boot)")
    args = parser.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    os.environ["MOTO_PORT"] = str(port)  # moto builds some URLs from it
    os.environ["MOTO_ENABLE_RECORDING"] = "true"
    os.environ["MOTO_RECORDER_FILEPATH"] = os.path.join(args.dir, "moto-recording.jsonl")
    write_atomic(os.path.join(args.dir, "moto.port"), f"{port}\n")
    front = None
    if args.ssh_front:  # bound now too, so lab/up knows the advertised SSH port at once
        front = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        front.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        front.bind(("127.0.0.1", 0))
        front.listen(128)
        write_atomic(os.path.join(args.dir, "ssh_front.port"), f"{front.getsockname()[1]}\n")
    doc = {"profile": "off", "settings": resolve("off", seed=0)}
    if args.realism:
        with open(args.realism) as f:
            doc = json.load(f)

    # Imported only now: they take about a second, and the port is already known.
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from moto.moto_api import recorder

    patch_moto_shared_classic_elbs()
    patch_moto_spot_fleets()
    patch_moto_tag_lookup()
    patch_moto_image_tags_and_tokens()
    patch_moto_image_protection()
    patch_moto_launch_template_pages()
    patch_moto_image_deprecation()
    realism = None
    patch_moto_console_output(args.dir, lambda: realism is not None and realism.console_empty())
    rewrite_keys = patch_moto_key_pairs_file(
        os.path.join(args.dir, "ec2_keys"), args.region, withheld=lambda: realism.withheld_keys()
    )
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # as moto_server does
    realism = Realism(app, doc, args.dir, rewrite_keys, ssh_front=front is not None)
    if front is not None:
        realism.start_front(front, args.dir)
    server = make_server(
        "127.0.0.1",
        port,
        CborFront(RequestCounter(realism, recorder)),
        threaded=True,
        request_handler=MotoRequestHandler,
        fd=sock.fileno(),
    )
    serving = threading.Thread(target=server.serve_forever, name="moto", daemon=True)
    serving.start()
    warm_up(port, args.region, args.source_ami)
    recorder.reset_recording()  # start with an empty recording
    write_atomic(os.path.join(args.dir, "moto.ready"), "")
    print(f"moto ready on http://127.0.0.1:{port}", flush=True)
    serving.join()


if __name__ == "__main__":
    main()
