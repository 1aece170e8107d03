# shellcheck shell=bash
# bench/lib/ticking_guest.sh: a guest that fills memory, rewrites some of it and prints a line every
# 10 ms, under corral-vmm or QEMU with its console stamped on arrival; for the benchmarks that move
# a running guest (bench/migration/run.sh, bench/snapshot/native.sh). Needs $repo and $work;
# keeps the monitors' pids in `pids` for end_all.
#   ticking_guest_line FILL_MIB RATE_MIB_S  the kernel command line of such a guest
#   start_stamped LOG COMMAND...            COMMAND in the background, its output stamped into LOG
#   wait_ticks LOG [SECONDS]                until the guest ticks in LOG (up to 900 s)
#   wait_socket PATH                        until something listens on PATH (up to 60 s)
#   end_all                                 kills every monitor started, so runs never overlap
monitors="$repo/bench/lib/monitors.py"
pids=()
tick_mark=bench-tick

ticking_guest_line() {
  local fill=$1 rate=$2 run
  run="mkdir -p /mem && mount -t tmpfs -o size=$((fill + rate + 16))m tmpfs /mem && "
  run+="dd if=/dev/urandom of=/mem/fill bs=1M count=$fill 2>/dev/null && "
  if ((rate > 0)); then
    run+="{ while :; do dd if=/mem/fill of=/mem/written bs=1M count=$rate conv=notrunc 2>/dev/null; sleep 1; done & } && "
  fi
  run+="while :; do echo $tick_mark; usleep 10000; done"
  echo "console=ttyS0 quiet $("$repo/tools/guest-image" encode-run "$run") corral.then=halt"
}

# Through a FIFO (the lab has no /dev/fd for a process substitution); the stamper opens it itself,
# so its START line is when the monitor was started, not when Python was.
start_stamped() {
  local log=$1; shift
  mkfifo "$log.fifo"
  python3 -u "$monitors" stamp "$log.fifo" >"$log" &
  "$@" </dev/null >"$log.fifo" 2>&1 &
  pids+=($!)
}

wait_ticks() {
  local deadline=$((SECONDS + ${2:-900}))
  until grep -q "$tick_mark" "$1" 2>/dev/null; do
    if ((SECONDS > deadline)); then echo "no ticks in $1:"; tail -n 20 "$1"; return 1; fi
    sleep 1
  done
}

wait_socket() {
  local deadline=$((SECONDS + 60))
  until [ -S "$1" ]; do
    if ((SECONDS > deadline)); then echo "nothing listens on $1"; return 1; fi
    sleep 0.1
  done
}

end_all() {
  local pid
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  pids=()
  sleep 1
}
