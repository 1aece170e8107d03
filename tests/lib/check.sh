# shellcheck shell=bash
# tests/lib/check.sh: PASS/FAIL counting for the test scripts. Sourced (tests/lib/corrald.sh
# sources it too); defines:
#   check NAME CMD...       runs CMD: prints "PASS: NAME" or "FAIL: NAME", counts in $passed/$failed;
#                           its status is CMD's, so `check ... || show_why` shows why only on a FAIL
#   check_summary [NOTE]    prints "N passed, N failed[ NOTE]" (the line a script ends with, which
#                           tests/lib/lab_session.sh shows); its status is the script's: 0 when
#                           nothing failed
passed=0 failed=0

check() {   # check NAME COMMAND [ARGS...]
  local name=$1; shift
  if "$@"; then echo "PASS: $name"; passed=$((passed + 1)); return 0; fi
  echo "FAIL: $name"; failed=$((failed + 1)); return 1
}

check_summary() {   # check_summary [NOTE]
  echo "$passed passed, $failed failed${1:+ $1}"
  [ "$failed" -eq 0 ]
}
