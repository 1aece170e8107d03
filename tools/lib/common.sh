# shellcheck shell=bash
# Shared helpers for Corral's shell tools (tools/guest-image, tools/lab).
# Source it; it defines functions only and changes no shell options.

# The name shown in front of messages; each tool sets it before use.
CORRAL_TOOL_NAME=${CORRAL_TOOL_NAME:-corral}

corral_log() {   # progress and notes, on stderr
  printf '%s: %s\n' "$CORRAL_TOOL_NAME" "$*" >&2
}

corral_warn() {
  printf '%s: warning: %s\n' "$CORRAL_TOOL_NAME" "$*" >&2
}

corral_die() {   # corral_die [STATUS] MESSAGE...
  local status=1
  if [[ $# -gt 1 && $1 =~ ^[0-9]+$ ]]; then status=$1; shift; fi
  printf '%s: error: %s\n' "$CORRAL_TOOL_NAME" "$*" >&2
  exit "$status"
}

# Quote one word for any POSIX shell (dash, busybox ash, bash): 'it'\''s'.
corral_sq() {
  local s=${1//\'/\'\\\'\'}
  printf "'%s'" "$s"
}

# Print NAME=VALUE so that `eval`/`source` of the line gives VALUE back,
# and stays the plain NAME=VALUE when VALUE holds no shell-special characters.
corral_kv() {
  local name=$1 value=$2
  if [[ $value =~ ^[A-Za-z0-9_./:,+=@%-]*$ ]]; then
    printf '%s=%s\n' "$name" "$value"
  else
    printf '%s=%s\n' "$name" "$(corral_sq "$value")"
  fi
}

corral_require() {   # corral_require COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 ||
    corral_die "'$1' not found: install the Debian package '$2' (apt-get install $2)"
}

# corral_printable: a filter that makes terminal output (a guest's serial console) safe to show in
# a log or an excerpt: escape sequences removed (CSI such as the cursor-position query ESC[6n that
# the guest's shell sends, OSC titles, character-set selection, keypad modes), then every other control
# character but tab and newline (CR, BEL, a lone ESC).
corral_printable() {
  LC_ALL=C sed -e 's/\x1b\[[0-?]*[ -\/]*[@-~]//g' \
    -e 's/\x1b\][^\x07\x1b]*\(\x07\|\x1b\\\)//g' \
    -e 's/\x1b[()*+][0-9A-Za-z]//g' \
    -e 's/\x1b[0-~]//g' | LC_ALL=C tr -d '\000-\010\013-\037\177'
}

# Seconds since the epoch with microseconds (bash 5's EPOCHREALTIME).
corral_now() { printf '%s\n' "${EPOCHREALTIME/,/.}"; }

# corral_elapsed START -> seconds since START with one decimal.
corral_elapsed() {
  local start=$1 now
  now=$(corral_now)
  awk -v a="$start" -v b="$now" 'BEGIN { printf "%.1f\n", b - a }'
}

# The cache root shared by the tools.
corral_cache_root() { printf '%s\n' "${CORRAL_CACHE:-$HOME/.cache/corral}"; }
