// libFuzzer target: qcow2 header + header extension parsing (untrusted image files).
// The parser must never crash, read past the input, or accept a header whose tables lie outside
// the claimed file size; accepted headers must survive a serialize/parse round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "storage/qcow2/format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace corral::storage::qcow2;
    auto header = parse_header(std::span(data, size), size);
    if (!header) return 0;
    if (header->l1_size && header->l1_table_offset + uint64_t(header->l1_size) * 8 > size) std::abort();
    auto bytes = serialize_header(*header);
    if (!bytes) return 0;  // e.g. a v2 header whose extensions no longer fit
    auto again = parse_header(*bytes, std::max<uint64_t>(size, bytes->size()));
    if (again && again->backing_file != header->backing_file) std::abort();
    return 0;
}
