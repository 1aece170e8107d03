#!/usr/bin/env bash
# tests/integration/daemon/http_transport.sh: corrald's TCP listener against hostile and slow
# clients, and volumes moved by streaming over HTTPS. A real corrald on a temporary state folder;
# python3 ssl sockets play the slow and hostile clients, curl, corral --remote and qemu-img the
# real ones. Loopback only (127.0.0.x addresses stand for different clients).
#   - a half-sent request header is dropped after the deadline; 200 such connections do not lock
#     out a real client; refusals are not logged one line each
#   - the body is not read before authentication (answer at once, corrald's memory stays small)
#   - at most 16 connections per client address
#   - PUT /volumes/{pool}/{name}/content: qcow2 (from qemu-img) and raw, with curl and the CLI;
#     what is not an image, a qcow2 with a backing file, a corrupt one, a cut upload: refused,
#     nothing left; GET .../content (raw and qcow2) compared with qemu-img compare
# Exit status: 0 all passed, 1 a check failed. Ends with "N passed, N failed".
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
corral_bin="$build_dir/src/cli/corral"
slow_pid=""
cleanup() {
  [ -n "$slow_pid" ] && kill "$slow_pid" 2>/dev/null
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT

for tool in python3 qemu-img jq curl; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is missing"; exit 77; }
done

# The hostile clients: python3 with ssl sockets (no certificate check: they attack, they do not trust).
cat >"$state/clients.py" <<'PY'
import socket, ssl, sys, threading, time
host, port = sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

def connect(source, timeout=20):
    raw = socket.create_connection((host, port), timeout=timeout, source_address=(source, 0))
    return ctx.wrap_socket(raw)

def closed_by_server(s, timeout):
    """True when the server ends the connection within `timeout` (it sends nothing else)."""
    s.settimeout(timeout)
    try:
        return s.recv(4096) == b""
    except (ssl.SSLError, ConnectionError):
        return True
    except socket.timeout:
        return False

half_header = b"GET /api/v1/vms HTTP/1.1\r\nHost: corral\r\nX-Slow: "
mode = sys.argv[1]
if mode == "half-header":
    # One connection that sends half a header and stops: how does it end?
    s = connect("127.0.0.1")
    s.sendall(half_header)
    print("closed" if closed_by_server(s, 60) else "still open after 60 s")
elif mode == "slow-flood":
    # 200 connections that send half a header and hold on, 10 per address (under the per-client
    # limit, so the global one is what they fill). Runs until killed.
    held, refused = [], 0
    for i in range(200):
        try:
            s = connect("127.0.0.%d" % (10 + i // 10), timeout=5)
            s.sendall(half_header)
            held.append(s)
        except (OSError, ssl.SSLError):
            refused += 1
    print("held %d refused %d" % (len(held), refused), flush=True)
    time.sleep(300)
elif mode == "body-before-auth":
    # A request with a big body and no token: the answer comes before any byte of the body.
    s = connect("127.0.0.5")
    s.sendall(b"POST /api/v1/vms HTTP/1.1\r\nHost: corral\r\nContent-Type: application/json\r\n"
              b"Content-Length: 15000000\r\n\r\n")
    s.settimeout(30)
    try:
        print(s.recv(4096).split(b"\r\n")[0].decode())
    except socket.timeout:
        print("no answer within 30 s")
elif mode == "big-bodies":
    # 10 clients at once, each sending a 15 MB body without a token.
    def one(i):
        try:
            s = connect("127.0.0.6")
            s.sendall(b"POST /api/v1/vms HTTP/1.1\r\nHost: corral\r\nContent-Length: 15000000\r\n\r\n")
            s.sendall(b"x" * 15000000)
            time.sleep(3)
        except (OSError, ssl.SSLError):
            pass
    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for t in threads: t.start()
    for t in threads: t.join()
    print("done")
elif mode == "per-client":
    # 16 connections from one address are served; the 17th is refused; another address is not.
    held = []
    for i in range(16):
        s = connect("127.0.0.7")
        held.append(s)
    try:
        s = connect("127.0.0.7", timeout=5)
        s.sendall(b"GET /api/v1/host HTTP/1.1\r\nHost: corral\r\n\r\n")
        print("17th: " + ("refused" if closed_by_server(s, 5) else "served"))
    except (OSError, ssl.SSLError):
        print("17th: refused")
    s = connect("127.0.0.8")
    s.sendall(("GET /api/v1/host HTTP/1.1\r\nHost: corral\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n"
               % sys.argv[4]).encode())
    answer = s.recv(4096).split(b"\r\n")[0].decode()
    print("other address: " + answer)
elif mode == "cut-upload":
    # An upload that stops in the middle: 8 MiB of a declared 64 MiB, then the client is gone.
    token, name = sys.argv[4], sys.argv[5]
    s = connect("127.0.0.9")
    s.sendall(("PUT /api/v1/volumes/default/%s/content HTTP/1.1\r\nHost: corral\r\nAuthorization: Bearer %s\r\n"
               "Content-Length: 67108864\r\n\r\n" % (name, token)).encode())
    s.sendall(b"\1" * (8 << 20))
    time.sleep(1)
    s.close()
    print("cut")
PY
clients() { python3 "$state/clients.py" "$1" "${listen%:*}" "${listen##*:}" "${@:2}"; }
rss_peak_kib() { awk '/^VmHWM/ {print $2}' "/proc/$corrald_pid/status"; }

echo "== corrald --listen 127.0.0.1:0"
corrald_start --listen 127.0.0.1:0 || exit 1
tls_listen || exit 1
api POST /api/v1/tokens '{"name":"ci"}'
token=$(jqb .token)
api GET /api/v1/pools/default
pool_dir=$(jqb .path)
work="$state/work"
mkdir -p "$work"

echo "== slow and hostile clients"
check "a half-sent header is dropped after the deadline" test "$(clients half-header)" = closed
# python itself in the background (not a subshell), so that killing $slow_pid closes its sockets.
python3 "$state/clients.py" slow-flood "${listen%:*}" "${listen##*:}" >"$state/flood" &
slow_pid=$!
for _ in $(seq 100); do [ -s "$state/flood" ] && break; sleep 0.2; done
echo "  flood: $(cat "$state/flood")"
served=""
for _ in $(seq 120); do
  c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --interface 127.0.0.2 --cacert "$state/tls/server.crt" \
      -H "Authorization: Bearer $token" "https://$listen/api/v1/host")
  [ "$c" = 200 ] && { served=yes; break; }
  sleep 0.5
done
check "200 slow connections do not lock out a real client" test "$served" = yes
kill "$slow_pid" 2>/dev/null; wait "$slow_pid" 2>/dev/null; slow_pid=""
refusal_lines=$(grep -ciE "connections? .*refus|refus.* connection" "$state/corrald.log")
check "refused connections are not logged one line each ($refusal_lines lines)" test "$refusal_lines" -le 5
check "a body without a token: 401 before the body is sent" test "$(clients body-before-auth)" = "HTTP/1.1 401 Unauthorized"
before=$(rss_peak_kib)
clients big-bodies >/dev/null
after=$(rss_peak_kib)
echo "  corrald peak RSS: $before KiB before, $after KiB after 10 bodies of 15 MB without a token"
check "bodies sent without a token do not grow corrald's memory (peak +$(( (after - before) / 1024 )) MiB)" \
  test $((after - before)) -lt $((32 * 1024))
clients per-client "$token" >"$state/per-client"
check "a 17th connection from one client address is refused" grep -q "17th: refused" "$state/per-client"
check "  ... while another address is served" grep -q "other address: HTTP/1.1 200" "$state/per-client"
check "corrald is still alive" kill -0 "$corrald_pid"

echo "== uploads (PUT /api/v1/volumes/{pool}/{name}/content)"
put() {   # put FILE NAME [CURL ARGS...]: sets $code and $body
  code=$(curl -s --cacert "$state/tls/server.crt" -H "Authorization: Bearer $token" -T "$1" "${@:3}" \
         -o "$state/body" -w '%{http_code}' "https://$listen/api/v1/volumes/default/$2/content")
  body=$(cat "$state/body")
}
pool_files() { ls -A "$pool_dir" | sort; }
qemu-img create -q -f raw "$work/disk.raw" 64M
printf 'corral upload test: start' | dd of="$work/disk.raw" conv=notrunc status=none
head -c 3000000 /dev/urandom | dd of="$work/disk.raw" bs=1M seek=20 conv=notrunc status=none
printf 'the end' | dd of="$work/disk.raw" bs=1 seek=$((64 * 1024 * 1024 - 7)) conv=notrunc status=none
qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$work/disk.qcow2"

put "$work/disk.qcow2" up-qcow2
check "curl uploads a qcow2 made by qemu-img: 201" test "$code" = 201
check "  ... the volume's size is the image's" test "$(jqb .size_bytes)" = $((64 * 1024 * 1024))
check "  ... the same disk (qemu-img compare)" qemu-img compare -q "$work/disk.raw" "$(jqb .path)"
check "  ... and qemu-img check passes on it" qemu-img check -q "$(jqb .path)"
upload_task=$(jqb .task)
api GET "/api/v1/tasks/$upload_task"
check "  ... the upload is a task in GET /tasks (volume.upload, succeeded)" \
  test "$(jqb .kind)" = volume.upload -a "$(jqb .status)" = succeeded
put "$work/disk.raw" up-raw -H "Transfer-Encoding: chunked"
check "curl uploads a raw image, chunked: 201" test "$code" = 201
check "  ... the same disk" qemu-img compare -q "$work/disk.raw" "$(jqb .path)"
put "$work/disk.raw" up-raw
check "the name taken: 409 naming name" test "$code" = 409 -a "$(jqb .error.field)" = name
R=(--remote "https://$listen" --token "$token" --fingerprint "$fingerprint")
"$corral_bin" "${R[@]}" volume import default/cli-qcow2 "$work/disk.qcow2" >"$state/out" 2>"$state/err"
check "corral --remote volume import uploads a local qcow2 (exit 0)" test $? = 0
check "  ... and says so" grep -q "imported $work/disk.qcow2 as default/cli-qcow2" "$state/out"
check "  ... with progress on stderr" grep -q "upload default/cli-qcow2: 100%" "$state/err"
api GET /api/v1/volumes/default/cli-qcow2
check "  ... the same disk" qemu-img compare -q "$work/disk.raw" "$(jqb .path)"
"$corral_bin" "${R[@]}" volume import default/cli-raw "$work/disk.raw" >/dev/null 2>&1
api GET /api/v1/volumes/default/cli-raw
check "corral --remote volume import uploads a raw file too" qemu-img compare -q "$work/disk.raw" "$(jqb .path)"

files_before=$(pool_files)
printf 'this is not a disk image\n' >"$work/text.txt"
put "$work/text.txt" bad-text
check "not an image: 400 naming body" test "$code" = 400 -a "$(jqb .error.field)" = body
qemu-img create -q -f qcow2 -b "$work/disk.qcow2" -F qcow2 "$work/overlay.qcow2"
put "$work/overlay.qcow2" bad-backing
check "a qcow2 with a backing file: 400" test "$code" = 400 -a "$(jqb .error.field)" = body
check "  ... saying it has a backing file" grep -q "backing file" <<<"$(jqb .error.message)"
cp "$work/disk.qcow2" "$work/corrupt.qcow2"
# l1_table_offset (header bytes 40-47) pointing far past the end of the file.
printf '\x00\x00\x7f\xff\xff\xff\x00\x00' | dd of="$work/corrupt.qcow2" bs=1 seek=40 conv=notrunc status=none
put "$work/corrupt.qcow2" bad-header
check "a qcow2 with a corrupt header: 400" test "$code" = 400 -a "$(jqb .error.field)" = body
head -c 1048576 /dev/zero >"$work/vmdk.img"; printf 'KDMV' | dd of="$work/vmdk.img" conv=notrunc status=none
put "$work/vmdk.img" bad-vmdk
check "a VMDK image: 400 saying to convert it" test "$code" = 400 -a "$(grep -c 'qemu-img convert' <<<"$body")" = 1
code=$(curl -s --cacert "$state/tls/server.crt" -H "Authorization: Bearer $token" -X PUT -H "Content-Length: 4000000000000" \
       -o "$state/body" -w '%{http_code}' "https://$listen/api/v1/volumes/default/huge/content"); body=$(cat "$state/body")
check "a body over the upload limit: 413 naming Content-Length, before it is sent" \
  test "$code" = 413 -a "$(jqb .error.field)" = Content-Length
"$corral_bin" "${R[@]}" volume import default/bad-text "$work/text.txt" >"$state/out" 2>"$state/err"
check "corral --remote volume import of a text file: exit 1 with the reason" \
  bash -c "test $? = 1 && grep -q 'not a qcow2 image' '$state/err'"
clients cut-upload "$token" cut >/dev/null
# The cut is noticed when the connection ends; its task then fails.
for _ in $(seq 50); do
  api GET /api/v1/tasks
  [ "$(jqb '[.[] | select(.target == "default/cut")][0].status')" = failed ] && break
  sleep 0.2
done
check "refused and cut uploads left nothing in the pool folder" test "$(pool_files)" = "$files_before"
api GET /api/v1/volumes/default/cut
check "  ... and no volume" test "$code" = 404
api GET /api/v1/tasks
check "the cut upload's task failed" test "$(jqb '[.[] | select(.target == "default/cut")][0].status')" = failed

echo "== downloads (GET /api/v1/volumes/{pool}/{name}/content)"
code=$(curl -s --cacert "$state/tls/server.crt" -H "Authorization: Bearer $token" -o "$work/down.raw" -w '%{http_code}' \
       "https://$listen/api/v1/volumes/default/up-qcow2/content")
check "curl downloads a volume (raw by default): 200" test "$code" = 200
check "  ... the same disk, byte for byte" cmp -s "$work/disk.raw" "$work/down.raw"
code=$(curl -s --cacert "$state/tls/server.crt" -H "Authorization: Bearer $token" -o "$work/down.qcow2" -w '%{http_code}' \
       "https://$listen/api/v1/volumes/default/up-raw/content?format=qcow2")
check "?format=qcow2: 200, a qcow2 qemu-img checks" bash -c "test $code = 200 && qemu-img check -q '$work/down.qcow2'"
check "  ... the same disk" qemu-img compare -q "$work/disk.raw" "$work/down.qcow2"
tls_api "$token" GET "/api/v1/volumes/default/up-raw/content?format=vmdk"
check "?format=vmdk: 400 naming format" test "$code" = 400 -a "$(jqb .error.field)" = format
"$corral_bin" "${R[@]}" volume export default/cli-raw "$work/cli-export.qcow2" >"$state/out" 2>"$state/err"
check "corral --remote volume export downloads into a new local file (exit 0)" test $? = 0
check "  ... the same disk (qemu-img compare)" qemu-img compare -q "$work/disk.raw" "$work/cli-export.qcow2"
"$corral_bin" "${R[@]}" volume export default/cli-raw "$work/cli-export.qcow2" >"$state/out" 2>"$state/err"
check "  ... an existing file is not overwritten (exit 1)" test $? = 1
"$corral_bin" "${R[@]}" volume export --format raw default/nope "$work/nope.raw" >"$state/out" 2>"$state/err"
check "exporting a missing volume: exit 1, no file left" bash -c "test $? = 1 && ! ls -A '$work' | grep -q nope"
check "no temporary files left in the pool" bash -c "! ls -A '$pool_dir' | grep -q corral-tmp"
check "corrald is still alive" kill -0 "$corrald_pid"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
