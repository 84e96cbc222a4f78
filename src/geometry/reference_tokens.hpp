#pragma once
// Choosing the reference set of known-unused tokens for the under-trained token indicator
// (undertrained_indicators.hpp): from an explicit id list, an id range or a regex over the
// token strings. The automatic fallback, which needs the table, is automatic_reference_ids in
// undertrained_indicators.hpp.
#include <cstdint>
#include <string>
#include <vector>

namespace embgeom {

/// @brief The ids sorted and de-duplicated.
/// @param[in] ids         token ids.
/// @param[in] vocab_size  V; every id must lie in [0, V).
/// @throws UsageError naming the first id outside [0, V).
std::vector<std::int64_t> reference_ids_from_list(std::vector<std::int64_t> ids,
                                                  std::int64_t vocab_size);

/// @brief The ids begin, begin + 1, ..., end - 1.
/// @throws UsageError unless 0 <= begin <= end <= vocab_size.
std::vector<std::int64_t> reference_ids_from_range(std::int64_t begin, std::int64_t end,
                                                   std::int64_t vocab_size);

/// @brief The ids i (ascending) whose token string tokens[i] the pattern matches anywhere
///        (std::regex_search, ECMAScript grammar, case-sensitive, byte-wise on UTF-8): anchor it
///        to match whole tokens, e.g. "^\\[unused\\d+\\]$" (BERT) or "^<unused\\d+>$" (Gemma).
/// @param[in] pattern  ECMAScript regular expression.
/// @param[in] tokens   [V] token strings, tokens[i] = string of token id i.
/// @returns possibly empty.
/// @throws UsageError when the pattern does not compile (with std::regex's explanation).
std::vector<std::int64_t> reference_ids_from_regex(const std::string& pattern,
                                                   const std::vector<std::string>& tokens);

}  // namespace embgeom
