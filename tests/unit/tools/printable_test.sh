#!/usr/bin/env bash
# tests/unit/tools/printable_test.sh: corral_printable (tools/lib/common.sh), the filter that keeps
# a guest console's escape sequences (the shell's cursor query ESC[6n, colours, titles) out of
# tools/quickstart's console excerpt. Ends with "N passed, N failed".
set -uo pipefail
repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)
# shellcheck source=../../../tools/lib/common.sh
. "$repo/tools/lib/common.sh"
passed=0 failed=0
expect() {   # expect NAME INPUT(printf format) WANT(printf format)
  local got want
  got=$(printf "$2" | corral_printable | od -An -c)
  want=$(printf "$3" | od -An -c)
  if [ "$got" = "$want" ]; then echo "PASS: $1"; passed=$((passed + 1))
  else echo "FAIL: $1: got [$got], want [$want]"; failed=$((failed + 1)); fi
}
expect "the cursor-position query ESC[6n" 'corral:~# \033[6necho hi\r\n' 'corral:~# echo hi\n'
expect "colours (CSI m)" '\033[1;32mgreen\033[0m text\n' 'green text\n'
expect "private CSI (ESC[?2004h)" '\033[?2004hprompt\n' 'prompt\n'
expect "an OSC title ended by BEL" '\033]0;corral-guest\007shell\n' 'shell\n'
expect "an OSC title ended by ST" '\033]2;t\033\\x\n' 'x\n'
expect "charset selection and keypad mode" '\033(B\033=a\033>b\n' 'ab\n'
expect "other control characters, tab kept" 'a\001\bb\tc\007\n' 'ab\tc\n'
expect "plain text and UTF-8 untouched" 'hello from corral-guest: 2 CPUs, caf\303\251\n' 'hello from corral-guest: 2 CPUs, caf\303\251\n'
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
