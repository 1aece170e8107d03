# shellcheck shell=bash
# bench/lib/options.sh: the benchmarks' command lines, read one way: the same --help (the script's
# header comment), the same usage errors (exit 2, naming what was wrong and what is allowed).
# Sourced by the benchmark scripts. Defines:
#   bench_options USAGE SPEC... -- ARGS...
#       reads ARGS in order (of two options setting one variable, the later wins). Each SPEC:
#         --NAME=VAR                 an option with a value: VAR=the next argument
#         --NAME:VAR=VALUE...        a flag: each VAR=VALUE (space-separated) where it stands
#         ARGS                       words after the options are the script's: in bench_args
#       -h and --help print the header comment and exit 0. Anything else (an unknown option, an
#       option without its value, a word where the script takes none) is a usage error.
#   bench_numbers MIN WHAT VALUE...  each VALUE is a whole number (no leading zero: bash would read
#                                    it as octal), at least MIN, or a usage error naming WHAT
#                                    ("--memory and --rates")
#   bench_usage_error MESSAGE        "SCRIPT: MESSAGE (usage: SCRIPT USAGE)" on stderr, exit 2
bench_usage=""
bench_args=()

bench_options() {   # bench_options USAGE SPEC... -- ARGS...
  local o_spec o_list o_assignment o_words=0
  local -A o_value o_flag
  bench_usage=$1; shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    o_spec=$1; shift
    if [ "$o_spec" = ARGS ]; then
      o_words=1
    elif [[ $o_spec =~ ^(--[a-z0-9-]+)=([a-z_][a-z0-9_]*)$ ]]; then
      o_value[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
    elif [[ $o_spec =~ ^(--[a-z0-9-]+):([a-z_][a-z0-9_]*=[^ ]*( [a-z_][a-z0-9_]*=[^ ]*)*)$ ]]; then
      o_flag[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
    else
      echo "bench_options: '$o_spec' is no option spec (--NAME=VAR, --NAME:VAR=VALUE..., ARGS)" >&2
      exit 2
    fi
  done
  [ $# -gt 0 ] || { echo "bench_options: no -- before the arguments" >&2; exit 2; }
  shift
  bench_args=()
  while [ $# -gt 0 ]; do
    case $1 in
      -h | --help)
        awk 'NR > 1 { if (!/^#/) exit; sub(/^# ?/, ""); print }' "$0"
        exit 0 ;;
      -*)
        if [ -n "${o_value[$1]+set}" ]; then
          [ $# -ge 2 ] || bench_usage_error "$1 needs a value"
          printf -v "${o_value[$1]}" '%s' "$2"
          shift 2
        elif [ -n "${o_flag[$1]+set}" ]; then
          read -ra o_list <<<"${o_flag[$1]}"
          for o_assignment in "${o_list[@]}"; do printf -v "${o_assignment%%=*}" '%s' "${o_assignment#*=}"; done
          shift
        else
          bench_usage_error "unknown option '$1'"
        fi ;;
      *)
        [ "$o_words" = 1 ] || bench_usage_error "unexpected argument '$1'"
        # shellcheck disable=SC2034  # the sourcing script's
        bench_args=("$@")
        break ;;
    esac
  done
}

bench_numbers() {   # bench_numbers MIN WHAT VALUE...
  local min=$1 what=$2 n
  shift 2
  for n in "$@"; do
    [[ $n =~ ^(0|[1-9][0-9]*)$ ]] && ((n >= min)) && continue
    bench_usage_error "$what: '$n' is not a whole number from $min (digits, no leading zero)"
  done
}

bench_usage_error() {   # bench_usage_error MESSAGE
  echo "$0: $1 (usage: $0 $bench_usage)" >&2
  exit 2
}
