#pragma once
// Internal to src/geometry: walking a RowSource in row blocks, and the validity mask convention
// shared by the geometry analyses (an empty mask means "every row is valid").
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "core/row_block_reader.hpp"
#include "embgeom/errors.hpp"
#include "embgeom/row_source.hpp"

namespace embgeom::detail {

/// Rows per block when the caller passes 0: about 32 MiB of float64 per block.
inline std::int64_t auto_block_rows(std::int64_t block_rows, std::int64_t cols) {
    if (block_rows > 0) return block_rows;
    const std::int64_t per_row = std::max<std::int64_t>(1, cols) * 8;
    return std::max<std::int64_t>(1, (std::int64_t{32} << 20) / per_row);
}

inline void check_mask(const RowSource& src, const std::vector<std::uint8_t>& valid) {
    EMBGEOM_EXPECTS(valid.empty() || static_cast<std::int64_t>(valid.size()) == src.rows(),
                    "valid mask has " + std::to_string(valid.size()) + " entries for " +
                        std::to_string(src.rows()) + " rows");
}

inline bool is_valid(const std::vector<std::uint8_t>& valid, std::int64_t i) {
    return valid.empty() || valid[static_cast<std::size_t>(i)] != 0;
}

/// The mask spelled out for V rows: valid itself, or all ones where it is empty (every row valid).
inline std::vector<std::uint8_t> valid_mask_or_all(const std::vector<std::uint8_t>& valid,
                                                   std::int64_t V) {
    return valid.empty() ? std::vector<std::uint8_t>(static_cast<std::size_t>(V), 1) : valid;
}

/// Calls fn(first, count, rows) for consecutive blocks covering [0, src.rows()); rows is
/// row-major [count, cols] float32 and is only valid during the call.
template <class Fn>
void for_each_block(RowSource& src, std::int64_t block_rows, Fn&& fn) {
    const std::int64_t V = src.rows(), d = src.cols();
    const std::int64_t B =
        std::min<std::int64_t>(auto_block_rows(block_rows, d), std::max<std::int64_t>(V, 1));
    RowBlockReader blocks(src, B);
    for (std::int64_t first = 0; first < V; first += B) {
        const std::int64_t count = std::min(B, V - first);
        fn(first, count, blocks.read(first, count));
    }
}

}  // namespace embgeom::detail
