// libFuzzer target: qcow2 snapshot table parsing. The first two bytes choose the entry count;
// the rest is the table. Parsed tables must re-serialize to something that parses the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "storage/qcow2/format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace corral::storage::qcow2;
    if (size < 2) return 0;
    uint32_t count = uint32_t(data[0]) << 8 | data[1];
    size_t consumed = 0;
    auto table = parse_snapshot_table(std::span(data + 2, size - 2), count, &consumed);
    if (!table) return 0;
    if (consumed > size - 2 + 7) std::abort();
    auto bytes = serialize_snapshot_table(*table);
    auto again = parse_snapshot_table(bytes, count);
    if (!again || again->size() != table->size()) std::abort();
    for (size_t i = 0; i < table->size(); ++i)
        if ((*again)[i].name != (*table)[i].name || (*again)[i].l1_table_offset != (*table)[i].l1_table_offset)
            std::abort();
    return 0;
}
