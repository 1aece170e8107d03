#include "storage/pool/storage_pool.h"

#include <fmt/format.h>

namespace corral::storage::pool {

Result<void> check_name(const char* what, const std::string& name) {
    auto bad = [&](const char* why) {
        return fail(
            fmt::format("{} '{}' is invalid: {} (names are 1 to 63 characters, lowercase letters, "
                        "digits and '-', starting with a letter, not ending with '-')",
                        what, name.size() > 63 ? name.substr(0, 63) + "..." : name, why),
            EINVAL);
    };
    if (name.empty())
        return bad("it is empty");
    if (name.size() > 63)
        return bad("it is longer than 63 characters");
    if (name[0] < 'a' || name[0] > 'z')
        return bad("it does not start with a lowercase letter");
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return bad("it contains a character other than a-z, 0-9 and '-'");
    if (name.back() == '-')
        return bad("it ends with '-'");
    return {};
}

}  // namespace corral::storage::pool
