#!/usr/bin/env bash
# bench/daemon/define_to_running.sh: how fast a definition becomes a running VM, corrald's native
# engine (corral-vmm on KVM) against libvirt with QEMU on KVM, on the same machine in the same
# run. Needs a usable /dev/kvm: where it does not open, the script runs itself inside the nested
# lab (tools/lab), where both run on the lab's KVM.
#
# For each of N VMs in turn (1 vCPU, 64 MiB), timed from before the define
# to the moment the management plane reports the VM running:
#   corral:  `corral vm create tN --image idle --engine native` + `corral vm start tN` (the CLI
#            waits for the start task, which ends once corral-vmm runs the guest);
#   libvirt: `virsh define` of a minimal KVM domain + `virsh start` (returns once QEMU runs).
# The corral guest is guests/tiny/idle.S (prints "idle ready", then halts), booted from its ELF
# with a 1 MiB blank root volume (corral images always have one). The libvirt domain boots no
# kernel: SeaBIOS finds nothing to boot and waits, which is as idle as QEMU gets without one.
# Also reported for corral: define to the guest's first console line ("idle ready").
# All VMs stay up until the end, so the last starts see a host with N-1 VMs running.
#
# Usage: bench/daemon/define_to_running.sh [--vms N]   (default 20)
set -uo pipefail

script=$(readlink -f "${BASH_SOURCE[0]}")
here=$(dirname "$script")
repo=$(cd "$here/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
vms=20
# shellcheck source=../lib/options.sh
. "$repo/bench/lib/options.sh"
bench_options '[--vms N]' --vms=vms -- "$@"
bench_numbers 1 --vms "$vms"

corral="$build_dir/src/cli/corral"
idle_guest="$build_dir/guests/tiny/idle.elf"
for need in "$build_dir/src/daemon/corrald" "$corral" "$build_dir/src/vmm/corral-vmm" "$idle_guest"; do
  [ -e "$need" ] || { echo "skipped: $need is not built"; exit 77; }
done

if ! { [ -c /dev/kvm ] && { : <>/dev/kvm; } 2>/dev/null; }; then
  [ -z "${CORRAL_IN_LAB:-}" ] || { echo "/dev/kvm cannot be opened inside the lab"; exit 1; }
  echo "no usable /dev/kvm here: running inside the nested lab (both sides on the lab's KVM)"
  exec "$repo/tools/lab" --timeout 1800 -- env CORRAL_IN_LAB=1 CORRAL_BUILD_DIR="$build_dir" "$script" --vms "$vms"
fi

# shellcheck source=../../tests/lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
work="$state/bench"
mkdir -p "$work"
lv_uri=qemu:///system lv_prefix=corralbench-run- lv_started_pid="" lv_started_logd="" lv_defined=0
cleanup() {
  for i in $(seq -f %03g 1 "$vms"); do
    [ -n "$corrald_pid" ] && api PUT "/api/v1/vms/t$i/state" '{"action":"kill"}'
    if [ "$lv_defined" = 1 ]; then
      virsh -q -c "$lv_uri" destroy "${lv_prefix}$i" >/dev/null 2>&1
      virsh -q -c "$lv_uri" undefine "${lv_prefix}$i" >/dev/null 2>&1
    fi
  done
  corrald_stop
  [ -n "$lv_started_pid" ] && kill -TERM "$lv_started_pid" 2>/dev/null
  [ -n "$lv_started_logd" ] && kill -TERM "$(cat "$work/virtlogd.pid" 2>/dev/null)" 2>/dev/null
  rm -rf -- "$state"
}
trap cleanup EXIT

usec() { echo "${EPOCHREALTIME//[!0-9]/}"; }
ms_since() { local d=$(($(usec) - $1)); printf '%d.%03d\n' $((d / 1000)) $((d % 1000)); }
pct() {   # pct FILE: "p50/p99" in ms (nearest rank)
  [ -s "$1" ] || { echo -; return; }
  sort -n "$1" | awk '{a[NR]=$1} END {
    i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++; i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++;
    printf "%.1f/%.1f", a[i50], a[i99] }'
}
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a !~ /^[0-9]/ || b !~ /^[0-9]/) { print "-"; exit }
    n = split(a, x, "/"); split(b, y, "/"); out = ""
    for (i = 1; i <= n; i++) out = out (i > 1 ? "/" : "") (y[i] > 0 ? sprintf("%.2f", x[i] / y[i]) : "n/a")
    print out }'
}

# --- corral ----------------------------------------------------------------------------------
corrald_start || exit 1
export CORRAL_SOCKET="$sock"
api GET /api/v1/host
echo "== corral: native engine $(jqb .engines.native.available) ($(jqb .engines.native.reason)); calibration: $(jqb .calibration.kvm)"
truncate -s 1M "$work/blank.raw"
api POST /api/v1/images "$(jq -n --arg k "$idle_guest" --arg r "$work/blank.raw" '{name: "idle", kernel: $k, root: $r}')"
wait_task "$(jqb .task)" 60 && [ "$(jqb .status)" = succeeded ] || { echo "bench: image import failed: $body"; exit 1; }

: >"$work/corral_running"; : >"$work/corral_define"; : >"$work/corral_console"
t_all=$(usec)
for i in $(seq -f %03g 1 "$vms"); do
  t0=$(usec)
  "$corral" vm create "t$i" --image idle --engine native --cpus 1 --memory 64M >/dev/null 2>"$work/err" ||
    { echo "bench: corral t$i: $(cat "$work/err")"; exit 1; }
  ms_since "$t0" >>"$work/corral_define"
  "$corral" vm start "t$i" >/dev/null 2>>"$work/err" || { echo "bench: corral t$i: $(cat "$work/err")"; exit 1; }
  ms_since "$t0" >>"$work/corral_running"
  until curl -s --unix-socket "$sock" "http://corral/api/v1/vms/t$i/console?tail=5" | grep -q 'idle ready'; do
    [ $(($(usec) - t0)) -lt 60000000 ] || { echo "bench: t$i printed nothing in 60 s"; exit 1; }
    sleep 0.01
  done
  ms_since "$t0" >>"$work/corral_console"
done
corral_rate=$(awk -v d=$(($(usec) - t_all)) -v n="$vms" 'BEGIN { printf "%.2f", n / (d / 1e6) }')
api GET /api/v1/vms
running=$(jq '[.[] | select(.state == "running")] | length' <<<"$body")
echo "   $running of $vms corral VMs running"

# --- libvirt ---------------------------------------------------------------------------------
libvirt=0
if command -v virsh >/dev/null && [ -x /usr/sbin/libvirtd ]; then
  if [ -n "${CORRAL_IN_LAB:-}" ]; then
    # The lab's root is the host's, read-only: give libvirtd writable copies of its folders,
    # and an empty cache (the host's cached QEMU capabilities say "no KVM").
    for d in /etc/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt; do
      [ -d "$d" ] || continue
      mkdir -p "$work/rw$d"
      [ "$d" = /var/cache/libvirt ] || cp -a "$d/." "$work/rw$d/"
      mount --bind "$work/rw$d" "$d"
    done
    # QEMU's private /dev (a mount namespace) would lack the lab's /dev/kvm, and the lab's
    # /dev/kvm is root's only (no udev to give it to group kvm).
    [ -f /etc/libvirt/qemu.conf ] && printf 'namespaces = []\nuser = "root"\ngroup = "root"\n' >>/etc/libvirt/qemu.conf
  fi
  if ! virsh -q -c "$lv_uri" uri >/dev/null 2>&1; then
    # libvirtd hands QEMU's stderr to virtlogd; without systemd nobody starts it for us.
    if [ -x /usr/sbin/virtlogd ] && [ ! -S /run/libvirt/virtlogd-sock ]; then
      /usr/sbin/virtlogd -d -p "$work/virtlogd.pid" && lv_started_logd=yes
    fi
    /usr/sbin/libvirtd -d -p "$work/libvirtd.pid" 2>"$work/libvirtd.err"
    for _ in $(seq 100); do virsh -q -c "$lv_uri" uri >/dev/null 2>&1 && break; sleep 0.1; done
    lv_started_pid=$(cat "$work/libvirtd.pid" 2>/dev/null)
  fi
  virsh -q -c "$lv_uri" uri >/dev/null 2>&1 && libvirt=1
fi
: >"$work/libvirt_running"; : >"$work/libvirt_define"
if [ "$libvirt" = 1 ]; then
  echo "== libvirt: $(virsh -c "$lv_uri" version 2>/dev/null | grep -E 'Using library|Running hypervisor' | tr -s ' ' | paste -sd ';')"
  # The first define probes QEMU's capabilities (minutes in the lab): do that before timing.
  printf "<domain type='kvm'><name>%swarmup</name><memory unit='MiB'>64</memory><os><type arch='x86_64' machine='pc'>hvm</type></os></domain>\n" \
    "$lv_prefix" >"$work/warmup.xml"
  virsh -q -c "$lv_uri" define "$work/warmup.xml" >/dev/null 2>"$work/warmup.err" &&
    virsh -q -c "$lv_uri" undefine "${lv_prefix}warmup" >/dev/null 2>>"$work/warmup.err" ||
    echo "bench: libvirt's warm-up define failed: $(head -c 300 "$work/warmup.err")"
  lv_defined=1
  t_all=$(usec)
  for i in $(seq -f %03g 1 "$vms"); do
    printf "<domain type='kvm'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os></domain>\n" \
      "${lv_prefix}$i" >"$work/dom-$i.xml"
    t0=$(usec)
    virsh -q -c "$lv_uri" define "$work/dom-$i.xml" >/dev/null 2>"$work/err" ||
      { echo "bench: libvirt ${lv_prefix}$i: $(head -c 400 "$work/err")"; libvirt=0; break; }
    ms_since "$t0" >>"$work/libvirt_define"
    virsh -q -c "$lv_uri" start "${lv_prefix}$i" >/dev/null 2>>"$work/err" ||
      { echo "bench: libvirt ${lv_prefix}$i: $(head -c 400 "$work/err")"; libvirt=0; break; }
    ms_since "$t0" >>"$work/libvirt_running"
  done
  [ "$libvirt" = 1 ] && libvirt_rate=$(awk -v d=$(($(usec) - t_all)) -v n="$vms" 'BEGIN { printf "%.2f", n / (d / 1e6) }')
else
  echo "== libvirt: unavailable ($(head -c 300 "$work/libvirtd.err" 2>/dev/null)): its column stays empty"
fi

# --- the table -------------------------------------------------------------------------------
echo
echo "$vms VMs, one after another, each left running; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-46s | %-14s | %-14s | %s\n' "CLI, a process per call" corral libvirt "ratio corral/libvirt"
line() { printf '%-46s | %-14s | %-14s | %s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
line "define-to-running, ms p50/p99" "$(pct "$work/corral_running")" "$(pct "$work/libvirt_running")"
line "  of which define, ms p50/p99" "$(pct "$work/corral_define")" "$(pct "$work/libvirt_define")"
line "throughput, VMs/s" "$corral_rate" "${libvirt_rate:--}"
printf '%-46s | %-14s | %-14s |\n' "define to first console line, ms p50/p99" "$(pct "$work/corral_console")" "n/a"
echo "(latency: ratio < 1 means corral is faster; VMs/s: ratio > 1 means corral is faster)"
exit 0
