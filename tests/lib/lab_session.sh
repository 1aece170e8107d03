#!/usr/bin/env bash
# tests/lib/lab_session.sh: several end-to-end scenarios in one boot of the nested lab, each
# reported as its own ctest result (tests/CMakeLists.txt: the session is a fixture, each
# scenario's test reports what the session recorded).
#
# Usage:
#   lab_session.sh run RESULTS_DIR SCRIPT...
#       Runs each SCRIPT (a tests/e2e script that re-runs itself in the lab when CORRAL_IN_LAB is
#       unset) with CORRAL_IN_LAB=1, one after the other, inside ONE boot of tools/lab: where this
#       host's KVM cannot run guest kernels at speed (no /dev/kvm, or KVM on PVM). Elsewhere, or
#       when the lab cannot run here, the scripts run on the host and decide for themselves
#       (run, or skip with the reason). RESULTS_DIR/NAME.log gets a script's output,
#       NAME.status its exit status, NAME.seconds its time (a script that failed after a guest's
#       crash (a triple fault, or a VM corrald reports crashed) runs again, up to 3 attempts:
#       NAME.attemptN.log keeps each crashed attempt). A script whose status is recorded is
#       not run again, so when tools/lab retries after a frozen outer VM, the session resumes
#       where it stopped. Exits 0 when every script has a status, else tools/lab's status.
#   lab_session.sh report RESULTS_DIR NAME
#       Prints NAME's output and exits with its status (1 when the session recorded none).
set -uo pipefail

script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../.." && pwd)
# shellcheck source=lab.sh
. "$repo/tests/lib/lab.sh"
# One scenario inside the lab may take this long (the lab's freeze watchdog catches a frozen
# outer VM; this catches a scenario that hangs inside a live one).
scenario_timeout=${CORRAL_LAB_SCENARIO_TIMEOUT:-900}
# Attempts of a scenario whose failures each came after a guest crashed (see run_scenarios).
crash_attempts=3
crash_pattern='triple fault \(KVM_EXIT_SHUTDOWN\)|^---- [^ ]+: state crashed, reason:'

run_scenarios() {   # run_scenarios RESULTS_DIR SCRIPT...: here, one after the other
  local results=$1 path name start status
  shift
  for path in "$@"; do
    name=$(basename "$path" .sh)
    [ -f "$results/$name.status" ] && continue
    echo "== $name"
    start=$SECONDS
    status=0
    # Stock kernels on corral-vmm in the lab crash now and then (a triple fault at boot, or a
    # crash a corrald scenario reports as its VM's state "crashed"; the cause is not found yet,
    # and corral-vmm names the exits that came last). A failure after such a crash gets another
    # attempt, up to $crash_attempts in all, the last of which must pass whole; NAME.log starts
    # with what crashed before, NAME.attemptN.log keeps each crashed attempt.
    local attempt=1 crashes=""
    while true; do
      status=0
      timeout -k 10 "$scenario_timeout" "$path" >"$results/$name.attempt$attempt.log" 2>&1 </dev/null || status=$?
      [ "$status" = 124 ] && echo "lab_session: $name did not end within $scenario_timeout s" >>"$results/$name.attempt$attempt.log"
      if [ "$status" = 0 ] || [ "$attempt" -ge "$crash_attempts" ] ||
        ! grep -qE "$crash_pattern" "$results/$name.attempt$attempt.log"; then
        break
      fi
      crashes+="lab_session: $name's attempt $attempt failed (exit $status) after a guest crashed (its output: $name.attempt$attempt.log):"$'\n'
      crashes+=$(grep -E "$crash_pattern" "$results/$name.attempt$attempt.log" | sed 's/^/lab_session:   /')$'\n'
      attempt=$((attempt + 1))
      echo "== $name: a guest crashed (exit $status); attempt $attempt of at most $crash_attempts"
    done
    { printf '%s' "$crashes"; cat "$results/$name.attempt$attempt.log"; } >"$results/$name.log"
    rm -f -- "$results/$name.attempt$attempt.log"
    echo $((SECONDS - start)) >"$results/$name.seconds"
    echo "$status" >"$results/$name.status"
    tail -n 1 "$results/$name.log"
    echo "== $name: exit status $status after $((SECONDS - start)) s"
  done
}

case ${1:-} in
  run)
    [ $# -ge 3 ] || { echo "usage: lab_session.sh run RESULTS_DIR SCRIPT..." >&2; exit 2; }
    results=$2
    shift 2
    if [ -n "${CORRAL_IN_LAB:-}" ]; then   # inside the lab: run them
      run_scenarios "$results" "$@"
      exit 0
    fi
    rm -rf -- "$results"
    mkdir -p -- "$results" || exit 1
    results=$(cd "$results" && pwd -P)
    if lab_needed && lab_possible; then
      "$repo/tools/guest-image" >/dev/null || exit 1
      echo "== running $# scenarios in one boot of the nested lab (this host's KVM cannot run guest kernels at speed)"
      # The results and the build folder must be in the lab's writable share: run from the build
      # folder (tools/lab shares the whole checkout when it is inside one).
      status=0
      # Four fresh outer VMs after a freeze, not tools/lab's two: a session runs ~15 min of
      # scenarios under TCG, and a clean-checkout run here saw two freezes in one session (each
      # retry resumes at the scenario that was cut, so a retry costs one scenario and a boot).
      (cd "${CORRAL_BUILD_DIR:-$repo/build}" &&
        "$repo/tools/lab" --timeout "${CORRAL_LAB_SESSION_TIMEOUT:-3300}" --retries "${CORRAL_LAB_SESSION_RETRIES:-4}" \
          -- env CORRAL_IN_LAB=1 \
          CORRAL_CACHE="${CORRAL_CACHE:-$HOME/.cache/corral}" "$script" run "$results" "$@") || status=$?
    else
      run_scenarios "$results" "$@"
      status=0
    fi
    missing=0
    for path in "$@"; do
      name=$(basename "$path" .sh)
      [ -f "$results/$name.status" ] || { echo "lab_session: $name has no result"; missing=1; }
    done
    [ "$missing" = 0 ] && exit 0
    exit $((status == 0 ? 1 : status))
    ;;
  report)
    [ $# -eq 3 ] || { echo "usage: lab_session.sh report RESULTS_DIR NAME" >&2; exit 2; }
    results=$2 name=$3
    if [ ! -f "$results/$name.status" ]; then
      echo "FAIL: the shared lab session recorded no result for $name (see the e2e.lab_session test's output)"
      [ -f "$results/$name.log" ] && cat -- "$results/$name.log"
      exit 1
    fi
    cat -- "$results/$name.log"
    echo "(ran in the shared lab session: $(cat -- "$results/$name.seconds" 2>/dev/null || echo '?') s)"
    exit "$(cat -- "$results/$name.status")"
    ;;
  *)
    sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$script"
    [ "${1:-}" = -h ] || [ "${1:-}" = --help ]
    ;;
esac
