#!/usr/bin/env bash
# tests/integration/daemon/host_boundary.sh: a token manages VMs; it does not own the host
# (issue 9). Every route of the API is called over TLS with a valid token, with host paths outside
# corrald's state folder (/etc/shadow, a secret in a temporary folder, symlinks out of an allowed
# folder, new files in /etc and elsewhere), host bridges and taps; then:
#   - requests naming a host path answer 403 naming the field and how the administrator allows it;
#   - nothing outside the state folder and the allowed folder was opened, created or changed
#     (inotifywait on the watched places, before/after listings and checksums), and the secrets
#     are in no volume;
#   - corrald --allow-path DIR lets them through only beneath DIR (no symlink out of it), and
#     --allow-bridge NAME lets a NIC join that bridge only;
#   - the same requests on the unix socket still work;
#   - disk sharing rules: a volume with linked clones is never attached writable (409 naming
#     disks[i].volume), a readonly attach of a volume another VM writes is refused, at create
#     and again at start.
# Runs in its own network and mount namespaces (the bridges it makes are its own). Needs root.
# Exit status: 0 all passed, 1 a check failed, 77 skipped. Ends with "N passed, N failed".
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (a network namespace with bridges, and /etc/shadow as the secret to protect)"
  exit 77
fi
repo=$(cd "$(dirname "$script")/../../.." && pwd)
# shellcheck source=../../lib/netns.sh
. "$repo/tests/lib/netns.sh"
enter_own_netns "$script" "$@"
ip link add hbbr0 type bridge && ip link add hbbr1 type bridge || { echo "cannot make bridges here"; exit 1; }

build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/host-boundary.XXXXXX")
watch_pid=""
rand=$RANDOM$RANDOM
cleanup() {
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null
  corrald_stop
  rm -rf -- "$state" "$work"
  rm -f "/etc/cron.d/corral-hb-$rand" "/etc/corral-hb-$rand.raw"
  rm -rf "/etc/corral-hb-pool-$rand"
}
trap cleanup EXIT

# expect_403 FIELD: the last answer is a 403 naming FIELD
expect_403() {
  [ "$code" = 403 ] && [ "$(jqb .error.field)" = "$1" ] && return 0
  echo "  got $code: $body"
  return 1
}
says() { grep -qF -- "$1" <<<"$(jqb .error.message)" || { echo "  message: $(jqb .error.message)"; return 1; }; }

# Every route the test calls over TLS, to compare with the OpenAPI document at the end.
called=()
tcall() {   # tcall METHOD PATH [JSON]: tls_api with the token, noting the route
  called+=("$1 $2")
  tls_api "$token" "$@"
  [ "${code:0:1}" != 5 ] && [ "$code" != 000 ] || echo "  $1 $2 answered $code: $body"
}
route_of() {   # the OpenAPI pattern of a concrete path
  sed -E -e 's#^/api/v1/(vms|images|pools|tasks|tokens|networks|security-groups|backup-repositories|backups|alarms|backup-schedules|migrations)/[^/]+#/api/v1/\1/{x}#' \
    -e 's#/(nics|rules)/[^/]+#/\1/{i}#' -e 's#[?].*##' -e 's#/snapshots/[^/]+#/snapshots/{s}#' \
    -e 's#^/api/v1/volumes/[^/]+/[^/]+#/api/v1/volumes/{pool}/{name}#' -e 's#^/ui/.*#/ui/{path*}#' <<<"$1"
}

echo "== the places a client must not reach"
mkdir -p "$work/canary" "$work/outside" "$work/allowed/sub"
secret="CORRAL-SECRET-$rand"
{ printf '%s\n' "$secret"; head -c 1M /dev/zero; } >"$work/canary/secret.raw"
printf '%s\n' "$secret" >"$work/canary/secret.txt"
ln -s ../canary/secret.raw "$work/allowed/link-out.raw"   # relative symlink out of the allowed folder
ln -s /etc/shadow "$work/allowed/shadow-link"                # absolute symlink out of it
ln -s ../canary "$work/allowed/dir-out"                      # a folder symlink out of it
qemu-img create -q -f qcow2 -b "$work/canary/secret.raw" -F raw "$work/allowed/backed.qcow2"
ok_marker="CORRAL-ALLOWED-$rand"
{ printf '%s\n' "$ok_marker"; head -c 1M /dev/zero; } >"$work/allowed/good.raw"
cp "$work/allowed/good.raw" "$work/allowed/sub/kernel"
shadow_line=$(head -n1 /etc/shadow)
listing() { (cd "$work" && find canary outside -printf '%p %s %T@ %m\n' | sort && sha256sum canary/*); }
listing >"$work/before.txt"
# Watched: the canary and outside folders, /etc/shadow and /etc/cron.d. Any open, read, write,
# create or delete there while TCP clients are served is a failure.
inotifywait -q -m -r -e open,access,modify,create,delete,moved_to,attrib --format '%w%f %e' \
  "$work/canary" "$work/outside" /etc/shadow /etc/cron.d >"$work/events.txt" 2>"$work/watch.err" &
watch_pid=$!
for ((i = 0; i < 50; i++)); do grep -q "Watches established" "$work/watch.err" 2>/dev/null && break; sleep 0.1; done
sleep 0.5

echo "== corrald --listen, nothing allowed: every route over TLS"
corrald_start --listen 127.0.0.1:0 || exit 1
tls_listen || { echo "no TCP listener"; exit 1; }
api POST /api/v1/tokens '{"name":"remote"}'
token=$(jqb .token)
# Some things to act on, made on the host.
api POST /api/v1/volumes '{"name":"vol1","size":"8M"}'
api POST /api/v1/volumes '{"name":"base","size":"8M"}'
api POST /api/v1/volumes '{"name":"base-c1","from":{"volume":"base"}}'
check "a linked clone of base (over the unix socket)" test "$code" = 201

tcall GET /api/v1/host
check "GET /host: 200" test "$code" = 200
tcall GET /api/v1/host/capacity
check "GET /host/capacity: 200" test "$code" = 200
tcall PATCH /api/v1/host/capacity '{"vcpus_per_cpu":4,"memory_percent":90}'
check "PATCH /host/capacity (the defaults): 200" test "$code" = 200
tcall POST /api/v1/host/capacity/plan '{"shape":{"vcpus":1,"memory_mib":512}}'
check "POST /host/capacity/plan: 200 (it reads the metrics history, no host path)" test "$code" = 200
tcall GET /api/v1/host/doctor
check "GET /host/doctor: 200" test "$code" = 200
tcall GET /api/v1/openapi.json
check "GET /openapi.json: 200" test "$code" = 200
tcall GET /metrics
check "GET /metrics: 200" test "$code" = 200

tcall POST /api/v1/volumes '{"name":"shadow","import":"/etc/shadow"}'
check "import /etc/shadow: 403 naming import" expect_403 import
check "  ... saying how the administrator allows it" says "corrald --allow-path DIR"
tcall POST /api/v1/volumes "{\"name\":\"secret\",\"import\":\"$work/canary/secret.raw\"}"
check "import a secret file elsewhere: 403 naming import" expect_403 import
tcall POST /api/v1/volumes '{"name":"vol2","size":"8M"}'
check "a volume without host paths: 201" test "$code" = 201
tcall GET /api/v1/volumes
check "GET /volumes: 200, no volume from a host file" test "$code" = 200 -a "$(jqb 'map(.name) | sort | join(",")')" = "base,base-c1,vol1,vol2"
tcall GET /api/v1/volumes/default/vol2
check "GET /volumes/default/vol2: 200" test "$code" = 200
tcall POST /api/v1/volumes/default/vol2/resize '{"size":"16M"}'
check "resize: 200" test "$code" = 200
tcall POST /api/v1/volumes/default/vol1/export "{\"path\":\"/etc/cron.d/corral-hb-$rand\",\"format\":\"raw\"}"
check "export into /etc/cron.d: 403 naming path" expect_403 path
tcall POST /api/v1/volumes/default/vol1/export "{\"path\":\"$work/outside/new.qcow2\"}"
check "export to a new file elsewhere: 403 naming path" expect_403 path
# Data moves between client and host by streaming (no host path involved): allowed with a token.
head -c 1M /dev/urandom >"$state/upload.raw"
stream_call() {   # stream_call METHOD PATH CURL-ARGS...: a streamed body (no JSON), noting the route
  called+=("$1 $2")
  local method=$1 path=$2; shift 2
  code=$(curl -s --cacert "$state/tls/server.crt" -H "Authorization: Bearer $token" -X "$method" \
    -w '%{http_code}' "$@" "https://$listen$path")
}
stream_call PUT /api/v1/volumes/default/upl1/content -T "$state/upload.raw" -o "$state/body"
check "upload a raw image over TLS: 201" test "$code" = 201
stream_call GET /api/v1/volumes/default/upl1/content -o "$state/download.raw"
check "download it over TLS: 200, the same bytes" eval 'test "$code" = 200 && cmp -s "$state/upload.raw" "$state/download.raw"'
tcall DELETE /api/v1/volumes/default/upl1
tcall DELETE /api/v1/volumes/default/vol2
check "DELETE a volume: 200" test "$code" = 200

tcall POST /api/v1/pools '{"name":"etc","path":"/etc"}'
check "pool on /etc: 403 naming path" expect_403 path
tcall POST /api/v1/pools "{\"name\":\"etc2\",\"path\":\"/etc/corral-hb-pool-$rand\"}"
check "pool on a new folder in /etc: 403 naming path" expect_403 path
tcall GET /api/v1/pools
check "GET /pools: only the default pool" test "$code" = 200 -a "$(jqb 'map(.name) | join(",")')" = default
tcall GET /api/v1/pools/default
check "GET /pools/default: 200" test "$code" = 200
tcall DELETE /api/v1/pools/nope
check "DELETE /pools/nope: 404" test "$code" = 404

tcall POST /api/v1/images '{"name":"shadow","kernel":"/etc/shadow","root":"/etc/shadow"}'
check "image with kernel /etc/shadow: 403 naming kernel" expect_403 kernel
tcall POST /api/v1/images "{\"name\":\"shadow\",\"kernel\":\"$work/canary/secret.txt\",\"initrd\":\"/etc/shadow\",\"root\":\"$work/canary/secret.raw\"}"
check "image with outside files: 403 naming the first one (kernel)" expect_403 kernel
tcall GET /api/v1/images
check "GET /images: none" test "$code" = 200 -a "$(jqb length)" = 0
tcall GET /api/v1/images/shadow
check "GET /images/shadow: 404" test "$code" = 404
tcall DELETE /api/v1/images/shadow
check "DELETE /images/shadow: 404" test "$code" = 404

tcall POST /api/v1/vms '{"name":"n1","nics":[{"bridge":"hbbr0"}]}'
check "a NIC on a host bridge: 403 naming nics[0].bridge" expect_403 "nics[0].bridge"
check "  ... saying how the administrator allows it" says "corrald --allow-bridge NAME"
tcall POST /api/v1/vms '{"name":"n1","nics":[{"tap":"hbtap0"}]}'
check "a NIC on an existing tap: 403 naming nics[0].tap" expect_403 "nics[0].tap"
tcall POST /api/v1/vms '{"name":"w1","disks":[{"volume":"base"}]}'
check "base with linked clones attached writable: 409 naming disks[0].volume" \
  test "$code" = 409 -a "$(jqb .error.field)" = "disks[0].volume"
check "  ... saying to attach it readonly or make a full clone" says "attach it readonly, or make a full clone"
tcall POST /api/v1/vms '{"name":"r1","disks":[{"volume":"base","readonly":true}]}'
check "base with linked clones attached readonly: 201" test "$code" = 201
tcall POST /api/v1/vms '{"name":"w2","disks":[{"volume":"vol1"}]}'
check "vol1 attached writable: 201" test "$code" = 201
tcall POST /api/v1/vms '{"name":"r2","disks":[{"volume":"vol1","readonly":true}]}'
check "a readonly attach of a volume another VM writes: 409 naming disks[0].volume" \
  test "$code" = 409 -a "$(jqb .error.field)" = "disks[0].volume"
tcall POST /api/v1/vms '{"name":"w3","disks":[{"volume":"base-c1"},{"volume":"base-c1","readonly":true}]}'
check "the same volume twice, once writable: 409 naming disks[0].volume" \
  test "$code" = 409 -a "$(jqb .error.field)" = "disks[0].volume"
tcall GET /api/v1/vms
check "GET /vms: r1 and w2 only" test "$code" = 200 -a "$(jqb 'map(.name) | join(",")')" = "r1,w2"
tcall GET /api/v1/vms/w2
check "GET /vms/w2: 200" test "$code" = 200
tcall PATCH /api/v1/vms/w2 '{"nics":[{"bridge":"hbbr1"}]}'
check "edit: a NIC on a host bridge: 403 naming nics[0].bridge" expect_403 "nics[0].bridge"
tcall PATCH /api/v1/vms/w2 '{"memory_mib":128}'
check "edit without NICs: 200" test "$code" = 200
tcall GET /api/v1/vms/w2/console
check "GET /vms/w2/console (plain): 200" test "$code" = 200
tcall GET /api/v1/vms/w2/screenshot
check "GET /vms/w2/screenshot of a VM without a display: 409" test "$code" = 409
tcall GET /api/v1/vms/w2/vnc
check "GET /vms/w2/vnc without an upgrade: 400" test "$code" = 400
tcall GET /api/v1/vms/w2/metrics
check "GET /vms/w2/metrics of a stopped VM: 200" test "$code" = 200
tcall PUT /api/v1/vms/w2/balloon '{"target_mib": 64}'
check "PUT /vms/w2/balloon of a stopped VM: 200, kept ($code)" test "$code" = 200
tcall GET /api/v1/vms/w2/balloon
check "GET /vms/w2/balloon of a stopped VM: 200, the kept target, no host path in it" \
  bash -c "[ $code = 200 ] && [ '$(jqb .target_mib)' = 64 ] && ! grep -q '\"/' <<<'$body'"
tcall PUT /api/v1/vms/w2/balloon '{"clear": true}'
check "PUT /vms/w2/balloon clear: 200 ($code)" test "$code" = 200
tcall GET /api/v1/host/metrics
check "GET /host/metrics over TLS: 200" test "$code" = 200
# Snapshots name no host path: a token takes, lists, restores and deletes them like the socket does.
tcall POST /api/v1/vms/w2/snapshots '{"name":"s1","description":"over TLS"}'
check "snapshot of the stopped w2: 202" test "$code" = 202
wait_task "$(jqb .task)" 60
check "  ... that succeeds" test "$(jqb .status)" = succeeded
tcall GET /api/v1/vms/w2/snapshots
check "GET /vms/w2/snapshots: s1, ready" test "$code" = 200 -a "$(jqb 'map(.name + ":" + .status) | join(",")')" = "s1:ready"
tcall GET /api/v1/vms/w2/snapshots/s1
check "GET /vms/w2/snapshots/s1: 200, kind disk" test "$code" = 200 -a "$(jqb .kind)" = disk
tcall POST /api/v1/vms/w2/snapshots/s1/restore
check "restore s1: 202" test "$code" = 202
wait_task "$(jqb .task)" 60
check "  ... that succeeds" test "$(jqb .status)" = succeeded
tcall POST /api/v1/vms/w2/snapshots/s1/clone '{"name":"w2c"}'
check "clone from s1 (a stopped VM's disk snapshot): 409, no memory state to clone from" \
  test "$code" = 409 -a -n "$(jqb .error.message | grep 'no memory state')"
tcall DELETE /api/v1/vms/w2/snapshots/s1
check "DELETE /vms/w2/snapshots/s1: 200" test "$code" = 200
# A linked clone made behind corrald's back (an older corrald, a script): the next start checks again.
vol1_path=$(curl -s --unix-socket "$sock" http://corral/api/v1/volumes/default/vol1 | jq -r .path)
qemu-img create -q -f qcow2 -b "$(basename "$vol1_path")" -F qcow2 "$(dirname "$vol1_path")/vol1-c1.qcow2"
tcall PUT /api/v1/vms/w2/state '{"action":"start"}'
check "start w2 once vol1 has a linked clone: 409 naming disks[0].volume" \
  test "$code" = 409 -a "$(jqb .error.field)" = "disks[0].volume"
tcall POST /api/v1/volumes '{"name":"w2-c2","from":{"volume":"vol1"}}'
check "a linked clone of a volume a VM attaches writable: 409 naming from.volume" \
  test "$code" = 409 -a "$(jqb .error.field)" = "from.volume"
tcall DELETE /api/v1/vms/r1
check "DELETE /vms/r1: 200" test "$code" = 200
tcall GET /api/v1/tasks
check "GET /tasks: 200" test "$code" = 200
tcall GET /api/v1/tasks/t-999
check "GET /tasks/t-999: 404" test "$code" = 404
tcall POST /api/v1/tasks/t-999/cancel
check "POST /tasks/t-999/cancel: 404" test "$code" = 404
tcall GET /api/v1/events
check "GET /events without the upgrade: 400" test "$code" = 400
tcall GET /api/v1/tokens
check "GET /tokens: 403" test "$code" = 403
tcall POST /api/v1/tokens '{"name":"more"}'
check "POST /tokens: 403" test "$code" = 403
tcall DELETE /api/v1/tokens/remote
check "DELETE /tokens/remote: 403" test "$code" = 403
# The web UI: its files (whether or not this build made them) and sessions.
tcall GET /
check "GET /: the UI's page, or 404 saying it is not built" test "$code" = 200 -o "$code" = 404
tcall GET /ui/index.html
check "GET /ui/index.html: the same page, or 404" test "$code" = 200 -o "$code" = 404
tcall POST /api/v1/session "{\"token\":\"$token\"}"
check "POST /session with the token: 201" test "$code" = 201
tcall GET /api/v1/session
check "GET /session with a token, no cookie: 404" test "$code" = 404
tcall DELETE /api/v1/session
check "DELETE /session with a token, no cookie: 404" test "$code" = 404
tcall POST /api/v1/session/links '{}'
check "POST /session/links: 403 (on the host only)" test "$code" = 403
# Backups: a repository's folder and key file are host paths; backups themselves name none.
tcall POST /api/v1/backup-repositories "{\"name\":\"r1\",\"path\":\"/etc/corral-hb-repo-$rand\",\"create\":true}"
check "a backup repository in /etc: 403 naming path" expect_403 path
check "  ... and nothing made" test ! -e "/etc/corral-hb-repo-$rand"
tcall POST /api/v1/backup-repositories "{\"name\":\"r1\",\"path\":\"$work/outside/repo\",\"key\":\"/etc/shadow\"}"
check "a backup repository anywhere, with /etc/shadow as its key: 403" test "$code" = 403
tcall GET /api/v1/backup-repositories
check "GET /backup-repositories: 200" test "$code" = 200
tcall GET /api/v1/backup-repositories/r1
check "GET /backup-repositories/r1: 404" test "$code" = 404
tcall DELETE /api/v1/backup-repositories/r1
check "DELETE /backup-repositories/r1: 404" test "$code" = 404
tcall POST /api/v1/backup-repositories/r1/prune '{"keep_last":1}'
check "POST /backup-repositories/r1/prune: 404" test "$code" = 404
tcall POST /api/v1/backup-repositories/r1/gc
check "POST /backup-repositories/r1/gc: 404" test "$code" = 404

echo "== live migration routes: no host path in, none out"
tcall POST /api/v1/vms/w2/migrate '{"to":"https://127.0.0.1:1","token":"x","ca_cert":"/etc/shadow"}'
check "migrate naming a CA file: 400, ca_cert is no field (the CA comes as PEM text)" \
  test "$code" = 400 -a "$(jqb .error.field)" = ca_cert
tcall POST /api/v1/vms/w2/migrate '{"to":"file:///etc/shadow","token":"x"}'
check "migrate to a file URL: 400 naming to" test "$code" = 400 -a "$(jqb .error.field)" = to
tcall POST /api/v1/vms/w2/migrate '{"to":"https://127.0.0.1:1","token":"x","ca_cert_pem":"/etc/shadow"}'
check "a path as ca_cert_pem: 400 naming it" test "$code" = 400 -a "$(jqb .error.field)" = ca_cert_pem
tcall POST /api/v1/migrations '{"name":"m1","nics":[],"disks":[{"volume":"../../../etc/shadow"}],"migration":{}}'
check "an incoming VM's disk as a path: 400 naming disks[0].volume" \
  test "$code" = 400 -a "$(jqb .error.field)" = "disks[0].volume"
tcall POST /api/v1/migrations '{"name":"m1","nics":[{"tap":"hbtap0"}],"migration":{}}'
check "an incoming VM on a host tap: 403 naming nics[0].tap" expect_403 "nics[0].tap"
tcall GET /api/v1/migrations/nope/stream
check "GET /migrations/nope/stream: 4xx" test "${code:0:1}" = 4
tcall GET /api/v1/migrations/nope/disks
check "GET /migrations/nope/disks: 4xx" test "${code:0:1}" = 4
tcall POST /api/v1/migrations/nope/finish
check "POST /migrations/nope/finish: 404" test "$code" = 404
tcall DELETE /api/v1/migrations/nope
check "DELETE /migrations/nope: 404" test "$code" = 404
tcall GET /api/v1/backups
check "GET /backups: 200" test "$code" = 200
tcall POST /api/v1/backups '{"vm":"w2"}'
check "POST /backups with no repository: 400 naming repository" test "$code" = 400 -a "$(jqb .error.field)" = repository
tcall GET /api/v1/backups/w2-none
check "GET /backups/w2-none: 404" test "$code" = 404
tcall DELETE /api/v1/backups/w2-none
check "DELETE /backups/w2-none: 404" test "$code" = 404
tcall POST /api/v1/backups/w2-none/verify
check "POST /backups/w2-none/verify: 404" test "$code" = 404
tcall POST /api/v1/backups/w2-none/restore '{"as":"w3"}'
check "POST /backups/w2-none/restore: 404" test "$code" = 404
# Alarms: corrald POSTs each firing to the rule's webhook, so a webhook is a request corrald
# sends where the client says (SSRF: the host's or its network's private services).
tcall POST /api/v1/alarms '{"name":"a1","metric":"vm.cpu","above":0.5,"webhook":"http://127.0.0.1:22/"}'
check "an alarm whose webhook is a service on the host: 403 naming webhook" expect_403 webhook
check "  ... saying how the administrator allows it" says "corrald --allow-webhook URL-PREFIX"
tcall POST /api/v1/alarms '{"name":"a1","metric":"vm.cpu","above":0.5,"webhook":"http://169.254.169.254/latest"}'
check "an alarm whose webhook is a metadata service: 403 naming webhook" expect_403 webhook
tcall GET /api/v1/alarms/a1
check "  ... and no alarm was made (GET /alarms/a1: 404)" test "$code" = 404
tcall POST /api/v1/alarms '{"name":"a1","metric":"vm.cpu","above":0.5}'
check "an alarm without a webhook: 201" test "$code" = 201
tcall GET /api/v1/alarms
check "GET /alarms: 200" test "$code" = 200 -a "$(jqb 'map(.name) | join(",")')" = a1
tcall DELETE /api/v1/alarms/a1
check "DELETE /alarms/a1: 200" test "$code" = 200
tcall POST /api/v1/backups/w2-none/verify '{"boot":true}'
check "POST /backups/w2-none/verify with boot: 404" test "$code" = 404
# Backup schedules name a VM and a repository by name, never a host path.
tcall GET /api/v1/backup-schedules
check "GET /backup-schedules: 200" test "$code" = 200
tcall POST /api/v1/backup-schedules '{"vm":"w2","time":"02:00"}'
check "POST /backup-schedules with no repository: 400 naming repository" test "$code" = 400 -a "$(jqb .error.field)" = repository
tcall GET /api/v1/backup-schedules/none
check "GET /backup-schedules/none: 404" test "$code" = 404
tcall DELETE /api/v1/backup-schedules/none
check "DELETE /backup-schedules/none: 404" test "$code" = 404
tcall POST /api/v1/backup-schedules/none/run
check "POST /backup-schedules/none/run: 404" test "$code" = 404

echo "== corrald --allow-path $work/allowed --allow-bridge hbbr0 --allow-tap hbtap9 --allow-webhook http://127.0.0.1:8099/hooks"
corrald_stop
corrald_start --listen 127.0.0.1:0 --allow-path "$work/allowed" --allow-bridge hbbr0 --allow-tap hbtap9 \
  --allow-webhook http://127.0.0.1:8099/hooks || exit 1
tls_listen
tcall POST /api/v1/alarms '{"name":"a2","metric":"host.cpu","above":0.99,"webhook":"http://127.0.0.1:8099/hooks/ci"}'
check "a webhook under the allowed prefix: 201" test "$code" = 201
for url in http://127.0.0.1:8099/hooks.evil http://127.0.0.10:8099/hooks http://127.0.0.1:8099/other \
  https://127.0.0.1:8099/hooks; do
  tcall POST /api/v1/alarms "{\"name\":\"a3\",\"metric\":\"host.cpu\",\"above\":0.99,\"webhook\":\"$url\"}"
  check "a webhook $url (not under the prefix): 403 naming webhook" expect_403 webhook
done
check "  ... naming the allowed prefix" says "allowed: http://127.0.0.1:8099/hooks"
tcall POST /api/v1/volumes "{\"name\":\"good\",\"import\":\"$work/allowed/good.raw\"}"
check "import inside the allowed folder: a task" test "$code" = 202
wait_task "$(jqb .task)" 60
check "  ... that succeeds" test "$(jqb .status)" = succeeded
tcall POST /api/v1/volumes "{\"name\":\"dots\",\"import\":\"$work/allowed/../canary/secret.raw\"}"
check "import via '..' out of the allowed folder: 403 naming import" expect_403 import
tcall POST /api/v1/volumes "{\"name\":\"link\",\"import\":\"$work/allowed/link-out.raw\"}"
check "import through a relative symlink out of it: 403 naming import" expect_403 import
check "  ... saying it leaves the allowed folder" says "leaves the allowed folder"
tcall POST /api/v1/volumes "{\"name\":\"shadow\",\"import\":\"$work/allowed/shadow-link\"}"
check "import through a symlink to /etc/shadow: 403 naming import" expect_403 import
tcall POST /api/v1/volumes "{\"name\":\"dirlink\",\"import\":\"$work/allowed/dir-out/secret.raw\"}"
check "import through a folder symlink out of it: 403 naming import" expect_403 import
tcall POST /api/v1/volumes "{\"name\":\"backed\",\"import\":\"$work/allowed/backed.qcow2\"}"
check "import of a qcow2 whose backing file is outside: 403 naming import" expect_403 import
tcall POST /api/v1/volumes '{"name":"shadow","import":"/etc/shadow"}'
check "import /etc/shadow: still 403" expect_403 import
check "  ... naming the allowed folder" says "$work/allowed"
tcall POST /api/v1/volumes/default/good/export "{\"path\":\"$work/allowed/out.raw\",\"format\":\"raw\"}"
check "export inside the allowed folder: a task" test "$code" = 202
wait_task "$(jqb .task)" 60
check "  ... that succeeds" test "$(jqb .status)" = succeeded
check "  ... and wrote the volume's bytes there" cmp -s "$work/allowed/good.raw" "$work/allowed/out.raw"
tcall POST /api/v1/volumes/default/good/export "{\"path\":\"$work/allowed/dir-out/new.raw\",\"format\":\"raw\"}"
check "export through a folder symlink out of it: 403 naming path" expect_403 path
tcall POST /api/v1/volumes/default/good/export "{\"path\":\"$work/allowed/link-out.raw\"}"
check "export onto a symlink in it: 409 naming path" test "$code" = 409 -a "$(jqb .error.field)" = path
tcall POST /api/v1/volumes/default/good/export "{\"path\":\"/etc/corral-hb-$rand.raw\"}"
check "export into /etc: still 403" expect_403 path
tcall POST /api/v1/pools "{\"name\":\"p1\",\"path\":\"$work/allowed/pools/p1\"}"
check "a pool inside the allowed folder: 201" test "$code" = 201 -a "$(jqb .path)" = "$(readlink -f "$work/allowed")/pools/p1"
tcall POST /api/v1/pools "{\"name\":\"p2\",\"path\":\"$work/allowed/dir-out/p2\"}"
check "a pool through a folder symlink out of it: 403 naming path" expect_403 path
tcall POST /api/v1/volumes/default/good/export "{\"path\":\"$work/allowed/pools/p1/evil.qcow2\",\"format\":\"raw\"}"
check "export into a pool's folder (it would become a volume): 409 naming path" \
  test "$code" = 409 -a "$(jqb .error.field)" = path
tcall POST /api/v1/pools "{\"name\":\"p4\",\"path\":\"$work/allowed/sub\"}"
check "a pool over a folder with files in it: 409 naming path" test "$code" = 409 -a "$(jqb .error.field)" = path
tcall DELETE /api/v1/pools/p1
check "DELETE /pools/p1: 200" test "$code" = 200
tcall POST /api/v1/backup-repositories "{\"name\":\"r2\",\"path\":\"$work/allowed/repos/r2\",\"create\":true}"
check "a backup repository inside the allowed folder: 201" test "$code" = 201 -a -f "$work/allowed/repos/r2/config.json"
tcall POST /api/v1/backup-repositories "{\"name\":\"r3\",\"path\":\"$work/allowed/dir-out/r3\",\"create\":true}"
check "a backup repository through a folder symlink out of it: 403 naming path" expect_403 path
tcall POST /api/v1/backup-repositories "{\"name\":\"r3\",\"path\":\"$work/allowed/repos/r2\",\"key\":\"$work/allowed/shadow-link\"}"
check "a key file that is a symlink to /etc/shadow: 403 naming key" expect_403 key
tcall POST /api/v1/images "{\"name\":\"img1\",\"kernel\":\"$work/allowed/sub/kernel\",\"root\":\"$work/allowed/good.raw\"}"
check "an image from files inside the allowed folder: a task" test "$code" = 202
wait_task "$(jqb .task)" 60
check "  ... that succeeds" test "$(jqb .status)" = succeeded
tcall POST /api/v1/images "{\"name\":\"img2\",\"kernel\":\"$work/allowed/sub/kernel\",\"initrd\":\"$work/allowed/shadow-link\",\"root\":\"$work/allowed/good.raw\"}"
check "an image whose initrd is a symlink to /etc/shadow: 403 naming initrd" expect_403 initrd
tcall POST /api/v1/images "{\"name\":\"img2\",\"kernel\":\"$work/allowed/sub/kernel\",\"root\":\"$work/allowed/backed.qcow2\"}"
check "an image whose root has a backing file outside: 403 naming root" expect_403 root
tcall POST /api/v1/vms '{"name":"n1","nics":[{"bridge":"hbbr0"}]}'
check "a NIC on the allowed bridge: 201" test "$code" = 201
tcall POST /api/v1/vms '{"name":"n2","nics":[{"bridge":"hbbr1"}]}'
check "a NIC on another bridge: 403 naming nics[0].bridge" expect_403 "nics[0].bridge"
check "  ... naming the allowed ones" says "allowed: hbbr0"
tcall POST /api/v1/vms '{"name":"n2","nics":[{"bridge":"hbbr0"},{"tap":"hbtap0"}]}'
check "a NIC on an existing tap: 403 naming nics[1].tap" expect_403 "nics[1].tap"
tcall POST /api/v1/vms '{"name":"n4","nics":[{"tap":"hbtap9"}]}'
check "a NIC on the allowed tap: 201" test "$code" = 201
# A network names host interfaces too: bridged (bridge) and vlan (parent) are held to --allow-bridge.
tcall POST /api/v1/networks '{"name":"hbn1","kind":"bridged","bridge":"hbbr1"}'
check "a bridged network on another host bridge: 403 naming bridge" expect_403 "bridge"
tcall POST /api/v1/networks '{"name":"hbn0","kind":"bridged","bridge":"hbbr0"}'
check "a bridged network on the allowed bridge: 201" test "$code" = 201
tcall GET /api/v1/networks
check "networks listed over TLS: 200 with hbn0" test "$code" = 200 -a "$(jqb '[.[].name] | index("hbn0") != null')" = true
tcall GET /api/v1/networks/hbn0
check "network hbn0 shown over TLS: 200" test "$code" = 200
tcall PATCH /api/v1/networks/hbn0 '{"bridge":"hbbr1"}'
check "a network edited onto another bridge: 4xx, not applied" test "${code:0:1}" = 4
tcall GET /api/v1/networks/hbn0/leases
check "its leases over TLS: 200" test "$code" = 200
tcall GET "/api/v1/networks/hbn0/trace?from=n4&to=192.0.2.9&protocol=tcp&port=22"
check "a trace over TLS from a VM without a NIC on the network: 400 naming from" \
  test "$code/$(jqb .error.field)" = "400/from"
# Security groups name no host object: the same over TLS as over the socket.
tcall POST /api/v1/security-groups '{"name":"hbsg","rules":[{"protocol":"tcp","port_from":22}]}'
check "a security group created over TLS: 201" test "$code" = 201
tcall GET /api/v1/security-groups
check "security groups listed over TLS: 200 with hbsg" test "$code/$(jqb '[.[].name] | index("hbsg") != null')" = 200/true
tcall GET /api/v1/security-groups/hbsg
check "hbsg shown over TLS: 200" test "$code" = 200
tcall PATCH /api/v1/security-groups/hbsg '{"description":"over TLS"}'
check "hbsg edited over TLS: 200" test "$code" = 200
tcall POST /api/v1/security-groups/hbsg/rules '{"protocol":"udp","port_from":53}'
check "a rule added over TLS: 201" test "$code" = 201
tcall DELETE /api/v1/security-groups/hbsg/rules/1
check "a rule removed over TLS: 200" test "$code" = 200
tcall PUT /api/v1/vms/n4/nics/0/groups '{"groups":["hbsg"]}'
check "groups on a tap NIC over TLS: 400 naming groups (managed networks only)" \
  test "$code/$(jqb .error.field)" = "400/groups"
tcall DELETE /api/v1/security-groups/hbsg
check "hbsg deleted over TLS" test "${code:0:1}" = 2
tcall DELETE /api/v1/networks/hbn0
check "network hbn0 deleted over TLS" test "${code:0:1}" = 2

echo "== nothing outside the state folder and the allowed folder was touched"
sleep 0.5
kill "$watch_pid" 2>/dev/null; wait "$watch_pid" 2>/dev/null; watch_pid=""
check "no file event in the watched places (inotifywait)" test ! -s "$work/events.txt"
[ -s "$work/events.txt" ] && head -20 "$work/events.txt"
listing >"$work/after.txt"
check "the canary and outside folders are unchanged" cmp -s "$work/before.txt" "$work/after.txt"
check "no file made in /etc" test ! -e "/etc/cron.d/corral-hb-$rand" -a ! -e "/etc/corral-hb-$rand.raw" -a ! -e "/etc/corral-hb-pool-$rand"
check "the secret is in no file of the state folder" test -z "$(grep -rlF -- "$secret" "$state" 2>/dev/null)"
check "nor /etc/shadow's first line" test -z "$(grep -rlF -- "$shadow_line" "$state" 2>/dev/null)"
check "the allowed marker did get in (the search works)" test -n "$(grep -rlF -- "$ok_marker" "$state/pools" 2>/dev/null)"
missing=""
while read -r method path; do
  method=${method^^}
  found=""
  for each in "${called[@]}"; do
    read -r m p <<<"$each"
    [ "$m" = "$method" ] && [ "$(route_of "$p")" = "$(route_of "$path")" ] && { found=1; break; }
  done
  [ -n "$found" ] || missing+=" $method $path"
done < <(jq -r '.paths | to_entries[] | .key as $p | .value | keys[] | "\(.) \($p)"' "$repo/src/daemon/openapi.json")
check "every route of the OpenAPI document was called over TLS" test -z "$missing"
[ -n "$missing" ] && echo "  not called:$missing"

echo "== the unix socket keeps today's behaviour"
api POST /api/v1/volumes "{\"name\":\"local\",\"import\":\"$work/canary/secret.raw\"}"
check "import a host file over the unix socket: a task" test "$code" = 202
wait_task "$(jqb .task)" 60
check "  ... that succeeds" test "$(jqb .status)" = succeeded
api POST /api/v1/volumes/default/local/export "{\"path\":\"$work/outside/local.raw\",\"format\":\"raw\"}"
check "export anywhere over the unix socket: a task" test "$code" = 202
wait_task "$(jqb .task)" 60
check "  ... that wrote the file" cmp -s "$work/canary/secret.raw" "$work/outside/local.raw"
api POST /api/v1/pools "{\"name\":\"p3\",\"path\":\"$work/outside/p3\"}"
check "a pool anywhere over the unix socket: 201" test "$code" = 201
api POST /api/v1/vms '{"name":"n3","nics":[{"bridge":"hbbr1"},{"tap":"hbtap0"}]}'
check "any bridge or tap over the unix socket: 201" test "$code" = 201
api GET /api/v1/tokens
check "tokens over the unix socket: 200" test "$code" = 200

echo "== --allow-path mistakes stop corrald at start"
corrald_stop
"$corrald_bin" --state-dir "$state" --allow-path "$work/nope" >"$work/start.log" 2>&1
check "a missing folder: exit 2 naming it" test $? = 2 -a -n "$(grep -F -- "--allow-path '$work/nope'" "$work/start.log")"
"$corrald_bin" --state-dir "$state" --allow-path "$state/pools" >"$work/start.log" 2>&1
check "a folder inside the state folder: exit 2" test $? = 2 -a -n "$(grep -F "overlaps corrald's state folder" "$work/start.log")"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
