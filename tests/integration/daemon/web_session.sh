#!/usr/bin/env bash
# tests/integration/daemon/web_session.sh: the web UI's side of corrald's TLS listener (issue 15):
# its files served at / and /ui/ to anyone, with the right types and cache headers, and nothing
# outside the UI's folder reachable (.., encoded .., backslashes, symlinks, hidden files, folders);
# sign-in with a token or a one-time link for a session cookie (HttpOnly, Secure, SameSite=Strict,
# Max-Age); the CSRF token required on state changes made with the cookie; WebSockets with the
# cookie only from this origin; sign-out, expiry, a revoked token and a restart end sessions; the
# bearer-token API unchanged. A real corrald, curl and python3 as clients, loopback only.
# Exit status: 0 all passed, 1 a check failed. Ends with "N passed, N failed".
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
trap 'corrald_stop; rm -rf -- "$state"' EXIT

cookie=""   # the session cookie's value, "" for none
csrf=""     # the X-CSRF-Token to send, "" for none
# web METHOD PATH [JSON]: over https://$listen with $cookie and $csrf (no token); sets $code,
# $body, response headers in $state/headers.
web() {
  local args=(-s --path-as-is --cacert "$state/tls/server.crt" -X "$1" -D "$state/headers" -o "$state/body"
              -w '%{http_code}')
  [ -n "$cookie" ] && args+=(-b "__Host-corral_session=$cookie")
  [ -n "$csrf" ] && args+=(-H "X-CSRF-Token: $csrf")
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  code=$(curl "${args[@]}" "https://$listen$2")
  body=$(cat "$state/body")
}
header() { grep -i "^$1:" "$state/headers" | head -n1 | cut -d' ' -f2- | tr -d '\r'; }
# sign_in TOKEN: a session for TOKEN; sets $cookie and $csrf
sign_in() {
  cookie="" csrf=""
  web POST /api/v1/session "{\"token\":\"$1\"}"
  cookie=$(header Set-Cookie | sed -E 's/^__Host-corral_session=([^;]*).*/\1/')
  csrf=$(jqb .csrf_token)
  [ "$code" = 201 ] && [ -n "$cookie" ] && [ -n "$csrf" ]
}
# ws_status PATH [ORIGIN]: the HTTP status of a WebSocket handshake over TLS with $cookie
ws_status() {
  python3 - "$listen" "$state/tls/server.crt" "$1" "$cookie" "${2:-}" <<'PY'
import socket, ssl, sys
listen, ca, path, cookie, origin = sys.argv[1:6]
host, port = listen.rsplit(":", 1)
context = ssl.create_default_context(cafile=ca)
context.check_hostname = False  # pinned by the CA file; loopback only
with socket.create_connection((host, int(port)), timeout=10) as raw, context.wrap_socket(raw) as s:
    lines = [f"GET {path} HTTP/1.1", f"Host: {listen}", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
    if cookie: lines.append(f"Cookie: __Host-corral_session={cookie}")
    if origin: lines.append(f"Origin: {origin}")
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    print(s.recv(4096).split(b" ")[1].decode())
PY
}

echo "== the UI's folder (a stand-in for the built bundle), with things next to it that must stay out"
web_dir="$state/web"
mkdir -p "$web_dir/assets" "$state/private"
marker="CORRAL-WEB-SECRET-$RANDOM$RANDOM"
printf '<!doctype html><title>Corral</title><script src="/ui/assets/main-ABCD1234.js"></script>\n' >"$web_dir/index.html"
printf 'console.log("corral")\n' >"$web_dir/assets/main-ABCD1234.js"
printf 'body{}\n' >"$web_dir/assets/main-ABCD1234.css"
gzip -9 -k "$web_dir/assets/main-ABCD1234.js"                      # the build's precompressed twin
printf '%s\n' "$marker" >"$state/private/secret.txt"
printf '%s\n' "$marker" >"$web_dir/.hidden"
ln -s ../private/secret.txt "$web_dir/link-out.txt"          # a symlink out of the folder
ln -s assets/main-ABCD1234.js "$web_dir/link-in.js"          # one that stays inside: still not followed
# Sessions outlive this script's steps however slow the host; expiry has its own corrald at the end.
corrald_start --listen 127.0.0.1:0 --web-dir "$web_dir" || exit 1
tls_listen || { echo "no TCP listener"; exit 1; }
api POST /api/v1/tokens '{"name":"alice"}'
token=$(jqb .token)

echo "== the UI's files: no credentials needed, types and cache headers"
web GET /
check "GET /: 200 index.html" test "$code" = 200 -a "$body" = "$(cat "$web_dir/index.html")"
check "  ... text/html; charset=utf-8" test "$(header Content-Type)" = "text/html; charset=utf-8"
check "  ... revalidated (Cache-Control: no-cache) with an ETag" test "$(header Cache-Control)" = no-cache -a -n "$(header ETag)"
check "  ... a CSP that allows scripts from this origin only" grep -q "script-src 'self';" <<<"$(header Content-Security-Policy)"
check "  ... no framing, no sniffing" test "$(header X-Frame-Options)/$(header X-Content-Type-Options)" = DENY/nosniff
etag=$(header ETag)
code=$(curl -s --cacert "$state/tls/server.crt" -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "https://$listen/")
check "  ... If-None-Match with its ETag: 304" test "$code" = 304
web GET /ui/assets/main-ABCD1234.js
check "GET /ui/assets/main-ABCD1234.js: 200 text/javascript" test "$code/$(header Content-Type)" = "200/text/javascript; charset=utf-8"
check "  ... cached for a year (a content-hashed name)" test "$(header Cache-Control)" = "public, max-age=31536000, immutable"
code=$(curl -s --cacert "$state/tls/server.crt" -H 'Accept-Encoding: gzip, deflate, br' -D "$state/headers" \
  -o "$state/body.gz" -w '%{http_code}' "https://$listen/ui/assets/main-ABCD1234.js")
check "  ... Accept-Encoding: gzip: 200, Content-Encoding: gzip, text/javascript" \
  test "$code/$(header Content-Encoding)/$(header Content-Type)" = "200/gzip/text/javascript; charset=utf-8"
check "  ... the precompressed twin's bytes, which unpack to the file" \
  bash -c "cmp -s '$state/body.gz' '$web_dir/assets/main-ABCD1234.js.gz' && gzip -dc '$state/body.gz' | cmp -s - '$web_dir/assets/main-ABCD1234.js'"
check "  ... Vary: Accept-Encoding" test "$(header Vary)" = Accept-Encoding
code=$(curl -s --cacert "$state/tls/server.crt" -H 'Accept-Encoding: gzip;q=0, br' -D "$state/headers" \
  -o "$state/body" -w '%{http_code}' "https://$listen/ui/assets/main-ABCD1234.js")
check "  ... Accept-Encoding: gzip;q=0: the file as it is" \
  test "$code/$(header Content-Encoding)/$(cat "$state/body")" = "200//$(cat "$web_dir/assets/main-ABCD1234.js")"
web GET /ui/assets/main-ABCD1234.css
check "GET /ui/assets/main-ABCD1234.css: text/css" test "$code/$(header Content-Type)" = "200/text/css; charset=utf-8"
web GET /ui/index.html
check "GET /ui/index.html: 200, revalidated" test "$code/$(header Cache-Control)" = 200/no-cache

echo "== nothing outside the UI's folder (an attacker's paths)"
for path in /ui/../private/secret.txt /ui/%2e%2e/private/secret.txt /ui/assets/%2e%2e/%2e%2e/private/secret.txt \
  /ui/..%2fprivate%2fsecret.txt /ui/%2e%2e%2fprivate/secret.txt /ui/..%5cprivate%5csecret.txt /ui/%5c..%5csecret.txt \
  /ui/.hidden /ui/%2ehidden /ui/link-out.txt /ui/link-in.js "/ui//$state/private/secret.txt" /ui/assets /ui/assets/ \
  /ui/%00 /ui/index.html%00.js /ui/./index.html "/ui/.%2e/private/secret.txt"; do
  web GET "$path"
  check "GET $path: 400 or 404, with no byte of the secret" \
    test "$( { [ "$code" = 400 ] || [ "$code" = 404 ]; } && echo ok)/$(grep -c -- "$marker" "$state/body")" = ok/0
done
for path in /api/v1/../../private/secret.txt /..%2fprivate/secret.txt /%2e%2e/private/secret.txt; do
  web GET "$path"
  check "GET $path: refused (not a UI path: 401 before routing) without the secret" \
    test "$code" = 401 -a "$(grep -c -- "$marker" "$state/body")" = 0
done

echo "== the UI's public paths lead nowhere else"
for path in /ui/../api/v1/vms /ui/%2e%2e/api/v1/vms "/ui%2f..%2fapi%2fv1%2fvms"; do
  web GET "$path"
  check "GET $path without credentials: 400, not the API's answer" test "$code/$(jqb '.error.field')" = 400/path
done

echo "== no session, no token: refused"
web GET /api/v1/vms
check "GET /api/v1/vms without credentials: 401 naming Authorization" test "$code/$(jqb .error.field)" = 401/Authorization
web POST /api/v1/session '{"token":"corral_not-a-token"}'
check "sign-in with a token that does not exist: 401 naming token" test "$code/$(jqb .error.field)" = 401/token
check "  ... and no cookie" test -z "$(header Set-Cookie)"
code=$(curl -s --cacert "$state/tls/server.crt" -o "$state/body" -w '%{http_code}' -H 'Content-Type: text/plain' \
  --data-binary "{\"token\":\"$token\"}" "https://$listen/api/v1/session")
check "sign-in as a form would send it (text/plain): 415, no cookie" test "$code" = 415
web POST /api/v1/session '{"token":"x","link":"y"}'
check "sign-in with both token and link: 400" test "$code" = 400
cookie="corral_forged-session-id"
web GET /api/v1/vms
check "a forged session cookie: 401 naming session" test "$code/$(jqb .error.field)" = 401/session

echo "== sign in with a token"
sign_in "$token"
check "POST /api/v1/session with alice's token: 201, a cookie and a CSRF token" test "$code" = 201 -a -n "$cookie" -a -n "$csrf"
set_cookie=$(header Set-Cookie)
for attribute in HttpOnly Secure SameSite=Strict Path=/ Max-Age=28800; do   # 8 hours, the default
  check "  ... the cookie is $attribute" grep -q "; $attribute\(;\|$\)" <<<"$set_cookie"
done
check "  ... signed in as alice" test "$(jqb .signed_in_as)" = alice
check "  ... the answer is not cached" test "$(header Cache-Control)" = no-store
saved_csrf=$csrf
csrf=""
web GET /api/v1/vms
check "GET /api/v1/vms with the cookie: 200" test "$code" = 200
web GET /api/v1/session
check "GET /api/v1/session: the same CSRF token" test "$code/$(jqb .csrf_token)" = "200/$saved_csrf"

echo "== CSRF: state changes with the cookie need X-CSRF-Token"
web POST /api/v1/volumes '{"name":"nocsrf","size":"1M"}'
check "POST /api/v1/volumes without X-CSRF-Token: 403 naming X-CSRF-Token" test "$code/$(jqb .error.field)" = 403/X-CSRF-Token
csrf="corral_not-the-csrf-token"
web POST /api/v1/volumes '{"name":"nocsrf","size":"1M"}'
check "  ... with a wrong one: 403" test "$code/$(jqb .error.field)" = 403/X-CSRF-Token
api GET /api/v1/volumes
check "  ... and no volume was made" test "$(jqb '[.[] | select(.name == "nocsrf")] | length')" = 0
csrf=$saved_csrf
web POST /api/v1/volumes '{"name":"withcsrf","size":"1M"}'
check "  ... with the session's CSRF token: 201" test "$code" = 201
csrf=""
web DELETE /api/v1/volumes/default/withcsrf
check "DELETE without X-CSRF-Token: 403" test "$code" = 403

echo "== WebSockets with the session"
check "GET /api/v1/events (WebSocket) with the cookie and this origin: 101" \
  test "$(ws_status /api/v1/events "https://$listen")" = 101
check "  ... from another origin: 403" test "$(ws_status /api/v1/events https://evil.example)" = 403
check "  ... with no Origin: 403" test "$(ws_status /api/v1/events)" = 403
saved_cookie=$cookie; cookie=""
check "  ... without the cookie (nor a token): 401" test "$(ws_status /api/v1/events "https://$listen")" = 401
cookie=$saved_cookie

echo "== the bearer-token API is unchanged"
tls_api "$token" POST /api/v1/volumes '{"name":"bytoken","size":"1M"}'
check "POST with a bearer token and no CSRF token: 201" test "$code" = 201
code=$(curl -s --cacert "$state/tls/server.crt" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
  -b "__Host-corral_session=corral_forged" "https://$listen/api/v1/vms")
check "a bearer token with a forged cookie: the token decides (200)" test "$code" = 200
tls_api "$token" GET /api/v1/session
check "GET /api/v1/session with a token: 404 (no session)" test "$code/$(jqb .error.field)" = 404/session

echo "== sign-out"
csrf=""
web DELETE /api/v1/session
check "DELETE /api/v1/session without X-CSRF-Token: 403" test "$code" = 403
csrf=$saved_csrf
web DELETE /api/v1/session
check "DELETE /api/v1/session: 200" test "$code/$(jqb .signed_out)" = 200/true
check "  ... the cookie is cleared" grep -q '^__Host-corral_session=; .*Max-Age=0' <<<"$(header Set-Cookie)"
web GET /api/v1/vms
check "  ... and the old cookie is refused: 401 naming session" test "$code/$(jqb .error.field)" = 401/session

echo "== a revoked token ends its sessions"
sign_in "$token"
api DELETE /api/v1/tokens/alice
web GET /api/v1/vms
check "after DELETE /api/v1/tokens/alice its session is refused: 401" test "$code" = 401

echo "== one-time sign-in links"
tls_api "$token" POST /api/v1/session/links '{}'
check "POST /api/v1/session/links over TLS: refused (401: alice is revoked)" test "$code" = 401
api POST /api/v1/tokens '{"name":"bob"}'
bob=$(jqb .token)
tls_api "$bob" POST /api/v1/session/links '{}'
check "  ... with a live token: 403 (made on the host only)" test "$code" = 403
api POST /api/v1/session/links '{}'
link=$(jqb .link)
check "POST /api/v1/session/links on the unix socket: 201, a URL with the code in its fragment" \
  test "$code/$(jqb '.urls[0]')" = "201/https://$listen/#signin=$link"
cookie="" csrf=""
web POST /api/v1/session "{\"link\":\"$link\"}"
check "signing in with the link: 201, as 'sign-in link'" test "$code/$(jqb .signed_in_as)" = "201/sign-in link"
web POST /api/v1/session "{\"link\":\"$link\"}"
check "  ... the same link again: 401 naming link" test "$code/$(jqb .error.field)" = 401/link

echo "== a restart signs everyone out (sessions live in memory)"
sign_in "$bob"
corrald_stop
corrald_start --listen 127.0.0.1:0 --web-dir "$state/no-such-folder" || exit 1
tls_listen || { echo "no TCP listener after the restart"; exit 1; }
web GET /api/v1/vms
check "the old session after a restart: 401" test "$code" = 401
web GET /
check "GET / when the UI is not built: 404 saying how to build it" test "$code" = 404
check "  ... (the message)" grep -q "The web UI is not built" "$state/body"

echo "== expiry"
corrald_stop
corrald_start --listen 127.0.0.1:0 --web-dir "$web_dir" --session-lifetime 2 || exit 1
tls_listen || { echo "no TCP listener after the restart"; exit 1; }
check "a new session (corrald restarted with --session-lifetime 2)" sign_in "$bob"
check "  ... its cookie says Max-Age=2" grep -q "; Max-Age=2\(;\|$\)" <<<"$(header Set-Cookie)"
web GET /api/v1/vms
check "  ... it works" test "$code" = 200
sleep 3
web GET /api/v1/vms
check "  ... 3 s later it has expired: 401 naming session" test "$code/$(jqb .error.field)" = 401/session

corrald_failure_report
check_summary
