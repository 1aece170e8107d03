#!/usr/bin/env bash
# bench/daemon/run.sh: the management plane, corrald against libvirtd on the same machine in the
# same run. Prints each figure, libvirt's beside it, and the ratio corral/libvirt.
#
#   1. define: VMs defined per second (N VMs of 128 MiB, no disks): corral `POST /api/v1/vms`
#      against libvirt's defineXML of a minimal domain (type qemu, 128 MiB, os hvm, no disks);
#   2. list and show with N VMs defined, p50/p99 latency of R sequential calls:
#      corral `GET /api/v1/vms` and `GET /api/v1/vms/NAME` against libvirt's list of all domains
#      with their state and sizes, and one domain's state and configuration;
#   (define-to-running with tiny guests on the native engine is bench/daemon/define_to_running.sh:
#   it needs KVM, so it runs in the nested lab on hosts without a usable one.)
#
# Each is measured with three kinds of client, because a process start per call (~5 ms for curl)
# would otherwise dominate a management call that takes well under a millisecond:
#   - CLI, a process per call: `corral vm list|show|create` against `virsh list --all|dominfo|define`;
#   - curl per request (corral only: libvirt speaks no HTTP);
#   - keep-alive client, one process and one connection for all calls (bench/daemon/client.py):
#     python http.client over the unix socket against the python3-libvirt binding.
# corrald runs on a temporary state folder (tests/lib/corrald.sh). libvirt runs against a real
# libvirtd at qemu:///system: the script installs libvirt-daemon-system, libvirt-clients and
# python3-libvirt with apt-get if they are missing, starts libvirtd if no libvirt daemon is
# running (and stops only the one it started), and undefines the domains it defined.
#
# Usage: bench/daemon/run.sh [--vms N] [--requests R]   (default 100 VMs, 300 calls each)
#        bench/daemon/run.sh --smoke   10 VMs, 20 calls, corral only, well under 20 s; exit 77
#                                      when it cannot run here (no corrald built, no curl/python3)
set -uo pipefail

script=$(readlink -f "${BASH_SOURCE[0]}")
here=$(dirname "$script")
repo=$(cd "$here/../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
vms=100 requests=300 smoke=0
# shellcheck source=../lib/options.sh
. "$repo/bench/lib/options.sh"
bench_options '[--smoke] [--vms N] [--requests R]' \
  '--smoke:smoke=1 vms=10 requests=20' --vms=vms --requests=requests -- "$@"

corral_cli="$build_dir/src/cli/corral"
client="$here/client.py"
for need in "$build_dir/src/daemon/corrald" "$corral_cli"; do
  [ -x "$need" ] || { echo "skipped: $need is not built"; exit 77; }
done
command -v curl >/dev/null || { echo "skipped: curl is missing"; exit 77; }
# The system python: a version manager's shim (pyenv) costs more than a second per start.
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3) || { echo "skipped: python3 is missing"; exit 77; }

# shellcheck source=../../tests/lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
work="$state/bench"
mkdir -p "$work"
lv_uri=qemu:///system lv_prefix=corralbench- lv_started_pid="" lv_defined=0
cleanup() {
  corrald_stop
  if [ "$lv_defined" = 1 ]; then
    for name in $(seq -f "${lv_prefix}b%03g" 1 "$vms"); do
      virsh -q -c "$lv_uri" undefine "$name" >/dev/null 2>&1
    done
  fi
  if [ -n "$lv_started_pid" ]; then
    kill -TERM "$lv_started_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$lv_started_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf -- "$state"
}
trap cleanup EXIT

# --- measuring -------------------------------------------------------------------------------
usec() { echo "${EPOCHREALTIME//[!0-9]/}"; }   # bash's clock: no process start of its own
# time_each FILE COUNT N COMMAND...: runs COMMAND COUNT times, a "{i}" in its words cycling through
# 001..N; appends each wall time in ms to FILE. Fails (and says so) if a run fails.
time_each() {
  local file=$1 count=$2 n=$3 k t0 t1 i; shift 3
  local args
  : >"$file"
  for ((k = 0; k < count; k++)); do
    printf -v i '%03d' $((k % n + 1))
    args=("${@//\{i\}/$i}")
    t0=$(usec)
    "${args[@]}" >/dev/null 2>"$work/err" </dev/null || { echo "bench: failed: ${args[*]}: $(head -c 300 "$work/err")" >&2; return 1; }
    t1=$(usec)
    echo "$(((t1 - t0) / 1000)).$(printf '%03d' $(((t1 - t0) % 1000)))" >>"$file"
  done
}
# pct FILE: "p50/p99" in ms (nearest rank), or "-" for no data.
pct() {
  [ -s "$1" ] || { echo -; return; }
  sort -n "$1" | awk '{a[NR]=$1} END {
    i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++; i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++;
    fmt = (a[i99] < 10) ? "%.2f/%.2f" : "%.1f/%.1f"; printf fmt, a[i50], a[i99] }'
}
# ratio A B: A/B for "p50/p99" pairs or single numbers, "-" if either is missing.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a !~ /^[0-9]/ || b !~ /^[0-9]/) { print "-"; exit }
    na = split(a, x, "/"); split(b, y, "/"); out = ""
    for (i = 1; i <= na; i++) out = out (i > 1 ? "/" : "") (y[i] > 0 ? sprintf("%.2f", x[i] / y[i]) : "n/a")
    print out }'
}
rate() { awk '{ printf "%.0f", ($1 > 0) ? $2 / $1 : 0 }' "$1"; }   # "SECONDS N" -> N per second

rows=()
declare -A corral_v libvirt_v
row() { rows+=("$1"); corral_v[$1]=$2; libvirt_v[$1]=${3:--}; }

# --- corrald ---------------------------------------------------------------------------------
corrald_start || exit 1
export CORRAL_SOCKET="$sock"
# `corral vm create` needs --image (a VM without one could never start): a tiny one (its files need
# not boot: nothing here starts a VM). Each CLI define thus also makes the VM's root disk, a linked
# clone, as a real `vm create --image` does.
printf 'not a kernel' >"$work/kernel"
truncate -s 1M "$work/root.raw"
api POST /api/v1/images "{\"name\": \"bench\", \"kernel\": \"$work/kernel\", \"root\": \"$work/root.raw\"}"
wait_task "$(jqb .task)" 60 && [ "$(jqb .status)" = succeeded ] || { echo "bench: importing the tiny image failed: $body"; exit 1; }

# --- libvirt (not in --smoke) ----------------------------------------------------------------
libvirt=0 lv_python=0
if [ "$smoke" = 0 ]; then
  apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >"$work/apt.log" 2>&1 ||
      { apt-get update -q >>"$work/apt.log" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >>"$work/apt.log" 2>&1; }
  }
  if ! command -v virsh >/dev/null || [ ! -x /usr/sbin/libvirtd ]; then
    echo "bench: installing libvirt-daemon-system libvirt-clients"
    apt_install libvirt-daemon-system libvirt-clients || { echo "bench: apt-get failed:"; tail -5 "$work/apt.log"; }
  fi
  if ! /usr/bin/python3 -c 'import libvirt' 2>/dev/null && apt-cache show python3-libvirt >/dev/null 2>&1; then
    echo "bench: installing python3-libvirt"
    apt_install python3-libvirt || echo "bench: python3-libvirt did not install: no keep-alive libvirt figures"
  fi
  if command -v virsh >/dev/null; then
    if ! virsh -q -c "$lv_uri" uri >/dev/null 2>&1; then
      # No libvirt daemon answers (no systemd socket activation here): start libvirtd ourselves.
      if [ -x /usr/sbin/libvirtd ]; then
        /usr/sbin/libvirtd -d -p "$work/libvirtd.pid"
        for _ in $(seq 100); do virsh -q -c "$lv_uri" uri >/dev/null 2>&1 && break; sleep 0.1; done
        lv_started_pid=$(cat "$work/libvirtd.pid" 2>/dev/null)
        echo "bench: started libvirtd (pid ${lv_started_pid:-?}); it is stopped at the end"
      fi
    fi
    if virsh -q -c "$lv_uri" uri >/dev/null 2>&1; then
      libvirt=1
      /usr/bin/python3 -c 'import libvirt' 2>/dev/null && lv_python=1
      if virsh -q -c "$lv_uri" list --all --name | grep -q "^${lv_prefix}"; then
        echo "bench: domains named ${lv_prefix}* already exist; not touching them, libvirt skipped"; libvirt=0
      fi
    fi
  fi
  [ "$libvirt" = 1 ] || echo "bench: libvirt unavailable: its columns stay empty"
  # The qemu driver probes the emulator's capabilities on first use (seconds): do it before timing.
  [ "$libvirt" = 1 ] && virsh -q -c "$lv_uri" capabilities >/dev/null 2>&1 && virsh -q -c "$lv_uri" domcapabilities >/dev/null 2>&1
fi
lv_xml() { printf "<domain type='qemu'><name>%s</name><memory unit='MiB'>128</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>\n" "$1"; }

echo "== corral: corrald $("$corral_cli" --version 2>/dev/null | head -1), state in $state"
[ "$libvirt" = 1 ] && echo "== libvirt: $(virsh -c "$lv_uri" version 2>/dev/null | grep -E 'Using library|Running hypervisor' | tr -s ' ' | paste -sd ';'), $lv_uri"
echo "== $vms VMs, $requests calls per figure, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. define throughput. The keep-alive clients define and delete them once; then the CLIs define
#    the set that stays for the list/show figures.
"$py" "$client" corral "$sock" define b "$vms" 128 >"$work/c_def_ka" || exit 1
"$py" "$client" corral "$sock" delete b "$vms" >/dev/null || exit 1
if [ "$lv_python" = 1 ]; then
  lv_defined=1
  /usr/bin/python3 "$client" libvirt "$lv_uri" define "${lv_prefix}b" "$vms" 128 >"$work/l_def_ka" || exit 1
  /usr/bin/python3 "$client" libvirt "$lv_uri" delete "${lv_prefix}b" "$vms" >/dev/null || exit 1
fi
t0=$(usec)
time_each "$work/c_def_cli" "$vms" "$vms" "$corral_cli" vm create "b{i}" --image bench --memory 128M || exit 1
echo "$(awk -v d=$(($(usec) - t0)) 'BEGIN{printf "%.4f", d/1e6}') $vms" >"$work/c_def_cli"
if [ "$libvirt" = 1 ]; then
  lv_defined=1
  for i in $(seq -f %03g 1 "$vms"); do lv_xml "${lv_prefix}b$i" >"$work/dom-$i.xml"; done
  t0=$(usec)
  time_each "$work/l_def_cli" "$vms" "$vms" virsh -q -c "$lv_uri" define "$work/dom-{i}.xml" || exit 1
  echo "$(awk -v d=$(($(usec) - t0)) 'BEGIN{printf "%.4f", d/1e6}') $vms" >"$work/l_def_cli"
fi
lv_rate() { [ -s "$1" ] && rate "$1" || echo -; }
row "define $vms VMs, CLI per VM (VMs/s)" "$(rate "$work/c_def_cli")" "$(lv_rate "$work/l_def_cli")"
row "define $vms VMs, keep-alive client (VMs/s)" "$(rate "$work/c_def_ka")" "$(lv_rate "$work/l_def_ka")"

# 2. list and show with the VMs defined.
n_now=$(curl -s --unix-socket "$sock" http://corral/api/v1/vms | "$py" -c 'import json, sys; print(len(json.load(sys.stdin)))')
[ "$n_now" = "$vms" ] || { echo "bench: corrald lists $n_now VMs, expected $vms"; exit 1; }
echo "   ($vms VMs defined in each)"

time_each "$work/c_list_cli" "$requests" "$vms" "$corral_cli" vm list || exit 1
[ "$libvirt" = 1 ] && { time_each "$work/l_list_cli" "$requests" "$vms" virsh -q -c "$lv_uri" list --all || exit 1; }
row "list, CLI process per call" "$(pct "$work/c_list_cli")" "$(pct "$work/l_list_cli")"
time_each "$work/c_show_cli" "$requests" "$vms" "$corral_cli" vm show "b{i}" || exit 1
[ "$libvirt" = 1 ] && { time_each "$work/l_show_cli" "$requests" "$vms" virsh -q -c "$lv_uri" dominfo "${lv_prefix}b{i}" || exit 1; }
row "show, CLI process per call" "$(pct "$work/c_show_cli")" "$(pct "$work/l_show_cli")"

time_each "$work/c_list_curl" "$requests" "$vms" curl -sf --unix-socket "$sock" http://corral/api/v1/vms || exit 1
row "list, curl per request" "$(pct "$work/c_list_curl")" "n/a"
time_each "$work/c_show_curl" "$requests" "$vms" curl -sf --unix-socket "$sock" "http://corral/api/v1/vms/b{i}" || exit 1
row "show, curl per request" "$(pct "$work/c_show_curl")" "n/a"

"$py" "$client" corral "$sock" get /api/v1/vms "$requests" >"$work/c_list_ka" 2>"$work/c_list_ka.err" || exit 1
[ "$lv_python" = 1 ] && { /usr/bin/python3 "$client" libvirt "$lv_uri" list "$requests" >"$work/l_list_ka" || exit 1; }
row "list, keep-alive client" "$(pct "$work/c_list_ka")" "$(pct "$work/l_list_ka")"
"$py" "$client" corral "$sock" get "/api/v1/vms/b{i}" "$requests" "$vms" >"$work/c_show_ka" 2>"$work/c_show_ka.err" || exit 1
[ "$lv_python" = 1 ] && { /usr/bin/python3 "$client" libvirt "$lv_uri" show "${lv_prefix}b" "$vms" "$requests" >"$work/l_show_ka" || exit 1; }
row "show, keep-alive client" "$(pct "$work/c_show_ka")" "$(pct "$work/l_show_ka")"
echo "   (keep-alive client: $(cat "$work/c_list_ka.err" "$work/c_show_ka.err" | awk '/connection/ {n += $2} END {print n + 0}') connection(s) for $((2 * (requests + 1))) corral requests)"

# --- the table -------------------------------------------------------------------------------
echo
printf '%-44s | %-16s | %-16s | %s\n' "operation (latency ms p50/p99)" "corral" "libvirt" "ratio corral/libvirt"
printf '%-44s-+-%-16s-+-%-16s-+-%s\n' "$(printf -- '-%.0s' {1..44})" "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..16})" "--------------------"
for r in "${rows[@]}"; do
  printf '%-44s | %-16s | %-16s | %s\n' "$r" "${corral_v[$r]}" "${libvirt_v[$r]}" "$(ratio "${corral_v[$r]}" "${libvirt_v[$r]}")"
done
echo "(define-to-running on the native engine: bench/daemon/define_to_running.sh)"
echo "(latency: ratio < 1 means corral is faster; VMs/s: ratio > 1 means corral is faster)"
[ "$libvirt" = 1 ] && [ "$lv_python" = 0 ] && echo "(no python3-libvirt: no keep-alive libvirt figures)"
[ "$smoke" = 1 ] && echo "(--smoke: corral only)"
exit 0
