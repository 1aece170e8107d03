#!/usr/bin/env bash
# tests/integration/daemon/remote_api.sh: corrald's TCP listener (corrald --listen): TLS only, a
# bearer token on every request, tokens managed over the unix socket only, the self-signed
# certificate kept across restarts; and the corral CLI over --remote (HTTPS and WSS) with its
# certificate checks. A real corrald on a temporary state folder, curl and corral as clients,
# loopback only.
# Exit status: 0 all passed, 1 a check failed. Ends with "N passed, N failed".
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
corral_bin="$build_dir/src/cli/corral"
events_pid=""
other_pid=""
cleanup() {
  [ -n "$events_pid" ] && kill "$events_pid" 2>/dev/null
  [ -n "$other_pid" ] && kill "$other_pid" 2>/dev/null
  corrald_stop
  rm -rf -- "$state"
}
trap cleanup EXIT

# start_fails NAME MESSAGE ARGS...: corrald with ARGS on a state folder that does not exist yet
# must exit non-zero, print MESSAGE, and leave no state folder behind.
start_fails() {
  local name=$1 message=$2; shift 2
  local fresh="$state/fresh-$RANDOM"
  timeout 30 "$corrald_bin" --state-dir "$fresh" "$@" >"$state/start.log" 2>&1
  local rc=$?
  check "$name: exits non-zero" test "$rc" -ne 0
  check "  ... saying '$message'" grep -qF -- "$message" "$state/start.log"
  check "  ... and creates nothing" test ! -e "$fresh"
  [ "$rc" -ne 0 ] && grep -qF -- "$message" "$state/start.log" || cat "$state/start.log"
}

# corral_run EXPECTED_EXIT ARGS...: runs the CLI; its output in $out and $err, true if the exit code matched.
corral_run() {
  local expected=$1; shift
  "$corral_bin" "$@" >"$state/out" 2>"$state/err"
  local rc=$?
  out=$(cat "$state/out"); err=$(cat "$state/err")
  [ "$rc" -eq "$expected" ] || { echo "  corral $* exited $rc, expected $expected; stdout: $out; stderr: $err"; return 1; }
}

echo "== bad flags: clear errors, nothing created"
start_fails "--listen without a port" "--listen '127.0.0.1': no :PORT" --listen 127.0.0.1
start_fails "--listen with a host name" "expected HOST:PORT" --listen example.com:8443
start_fails "--listen with a bad port" "'99999' is not a port" --listen 127.0.0.1:99999
printf 'x\n' >"$state/lone.crt"
start_fails "--tls-cert without --tls-key" "--tls-cert and --tls-key go together" --listen 127.0.0.1:0 --tls-cert "$state/lone.crt"
start_fails "a missing certificate" "--tls-cert $state/none.crt: cannot read it" \
  --listen 127.0.0.1:0 --tls-cert "$state/none.crt" --tls-key "$state/none.key"
printf 'not a certificate\n' >"$state/junk.pem"
start_fails "a certificate that is not PEM" "--tls-cert $state/junk.pem: not a PEM certificate" \
  --listen 127.0.0.1:0 --tls-cert "$state/junk.pem" --tls-key "$state/junk.pem"
start_fails "--tls-cert without --listen" "add --listen HOST:PORT" --tls-cert "$state/junk.pem" --tls-key "$state/junk.pem"

echo "== corrald --listen 127.0.0.1:0 (a self-signed certificate)"
corrald_start --listen 127.0.0.1:0 || exit 1
check "GET /host reports the listener" tls_listen
check "  ... and the certificate's SHA-256 fingerprint" grep -Eq '^([0-9A-F]{2}:){31}[0-9A-F]{2}$' <<<"$fingerprint"
check "corrald logged the fingerprint at start" grep -qF "SHA-256 fingerprint $fingerprint" "$state/corrald.log"
check "it is the fingerprint of $state/tls/server.crt (openssl agrees)" \
  test "$(openssl x509 -in "$state/tls/server.crt" -noout -fingerprint -sha256 | cut -d= -f2)" = "$fingerprint"
check "the key is private (0600)" test "$(stat -c %a "$state/tls/server.key")" = 600
start_fails "the port in use" "port ${listen##*:} is already in use" --listen "$listen"

echo "== bearer tokens"
tls_api "" GET /api/v1/vms
check "no token: 401" test "$code" = 401
check "  ... with the JSON error naming Authorization" test "$(jqb .error.status)" = 401 -a "$(jqb .error.field)" = Authorization
check "  ... and WWW-Authenticate: Bearer" grep -qi '^WWW-Authenticate: Bearer' "$state/headers"
tls_api "corral_not-a-token" GET /api/v1/vms
check "wrong token: 401" test "$code" = 401 -a "$(jqb .error.field)" = Authorization
check "  ... invalid_token" grep -qi 'error="invalid_token"' "$state/headers"
curl -s -o /dev/null --cacert "$state/tls/server.crt" -H "Authorization: Basic dXNlcjpwYXNz" "https://$listen/api/v1/vms" -w '%{http_code}' >"$state/code"
check "another scheme (Basic): 401" test "$(cat "$state/code")" = 401

api POST /api/v1/tokens '{"name":"ci"}'
check "create a token over the unix socket: 201" test "$code" = 201
token=$(jqb .token)
check "  ... its secret is URL-safe and long (>= 32 random bytes)" grep -Eq '^corral_[A-Za-z0-9_-]{43}$' <<<"$token"
api POST /api/v1/tokens '{"name":"ci"}'
check "duplicate token name: 409 naming name" test "$code" = 409 -a "$(jqb .error.field)" = name
api POST /api/v1/tokens '{"name":"Bad Name"}'
check "invalid token name: 400 naming name" test "$code" = 400 -a "$(jqb .error.field)" = name
api POST /api/v1/tokens '{"name":"x","role":"admin"}'
check "unknown field: 400 naming it" test "$code" = 400 -a "$(jqb .error.field)" = role
api GET /api/v1/tokens
check "the list shows names and dates, never a secret or hash" \
  test "$(jqb 'map(.name) | join(",")')" = ci -a "$(jqb '.[0] | has("token") or has("sha256")')" = false
check "  ... ci never used yet" test "$(jqb '.[0].last_used_at')" = null
check "the inventory holds the hash, not the secret" \
  bash -c "! cat '$state/inventory.db' '$state/inventory.db-wal' 2>/dev/null | grep -qaF '$token'"

api POST /api/v1/vms '{"name":"r1","memory_mib":256}'
check "define a VM over the unix socket" test "$code" = 201
api GET /api/v1/vms
local_list=$(jq -S . <<<"$body")
tls_api "$token" GET /api/v1/vms
check "good token: 200" test "$code" = 200
check "  ... the same VM list as over the unix socket" test "$(jq -S . <<<"$body")" = "$local_list"
api GET /api/v1/tokens
check "  ... and ci's last use is recorded" test "$(jqb '.[0].last_used_at')" != null
tls_api "$token" POST /api/v1/tokens '{"name":"more"}'
check "making a token over TCP: 403 (a leaked token cannot mint more)" test "$code" = 403
tls_api "$token" GET /api/v1/tokens
check "listing tokens over TCP: 403" test "$code" = 403
tls_api "$token" DELETE /api/v1/tokens/ci
check "revoking over TCP: 403" test "$code" = 403

echo "== TLS only"
curl -s -o /dev/null -w '%{http_code}' "http://$listen/api/v1/vms" >"$state/code"
check "plain http to the TLS port is refused (400)" test "$(cat "$state/code")" = 400
curl -s "http://$listen/api/v1/vms" >"$state/plain"
check "  ... with a message saying to use https" grep -q "speaks only TLS: use https://" "$state/plain"
# Trusting only an unrelated CA, not the machine's CA store: without ca-certificates curl has no
# store at all and fails otherwise (exit 77), which would say nothing about corrald's certificate.
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=unrelated-ca -days 1 \
  -keyout "$state/unrelated-ca.key" -out "$state/unrelated-ca.crt" >/dev/null 2>&1
curl -s -o /dev/null --cacert "$state/unrelated-ca.crt" -H "Authorization: Bearer $token" "https://$listen/api/v1/vms"
check "curl refuses the self-signed certificate when it trusts another CA (exit 60)" test $? = 60

echo "== the CLI over --remote"
R=(--remote "https://$listen" --token "$token")
check "unpinned self-signed certificate: refused (exit 3)" corral_run 3 "${R[@]}" vm list
check "  ... the message shows the fingerprint and how to pin it" grep -qF -- "--fingerprint $fingerprint" <<<"$err"
check "--fingerprint: vm list works" corral_run 0 "${R[@]}" --fingerprint "$fingerprint" vm list
check "  ... and shows r1" grep -Eq '^r1 +stopped' <<<"$out"
check "--ca-cert: host info works" corral_run 0 "${R[@]}" --ca-cert "$state/tls/server.crt" host info
check "  ... and shows the hostname" grep -q '^hostname:' <<<"$out"
wrong=$(sed 's/^../00/' <<<"$fingerprint")
[ "$wrong" = "$fingerprint" ] && wrong=$(sed 's/^../11/' <<<"$fingerprint")
check "a wrong pinned fingerprint: refused (exit 3)" corral_run 3 "${R[@]}" --fingerprint "$wrong" vm list
check "  ... naming both fingerprints" grep -qF "not the pinned $wrong" <<<"$err"
check "a wrong token: exit 1 with the daemon's message" \
  corral_run 1 --remote "https://$listen" --token corral_wrong --fingerprint "$fingerprint" vm list
check "  ... 'not valid'" grep -q "the bearer token is not valid" <<<"$err"
check "--remote without a token: usage error (exit 2)" corral_run 2 --remote "https://$listen" vm list
check "--remote http://: usage error (exit 2)" corral_run 2 --remote "http://$listen" --token "$token" vm list
check "CORRAL_REMOTE, CORRAL_TOKEN, CORRAL_FINGERPRINT work too" \
  env CORRAL_REMOTE="https://$listen" CORRAL_TOKEN="$token" CORRAL_FINGERPRINT="$fingerprint" "$corral_bin" vm show r1 >/dev/null
(umask 077; printf '%s\n' "$token" >"$state/token")
check "--token-file: vm list works" \
  corral_run 0 --remote "https://$listen" --token-file "$state/token" --fingerprint "$fingerprint" vm list
check "  ... and shows r1" grep -Eq '^r1 +stopped' <<<"$out"
"$corral_bin" --remote "https://$listen" --token-file "$state/token" --fingerprint "$fingerprint" events \
  >/dev/null 2>&1 &
watcher=$!
sleep 0.5
check "  ... the token is not on its command line (what ps shows)" bash -c "! tr '\\0' ' ' </proc/$watcher/cmdline | grep -qF '$token'"
kill "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null
check "--token with --token-file: usage error (exit 2)" \
  corral_run 2 --remote "https://$listen" --token "$token" --token-file "$state/token" vm list
check "token create over --remote: refused (exit 1, 403)" corral_run 1 "${R[@]}" --fingerprint "$fingerprint" token create more
check "  ... saying to use the unix socket" grep -q "only over corrald's unix socket" <<<"$err"
check "a console WebSocket over wss reaches corrald (its 404 for a missing VM)" \
  corral_run 1 "${R[@]}" --fingerprint "$fingerprint" vm console nope
check "  ... 'no VM named nope'" grep -q "nope" <<<"$err"

"$corral_bin" "${R[@]}" --fingerprint "$fingerprint" events --json >"$state/events" 2>"$state/events.err" &
events_pid=$!
sleep 1
api POST /api/v1/vms '{"name":"r2","memory_mib":256}'
for _ in $(seq 50); do grep -q '"vm.created"' "$state/events" && break; sleep 0.1; done
check "corral events over wss sees a VM defined over the unix socket" grep -q '"target":"r2"' "$state/events"
kill "$events_pid" 2>/dev/null; wait "$events_pid" 2>/dev/null; events_pid=""

echo "== the CLI manages tokens on the host"
check "corral token create prints only the secret" corral_run 0 --socket "$sock" token create ops
ops_token=$out
check "  ... a usable one" grep -Eq '^corral_[A-Za-z0-9_-]{43}$' <<<"$ops_token"
check "corral token list shows both" corral_run 0 --socket "$sock" token list
check "  ... with its columns" grep -Eq '^NAME +CREATED +LAST USED' <<<"$out"
check "  ... and no secret" bash -c "! grep -qF '$token' <<<'$out'"

echo "== revoking"
check "corral token delete ci" corral_run 0 --socket "$sock" token delete ci
tls_api "$token" GET /api/v1/vms
check "the revoked token: 401 at once" test "$code" = 401
tls_api "$ops_token" GET /api/v1/vms
check "the other token still works" test "$code" = 200
api DELETE /api/v1/tokens/ci
check "revoking it again: 404" test "$code" = 404

echo "== a restart keeps the tokens and the certificate"
old_fingerprint=$fingerprint
corrald_stop
corrald_start --listen 127.0.0.1:0 || exit 1
tls_listen
check "the same certificate fingerprint" test "$fingerprint" = "$old_fingerprint"
tls_api "$ops_token" GET /api/v1/vms
check "the token still works" test "$code" = 200 -a "$(jqb 'map(.name) | join(",")')" = "r1,r2"
tls_api "$token" GET /api/v1/vms
check "the revoked one still does not" test "$code" = 401

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
