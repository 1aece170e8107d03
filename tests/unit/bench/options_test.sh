#!/usr/bin/env bash
# tests/unit/bench/options_test.sh: bench_options and bench_numbers (bench/lib/options.sh), which
# every benchmark with options reads its command line with: values, flags in order, words after
# the options, --help, and the usage errors (exit 2, naming the argument and the usage line).
# Ends with "N passed, N failed".
set -uo pipefail
repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/options-test.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
# A benchmark as the scripts are written: defaults, then the options; prints what it read.
cat >"$work/bench.sh" <<SCRIPT
#!/usr/bin/env bash
# bench.sh: a header comment,
# which --help prints.
set -uo pipefail
. "$repo/bench/lib/options.sh"
memory=512 runs=3 smoke=0
bench_options '[--smoke] [--memory MiB] [--runs N] [FILE...]' \\
  '--smoke:smoke=1 memory=256 runs=1' --memory=memory --runs=runs ARGS -- "\$@"
bench_numbers 1 "--memory and --runs" "\$memory" "\$runs"
echo "memory=\$memory runs=\$runs smoke=\$smoke args=\${bench_args[*]:-}"
SCRIPT
chmod +x "$work/bench.sh"
passed=0 failed=0
expect() {   # expect NAME STATUS OUTPUT ARGS...: bench.sh ARGS exits STATUS, its stdout+stderr is OUTPUT
  local name=$1 status=$2 want=$3 got rc; shift 3
  got=$("$work/bench.sh" "$@" 2>&1); rc=$?
  if [ "$rc" = "$status" ] && [ "$got" = "$want" ]; then echo "PASS: $name"; passed=$((passed + 1))
  else echo "FAIL: $name: exit $rc, output [$got]; want exit $status, [$want]"; failed=$((failed + 1)); fi
}
usage="(usage: $work/bench.sh [--smoke] [--memory MiB] [--runs N] [FILE...])"
expect "the defaults" 0 "memory=512 runs=3 smoke=0 args=" 
expect "values" 0 "memory=1024 runs=7 smoke=0 args=" --memory 1024 --runs 7
expect "a flag sets each of its variables" 0 "memory=256 runs=1 smoke=1 args=" --smoke
expect "the later of two wins: a value after a flag" 0 "memory=2048 runs=1 smoke=1 args=" --smoke --memory 2048
expect "  ... and a flag after a value" 0 "memory=256 runs=1 smoke=1 args=" --memory 2048 --smoke
expect "words after the options are the script's" 0 "memory=512 runs=2 smoke=0 args=a b --memory" --runs 2 a b --memory
expect "a value that looks like an option is a value" 2 "$work/bench.sh: --memory and --runs: '-h' is not a whole number from 1 (digits, no leading zero) $usage" --memory -h
expect "--help prints the header comment" 0 "$(printf 'bench.sh: a header comment,\nwhich --help prints.')" --help
expect "-h too, wherever it stands" 0 "$(printf 'bench.sh: a header comment,\nwhich --help prints.')" --runs 2 -h
expect "an unknown option" 2 "$work/bench.sh: unknown option '--bogus' $usage" --bogus
expect "an option without its value" 2 "$work/bench.sh: --runs needs a value $usage" --memory 1 --runs
expect "a value that is no number" 2 "$work/bench.sh: --memory and --runs: 'lots' is not a whole number from 1 (digits, no leading zero) $usage" --memory lots
expect "  ... below the least" 2 "$work/bench.sh: --memory and --runs: '0' is not a whole number from 1 (digits, no leading zero) $usage" --runs 0
expect "  ... with a leading zero (bash arithmetic would read 010 as 8)" 2 "$work/bench.sh: --memory and --runs: '010' is not a whole number from 1 (digits, no leading zero) $usage" --runs 010
# A script that takes no words: one is a usage error, not ignored.
sed -i 's/ ARGS -- / -- /' "$work/bench.sh"
expect "a word where the script takes none" 2 "$work/bench.sh: unexpected argument 'a' $usage" a
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
