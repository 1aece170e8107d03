#!/usr/bin/env bash
# tests/integration/daemon/api.sh: the REST API of a real corrald process (temporary state folder,
# real SQLite, real directory pool), driven with curl. No VM boots here (tests/e2e/daemon_vm.sh
# does that): requests, answers, validation errors, and that nothing is half-created.
# Exit status: 0 all passed, 1 a check failed. Ends with "N passed, N failed".
set -uo pipefail
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/../../.." && pwd)
build_dir="${CORRAL_BUILD_DIR:-$repo/build}"
# shellcheck source=../../lib/corrald.sh
. "$repo/tests/lib/corrald.sh"
trap 'corrald_stop; rm -rf -- "$state"' EXIT

corrald_start || exit 1

echo "== host"
api GET /api/v1/host
check "GET /host is 200" test "$code" = 200
check "host reports both engines" test "$(jqb '.engines | keys | join(",")')" = "emulated,native"
check "default engine is the calibration's choice" test "$(jqb .default_engine)" = "$(jqb .calibration.default_engine)"
check "calibration says why" test -n "$(jqb .calibration.reason)"
if [ ! -c /dev/kvm ]; then
  check "no /dev/kvm: the emulated engine is the default" test "$(jqb .default_engine)" = emulated
fi
api GET /api/v1/openapi.json
check "OpenAPI document served" test "$(jqb .openapi)" = 3.0.3

echo "== pools and volumes"
api GET /api/v1/pools
check "the default pool exists" test "$(jqb '.[0].name')" = default
check "pool reports capacity" test "$(jqb '.[0].capacity_bytes')" -gt 0
api POST /api/v1/volumes '{"name":"data1","size":"64M"}'
check "create a 64 MiB qcow2 volume: 201" test "$code" = 201
check "its virtual size is 64 MiB" test "$(jqb .size_bytes)" = 67108864
check "qemu-img agrees it is a clean qcow2" qemu-img check -q "$(jqb .path)"
api POST /api/v1/volumes '{"name":"data1","size":"64M"}'
check "duplicate volume: 409 naming it" test "$code" = 409 -a "$(jqb .error.field)" = name
api POST /api/v1/volumes '{"name":"data2","size":"lots"}'
check "bad size: 400 naming size" test "$code" = 400 -a "$(jqb .error.field)" = size
api POST /api/v1/volumes '{"name":"clone1","from":{"volume":"data1"},"linked":true}'
check "linked clone: 201 with its backing" test "$code" = 201 -a "$(jqb .backing.volume)" = data1
api DELETE /api/v1/volumes/default/data1
check "delete a volume with a linked clone: 409" test "$code" = 409
api POST /api/v1/volumes/default/clone1/resize '{"size":"128M"}'
check "grow a volume" test "$code" = 200 -a "$(jqb .size_bytes)" = 134217728
api POST /api/v1/volumes/default/clone1/resize '{"size":"1M"}'
check "shrinking is refused with 400" test "$code" = 400
api POST /api/v1/volumes '{"name":"copy1","from":{"volume":"data1"},"linked":false}'
check "full copy is a task: 202" test "$code" = 202
wait_task "$(jqb .task)" 60
check "the copy task succeeded" test "$(jqb .status)" = succeeded -a "$(jqb .progress)" = 1
api GET /api/v1/volumes/default/copy1
check "the copy has no backing" test "$code" = 200 -a "$(jqb .backing)" = null

qemu-img create -q -f raw "$state/import.raw" 8M && printf 'corral-import-marker' | dd of="$state/import.raw" bs=1 seek=4096 conv=notrunc status=none
api POST /api/v1/volumes "{\"name\":\"imported\",\"import\":\"$state/import.raw\"}"
check "import a raw host file: a task (202)" test "$code" = 202
wait_task "$(jqb .task)" 60
check "  ... that succeeds" test "$(jqb .status)" = succeeded
api POST /api/v1/volumes/default/imported/export "{\"path\":\"$state/export.raw\",\"format\":\"raw\"}"
check "export it back to a raw file: a task" test "$code" = 202
wait_task "$(jqb .task)" 60
check "  ... whose bytes equal the original (qemu-img compare)" qemu-img compare -q "$state/import.raw" "$state/export.raw"
api POST /api/v1/volumes/default/imported/export "{\"path\":\"$state/export.raw\"}"
check "export over an existing file: 409 naming path" test "$code" = 409 -a "$(jqb .error.field)" = path
api POST /api/v1/volumes '{"name":"bad","import":"relative.img"}'
check "import of a relative path: 400 naming import" test "$code" = 400 -a "$(jqb .error.field)" = import
api POST /api/v1/images '{"name":"bookworm"}'
check "an image built from packages other than default or desktop: 400 naming kernel, and the two" \
  test "$code" = 400 -a "$(jqb .error.field)" = kernel -a -n "$(jqb .error.message | grep "'default' and 'desktop'")"

echo "== VMs: validation"
api POST /api/v1/vms '{"name":"Bad_Name"}'
check "invalid name: 400 naming name" test "$code" = 400 -a "$(jqb .error.field)" = name
api POST /api/v1/vms '{"name":"vm1","memroy_mib":256}'
check "unknown field: 400 naming it" test "$code" = 400 -a "$(jqb .error.field)" = memroy_mib
api POST /api/v1/vms '{"name":"vm1","memory_mib":99999999}'
check "memory beyond the host: 400 naming memory_mib" test "$code" = 400 -a "$(jqb .error.field)" = memory_mib
check "  ... and the message says the allowed range" grep -q "from 64 to" <<<"$(jqb .error.message)"
api POST /api/v1/vms '{"name":"vm1","vcpus":4096}'
check "vCPUs beyond the host: 400 naming vcpus" test "$code" = 400 -a "$(jqb .error.field)" = vcpus
api POST /api/v1/vms '{"name":"vm1","image":"nope"}'
check "missing image: 400 naming image" test "$code" = 400 -a "$(jqb .error.field)" = image
api POST /api/v1/vms '{"name":"vm1","disks":[{"volume":"nope"}]}'
check "missing volume: 400 naming disks[0].volume" test "$code" = 400 -a "$(jqb .error.field)" = "disks[0].volume"
api POST /api/v1/vms '{"name":"vm1","nics":[{"bridge":"nosuchbr0"}]}'
check "missing bridge: 400 naming nics[0].bridge" test "$code" = 400 -a "$(jqb .error.field)" = "nics[0].bridge"
api POST /api/v1/vms '{"name":"vm1","engine":"warp"}'
check "unknown engine: 400 naming engine" test "$code" = 400 -a "$(jqb .error.field)" = engine
api POST /api/v1/vms 'not json'
check "malformed JSON: 400" test "$code" = 400
api GET /api/v1/vms
check "nothing was created by the refused requests" test "$(jqb length)" = 0

echo "== VMs: define, edit, state rules, delete"
api POST /api/v1/vms '{"name":"vm1","vcpus":1,"memory_mib":256,"disks":[{"volume":"copy1"}],"restart_policy":"on-failure"}'
check "create vm1: 201, stopped" test "$code" = 201 -a "$(jqb .state)" = stopped
api POST /api/v1/vms '{"name":"vm1"}'
check "duplicate name: 409 naming name" test "$code" = 409 -a "$(jqb .error.field)" = name
api POST /api/v1/vms '{"name":"vm2","disks":[{"volume":"copy1"}]}'
check "a volume in use by another VM: 409" test "$code" = 409
api PATCH /api/v1/vms/vm1 '{"memory_mib":384}'
check "edit a stopped VM" test "$code" = 200 -a "$(jqb .memory_mib)" = 384
api PUT /api/v1/vms/vm1/state '{"action":"pause"}'
check "pause a stopped VM: 409 naming the state" test "$code" = 409
check "  ... the message names the state" grep -q "vm1 is stopped" <<<"$(jqb .error.message)"
api PUT /api/v1/vms/vm1/state '{"action":"fly"}'
check "unknown action: 400 naming action" test "$code" = 400 -a "$(jqb .error.field)" = action
api PUT /api/v1/vms/vm1/state '{"action":"start"}'
check "start a VM without an image is accepted as a task" test "$code" = 202
wait_task "$(jqb .task)" 60
check "  ... the task fails saying why" test "$(jqb .status)" = failed -a -n "$(jqb .error)"
api GET /api/v1/vms/vm1
check "  ... and the VM is failed with the reason" test "$(jqb .state)" = failed -a -n "$(jqb .state_reason)"
api GET /api/v1/vms/nope
check "unknown VM: 404" test "$code" = 404
api DELETE /api/v1/volumes/default/copy1
check "delete a volume a VM uses: 409" test "$code" = 409
api DELETE "/api/v1/vms/vm1?volumes=true"
check "delete vm1 with its volumes" test "$code" = 200 -a "$(jqb '.volumes[0]')" = copy1
api GET /api/v1/volumes/default/copy1
check "  ... its volume is gone" test "$code" = 404

echo "== tasks, events, metrics, errors"
api GET /api/v1/tasks
check "task list, newest first" test "$(jqb '.[0].kind')" = vm.start
api GET /api/v1/tasks/t-999
check "unknown task: 404" test "$code" = 404
api GET /metrics
check "Prometheus metrics" grep -q '^corral_vms 0' <<<"$body"
api DELETE /api/v1/host
check "wrong method: 405" test "$code" = 405
api GET /api/v1/nothing
check "unknown path: 404 with a JSON error" test "$code" = 404 -a -n "$(jqb .error.message)"

echo "== restart keeps the inventory"
api POST /api/v1/vms '{"name":"keeper","memory_mib":128}'
corrald_stop
corrald_start || exit 1
api GET /api/v1/vms/keeper
check "a VM defined before the restart is still there" test "$code" = 200 -a "$(jqb .memory_mib)" = 128

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
