#!/usr/bin/env python3
"""bench/lib/monitors.py: corral-vmm's and QEMU's sides of the benchmarks that move a running guest
(bench/migration/run.sh, bench/snapshot/native.sh), each asked the same thing its own way.

  vmm CONTROL_SOCKET TO DOWNTIME_MS
      asks a running corral-vmm (its --control socket) to migrate to TO (unix:PATH) within
      DOWNTIME_MS; prints its answer as one JSON object (rounds, bytes, total_ms, downtime_ms ...)
  qemu QMP_SOCKET URI DOWNTIME_MS
      the same through QMP for QEMU (downtime-limit, no bandwidth cap: corral-vmm has none by
      default), polling query-migrate until it ends; prints one JSON object with the same keys
  vmm-snapshot CONTROL_SOCKET DIR
      asks a running corral-vmm for a snapshot into DIR, staying paused; prints
      {"ms": the time it reported}
  qemu-save QMP_SOCKET FILE
      stops QEMU and migrates it into FILE (QEMU's way of saving a running VM to a file);
      prints {"ms": QMP stop to completed}
  qemu-cont QMP_SOCKET
      waits for a QEMU started with -incoming to have loaded its state, then resumes it (a VM
      saved while stopped stays paused after loading, as QEMU carries the run state)
  stamp FIFO
      opens FIFO (returning when the monitor writing to it was started: the shell opens a FIFO's
      writing end before it runs the command) and copies it to standard output, first a START
      line, then each line prefixed with the CLOCK_MONOTONIC seconds it arrived at (the same
      clock for every process on the machine, so two consoles can be compared)
  gap SOURCE_STAMPED DESTINATION_STAMPED MARK
      the longest silence of the guest's ticker across the move: from the last MARK line the
      source printed to the first one the destination printed, in ms
  first STAMPED MARK
      ms from the START line to the first MARK line (a restore's process start to a running
      guest)
  ratios RESULTS LABEL FIGURE...
      the closing table: RESULTS holds lines "MONITOR KEY... VALUE..." (MONITOR corral-vmm or
      qemu; LABEL, a format such as "{} MiB", takes one KEY per "{}"; one VALUE per FIGURE, or
      "none"); prints each figure of each guest for both monitors and the ratio corral-vmm / qemu.
      A FIGURE "NAME:MiB" is given in bytes and shown in MiB. A side that did not finish shows
      "-", so a partial run still shows what was measured

Stdlib only.
"""
import json
import socket
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/snapshot")  # bench/snapshot
from qmp import Qmp, connect  # noqa: E402  (the snapshot benchmark's QMP client)


def control_request(control, request):
    """corral-vmm's answer to one control request; exits 1 printing it unless it is ok."""
    sock = connect(control, wait=10)
    sock.sendall((json.dumps(request) + "\n").encode())
    buffer = b""
    while b"\n" not in buffer:
        data = sock.recv(65536)
        if not data:
            break
        buffer += data
    answer = json.loads(buffer.split(b"\n", 1)[0] or b"{}")
    if answer.get("ok") is not True:
        print(json.dumps(answer))
        sys.exit(1)
    return answer


def wait_migration(monitor):
    """query-migrate until QEMU's migration ends; exits 1 printing it unless it completed."""
    while True:
        status = monitor.execute("query-migrate")
        if status.get("status") in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.05)
    if status["status"] != "completed":
        print(json.dumps(status))
        sys.exit(1)
    return status


def vmm(control, to, downtime_ms):
    answer = control_request(control, {"action": "migrate", "to": to, "downtime_ms": int(downtime_ms)})
    print(json.dumps({"rounds": answer["rounds"], "bytes": answer["bytes_sent"],
                      "total_ms": answer["total_ms"], "downtime_ms": answer["downtime_ms"]}))


def qemu(qmp_path, uri, downtime_ms):
    monitor = Qmp(connect(qmp_path, wait=10))
    monitor.execute("migrate-set-parameters",
                    {"downtime-limit": int(downtime_ms), "max-bandwidth": 1 << 40})
    monitor.execute("migrate", {"uri": uri})
    status = wait_migration(monitor)
    ram = status.get("ram", {})
    print(json.dumps({"rounds": ram.get("dirty-sync-count", 0), "bytes": ram.get("transferred", 0),
                      "total_ms": status.get("total-time", 0), "downtime_ms": status.get("downtime", 0)}))


def vmm_snapshot(control, directory):
    answer = control_request(control, {"action": "snapshot", "dir": directory, "resume": False})
    print(json.dumps({"ms": answer["duration_ms"]}))


def qemu_save(qmp_path, path):
    monitor = Qmp(connect(qmp_path, wait=10))
    started = time.monotonic()
    monitor.execute("stop")
    monitor.execute("migrate-set-parameters", {"max-bandwidth": 1 << 40})
    monitor.execute("migrate", {"uri": "exec:cat > " + path})
    wait_migration(monitor)
    print(json.dumps({"ms": round((time.monotonic() - started) * 1000)}))


def qemu_cont(qmp_path):
    monitor = Qmp(connect(qmp_path, wait=120))
    deadline = time.monotonic() + 600
    while monitor.execute("query-status")["status"] == "inmigrate":
        if time.monotonic() > deadline:
            print("QEMU is still loading its state after 600 s", file=sys.stderr)
            sys.exit(1)
        time.sleep(0.01)
    if monitor.execute("query-status")["status"] != "running":
        monitor.execute("cont")


def stamp(fifo):
    with open(fifo, "rb") as source:
        sys.stdout.write("%.4f START\n" % time.monotonic())
        sys.stdout.flush()
        for line in source:
            sys.stdout.write("%.4f %s" % (time.monotonic(), line.decode(errors="replace")))
            sys.stdout.flush()


def stamped_marks(path, mark):
    times = []
    with open(path, errors="replace") as f:
        for line in f:
            when, _, text = line.partition(" ")
            if text.strip() == mark:
                times.append(float(when))
    return times


def gap(source, destination, mark):
    before, after = stamped_marks(source, mark), stamped_marks(destination, mark)
    if not before or not after:
        print("none")
        sys.exit(1)
    print(round((after[0] - before[-1]) * 1000))


def first(stamped, mark):
    start = None
    with open(stamped, errors="replace") as f:
        for line in f:
            when, _, text = line.partition(" ")
            if text.strip() == "START":
                start = float(when)
            elif text.strip() == mark and start is not None:
                print(round((float(when) - start) * 1000))
                return
    print("none")
    sys.exit(1)


def ratios(results, label, *figures):
    keys = label.count("{}")
    rows = {}
    with open(results) as f:
        for line in f:
            fields = line.split()
            if len(fields) == 1 + keys + len(figures) and fields[0] in ("corral-vmm", "qemu"):
                values = [None if x == "none" else float(x) for x in fields[1 + keys:]]
                rows.setdefault(tuple(fields[1:1 + keys]), {})[fields[0]] = values

    def shown(value, in_mib):
        return "-" if value is None else f"{value / 2**20 if in_mib else value:.0f}"

    guests = sorted(rows, key=lambda key: [float(k) for k in key])
    width = max([len(label.format(*key)) for key in guests] + [5])
    print()
    print(f"{'guest':<{width}} {'figure':<12} {'corral-vmm':>11} {'qemu':>11} {'ratio':>7}")
    for key in guests:
        ours = rows[key].get("corral-vmm", [None] * len(figures))
        theirs = rows[key].get("qemu", [None] * len(figures))
        for figure, a, b in zip(figures, ours, theirs):
            name, _, unit = figure.partition(":")
            ratio = f"{a / b:.2f}" if a is not None and b else "-"
            print(f"{label.format(*key):<{width}} {name:<12} {shown(a, unit == 'MiB'):>11} "
                  f"{shown(b, unit == 'MiB'):>11} {ratio:>7}")


def main():
    command, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    handlers = {"vmm": (vmm, 3), "qemu": (qemu, 3), "vmm-snapshot": (vmm_snapshot, 2), "qemu-save": (qemu_save, 2),
                "qemu-cont": (qemu_cont, 1),
                "stamp": (stamp, 1), "gap": (gap, 3), "first": (first, 2)}
    if command == "ratios" and len(args) >= 3:
        ratios(*args)
        return
    if command not in handlers or len(args) != handlers[command][1]:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    handlers[command][0](*args)


if __name__ == "__main__":
    main()
