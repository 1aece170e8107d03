#!/usr/bin/env python3
"""tests/lib/echo_stream.py HOST PORT LOG: one TCP connection to an echo server (a guest's
`nc -l -p PORT -e /bin/cat`), a numbered line sent every 100 ms, each echo logged as it comes
back: "N SECONDS" (time.time() at receipt). Lines that come back out of order, a connection
that ends or breaks, are logged too ("bad ...", "closed", "error ...") and end the stream; so
"the stream survived" is: the log has only consecutive numbers from 0. Runs until killed.
The connection is retried for 60 s at first (the guest may still be starting its server)."""
import socket
import sys
import threading
import time

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
log = open(path, "a", buffering=1)
deadline = time.time() + 60
while True:
    try:
        conn = socket.create_connection((host, port), timeout=5)
        break
    except OSError as error:
        if time.time() > deadline:
            log.write(f"error connecting: {error}\n")
            sys.exit(1)
        time.sleep(0.5)
# A blocking socket from here on: a migration's pause is no reason to give up (TCP retransmits).
conn.settimeout(None)
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
done = threading.Event()


def receive():
    pending, expected = b"", 0
    try:
        while True:
            data = conn.recv(4096)
            if not data:
                log.write("closed\n")
                break
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                now = time.time()
                if line != str(expected).encode():
                    log.write(f"bad {line!r}, expected {expected}\n")
                    return
                log.write(f"{expected} {now:.3f}\n")
                expected += 1
    except OSError as error:
        log.write(f"error receiving: {error}\n")
    finally:
        done.set()


threading.Thread(target=receive, daemon=True).start()
number = 0
try:
    while not done.is_set():
        conn.sendall(f"{number}\n".encode())
        number += 1
        time.sleep(0.1)
except OSError as error:
    log.write(f"error sending: {error}\n")
