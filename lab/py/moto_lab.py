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
  `<dir>/moto-recording.jsonl` (including the lab's own requests: look at their User-Agent).
Everything else is moto's own server app, unchanged.
"""

import argparse
import http.client
import io
import os
import re
import socket
import threading
import urllib.parse
from collections import Counter

COUNTS_PATH = "/bakery-lab/requests"
LAB_AGENT = "bakery-lab"
# SigV4: Credential=<key>/<date>/<region>/<service>/aws4_request
SCOPE_SERVICE = re.compile(r"Credential=[^/,]*/[^/,]*/[^/,]*/([^/,]*)/")


def write_atomic(path, text):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


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
    match = SCOPE_SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else "-"


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
        if environ.get("PATH_INFO") == COUNTS_PATH:
            return self.serve_counts(environ, start_response)
        if not environ.get("HTTP_USER_AGENT", "").startswith(LAB_AGENT):
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


def warm_up(port, region, source_ami):
    """The first EC2 call loads moto's AMIs; make it here, and check the lab's source AMI exists."""
    body = urllib.parse.urlencode(
        {"Action": "DescribeImages", "Version": "2016-11-15", "ImageId.1": source_ami}
    )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(
        "POST",
        "/",
        body,
        {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "User-Agent": f"{LAB_AGENT}-warm-up",
            "Authorization": "AWS4-HMAC-SHA256 "
            f"Credential=bakerylab/20000101/{region}/ec2/aws4_request, SignedHeaders=host, Signature=0",
        },
    )
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200 or f"<imageId>{source_ami}</imageId>".encode() not in data:
        raise SystemExit(
            f"moto warm-up: DescribeImages {source_ami} in {region} answered "
            f"{resp.status}: {data[:500]!r}"
        )


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True, help="the lab's state dir")
    parser.add_argument("--region", required=True)
    parser.add_argument("--source-ami", required=True)
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

    # Imported only now: they take about a second, and the port is already known.
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from moto.moto_api import recorder

    patch_moto_shared_classic_elbs()
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # as moto_server does
    server = make_server(
        "127.0.0.1",
        port,
        RequestCounter(app, recorder),
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
