#!/usr/bin/python3 -IS
"""sshd AuthorizedKeysCommand for the bakery lab: does cloud-init's job.

On EC2, cloud-init puts the launch key pair's public key into the login user's authorized_keys. In the
lab every instance is the same sshd, so it lets the login user in with the public key of any EC2 key pair
moto holds: DescribeKeyPairs with IncludePublicKey=true, one public key per line on stdout.

Usage (from sshd_config): authorized-keys %u LOGIN_USER MOTO_HOST:PORT REGION

lab/up copies this file to /run/bakery-lab/ because sshd runs it only from a root-owned path with no
group- or world-writable component (the repo may live under /tmp). sshd calls it twice per login, so it
is plain socket + string code: about 0.04 s a call, where http.client's imports double that and an AWS
SDK start-up costs about 1 s.
"""

import socket
import sys


def describe_key_pairs(endpoint, region):
    host, _, port = endpoint.rpartition(":")
    body = "Action=DescribeKeyPairs&Version=2016-11-15&IncludePublicKey=true"
    request = (
        f"POST / HTTP/1.0\r\nHost: {endpoint}\r\n"
        "User-Agent: bakery-lab-authorized-keys\r\n"
        "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
        # moto takes the region from the SigV4 credential scope; it does not check the signature.
        "Authorization: AWS4-HMAC-SHA256 "
        f"Credential=bakerylab/20000101/{region}/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    )
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request.encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    head, _, payload = b"".join(chunks).decode("utf-8", "replace").partition("\r\n\r\n")
    status = head.split(" ", 2)[1] if " " in head else "?"
    if status != "200":
        raise RuntimeError(f"DescribeKeyPairs answered {status}: {payload[:300]}")
    return payload


def public_keys(response):
    """The text of every <publicKey> element. Only key items have one (their tagSet holds key/value
    items), and a public key line has no character XML would escape."""
    for part in response.split("<publicKey>")[1:]:
        key = part.partition("</publicKey>")[0].strip()
        if key:
            yield key


def main(argv):
    if len(argv) != 5:
        print(f"usage: {argv[0]} USER LOGIN_USER MOTO_HOST:PORT REGION", file=sys.stderr)
        return 2
    user, login_user, endpoint, region = argv[1:]
    if user != login_user:
        return 0
    try:
        response = describe_key_pairs(endpoint, region)
    except (OSError, RuntimeError) as err:
        print(f"bakery-lab authorized-keys: {err}", file=sys.stderr)
        return 1
    for key in public_keys(response):
        print(key)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
