#!/usr/bin/env python3
"""bench/daemon/client.py: the persistent clients of bench/daemon/run.sh.

One process, one connection, many requests: what a management tool holding a connection sees,
without a process start per request. Prints one latency in ms per line (or, for define/delete,
one line "SECONDS COUNT"), so run.sh computes percentiles the same way for every client.

  client.py corral SOCK get PATH COUNT [N]       COUNT GETs over one keep-alive connection; a
                                                 "{i}" in PATH cycles through 001..N
  client.py corral SOCK define PREFIX N MIB      POST /api/v1/vms PREFIX001..PREFIX{N}; prints
                                                 total seconds and N
  client.py corral SOCK delete PREFIX N          DELETE them
  client.py libvirt URI list COUNT               getAllDomainStats(state, vcpu, balloon): one
                                                 call for what GET /vms returns (every domain's
                                                 name, state, vCPUs, memory)
  client.py libvirt URI show PREFIX N COUNT      lookupByName + info() + XMLDesc() (GET /vms/NAME:
                                                 state and the whole configuration)
  client.py libvirt URI define PREFIX N MIB      defineXML of PREFIX001..PREFIX{N}
  client.py libvirt URI delete PREFIX N          undefine them

The corral side needs only the standard library (http.client over AF_UNIX); the libvirt side
needs the python3-libvirt binding (run with /usr/bin/python3). The corral client reports on
stderr how many connections its GETs opened, so a daemon closing after each response shows.
"""
import http.client
import json
import socket
import sys
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket; counts the connections it opens."""

    def __init__(self, path):
        super().__init__("corral", timeout=30)
        self.unix_path = path
        self.connects = 0

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s
        self.connects += 1


def names(prefix, n):
    return [f"{prefix}{i:03d}" for i in range(1, n + 1)]


def corral_request(conn, method, path, body=None):
    headers = {}
    if body is not None:
        body = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status >= 300:
        sys.exit(f"client.py: {method} {path}: {resp.status} {data[:200]!r}")
    return data


def corral(argv):
    sock, op, args = argv[0], argv[1], argv[2:]
    conn = UnixHTTPConnection(sock)
    if op == "get":
        template, count = args[0], int(args[1])
        n = int(args[2]) if len(args) > 2 else 1
        corral_request(conn, "GET", template.replace("{i}", "001"))   # warm-up, not counted
        out = []
        for k in range(count):
            path = template.replace("{i}", f"{k % n + 1:03d}")
            t = time.perf_counter()
            corral_request(conn, "GET", path)
            out.append((time.perf_counter() - t) * 1000)
        print("\n".join(f"{x:.3f}" for x in out))
    elif op == "define":
        prefix, n, mib = args[0], int(args[1]), int(args[2])
        t = time.perf_counter()
        for name in names(prefix, n):
            corral_request(conn, "POST", "/api/v1/vms", {"name": name, "memory_mib": mib})
        print(f"{time.perf_counter() - t:.4f} {n}")
    elif op == "delete":
        prefix, n = args[0], int(args[1])
        t = time.perf_counter()
        for name in names(prefix, n):
            corral_request(conn, "DELETE", f"/api/v1/vms/{name}")
        print(f"{time.perf_counter() - t:.4f} {n}")
    else:
        sys.exit(f"client.py: unknown corral operation {op}")
    if op == "get":
        print(f"client.py: {conn.connects} connection(s) opened", file=sys.stderr)


DOMAIN_XML = """<domain type='qemu'><name>{name}</name><memory unit='MiB'>{mib}</memory>
<vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>"""


def libvirt_client(argv):
    import libvirt
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    uri, op, args = argv[0], argv[1], argv[2:]
    conn = libvirt.open(uri)
    if op == "list":
        count = int(args[0])
        stats = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_VCPU
                 | libvirt.VIR_DOMAIN_STATS_BALLOON)
        conn.getAllDomainStats(stats)   # warm-up
        out = []
        for _ in range(count):
            t = time.perf_counter()
            [(d.name(), st) for d, st in conn.getAllDomainStats(stats)]
            out.append((time.perf_counter() - t) * 1000)
        print("\n".join(f"{x:.3f}" for x in out))
    elif op == "show":
        prefix, n, count = args[0], int(args[1]), int(args[2])
        all_names = names(prefix, n)
        conn.lookupByName(all_names[0]).XMLDesc(0)   # warm-up
        out = []
        for k in range(count):
            t = time.perf_counter()
            d = conn.lookupByName(all_names[k % n])
            d.info()
            d.XMLDesc(0)
            out.append((time.perf_counter() - t) * 1000)
        print("\n".join(f"{x:.3f}" for x in out))
    elif op == "define":
        prefix, n, mib = args[0], int(args[1]), int(args[2])
        t = time.perf_counter()
        for name in names(prefix, n):
            conn.defineXML(DOMAIN_XML.format(name=name, mib=mib))
        print(f"{time.perf_counter() - t:.4f} {n}")
    elif op == "delete":
        prefix, n = args[0], int(args[1])
        t = time.perf_counter()
        for name in names(prefix, n):
            try:
                conn.lookupByName(name).undefine()
            except libvirt.libvirtError:
                pass
        print(f"{time.perf_counter() - t:.4f} {n}")
    else:
        sys.exit(f"client.py: unknown libvirt operation {op}")
    conn.close()


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    {"corral": corral, "libvirt": libvirt_client}[sys.argv[1]](sys.argv[2:])
