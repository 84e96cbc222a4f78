#pragma once
// Streaming for the simplex analyses (simplex_*.hpp): rows arrive in chunks aligned to a fixed
// grid of kSimplexTileRows-row tiles, whatever the read size, so every BLAS call sees the same
// shape and the same rows at the same positions. BLAS rounding depends on the call shape and on
// where an element sits in it (see engine/tile_plan.hpp), so this grid is what makes the results
// bit-identical for any block size and thread count.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "embgeom/row_source.hpp"

namespace embgeom {

/// How the simplex analyses stream the table.
struct SimplexStreamOptions {
    /// Rows per RowSource::read_rows call; 0 = about 32 MiB of float32 rows. The row buffer holds
    /// max(block_rows, 256) rows rounded up to a multiple of 256 (the tile grid).
    std::int64_t block_rows = 0;
    /// OpenMP threads; 0 = omp_get_max_threads(). Results do not depend on it.
    int threads = 0;
};

namespace simplex_detail {

/// Rows per tile of the fixed grid (the unit of one BLAS call and of thread work).
constexpr std::int64_t kSimplexTileRows = 256;

/// A near-degeneracy threshold relative to the size of the coordinates: float32 rows carry a
/// relative rounding error of 2^-24 ~ 6e-8, so smaller heights are indistinguishable from zero.
constexpr double kDegenerateTolerance = 1e-5;

inline std::int64_t round_up(std::int64_t x, std::int64_t m) { return (x + m - 1) / m * m; }

/// threads > 0 ? threads : omp_get_max_threads().
int resolve_threads(int threads);

/// Throws ResourceError unless valid is empty or has one entry per row; InputError if d == 0.
void check_table(const RowSource& source, const std::vector<std::uint8_t>& valid);

/// valid.empty() || valid[i] != 0.
inline bool row_is_valid(const std::vector<std::uint8_t>& valid, std::int64_t i) {
    return valid.empty() || valid[static_cast<std::size_t>(i)] != 0;
}

/// printf("%.3g") of v, for messages.
std::string format_g(double v);

/// Number of valid rows.
std::int64_t count_valid(const RowSource& source, const std::vector<std::uint8_t>& valid);

/// Row id of source as float64 [cols]; @throws InputError when id is out of range or invalid.
std::vector<double> read_row_f64(RowSource& source, const std::vector<std::uint8_t>& valid,
                                 std::int64_t id, const char* what);

/// Calls fn(first, count, rows) for consecutive chunks covering [0, source.rows()). first is a
/// multiple of kSimplexTileRows; rows is row-major [round_up(count, kSimplexTileRows), cols]
/// float32 (ld = cols), valid only during the call. Rows of invalid tokens and the padding rows
/// past count are zero. Each chunk is read with read_rows calls of at most block_rows rows.
void for_each_tile_chunk(
    RowSource& source, const std::vector<std::uint8_t>& valid, std::int64_t block_rows,
    const std::function<void(std::int64_t first, std::int64_t count, const float* rows)>& fn);

}  // namespace simplex_detail
}  // namespace embgeom
