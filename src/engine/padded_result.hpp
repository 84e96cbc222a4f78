#pragma once
// The empty AllPairsResult every backend starts from: the padding contract of backend.hpp
// (index -1 and NaN for slots and rows that get no value) in one place.
#include <cstdint>

#include "embgeom/backend.hpp"

namespace embgeom::engine {

/// rows, k, neighbour slots padded with -1 / NaN, row means NaN, tiled row sums NaN when
/// opt.accumulate_row_sums; every other field left as default-constructed.
AllPairsResult padded_result(std::int64_t rows, const AllPairsOptions& opt);

}  // namespace embgeom::engine
