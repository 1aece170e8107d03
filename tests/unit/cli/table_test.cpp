#include "cli/table.h"

#include <gtest/gtest.h>

namespace corral::cli {
namespace {

TEST(Table, AlignsColumnsToTheWidestCell) {
    Table table({"NAME", "STATE", "CPUS"});
    table.add_row({"web1", "running", "2"});
    table.add_row({"database-primary", "stopped", "16"});
    EXPECT_EQ(table.render(),
              "NAME              STATE    CPUS\n"
              "web1              running  2\n"
              "database-primary  stopped  16\n");
}

TEST(Table, EmptyTableIsJustTheHeaderAndShortRowsArePadded) {
    Table table({"A", "B"});
    EXPECT_EQ(table.render(), "A  B\n");
    table.add_row({"x"});
    EXPECT_EQ(table.render(), "A  B\nx\n") << "no trailing spaces";
}

TEST(Table, CountsUtf8CharactersNotBytes) {
    Table table({"N", "X"});
    table.add_row({"é", "1"});
    table.add_row({"ab", "2"});
    EXPECT_EQ(table.render(), "N   X\né   1\nab  2\n");
}

TEST(RenderFields, PadsKeys) {
    EXPECT_EQ(render_fields({{"name", "web1"}, {"memory", "1G"}}), "name:   web1\nmemory: 1G\n");
}

}  // namespace
}  // namespace corral::cli
