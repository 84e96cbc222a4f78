#pragma once
// k-occurrence (hubness): how often each token appears in the other tokens' neighbour lists.
#include <cstdint>
#include <vector>

#include "embgeom/backend.hpp"

namespace embgeom::engine {

/// @param[in] result final lists: neighbor_index [rows, k], -1 for empty slots.
/// @return [rows] N_k(j) = number of rows i whose list holds j. Invalid tokens never appear in a
///         list, so their count is 0. @throws ResourceError when an index is out of range.
std::vector<std::int32_t> k_occurrence(const AllPairsResult& result);

}  // namespace embgeom::engine
