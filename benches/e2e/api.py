#!/usr/bin/env python3
"""Send one request to a tweed-dataplane config API socket and print the reply.

usage: api.py SOCKET OP [ARGS_JSON]      e.g. api.py /tmp/x/dp.sock port_add '{"name":"a/b",...}'
       api.py SOCKET OP [ARGS_JSON] --get KEY.PATH   print one field of the ok reply

Exits 1 (and prints the reply on stderr) when the reply is an error or the
socket does not answer within 10 s.
"""
import json
import socket
import sys


def request(sock_path, op, args, timeout=10.0):
    line = json.dumps({"version": 1, "request": {op: args}}) + "\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(line.encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return buf.decode()


def main():
    argv = sys.argv[1:]
    get = None
    if "--get" in argv:
        i = argv.index("--get")
        get = argv[i + 1]
        del argv[i : i + 2]
    if len(argv) < 2:
        sys.exit(__doc__)
    sock_path, op = argv[0], argv[1]
    args = json.loads(argv[2]) if len(argv) > 2 else {}
    try:
        raw = request(sock_path, op, args)
    except OSError as e:
        print(f"api {op} on {sock_path}: {e}", file=sys.stderr)
        sys.exit(1)
    try:
        reply = json.loads(raw)
    except ValueError:
        print(f"api {op}: not JSON: {raw!r}", file=sys.stderr)
        sys.exit(1)
    if "ok" not in reply:
        print(f"api {op} {json.dumps(args)}: {raw.strip()}", file=sys.stderr)
        sys.exit(1)
    if get is None:
        print(raw.strip())
        return
    value = reply["ok"]
    for key in get.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    print(value if isinstance(value, str) else json.dumps(value))


if __name__ == "__main__":
    main()
