#!/bin/bash
# zsh and fish completion (issue 18), and volume and pool names in all three shells, asking a real
# corrald (temporary state folder) for the names. Exit 0 passed, 1 failed, 77 skipped.
# Usage: cli_completion_test.sh CORRAL CORRALD
set -u
corral=$1
corrald=${2:-}
[[ -n "$corrald" && -x "$corrald" ]] || { echo "SKIP: corrald is not built"; exit 77; }
repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)
corrald_bin=$corrald
# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
work=$(mktemp -d /tmp/corral-cli-completion.XXXXXX)
cleanup() {
    corrald_stop
    rm -rf "$work" "$state"
}
trap cleanup EXIT
# shellcheck source=../../lib/cli.sh
. "$repo/tests/lib/cli.sh"
has() { if grep -qx -- "$2" <<<"$3"; then pass "$1"; else fail "$1: '$2' not in: $(tr '\n' ' ' <<<"$3")"; fi; }

corrald_start || { echo "FAIL: corrald did not start"; exit 1; }
export CORRAL_SOCKET="$sock"
# The scripts ask `corral` for names, as an installed one would be found.
export PATH="$(dirname "$(readlink -f "$corral")"):$PATH"
"$corral" volume create data --size 1G >/dev/null || fail "volume create data"
mkdir -p "$work/fast"
"$corral" pool create fast --path "$work/fast" >/dev/null || fail "pool create fast"

echo "== bash"
bash_words() {   # bash_words WORD...: what the bash completion offers for the last word
    bash -c 'source <(corral completion bash); COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _corral; printf "%s\n" "${COMPREPLY[@]}"' _ "$@"
}
has "bash: volume names for volume show" default/data "$(bash_words corral volume show '')"
has "bash: pool names for pool show" fast "$(bash_words corral pool show '')"

echo "== zsh"
if command -v zsh >/dev/null; then
    "$corral" completion zsh >"$work/_corral"
    zsh_words() {
        zsh -c 'source "$1"; shift; setopt ksharrays  # as bashcompinit runs it
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _corral_bash; print -l -- "${COMPREPLY[@]}"' _ "$work/_corral" "$@" 2>&1
    }
    has "zsh: the verbs of vm" start "$(zsh_words corral vm st)"
    has "zsh: vm create's flags" --memory "$(zsh_words corral vm create web1 --mem)"
    has "zsh: volume names" default/data "$(zsh_words corral volume show '')"
    grep -q '^#compdef corral' "$work/_corral" && pass "zsh: an autoloadable _corral (#compdef corral)" || fail "no #compdef"
else
    echo "NOTE: zsh is not installed (tools/setup installs it): zsh completion not checked"
fi

echo "== fish"
if command -v fish >/dev/null; then
    fish_words() { fish -c "corral completion fish | source; complete -C '$1'" 2>&1 | cut -f1; }
    has "fish: the verbs of vm" start "$(fish_words 'corral vm st')"
    has "fish: vm create's flags" --memory "$(fish_words 'corral vm create web1 --mem')"
    has "fish: volume names" default/data "$(fish_words 'corral volume show ')"
    has "fish: pool names" fast "$(fish_words 'corral pool show ')"
    has "fish: global flags after the verb" --json "$(fish_words 'corral vm list --js')"
    has "fish: the shells of completion" zsh "$(fish_words 'corral completion ')"
else
    echo "NOTE: fish is not installed (tools/setup installs it): fish completion not checked"
fi

cli_summary
