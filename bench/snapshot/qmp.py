#!/usr/bin/env python3
"""bench/snapshot/qmp.py: drives a plain QEMU for bench/snapshot/run.sh, timing QEMU's own work.

  hmp SOCKET 'COMMAND LINE'     a human monitor command over QMP (savevm, loadvm: QEMU 7.2 has
                                no synchronous QMP twin); prints the seconds from sending it to
                                its answer (connecting and the capabilities handshake excluded).
                                Any answer text is QEMU's error: printed, exit 1
  qmp SOCKET COMMAND            a QMP command without arguments; prints its return value as JSON
  start SOCKET LOG -- QEMU ARGS...
                                starts QEMU (stdout and stderr to LOG, detached), polls SOCKET
                                until QMP answers and query-status says running; prints
                                "SECONDS PID" (from just before the exec: the same span corrald's
                                restore task waits for, QEMU's -loadvm included)
  console SOCKET LINE EXPECT SECONDS
                                types LINE on the serial console socket and waits for EXPECT in
                                its output; exit 1 when it does not come

Stdlib only; unix sockets only.
"""
import json
import socket
import subprocess
import sys
import time


def connect(path, wait=0.0):
    deadline = time.monotonic() + wait
    while True:
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


class Qmp:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.read()  # the greeting
        self.execute("qmp_capabilities")

    def read(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("QEMU closed its QMP socket")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, arguments=None):
        message = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        self.sock.sendall(json.dumps(message).encode() + b"\n")
        while True:
            answer = self.read()
            if "event" in answer:
                continue
            if "error" in answer:
                raise RuntimeError(f"{command}: {answer['error']}")
            return answer["return"]


def hmp(path, command_line):
    qmp = Qmp(connect(path))
    start = time.monotonic()
    text = qmp.execute("human-monitor-command", {"command-line": command_line})
    seconds = time.monotonic() - start
    if text.strip():
        print(f"QEMU says: {text.strip()}", file=sys.stderr)
        return 1
    print(f"{seconds:.3f}")
    return 0


def start(path, log, args):
    begin = time.monotonic()
    with open(log, "ab") as out:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    deadline = begin + 900
    while time.monotonic() < deadline:
        if process.poll() is not None:
            print(f"QEMU ended with status {process.returncode}; see {log}", file=sys.stderr)
            return 1
        try:
            qmp = Qmp(connect(path))
        except OSError:
            time.sleep(0.02)
            continue
        while qmp.execute("query-status")["status"] != "running":
            time.sleep(0.02)
        print(f"{time.monotonic() - begin:.3f} {process.pid}")
        return 0
    print("QEMU did not answer on QMP within 900 s", file=sys.stderr)
    return 1


def console(path, line, expect, seconds):
    sock = connect(path)
    sock.settimeout(0.5)
    sock.sendall(line.encode() + b"\r")
    seen = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        if not data:
            break
        seen += data
        if expect.encode() in seen:
            return 0
    print(f"no '{expect}' on the console within {seconds} s; it showed: {seen[-400:]!r}", file=sys.stderr)
    return 1


def main(argv):
    if len(argv) >= 3 and argv[0] == "hmp":
        return hmp(argv[1], argv[2])
    if len(argv) == 3 and argv[0] == "qmp":
        print(json.dumps(Qmp(connect(argv[1])).execute(argv[2])))
        return 0
    if len(argv) >= 5 and argv[0] == "start" and argv[3] == "--":
        return start(argv[1], argv[2], argv[4:])
    if len(argv) == 5 and argv[0] == "console":
        return console(argv[1], argv[2], argv[3], float(argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
