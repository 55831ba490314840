"""Self-test of the lab's realism layer (realism.py) against a running lab, with boto3 and OpenSSH's client.

    lab/.venv/bin/python lab/py/test_realism.py --dir LAB_DIR [SCENARIO ...]

Each scenario switches the lab's realism profile (PUT /bakery-lab/realism, short timings, fixed seed),
checks with boto3 (no SDK retries: every injected error is seen) that the behaviour really happens and
that the call then succeeds, and checks the layer's injected counts. Scenarios: off, consistency, holds,
refusals, throttle, capacity, imdsv2, late, boot (needs a lab with the SSH front: lab/up --ssh-front or a
profile with boot). Without SCENARIO: all. The lab is left on profile `off` (with --keep: on the last
scenario's profile, with its counts). Exit status 1 on a failure, with what was expected and what
happened. Uses the lab's moto and switches its profile, so use a lab of its own.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


class Failed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failed(message)


class Lab:
    def __init__(self, d):
        self.dir = Path(d)
        self.info = dict(
            line.split("=", 1) for line in (self.dir / "lab.info").read_text().splitlines() if "=" in line
        )
        self.url = self.info["moto_url"]
        session = boto3.session.Session(
            aws_access_key_id=self.info["access_key"],
            aws_secret_access_key=self.info["secret_key"],
            region_name=self.info["region"],
        )
        self.ec2 = session.client("ec2", endpoint_url=self.url, config=NO_RETRIES)
        self.asg = session.client("autoscaling", endpoint_url=self.url, config=NO_RETRIES)
        self.iam = session.client("iam", endpoint_url=self.url, config=NO_RETRIES)
        self.n = 0

    def realism(self, method="GET", doc=None):
        data = json.dumps(doc).encode() if doc is not None else None
        req = urllib.request.Request(f"{self.url}/bakery-lab/realism", data=data, method=method,
                                     headers={"User-Agent": "bakery-lab-selftest"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as err:
            raise Failed(f"{method} /bakery-lab/realism answered {err.code}: {err.read().decode()}")

    def use(self, profile, *sets, seed=1):
        """Switches to `profile` with `sets` and zeroes the counts."""
        state = self.realism("PUT", {"profile": profile, "seed": seed, "set": list(sets)})
        self.realism("DELETE")
        return state

    def injected(self):
        return self.realism()["injected"]

    def name(self, prefix):
        self.n += 1
        return f"{prefix}-{os.getpid()}-{self.n}-{int(time.time() * 1000) % 100000}"

    def source_ami(self):
        return self.info["source_ami"]


def error_code(call, *args, **kwargs):
    """The AWS error code `call` answers, or None if it succeeds."""
    try:
        call(*args, **kwargs)
        return None
    except ClientError as err:
        return err.response["Error"]["Code"]


def error_of(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
        return None
    except ClientError as err:
        return err


def until(what, timeout, probe, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failed(f"not done after {timeout} s: {what}")
        time.sleep(interval)


def retried(call, *args, **kwargs):
    """`call` retried on the layer's transient errors (as an SDK would), for set-up steps."""
    for _ in range(50):
        try:
            return call(*args, **kwargs)
        except ClientError as err:
            code = err.response["Error"]["Code"]
            if code not in ("RequestLimitExceeded", "Throttling", "InternalError", "ServiceUnavailable") \
                    and not code.endswith("NotFound") and code != "NoSuchEntity":
                raise
            time.sleep(0.05)
    raise Failed(f"{call.__name__}: still failing after 50 tries")


def run_one(lab, **extra):
    kwargs = dict(ImageId=lab.source_ami(), MinCount=1, MaxCount=1, InstanceType="t2.micro")
    kwargs.update(extra)
    return lab.ec2.run_instances(**kwargs)["Instances"][0]["InstanceId"]


def instance_state(lab, instance_id):
    reservations = lab.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


# ------------------------------------------------------------------------------------------ scenarios


def scenario_off(lab):
    state = lab.use("off")
    check(state["profile"] == "off" and all(state["settings"][b] is None for b in state["settings"]
                                            if b != "seed"), f"off has every behaviour off: {state}")
    group = lab.ec2.create_security_group(GroupName=lab.name("off"), Description="realism off")["GroupId"]
    check(error_code(lab.ec2.describe_security_groups, GroupIds=[group]) is None, "off: found at once")
    instance = run_one(lab)
    check(instance_state(lab, instance) == "running", "off: running at once")
    lab.ec2.terminate_instances(InstanceIds=[instance])
    check(lab.injected() == {}, f"off injects nothing: {lab.injected()}")
    return "nothing injected; found and running at once"


def scenario_consistency(lab):
    lab.use("consistency", "consistency.uses=[2,2]")

    def twice_then(kind, expect_code, call, **kwargs):
        codes = [error_code(call, **kwargs) for _ in range(3)]
        check(codes == [expect_code, expect_code, None],
              f"{kind}: wanted {expect_code} twice then success, got {codes}")

    key = lab.name("rk")
    lab.ec2.create_key_pair(KeyName=key)
    twice_then("key pair", "InvalidKeyPair.NotFound", lab.ec2.describe_key_pairs, KeyNames=[key])

    group_name = lab.name("rsg")
    group = lab.ec2.create_security_group(GroupName=group_name, Description="realism")["GroupId"]
    listed = lab.ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [group_name]}])
    check(listed["SecurityGroups"] == [], f"a new group is left out of a describe by filter: {listed}")
    check(error_code(lab.ec2.authorize_security_group_ingress, GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "127.0.0.1/32"}]}])
        == "InvalidGroup.NotFound", "AuthorizeSecurityGroupIngress on a new group: InvalidGroup.NotFound")
    check(error_code(lab.ec2.describe_security_groups, GroupIds=[group]) is None, "group: then found")

    instance = run_one(lab)
    check(error_code(lab.ec2.create_tags, Resources=[instance], Tags=[{"Key": "a", "Value": "b"}])
          == "InvalidInstanceID.NotFound", "CreateTags on a new instance: InvalidInstanceID.NotFound")
    listed = lab.ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [instance]}])
    check(listed["Reservations"] == [], f"a new instance is left out of a describe by filter: {listed}")
    check(error_code(lab.ec2.describe_instances, InstanceIds=[instance]) is None, "instance: then found")

    image = lab.ec2.create_image(InstanceId=instance, Name=lab.name("rimg"))["ImageId"]
    twice_then("image", "InvalidAMIID.NotFound", lab.ec2.describe_images, ImageIds=[image])

    template = lab.ec2.create_launch_template(
        LaunchTemplateName=lab.name("rlt"), LaunchTemplateData={"InstanceType": "t2.micro"}
    )["LaunchTemplate"]
    check(error_code(lab.ec2.describe_launch_templates, LaunchTemplateIds=[template["LaunchTemplateId"]])
          == "InvalidLaunchTemplateId.NotFound", "launch template by id: InvalidLaunchTemplateId.NotFound")
    check(error_code(lab.ec2.describe_launch_templates, LaunchTemplateNames=[template["LaunchTemplateName"]])
          == "InvalidLaunchTemplateName.NotFoundException",
          "launch template by name: InvalidLaunchTemplateName.NotFoundException")
    check(error_code(lab.ec2.describe_launch_templates, LaunchTemplateIds=[template["LaunchTemplateId"]])
          is None, "launch template: then found")

    group_asg = lab.name("rasg")
    lt = lab.ec2.create_launch_template(
        LaunchTemplateName=lab.name("rlt2"), LaunchTemplateData={"ImageId": lab.source_ami(),
                                                                 "InstanceType": "t2.micro"})
    lt_id = lt["LaunchTemplate"]["LaunchTemplateId"]
    for _ in range(2):
        err = error_of(lab.asg.create_auto_scaling_group, AutoScalingGroupName=group_asg, MinSize=0,
                       MaxSize=1, LaunchTemplate={"LaunchTemplateId": lt_id}, AvailabilityZones=["us-east-1a"])
        check(err is not None and err.response["Error"]["Code"] == "ValidationError" and lt_id in str(err),
              f"CreateAutoScalingGroup with a new launch template: ValidationError naming it, got {err}")
    lab.asg.create_auto_scaling_group(AutoScalingGroupName=group_asg, MinSize=0, MaxSize=1,
                                      LaunchTemplate={"LaunchTemplateId": lt_id},
                                      AvailabilityZones=["us-east-1a"])
    groups = lab.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group_asg])["AutoScalingGroups"]
    check(groups == [], f"a new group is left out of DescribeAutoScalingGroups: {groups}")
    check(error_code(lab.asg.set_desired_capacity, AutoScalingGroupName=group_asg, DesiredCapacity=0)
          == "ValidationError", "SetDesiredCapacity on a new group: ValidationError")
    groups = lab.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group_asg])["AutoScalingGroups"]
    check(len(groups) == 1, f"the group: then found: {groups}")

    profile = lab.name("rprof")
    lab.iam.create_instance_profile(InstanceProfileName=profile)
    err = error_of(run_one, lab, IamInstanceProfile={"Name": profile})
    check(err is not None and err.response["Error"]["Code"] == "InvalidParameterValue"
          and "iamInstanceProfile.name" in str(err),
          f"RunInstances with a new instance profile: InvalidParameterValue, got {err}")
    codes = [error_code(lab.iam.get_instance_profile, InstanceProfileName=profile) for _ in range(2)]
    check(codes == ["NoSuchEntity", None], f"instance profile: NoSuchEntity then found, got {codes}")

    counts = lab.injected()
    wanted = {"AuthorizeSecurityGroupIngress": 1, "CreateAutoScalingGroup": 2, "CreateTags": 1,
              "DescribeAutoScalingGroups": 1, "DescribeImages": 2, "DescribeInstances": 1, "DescribeKeyPairs": 2,
              "DescribeLaunchTemplates": 2, "DescribeSecurityGroups": 1, "GetInstanceProfile": 1,
              "RunInstances": 1, "SetDesiredCapacity": 1}
    check(counts == {f"consistency:{k}": n for k, n in wanted.items()}, f"counted as seen: {counts}")
    lab.ec2.terminate_instances(InstanceIds=[instance])
    return ("NotFound (or left out of a list) then found: key pair, security group, instance, image, "
            f"launch template, Auto Scaling group, instance profile: {counts}")


def scenario_holds(lab):
    lab.use("holds", "holds.instance_pending_s=1.5", "holds.instance_stopping_s=1.5",
            "holds.instance_shutting_down_s=1.5", "holds.image_pending_s=2", "holds.jitter_s=0")
    began = time.monotonic()
    instance = run_one(lab)
    check(instance_state(lab, instance) == "pending", "pending right after RunInstances")
    statuses = lab.ec2.describe_instance_status(InstanceIds=[instance])["InstanceStatuses"]
    check(statuses == [], f"a pending instance is not in DescribeInstanceStatus: {statuses}")
    until("running", 10, lambda: instance_state(lab, instance) == "running")
    took = time.monotonic() - began
    check(took >= 1.3, f"pending for about 1.5 s, was {took:.2f} s")

    lab.ec2.stop_instances(InstanceIds=[instance])
    check(instance_state(lab, instance) == "stopping", "stopping after StopInstances")
    until("stopped", 10, lambda: instance_state(lab, instance) == "stopped")

    lab.ec2.start_instances(InstanceIds=[instance])
    until("running again", 10, lambda: instance_state(lab, instance) == "running")

    began = time.monotonic()
    image = lab.ec2.create_image(InstanceId=instance, Name=lab.name("himg"))["ImageId"]

    def image_state():
        return lab.ec2.describe_images(ImageIds=[image])["Images"][0]["State"]

    check(image_state() == "pending", "image pending after CreateImage")
    snapshot = lab.ec2.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"][0]["Ebs"][
        "SnapshotId"]
    shown = lab.ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]["State"]
    check(shown == "pending", f"its snapshot pending too, was {shown}")
    until("image available", 10, lambda: image_state() == "available")
    check(time.monotonic() - began >= 1.8, "image pending for about 2 s")

    lab.ec2.terminate_instances(InstanceIds=[instance])
    check(instance_state(lab, instance) == "shutting-down", "shutting-down after TerminateInstances")
    until("terminated", 10, lambda: instance_state(lab, instance) == "terminated")
    counts = lab.injected()
    check(counts.get("holds:DescribeInstances", 0) >= 3 and counts.get("holds:DescribeImages", 0) >= 1,
          f"holds counted: {counts}")
    return f"pending -> running in {took:.1f} s, stopping, image pending, shutting-down: {counts}"


def scenario_refusals(lab):
    lab.use("refusals", "snapshot_in_use.after_deregister_s=2", "holds.instance_shutting_down_s=1.5")
    group = lab.ec2.create_security_group(GroupName=lab.name("dsg"), Description="in use")["GroupId"]
    instance = run_one(lab, SecurityGroupIds=[group])
    check(error_code(lab.ec2.delete_security_group, GroupId=group) == "DependencyViolation",
          "DeleteSecurityGroup of a group a running instance uses: DependencyViolation")
    lab.ec2.terminate_instances(InstanceIds=[instance])
    check(error_code(lab.ec2.delete_security_group, GroupId=group) == "DependencyViolation",
          "... and while it shuts down")
    until("DeleteSecurityGroup succeeds once the instance is terminated", 10,
          lambda: error_code(lab.ec2.delete_security_group, GroupId=group) is None, interval=0.2)

    instance = run_one(lab)
    image = lab.ec2.create_image(InstanceId=instance, Name=lab.name("simg"))["ImageId"]
    snapshot = lab.ec2.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"][0]["Ebs"][
        "SnapshotId"]
    lab.ec2.deregister_image(ImageId=image)
    began = time.monotonic()
    check(error_code(lab.ec2.delete_snapshot, SnapshotId=snapshot) == "InvalidSnapshot.InUse",
          "DeleteSnapshot right after DeregisterImage: InvalidSnapshot.InUse")
    until("DeleteSnapshot succeeds a while after DeregisterImage", 10,
          lambda: error_code(lab.ec2.delete_snapshot, SnapshotId=snapshot) is None, interval=0.2)
    took = time.monotonic() - began
    check(took >= 1.5, f"in use for about 2 s after DeregisterImage, was {took:.2f} s")
    lab.ec2.terminate_instances(InstanceIds=[instance])
    counts = lab.injected()
    check(counts.get("dependency:DeleteSecurityGroup", 0) >= 2, f"DependencyViolation counted: {counts}")
    check(counts.get("snapshot_in_use:DeleteSnapshot", 0) >= 1, f"InUse counted: {counts}")
    return f"DependencyViolation until terminated, InUse for {took:.1f} s: {counts}"


def throttle_sequence(lab, n):
    out = []
    for _ in range(n):
        err = error_of(lab.ec2.describe_regions)
        out.append(None if err is None else (err.response["Error"]["Code"],
                                             err.response["ResponseMetadata"]["HTTPStatusCode"]))
    return out


def scenario_throttle(lab):
    lab.use("throttle", seed=7)
    first = throttle_sequence(lab, 80)
    counts = lab.injected()
    throttled = sum(1 for r in first if r and r[0] == "RequestLimitExceeded")
    server = sum(1 for r in first if r and r[0] in ("InternalError", "ServiceUnavailable"))
    check(throttled > 0 and all(r[1] == 503 for r in first if r and r[0] == "RequestLimitExceeded"),
          f"RequestLimitExceeded with HTTP 503 in 80 calls: {first}")
    check(counts.get("throttle:DescribeRegions", 0) == throttled, f"throttles counted: {counts} {first}")
    check(counts.get("errors:DescribeRegions", 0) == server, f"5xx counted: {counts} {first}")
    check(all(r is None or r[1] in (500, 503) for r in first if r and r[0] != "RequestLimitExceeded"),
          f"5xx statuses: {first}")
    runs, run = [], 0
    for r in first:
        run = run + 1 if r and r[0] == "RequestLimitExceeded" else 0
        runs.append(run)
    check(max(runs) >= 2, f"throttles come in bursts: {first}")
    lab.use("throttle", seed=7)
    check(throttle_sequence(lab, 80) == first, "the same seed gives the same faults")
    lab.use("throttle", "throttle.rate=1", "errors=null")
    check(error_code(lab.asg.describe_auto_scaling_groups) == "Throttling", "autoscaling: Throttling")
    check(error_code(lab.iam.list_instance_profiles) == "Throttling", "iam: Throttling")
    return f"{throttled} throttled (bursts up to {max(runs)}), {server} 5xx in 80 calls; same again with the seed"


def scenario_capacity(lab):
    lab.use("capacity")
    err = error_of(lab.ec2.run_instances, ImageId=lab.source_ami(), MinCount=1, MaxCount=1,
                   InstanceType="c5.metal")
    check(err is not None and err.response["Error"]["Code"] == "InsufficientInstanceCapacity"
          and err.response["ResponseMetadata"]["HTTPStatusCode"] == 500,
          f"RunInstances c5.metal: InsufficientInstanceCapacity (500), got {err}")
    instance = run_one(lab)  # t2.micro: fine
    template = lab.ec2.create_launch_template(
        LaunchTemplateName=lab.name("clt"),
        LaunchTemplateData={"ImageId": lab.source_ami(), "InstanceType": "c5.metal"})["LaunchTemplate"]
    check(error_code(lab.ec2.run_instances, MinCount=1, MaxCount=1,
                     LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"]})
          == "InsufficientInstanceCapacity", "RunInstances from a c5.metal launch template")
    check(error_code(lab.ec2.request_spot_instances, InstanceCount=1, LaunchSpecification={
        "ImageId": lab.source_ami(), "InstanceType": "c5.metal"}) == "InsufficientInstanceCapacity",
        "RequestSpotInstances c5.metal")
    check(error_code(lab.ec2.create_fleet, Type="instant", TargetCapacitySpecification={
        "TotalTargetCapacity": 1, "DefaultTargetCapacityType": "on-demand"}, LaunchTemplateConfigs=[{
            "LaunchTemplateSpecification": {"LaunchTemplateId": template["LaunchTemplateId"],
                                            "Version": "$Latest"},
            "Overrides": [{"InstanceType": "c5.metal"}]}]) == "InsufficientInstanceCapacity",
        "CreateFleet with a c5.metal override")
    lab.ec2.terminate_instances(InstanceIds=[instance])
    counts = lab.injected()
    check(sum(n for k, n in counts.items() if k.startswith("capacity:")) == 4, f"4 counted: {counts}")
    return f"c5.metal refused (RunInstances, template, spot, fleet), t2.micro launched: {counts}"


def scenario_imdsv2(lab):
    lab.use("off")
    optional_lt = lab.ec2.create_launch_template(
        LaunchTemplateName=lab.name("ilt"),
        LaunchTemplateData={"ImageId": lab.source_ami(), "MetadataOptions": {"HttpTokens": "optional"}},
    )["LaunchTemplate"]["LaunchTemplateId"]
    lab.use("imdsv2")
    err = error_of(run_one, lab, MetadataOptions={"HttpTokens": "optional"})
    check(err is not None and err.response["Error"]["Code"] == "InvalidParameterValue"
          and "HttpTokens" in err.response["Error"]["Message"],
          f"RunInstances HttpTokens=optional: InvalidParameterValue naming HttpTokens, got {err}")
    required = run_one(lab, MetadataOptions={"HttpTokens": "required"})
    unset = run_one(lab)
    check(error_code(lab.ec2.run_instances, MinCount=1, MaxCount=1,
                     LaunchTemplate={"LaunchTemplateId": optional_lt}) == "InvalidParameterValue",
          "RunInstances from a launch template with HttpTokens=optional")
    check(error_code(lab.ec2.create_launch_template, LaunchTemplateName=lab.name("ilt"), LaunchTemplateData={
        "MetadataOptions": {"HttpTokens": "optional"}}) == "InvalidParameterValue",
        "CreateLaunchTemplate HttpTokens=optional")
    check(error_code(lab.ec2.create_launch_template_version, LaunchTemplateId=optional_lt, LaunchTemplateData={
        "MetadataOptions": {"HttpTokens": "optional"}}) == "InvalidParameterValue",
        "CreateLaunchTemplateVersion HttpTokens=optional")
    check(error_code(lab.ec2.create_launch_template, LaunchTemplateName=lab.name("ilt"), LaunchTemplateData={
        "MetadataOptions": {"HttpTokens": "required"}}) is None, "CreateLaunchTemplate HttpTokens=required")
    lab.use("imdsv2", "imdsv2.refuse_unset=true", "imdsv2.code=UnauthorizedOperation")
    check(error_code(run_one, lab) == "UnauthorizedOperation", "refuse_unset: a launch that does not say")
    lab.ec2.terminate_instances(InstanceIds=[required, unset])
    counts = lab.injected()
    return f"optional refused, required and unset launched: {counts}"


def scenario_late(lab):
    lab.use("late", "late.actions={\"CreateSecurityGroup\": 1.2}")
    name = lab.name("late")
    began = time.monotonic()
    lab.ec2.create_security_group(GroupName=name, Description="late")
    took = time.monotonic() - began
    check(took >= 1.1, f"CreateSecurityGroup answered 1.2 s late, took {took:.2f} s")
    lab.use("late", "late=null", "errors.rate=1", "errors.after_effect=1", "errors.services=[\"ec2\"]",
            "errors.spare_last_attempt=false")
    name = lab.name("after")
    err = error_of(lab.ec2.create_security_group, GroupName=name, Description="after effect")
    check(err is not None and err.response["ResponseMetadata"]["HTTPStatusCode"] in (500, 503),
          f"a 5xx after the effect: {err}")
    lab.use("off")
    found = lab.ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])
    check(len(found["SecurityGroups"]) == 1, "... and the group was created all the same")
    return f"answered {took:.1f} s late; a 5xx after the call took effect"


# ------------------------------------------------------------------------------------------ boot (SSH)


def tcp_probe(port):
    """"refused", "dropped" (accepted, closed before the banner) or "banner"."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            data = s.recv(64)
            return "banner" if data.startswith(b"SSH-") else "dropped"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "dropped"


def key_lines(paths):
    return {" ".join(Path(p).read_text().split()[:2]) for p in paths}


def keyscan(port):
    out = subprocess.run(["ssh-keyscan", "-T", "3", "-t", "ed25519,ecdsa", "-p", str(port), "127.0.0.1"],
                         capture_output=True, text=True)
    return {" ".join(line.split()[1:3]) for line in out.stdout.splitlines() if line and line[0] != "#"}


def ssh(lab, key, port, command):
    return subprocess.run(
        ["ssh", "-i", key, "-p", str(port), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
         "-o", "ConnectTimeout=3", f"{lab.info['ssh_user']}@127.0.0.1", command],
        capture_output=True, text=True, timeout=60)


def scenario_boot(lab):
    if lab.info.get("ssh_front") != "1":
        raise Failed("this lab has no SSH front: start it with lab/up --ssh-front (or --realism boot)")
    port = int(lab.info["ssh_port"])
    main_keys = key_lines(lab.dir.glob("ssh_host_*_key.pub"))
    boot_keys = key_lines(lab.dir.glob("boot_ssh_host_*_key.pub"))
    lab.use("boot", "boot.refused_s=2", "boot.drop_banners=1", "boot.host_key_s=2.5",
            "boot.auth_delay_s=6", "boot.reboot_down_s=1.5")
    work = tempfile.mkdtemp(prefix="realism-boot-")
    key = f"{work}/id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    name = lab.name("bootkey")
    lab.ec2.import_key_pair(KeyName=name, PublicKeyMaterial=Path(f"{key}.pub").read_bytes())
    before = ssh(lab, key, port, "echo in")
    check(before.returncode == 0 and before.stdout == "in\n",
          f"a key pair no instance was launched with logs in at once: {before}")
    launched = time.monotonic()
    instance = run_one(lab, KeyName=name)
    check(tcp_probe(port) == "refused", "connection refused right after RunInstances")
    first = until("the port opens", 10, lambda: (lambda r: r if r != "refused" else None)(tcp_probe(port)),
                  interval=0.05)
    opened = time.monotonic() - launched
    check(first == "dropped", f"the first connection once the port opens is dropped before the banner: {first}")
    check(opened >= 1.8, f"refused for about 2 s, was {opened:.2f} s")
    early = keyscan(port)
    check(early and early <= boot_keys, f"first-boot host keys early on: {early} (first-boot {boot_keys})")
    denied = ssh(lab, key, port, "echo in")
    check(denied.returncode == 255 and "Permission denied" in denied.stderr,
          f"the launch's key is not authorized yet: {denied}")
    until("the key is authorized", 15, lambda: ssh(lab, key, port, "echo in").returncode == 0, interval=0.3)
    authorized = time.monotonic() - launched
    check(authorized >= 5.5, f"key authorized about 6 s after the launch, was {authorized:.2f} s")
    late = keyscan(port)
    check(late and late <= main_keys, f"the lab's host keys later: {late} (main {main_keys})")
    check(early != late, "the host key changed once")

    rebooted = ssh(lab, key, port, "echo before; reboot; echo after")
    check(rebooted.returncode == 255 and "before" in rebooted.stdout and "after" not in rebooted.stdout,
          f"`reboot` drops the connection: {rebooted}")
    check(tcp_probe(port) == "refused", "refused right after the reboot")
    until("back after the reboot", 10, lambda: ssh(lab, key, port, "true").returncode == 0, interval=0.2)
    lab.ec2.terminate_instances(InstanceIds=[instance])
    counts = lab.injected()
    for wanted in ("boot_auth:RunInstances", "boot_dropped:ssh", "boot_host_key:ssh", "reboot:ssh",
                   "boot_refused:ssh"):
        check(counts.get(wanted, 0) >= 1, f"{wanted} counted: {counts}")
    return (f"refused {opened:.1f} s, banner dropped, first-boot host key, key authorized after "
            f"{authorized:.1f} s, host key changed, reboot dropped the session: {counts}")


SCENARIOS = {name[len("scenario_"):]: f for name, f in globals().items() if name.startswith("scenario_")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True, help="the lab's state dir")
    parser.add_argument("--keep", action="store_true",
                        help="leave the lab on the last scenario's profile, with its counts")
    parser.add_argument("scenarios", nargs="*", help=f"of: {', '.join(SCENARIOS)}")
    args = parser.parse_args()
    lab = Lab(args.dir)
    failed = 0
    for name in args.scenarios or list(SCENARIOS):
        if name not in SCENARIOS:
            print(f"unknown scenario {name} (scenarios: {', '.join(SCENARIOS)})", file=sys.stderr)
            return 2
        began = time.monotonic()
        try:
            detail = SCENARIOS[name](lab)
            print(f"ok {name} ({time.monotonic() - began:.1f} s): {detail}", flush=True)
        except (Failed, ClientError) as err:
            failed += 1
            print(f"FAILED {name}: {err}", flush=True)
    if not args.keep:
        try:
            lab.use("off")
        except Failed as err:
            print(f"could not switch back to off: {err}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
