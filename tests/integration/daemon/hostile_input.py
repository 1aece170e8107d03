#!/usr/bin/env python3
"""Hostile requests against a running corrald (tests/integration/daemon/hostile_input.sh).

For every route of GET /api/v1/openapi.json that takes a body, its valid body (below) with each
field, nested ones too, replaced by every JSON type; unknown and duplicate keys; hostile path
parameters and query values on every route; hostile headers on the unix socket and over TLS.
Checks: never a 5xx, always a JSON answer (valid UTF-8), a 400 naming the field's path where the
value has the wrong type, and corrald alive after each request (kill -0 and GET /host).
Prints PASS/FAIL lines like tests/lib/corrald.sh and exits 1 if any failed.

Usage: hostile_input.py SOCKET PID STATE_DIR TLS_HOST:PORT TOKEN
"""
import http.client
import json
import os
import socket
import ssl
import sys

sock_path, pid, state, listen, token = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
passed = failed = 0
failures = []


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("corral", timeout=60)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self.path)


def tls_connection():
    context = ssl.create_default_context(cafile=os.path.join(state, "tls", "server.crt"))
    context.check_hostname = False  # the certificate is pinned by the CA file; loopback only
    host, port = listen.rsplit(":", 1)
    return http.client.HTTPSConnection(host, int(port), context=context, timeout=60)


def request(method, target, body=None, headers=None, connection=None):
    """(status, parsed JSON or None, raw bytes, headers); status 0 when the connection failed."""
    conn = connection or UnixConnection(sock_path)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        data = body.encode() if isinstance(body, str) else body
        if data is not None:
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        response = conn.getresponse()
        raw = response.read()
        try:
            parsed = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError):
            parsed = None
        return response.status, parsed, raw, dict(response.getheaders())
    except (OSError, http.client.HTTPException):
        return 0, None, b"", {}
    finally:
        conn.close()


def alive():
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    status, _, _, _ = request("GET", "/api/v1/host")
    return status == 200


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        failures.append(name)
        print(f"FAIL: {name} {detail}")
    return ok


def expect(name, method, target, body=None, headers=None, field=None, statuses=None, connection=None):
    """One hostile request: never 5xx, a JSON error, the field if given, corrald alive after."""
    status, parsed, raw, _ = request(method, target, body, headers, connection)
    detail = f"-> {status} {raw[:300]!r}"
    ok = 100 <= status < 500 if statuses is None else status in statuses
    if ok and status >= 400:
        ok = isinstance(parsed, dict) and isinstance(parsed.get("error"), dict)
    if ok and field is not None:
        got = parsed["error"].get("field", "") if status == 400 else None
        ok = got == field or (got or "").startswith(field + ".") or (got or "").startswith(field + "[")
    check(name, ok, detail)
    if not alive():
        check(f"corrald is alive after: {name}", False)
        print("corrald died; stopping here")
        summary()
    return status, parsed


def summary():
    print(f"hostile_input.py: {passed} passed, {failed} failed")
    for name in failures[:50]:
        print(f"  failed: {name}")
    sys.exit(1 if failed else 0)


# ---------------------------------------------------------------- valid bodies, per route
kernel = os.path.join(state, "kernel.bin")
root = os.path.join(state, "root.raw")
VALID = {
    "post /api/v1/vms": [{
        "name": "hv1", "vcpus": 1, "memory_mib": 128, "image": "img0", "engine": "emulated",
        "disks": [{"pool": "default", "volume": "v1", "readonly": True}],
        "nics": [{"tap": "crlhostile0", "mac": "52:54:00:12:34:56"}],
        "restart_policy": "no", "cmdline": "quiet", "display": {"width": 1024, "height": 768},
        "limits": {"disk_bytes_per_s": 1048576, "disk_iops": 100, "nic_bytes_per_s": 65536}}],
    "patch /api/v1/vms/{name}": [{
        "vcpus": 1, "memory_mib": 128, "restart_policy": "no", "cmdline": "quiet",
        "nics": [{"tap": "crlhostile1", "mac": "52:54:00:12:34:57"}], "display": {"width": 800, "height": 600},
        "limits": {"disk_bytes_per_s": 0, "disk_iops": 0, "nic_bytes_per_s": 4096}}],
    "put /api/v1/vms/{name}/state": [{"action": "pause", "timeout": 5}],
    "put /api/v1/vms/{name}/balloon": [{"target_mib": 64}, {"clear": True}],
    "post /api/v1/vms/{name}/snapshots": [{"name": "hsnap1", "description": "hostile", "disk_only": False}],
    "post /api/v1/vms/{name}/snapshots/{snapshot}/clone": [{"name": "hclone1"}],
    "post /api/v1/vms/{name}/migrate": [{
        "to": "https://127.0.0.1:1", "token": "corral_not-a-token", "fingerprint": "AB" * 32,
        "ca_cert_pem": "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n", "downtime_ms": 300,
        "bandwidth_mib": 8}],
    "post /api/v1/migrations": [{
        "name": "hm1", "vcpus": 1, "memory_mib": 128, "image": "img0", "engine": "emulated",
        "disks": [{"pool": "default", "volume": "v1", "readonly": True}], "nics": [],
        "restart_policy": "no", "cmdline": "quiet",
        "migration": {"origin": "h1", "pools": [{"name": "default", "identity": "0" * 32}],
                      "generation_id": "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d", "balloon_target_mib": 64,
                      # A pool this host lacks: nothing is created, the definition is read on.
                      "disks": [{"pool": "nopool", "volume": "v9", "size_bytes": 1048576}]}}],
    "post /api/v1/pools": [{"name": "hp1", "driver": "dir", "path": os.path.join(state, "hp1")}],
    "post /api/v1/volumes": [
        {"pool": "default", "name": "hv2", "size": "1M", "format": "qcow2"},
        {"pool": "default", "name": "hv3", "size_bytes": 1048576},
        {"pool": "default", "name": "hv4", "from": {"pool": "default", "volume": "v1"}, "linked": True},
        {"pool": "default", "name": "hv5", "import": root}],
    "post /api/v1/volumes/{pool}/{name}/resize": [{"size_bytes": 2097152}, {"size": "2M"}],
    "post /api/v1/volumes/{pool}/{name}/export": [{"path": os.path.join(state, "export.qcow2"), "format": "qcow2"}],
    "post /api/v1/images": [{"name": "himg", "pool": "default", "kernel": kernel, "initrd": kernel, "root": root,
                             "cmdline": "console=ttyS0", "description": "hostile"}],
    "post /api/v1/tokens": [{"name": "htok"}],
    "post /api/v1/networks": [{
        "name": "hn1", "kind": "isolated", "subnet4": "10.0.201.0/24", "gateway4": "10.0.201.1", "subnet6": "fd00:201::/64",
        "dhcp_start": "10.0.201.10", "dhcp_end": "10.0.201.200", "mtu": 1500, "dns_forwarders": ["192.0.2.53"],
        "reservations": [{"mac": "52:54:00:aa:bb:01", "ipv4": "10.0.201.5", "hostname": "db"}]}],
    "patch /api/v1/networks/{name}": [{
        "mtu": 1400, "dns_forwarders": ["192.0.2.53"],
        "reservations": [{"mac": "52:54:00:aa:bb:02", "ipv4": "10.0.202.6", "hostname": "web"}]}],
    "post /api/v1/security-groups": [{
        "name": "hsg1", "description": "hostile",
        "rules": [{"direction": "in", "protocol": "tcp", "port_from": 22, "port_to": 22, "remote_cidr": "10.0.0.0/8"},
                  {"direction": "out", "protocol": "any", "remote_group": "hsg0"}]}],
    "patch /api/v1/security-groups/{name}": [{
        "description": "d", "rules": [{"direction": "in", "protocol": "icmp", "remote_cidr": "192.0.2.0/24"}]}],
    "post /api/v1/security-groups/{name}/rules": [
        {"direction": "in", "protocol": "tcp", "port_from": 80, "port_to": 81, "remote_cidr": "10.0.0.0/8"},
        {"direction": "out", "protocol": "udp", "port_from": 53, "remote_group": "hsg0"}],
    "put /api/v1/vms/{name}/nics/{index}/groups": [{"groups": ["hsg0"]}],
    "patch /api/v1/host/capacity": [{"vcpus_per_cpu": 4, "memory_percent": 90}],
    "post /api/v1/host/capacity/plan": [{"shape": {"vcpus": 2, "memory_mib": 2048},
                                         "what_if": [{"add": 3, "vcpus": 1, "memory_mib": 512}, {"remove": "vm1"}]}],
    "post /api/v1/session": [{"token": "corral_not-a-token"}, {"link": "corral_not-a-link"}],
    "post /api/v1/backup-repositories": [{"name": "hrepo", "path": os.path.join(state, "hrepo"),
                                          "key": os.path.join(state, "hrepo.key"), "create": True}],
    "post /api/v1/backups": [{"vm": "vm1", "repository": "hrepo"}],
    "post /api/v1/backups/{backup}/restore": [{"as": "hrestored"}],
    "post /api/v1/backups/{backup}/verify": [{"boot": True, "timeout_s": 120, "ready": "CORRAL-INIT: up"}],
    "post /api/v1/backup-schedules": [{"vm": "vm1", "time": "02:00", "day": "sunday", "repository": "hrepo",
                                       "keep_last": 2, "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 6,
                                       "verify_boot": True}],
    "post /api/v1/backup-repositories/{name}/prune": [{"vm": "vm1", "keep_last": 2, "keep_daily": 7, "keep_weekly": 4,
                                                       "keep_monthly": 6, "dry_run": True}],
    "post /api/v1/alarms": [{"name": "halarm", "metric": "vm.cpu", "vm": "vm1", "above": 0.8, "for_seconds": 60,
                             "webhook": "http://127.0.0.1:9/hook"},
                            {"name": "halarm2", "metric": "host.memory", "below": 1048576.0}],
}
PARAMS = {"name": "vm1", "pool": "default", "id": "t-1", "index": "0", "snapshot": "hsnap1", "backup": "vm1-19700101T000000Z-0"}
VOLUME_PARAMS = {"name": "v1", "pool": "default"}
NETWORK_PARAMS = {"name": "hn0"}
GROUP_PARAMS = {"name": "hsg0", "index": "0"}
DEEP = json.loads("[" * 40 + "]" * 40)
HOSTILE_VALUES = [None, True, 0, -1, 1.5, 1e300, "", "x", [], {}, DEEP]


def category(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "uint" if value >= 0 else "negative"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "deep" if value and isinstance(value[0], list) else "array"
    return "object"


def fields(value, path=""):
    """(path, value) of every field, nested objects and array elements included."""
    if isinstance(value, dict):
        for key, inner in value.items():
            child = f"{path}.{key}" if path else key
            yield child, inner
            yield from fields(inner, child)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            child = f"{path}[{index}]"
            yield child, inner
            yield from fields(inner, child)


def replaced(value, path, new):
    """A deep copy of `value` with the field at `path` set to `new`."""
    copy = json.loads(json.dumps(value))
    parts = []
    for piece in path.replace("[", ".[").split("."):
        parts.append(int(piece[1:-1]) if piece.startswith("[") else piece)
    target = copy
    for part in parts[:-1]:
        target = target[part]
    target[parts[-1]] = new
    return copy


def target_of(pattern):
    params = VOLUME_PARAMS if pattern.startswith("/api/v1/volumes/") else PARAMS
    if pattern.startswith("/api/v1/networks/"):
        params = NETWORK_PARAMS
    if pattern.startswith("/api/v1/security-groups/"):
        params = GROUP_PARAMS
    path = pattern
    for key, value in params.items():
        path = path.replace("{" + key + "}", value)
    return path


status, document, _, _ = request("GET", "/api/v1/openapi.json")
check("GET /api/v1/openapi.json", status == 200 and isinstance(document, dict))
routes = [(method, pattern, op) for pattern, ops in document["paths"].items() for method, op in ops.items()]
print(f"== {len(routes)} routes from the OpenAPI document")

print("== every field of every body replaced by every JSON type")
for method, pattern, op in routes:
    key = f"{method} {pattern}"
    if "requestBody" not in op:
        continue
    if "application/json" not in op["requestBody"].get("content", {}):
        # A streamed image (PUT .../content), not JSON: tests/integration/daemon/http_transport.sh
        # sends it what is not an image, cut bodies and oversized lengths.
        continue
    if not check(f"{key}: the test has a valid body for it", key in VALID):
        continue
    target = target_of(pattern)
    for body in VALID[key]:
        cases = 0
        for path, original in list(fields(body)):
            for new in HOSTILE_VALUES:
                strict = category(new) not in ("null", category(original))
                if category(original) == "uint" and category(new) == "uint":
                    strict = False
                # A field that holds a fraction (an alarm's threshold) takes any number.
                if category(original) == "float" and category(new) in ("uint", "negative", "float"):
                    strict = False
                expect(f"{key} {path}={json.dumps(new)[:20]}", method.upper(), target, json.dumps(replaced(body, path, new)),
                       field=path if strict else None)
                cases += 1
        # An unknown key, at the top and in each nested object; a duplicate key.
        expect(f"{key} unknown key", method.upper(), target, json.dumps({**body, "zz_unknown": 1}), field="zz_unknown")
        for path, inner in list(fields(body)):
            if isinstance(inner, dict):
                expect(f"{key} unknown key in {path}", method.upper(), target,
                       json.dumps(replaced(body, path, {**inner, "zz_unknown": 1})), field=f"{path}.zz_unknown")
        first = next(iter(body))
        text = json.dumps(body)
        duplicated = "{" + json.dumps(first) + ": " + json.dumps(body[first]) + ", " + text[1:]
        expect(f"{key} duplicate key {first}", method.upper(), target, duplicated, field=first)
        expect(f"{key} a body 40 levels deep", method.upper(), target, "{\"a\":" + "[" * 40 + "]" * 40 + "}",
               statuses={400})
        expect(f"{key} not JSON", method.upper(), target, "{\"name\": \xff}".encode("latin-1"), statuses={400})
        expect(f"{key} a JSON array", method.upper(), target, "[1]", statuses={400})
        print(f"  {key}: {cases} replaced fields")

print("== hostile path parameters on every route")
HOSTILE_SEGMENTS = ["%ff", "%ff%fe%fd", "%c3%28", "%00", "..", "%2e%2e", "a%20b", "%1b%5b2J", "a" * 3000,
                    "%e2%82", "x" * 64]
for method, pattern, op in routes:
    if "{" not in pattern:
        continue
    for segment in HOSTILE_SEGMENTS:
        path = pattern
        while "{" in path:
            start = path.index("{")
            path = path[:start] + segment + path[path.index("}") + 1:]
        status, parsed = expect(f"{method} {pattern} with {segment[:16]}", method.upper(), path,
                                json.dumps({}) if method != "get" else None)

print("== hostile query values")
QUERY_ROUTES = [("GET", "/api/v1/tasks/t-1", "wait"), ("GET", "/api/v1/vms/vm1/console", "tail"),
                ("DELETE", "/api/v1/vms/vm1", "volumes"), ("GET", "/api/v1/volumes", "pool"),
                ("GET", "/api/v1/host/metrics", "since"), ("GET", "/api/v1/host/metrics", "step"),
                ("GET", "/api/v1/vms/vm1/metrics", "step")]
for method, path, name in QUERY_ROUTES:
    values = ["-1", "1.5", "1e300", "99999999999999999999999", "%ff", "%ff%fe", "%00", "+1", "%201", "0x10", "%1b"]
    if name != "pool":  # an empty or well-formed pool name is a filter (404 if no such pool)
        values += ["", "yes"]
    for value in values:
        expect(f"{method} {path}?{name}={value}", method, f"{path}?{name}={value}", field=name)

print("== hostile headers on the unix socket")
for index, value in enumerate(["\xff\xfe", "\x80" * 100, "caf\xe9", "\xc3\x28", "x" * 7000]):
    expect(f"an invalid header value #{index}", "GET", "/api/v1/vms", headers={"X-Hostile": value},
           statuses={200})
    expect(f"an invalid Authorization #{index} (ignored on the socket)", "GET", "/api/v1/vms",
           headers={"Authorization": value}, statuses={200})
    expect(f"an invalid Content-Type #{index}", "POST", "/api/v1/tokens", body="{}",
           headers={"Content-Type-X": value}, field="name")
# Headers beyond Beast's limit: the connection is dropped; corrald lives on.
status, _, _, _ = request("GET", "/api/v1/vms", headers={"X-Huge": "y" * 200000})
check("a 200 KB header is refused without an answer or with a 4xx", status == 0 or 400 <= status < 500, f"-> {status}")
check("corrald is alive after a 200 KB header", alive())


def raw_exchange(data):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(sock_path)
    s.sendall(data)
    answer = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    s.close()
    return answer


for target in [b"/api/v1/vms/\xff", b"/api/v1/\xff\xfe/x", b"/api/v1/vms/a\x1b[2J", b"/" + b"\xc3" * 3000]:
    answer = raw_exchange(b"GET " + target + b" HTTP/1.1\r\nHost: corral\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    ok = True
    if head:
        try:
            json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            ok = False
        ok = ok and not head.startswith(b"HTTP/1.1 5")
    check(f"raw bytes in the request target {target[:20]!r}: a JSON 4xx or a dropped connection", ok, repr(answer[:200]))
    check(f"  ... corrald alive", alive())

print("== hostile Authorization headers over TLS")
for byte in range(0x80, 0x100):
    value = chr(byte) + "\xff\xfe scheme"
    status, parsed, raw, headers = request("GET", "/api/v1/vms", headers={"Authorization": value},
                                           connection=tls_connection())
    check(f"TLS Authorization starting with byte 0x{byte:02x}: 401 in valid JSON",
          status == 401 and isinstance(parsed, dict) and parsed["error"]["field"] == "Authorization",
          f"-> {status} {raw[:200]!r}")
    if not alive():
        check("corrald alive", False)
        summary()
for value in ["Bearer \xff\xfe", "Bearer " + "a" * 7000, "\x80\x81\x82", "Basic \xc3\x28"]:
    status, parsed, raw, _ = request("GET", "/api/v1/vms", headers={"Authorization": value}, connection=tls_connection())
    check(f"TLS Authorization {value[:12]!r}: 401 (or a dropped connection) in valid JSON",
          (status == 401 and isinstance(parsed, dict)) or status == 0, f"-> {status} {raw[:200]!r}")
check("corrald alive after the TLS headers", alive())
bearer = {"Authorization": f"Bearer {token}"}
for segment in ["%ff", "%ff%fe", "%c3%28", ".."]:
    expect(f"TLS with a token: GET /api/v1/vms/{segment}", "GET", f"/api/v1/vms/{segment}", headers=bearer,
           field="name", connection=tls_connection())
expect("TLS with a token: a body with a wrong nested type", "POST", "/api/v1/vms",
       json.dumps({"name": "tv1", "disks": [{"volume": 7}]}), headers=bearer, field="disks[0].volume",
       connection=tls_connection())

summary()
