# shellcheck shell=bash
# tests/lib/cli.sh: what the CLI tests (tests/integration/cli) check a `corral` command with.
# Sourced; needs $corral (the binary) and $work (a scratch folder). Defines:
#   pass TEXT / fail TEXT        an "ok:" or "FAIL:" line; fail counts in $failures
#   run NAME EXPECTED_EXIT ARGS...   runs corral ARGS, stdout/stderr in $out/$err; a FAIL (with
#                                both) and status 1 when it exits otherwise
#   says NAME PATTERN TEXT       TEXT matches PATTERN (grep -E)
#   never NAME PATTERN TEXT      TEXT does not match PATTERN
#   cli_summary [LOG]            "all checks passed", or the count of failures (and the last
#                                lines of LOG, corrald's log) and exit 1
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

run() {   # run NAME EXPECTED_EXIT ARGS...
    local what=$1 expected=$2; shift 2
    "$corral" "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    out=$(cat "$work/out"); err=$(cat "$work/err")
    if [[ $rc -ne $expected ]]; then
        fail "$what: corral $* exited $rc, expected $expected"
        echo "  stdout: $out"; echo "  stderr: $err"
        return 1
    fi
    return 0
}

says() { if grep -Eq -- "$2" <<<"$3"; then pass "$1: $(head -1 <<<"$3")"; else fail "$1: expected /$2/ in: $3"; fi; }
never() { if grep -Eq -- "$2" <<<"$3"; then fail "$1: /$2/ should not be in: $3"; else pass "$1"; fi; }

cli_summary() {   # cli_summary [LOG]
    if [[ $failures -ne 0 ]]; then
        echo "$failures check(s) failed"
        [[ -n ${1:-} ]] && { echo "corrald's log:"; tail -50 "$1"; }
        exit 1
    fi
    echo "all checks passed"
}
