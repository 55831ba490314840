"""The lab's Smithy RPC v2 CBOR front: the AWS SDK for Rust speaks CBOR to CloudWatch (as AWS does since
2025), moto 5.2.5 only its JSON and query protocols. This WSGI middleware, in front of everything else,
turns a CBOR request (`POST /service/<Target>/operation/<Op>`, `smithy-protocol: rpc-v2-cbor`) into the
JSON 1.0 request moto answers (`X-Amz-Target: <Target>.<Op>`) and the JSON answer back into CBOR, so the
request counter and the realism layer see an ordinary JSON-protocol call.

Timestamps: CBOR carries them as tag 1 (epoch seconds); JSON as numbers. Requests are converted with the
tags dropped; answers get tag 1 on every member the service model (botocore's, shipped with moto) types
as a timestamp.
"""

import io
import json
import re

import cbor2

PATH = re.compile(r"^/service/([^/]+)/operation/([^/]+)$")


def _plain(value):
    """CBOR request values as JSON values: tag 1 (a timestamp) becomes its epoch seconds."""
    if isinstance(value, cbor2.CBORTag):
        return _plain(value.value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode()
    if hasattr(value, "timestamp"):  # a datetime decoded from tag 0/1
        return value.timestamp()
    return value


def _tagged(value, shape):
    """A JSON answer's value as CBOR: timestamps (per the model) as tag 1."""
    if shape is None:
        return value
    kind = shape.type_name
    if kind == "timestamp" and isinstance(value, (int, float)):
        return cbor2.CBORTag(1, value)
    if kind == "timestamp" and isinstance(value, str):
        from datetime import datetime

        try:
            return cbor2.CBORTag(1, datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        except ValueError:
            return value
    if kind == "structure" and isinstance(value, dict):
        return {k: _tagged(v, shape.members.get(k)) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_tagged(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _tagged(v, shape.value) for k, v in value.items()}
    return value


class CborFront:
    """WSGI middleware: CBOR in and out for Smithy RPC v2 CBOR requests, untouched otherwise."""

    def __init__(self, app):
        self.app = app
        self.models = {}

    def output_shape(self, target, operation):
        # GraniteServiceVersion20100801 is CloudWatch's target prefix; other CBOR services are not in the
        # lab (their calls reach moto as before and fail there, visibly).
        if target not in self.models:
            import botocore.session

            session = botocore.session.get_session()
            names = {"GraniteServiceVersion20100801": "cloudwatch"}
            self.models[target] = (
                session.get_service_model(names[target]) if target in names else None
            )
        model = self.models[target]
        if model is None:
            return None
        try:
            return model.operation_model(operation).output_shape
        except Exception:  # an operation the model does not know: moto answers it (or refuses)
            return None

    def __call__(self, environ, start_response):
        match = PATH.match(environ.get("PATH_INFO", ""))
        if not match or environ.get("HTTP_SMITHY_PROTOCOL") != "rpc-v2-cbor":
            return self.app(environ, start_response)
        target, operation = match.groups()
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        params = _plain(cbor2.loads(raw)) if raw else {}
        body = json.dumps(params).encode()
        environ = dict(environ)
        environ["PATH_INFO"] = "/"
        environ["CONTENT_TYPE"] = "application/x-amz-json-1.0"
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["HTTP_X_AMZ_TARGET"] = f"{target}.{operation}"
        environ["wsgi.input"] = io.BytesIO(body)
        for key in ("HTTP_SMITHY_PROTOCOL", "HTTP_ACCEPT"):
            environ.pop(key, None)

        answer = {}

        def capture(status, headers, exc_info=None):
            answer["status"] = status
            answer["headers"] = headers
            return lambda _data: None

        chunks = self.app(environ, capture)
        try:
            data = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        status = answer.get("status", "500 Internal Server Error")
        try:
            doc = json.loads(data) if data.strip() else {}
        except ValueError:
            doc = {"__type": "InternalFailure", "message": data.decode("utf-8", "replace")}
        if status.startswith("2"):
            doc = _tagged(doc, self.output_shape(target, operation))
        elif isinstance(doc, dict):
            # The SDK reads the error code from `__type` (namespace#Code or Code), as in JSON.
            kind = doc.get("__type") or doc.get("code") or doc.get("Code") or "InternalFailure"
            doc = {"__type": kind, "message": doc.get("message") or doc.get("Message") or ""}
        out = cbor2.dumps(doc)
        headers = [
            (k, v)
            for k, v in answer.get("headers", [])
            if k.lower() not in ("content-type", "content-length")
        ]
        headers += [
            ("Content-Type", "application/cbor"),
            ("Content-Length", str(len(out))),
            ("smithy-protocol", "rpc-v2-cbor"),
        ]
        start_response(status, headers)
        return [out]
