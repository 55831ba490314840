#!/usr/bin/env python3
"""A proxy in front of the lab's moto that makes EC2 state changes take realistic time, so a bake's
waiting overhead can be measured (moto makes every transition instant).

After RunInstances the instance reports `pending` for RUNNING s; after StopInstances `stopping` for STOPPED s;
after CreateImage the AMI reports `pending` for AMI s; after TerminateInstances the instance reports
`shutting-down` and its security group answers DependencyViolation for TERMINATED s. Defaults (20, 10, 45,
10 s) are typical EC2 figures for a small Linux instance and AMI. stdlib only; listens on 127.0.0.1.

    delay_proxy.py UPSTREAM_URL PORT_FILE [RUNNING STOPPED AMI TERMINATED]
"""
import http.client
import http.server
import re
import sys
import threading
import time
import urllib.parse

UP = urllib.parse.urlparse(sys.argv[1])
DELAYS = dict(zip(["running", "stopped", "ami", "terminated"], map(float, (sys.argv[3:7] or [20, 10, 45, 10]))))
lock = threading.Lock()
since = {}  # (kind, id) -> time the transition started


def started(kind, ids):
    with lock:
        for i in ids:
            since[(kind, i)] = time.monotonic()


def within(kind, i):
    with lock:
        t = since.get((kind, i))
    return t is not None and time.monotonic() - t < DELAYS[kind]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        form = urllib.parse.parse_qs(body.decode(errors="replace"))
        action = form.get("Action", [""])[0]
        ids = [v[0] for k, v in form.items() if k.startswith("InstanceId.")]
        image_ids = [v[0] for k, v in form.items() if k.startswith("ImageId.")]
        group = form.get("GroupId", [""])[0]
        if action == "DeleteSecurityGroup" and any(within("terminated", g) for g in [group]):
            return self.reply(400, b'<?xml version="1.0"?><Response><Errors><Error><Code>DependencyViolation</Code>'
                              b'<Message>resource has a dependent object</Message></Error></Errors></Response>')
        conn = http.client.HTTPConnection(UP.hostname, UP.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn.request("POST", self.path, body, headers)
        resp = conn.getresponse()
        data = resp.read()
        text = data.decode(errors="replace")
        if action == "RunInstances":
            started("running", re.findall(r"<instanceId>(i-[0-9a-f]+)</instanceId>", text))
        elif action == "StopInstances":
            started("stopped", ids)
        elif action == "CreateImage":
            started("ami", re.findall(r"<imageId>(ami-[0-9a-f]+)</imageId>", text))
        elif action == "TerminateInstances":
            started("terminated", ids)
            # The instances' security groups stay in use while they shut down.
            for i in ids:
                d = http.client.HTTPConnection(UP.hostname, UP.port, timeout=60)
                q = urllib.parse.urlencode({"Action": "DescribeInstances", "Version": "2016-11-15", "InstanceId.1": i})
                h = dict(headers)
                d.request("POST", "/", q, {k: v for k, v in h.items() if k.lower() not in ("content-length",)})
                started("terminated", re.findall(r"<groupId>(sg-[0-9a-f]+)</groupId>", d.getresponse().read().decode()))
        elif action == "DescribeInstances" and ids:
            i = ids[0]
            if within("running", i):
                text = re.sub(r"<code>16</code>(\s*)<name>running</name>", r"<code>0</code>\1<name>pending</name>", text)
            if within("stopped", i):
                text = re.sub(r"<code>80</code>(\s*)<name>stopped</name>", r"<code>64</code>\1<name>stopping</name>", text)
            if within("terminated", i):
                text = re.sub(r"<code>48</code>(\s*)<name>terminated</name>", r"<code>32</code>\1<name>shutting-down</name>", text)
        elif action == "DescribeImages" and image_ids and within("ami", image_ids[0]):
            text = text.replace("<imageState>available</imageState>", "<imageState>pending</imageState>")
        self.reply(resp.status, text.encode(), resp.getheader("Content-Type", "text/xml"))

    def reply(self, status, data, ctype="text/xml"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[2], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
