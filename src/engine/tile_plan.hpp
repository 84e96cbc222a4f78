#pragma once
// How the all-pairs engine cuts the V x V cosine matrix into work, shared by every backend and by
// MPI ranks. Host-only.
//
// Two levels:
//  - The GEMM grid: every similarity comes from one GEMM call on a fixed G x G tile of the
//    (compacted, zero-padded) row space, tiles (gi, gj) with gi <= gj. BLAS libraries round
//    differently depending on the call shape and on where an element sits in it (measured with
//    OpenBLAS 0.3.21: a 100-row strip and the full product differ in ~5% of the elements, and
//    X X^T is not even symmetric with the Haswell kernels). Calling the GEMM only on this fixed
//    grid makes each cos(i, j) a function of (i, j) alone, so results are bit-identical for any
//    block size, memory budget and thread count. G depends on the number of rows only.
//  - Blocks: B = a multiple of G rows, the unit of memory (streamed from the RowSource when the
//    normalised table does not fit the budget) and of merging per-thread partial results. Block
//    pairs (I, J) with I <= J cover every unordered pair of rows once.
#include <cstdint>
#include <utility>
#include <vector>

namespace embgeom::engine {

/// Half-open range [begin, end) of rows.
struct RowRange {
    std::int64_t begin = 0;
    std::int64_t end = 0;
    std::int64_t size() const { return end - begin; }
};

/// One unit of the upper block triangle; i <= j.
struct BlockPair {
    std::int64_t i = 0;
    std::int64_t j = 0;
};

/// One GEMM call of the grid; gi <= gj.
struct GridTile {
    std::int64_t gi = 0;
    std::int64_t gj = 0;
};

struct TilePlanRequest {
    std::int64_t rows = 0;            ///< rows taking part (valid rows, compacted)
    std::int64_t dim = 0;             ///< columns of the table
    std::int64_t k = 1;               ///< neighbour slots kept per row
    int threads = 1;                  ///< workers holding per-thread state
    std::int64_t grid = 0;            ///< GEMM tile side; 0 = default_grid_side(rows)
    std::int64_t block_rows = 0;      ///< requested block side; 0 = largest the budget allows
    std::uint64_t memory_budget = 0;  ///< bytes; 0 = 1 GiB
};

struct TilePlan {
    std::int64_t rows = 0;
    std::int64_t dim = 0;
    std::int64_t k = 1;
    int threads = 1;
    std::int64_t grid = 0;         ///< G
    std::int64_t grid_tiles = 0;   ///< ceil(rows / G)
    std::int64_t block_grids = 0;  ///< grid tiles per block
    std::int64_t block_rows = 0;   ///< B = block_grids * G
    std::int64_t blocks = 0;       ///< ceil(grid_tiles / block_grids)
    bool resident = true;          ///< whole normalised table held (else blocks are streamed)
    std::uint64_t memory_budget = 0;
    std::uint64_t working_set_bytes = 0;  ///< estimate for this plan (see working_set_bytes())
    std::vector<BlockPair> block_pairs;   ///< I-major: (0,0), (0,1), ..., (1,1), ...

    /// Rows of block b, clipped to `rows`.
    RowRange block(std::int64_t b) const;
    /// Rows of grid tile g, clipped to `rows` (the GEMM still sees G rows, zero-padded).
    RowRange grid_rows(std::int64_t g) const;
    /// Grid tiles of block b: [first, end).
    RowRange block_grid_range(std::int64_t b) const;
    /// Grid tiles of a block pair, gi <= gj, row-major order; diagonal block pairs give only
    /// their upper triangle (gi == gj included).
    std::vector<GridTile> grid_tiles_of(const BlockPair& p) const;
};

/// The grid tiles one of `count` processes computes (WorkShare, include/embgeom/backend.hpp):
/// those whose ordinal in the grid's upper triangle, row by row ((0,0), (0,1), ..., (1,1), ...),
/// has ordinal % count == index. The grid depends on the row count only, so every process deals
/// the same tiles whatever its block size.
struct GridShare {
    int index = 0;
    int count = 1;
    bool whole() const { return count == 1; }
    /// Whether tile t of a grid of `grid_tiles` tiles per side is this share's.
    bool has(const GridTile& t, std::int64_t grid_tiles) const {
        const std::int64_t ordinal = t.gi * grid_tiles - t.gi * (t.gi - 1) / 2 + (t.gj - t.gi);
        return ordinal % count == index;
    }
    /// Tiles of this share in a grid of `grid_tiles` tiles per side.
    std::int64_t tiles(std::int64_t grid_tiles) const {
        const std::int64_t all = grid_tiles * (grid_tiles + 1) / 2;
        return all > index ? (all - index + count - 1) / count : 0;
    }
};

/// GEMM tile side used for `rows` rows: 512 from 8192 rows up (an efficient single-threaded
/// SGEMM shape whose 1 MiB result tile stays in L2 for the fold), smaller powers of two (>= 32)
/// below, so that small tables are still cut into about 16 tiles per side.
std::int64_t default_grid_side(std::int64_t rows);

/// Bytes held by the engine for a plan shape: the normalised table (whole when resident, else two
/// blocks and a read buffer of G rows), the global neighbour lists [rows, k], and per thread one
/// G x G tile and the partial neighbour lists and thresholds of the two blocks of a pair (small
/// scratch such as the histogram counters is not counted).
std::uint64_t working_set_bytes(std::int64_t rows, std::int64_t dim, std::int64_t k, int threads,
                                std::int64_t grid, std::int64_t block_rows, bool resident);

/// Plans the tiling. The table is resident when it fits the budget with one-grid-tile blocks; B
/// is then the largest multiple of G within the budget (or block_rows rounded up to a multiple of
/// G, capped at the padded row count). When even the smallest streaming plan (B = G) exceeds the
/// budget that plan is used anyway and working_set_bytes says by how much.
/// @throws ResourceError on negative sizes or k < 1.
TilePlan make_tile_plan(const TilePlanRequest& request);

}  // namespace embgeom::engine
