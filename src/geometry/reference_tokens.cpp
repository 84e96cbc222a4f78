#include "geometry/reference_tokens.hpp"

#include <algorithm>
#include <regex>

#include "embgeom/errors.hpp"

namespace embgeom {

std::vector<std::int64_t> reference_ids_from_list(std::vector<std::int64_t> ids,
                                                  std::int64_t vocab_size) {
    for (std::int64_t id : ids)
        if (id < 0 || id >= vocab_size)
            throw UsageError("reference token id " + std::to_string(id) +
                             " is outside the vocabulary [0, " + std::to_string(vocab_size) + ")");
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
}

std::vector<std::int64_t> reference_ids_from_range(std::int64_t begin, std::int64_t end,
                                                   std::int64_t vocab_size) {
    if (begin < 0 || begin > end || end > vocab_size)
        throw UsageError("reference token range [" + std::to_string(begin) + ", " +
                         std::to_string(end) + ") is not inside the vocabulary [0, " +
                         std::to_string(vocab_size) + ")");
    std::vector<std::int64_t> ids;
    ids.reserve(static_cast<std::size_t>(end - begin));
    for (std::int64_t i = begin; i < end; ++i) ids.push_back(i);
    return ids;
}

std::vector<std::int64_t> reference_ids_from_regex(const std::string& pattern,
                                                   const std::vector<std::string>& tokens) {
    std::regex re;
    try {
        re = std::regex(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
        throw UsageError("reference token regex \"" + pattern + "\" does not compile: " + e.what());
    }
    std::vector<std::int64_t> ids;
    std::size_t i = 0;
    try {  // backtracking patterns can exhaust std::regex's complexity or stack limits
        for (; i < tokens.size(); ++i)
            if (std::regex_search(tokens[i], re)) ids.push_back(static_cast<std::int64_t>(i));
    } catch (const std::regex_error& e) {
        throw UsageError("reference token regex \"" + pattern + "\" failed on token " +
                         std::to_string(i) + ": " + e.what());
    }
    return ids;
}

}  // namespace embgeom
