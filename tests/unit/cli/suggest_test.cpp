#include "cli/suggest.h"

#include <gtest/gtest.h>

namespace corral::cli {
namespace {

TEST(EditDistance, CountsInsertionsDeletionsSubstitutionsAndSwaps) {
    EXPECT_EQ(edit_distance("start", "start"), 0u);
    EXPECT_EQ(edit_distance("strat", "start"), 1u);  // two neighbours swapped
    EXPECT_EQ(edit_distance("imge", "image"), 1u);
    EXPECT_EQ(edit_distance("lst", "list"), 1u);
    EXPECT_EQ(edit_distance("", "vm"), 2u);
    EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

TEST(Nearest, TyposAndSynonymsButNotOtherWords) {
    const std::vector<std::string> verbs{"create", "list", "show", "start", "stop", "delete"};
    EXPECT_EQ(nearest("strat", verbs), "start");
    EXPECT_EQ(nearest("delte", verbs), "delete");
    EXPECT_EQ(nearest("destroy", verbs), "delete");  // virsh's word
    EXPECT_EQ(nearest("shutdown", verbs), "stop");
    EXPECT_EQ(nearest("frobnicate", verbs), std::nullopt);
    EXPECT_EQ(nearest("x", verbs), std::nullopt);
    EXPECT_EQ(nearest("--imge", {"--image", "--memory"}), "--image");
    EXPECT_EQ(nearest("--mem", {"--image", "--memory"}), "--memory");
    // A synonym only when its meaning is one of the candidates.
    EXPECT_EQ(nearest("destroy", {"list", "show"}), std::nullopt);
}

}  // namespace
}  // namespace corral::cli
