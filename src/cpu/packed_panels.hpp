#pragma once
// The CPU all-pairs operand layout: normalised rows packed once, in panels of kPanelRows rows,
// each panel [k][kPanelRows] (value k of row r of the panel at k * kPanelRows + r). A range of rows
// starting at a multiple of kPanelRows starts at row * d in the packed array, as it would in a
// row-major one, so block and tile offsets are computed the same way. Why: the tile GEMM
// (tile_gemm.hpp) reads both of its operands from this layout as they are, where a BLAS call
// packs them again for every tile (6% of a run in OpenBLAS's copy routines).
#include <algorithm>
#include <cstdint>

namespace embgeom::cpu {

constexpr std::int64_t kPanelRows = 32;

/// Element (row, k) of the packed array (rows numbered from its start).
inline std::int64_t packed_index(std::int64_t row, std::int64_t k, std::int64_t d) {
    return (row / kPanelRows) * kPanelRows * d + k * kPanelRows + row % kPanelRows;
}

/// Writes `count` row-major rows (ld d) as rows first .. first + count of the packed array.
inline void pack_rows(const float* rows, std::int64_t count, std::int64_t first, std::int64_t d,
                      float* packed) {
    for (std::int64_t r = 0; r < count; ++r)
        for (std::int64_t k = 0; k < d; ++k) packed[packed_index(first + r, k, d)] = rows[r * d + k];
}

/// Sets rows first .. last of the packed array to zero (the padding of a block or table).
inline void zero_packed_rows(std::int64_t first, std::int64_t last, std::int64_t d, float* packed) {
    for (std::int64_t r = first; r < last; ++r)
        for (std::int64_t k = 0; k < d; ++k) packed[packed_index(r, k, d)] = 0.0f;
}

/// Copies row `row` of the packed array into out[0, d).
inline void unpack_row(const float* packed, std::int64_t row, std::int64_t d, float* out) {
    for (std::int64_t k = 0; k < d; ++k) out[k] = packed[packed_index(row, k, d)];
}

}  // namespace embgeom::cpu
