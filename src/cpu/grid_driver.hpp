#pragma once
// The skeleton the CPU's tiled passes share (the all-pairs engine, cpu_all_pairs.cpp, and the
// CSLS pass, geometry/csls.cpp): the valid rows of a RowSource, normalised (optionally after
// subtracting a centre), on the fixed GEMM grid of engine/tile_plan.hpp, resident or streamed in
// blocks, packed once in panels (packed_panels.hpp), and a driver that computes every grid tile of
// every block pair with the tile product of tile_gemm.hpp (one fma chain per pair) and hands it to
// the pass's fold. Passes differ only in their folds and merges; one driver keeps their cosines
// bit-identical and their threading identical.
//
// Threading of one block pair: prepare_pair (caller's thread), then in one OpenMP team:
// begin_pair on every thread, a barrier, the grid tiles dynamically (fold), a barrier, merge_row
// for every local row (static split; rows are disjoint, so merges never conflict), end_pair on
// every thread; then after_pair on the caller's thread. The first exception thrown by a hook stops
// the remaining tiles and is rethrown after the team ends.
#include <cstdint>
#include <memory>
#include <vector>

#include "embgeom/row_source.hpp"
#include "engine/tile_plan.hpp"
#include "engine/topk_lists.hpp"

namespace embgeom::cpu {

/// 64-byte aligned floats (GEMM operands start at the same alignment whether they come from the
/// resident table or a streamed block), zero-initialised unless asked not to be.
class AlignedFloats {
  public:
    AlignedFloats() = default;
    /// @throws ResourceError when the allocation fails.
    explicit AlignedFloats(std::size_t n, bool zero = true);
    float* data() const { return ptr_.get(); }

  private:
    struct Free {
        void operator()(float* p) const noexcept;
    };
    std::unique_ptr<float, Free> ptr_;
};

/// Rows of one block pair as the hooks see them. Local rows number the rows of block I, then
/// (when J != I) those of block J; compacted rows number the valid rows in original order.
struct PairView {
    engine::BlockPair pair;
    engine::RowRange rows_i, rows_j;  ///< compacted rows of blocks I and J
    std::int64_t n_local = 0;         ///< local rows: |I| + (J != I ? |J| : 0)
    /// Normalised rows of I, packed (packed_panels.hpp; local row 0 first), zero-padded to a whole
    /// block; cpu::unpack_row reads one row.
    const float* xi = nullptr;
    const float* xj = nullptr;        ///< of J (== xi when J == I)
    /// The last pair of block I: every pair of I's rows has been seen once it is done (and the
    /// normalised sum is complete, since the pairs of I = 0 load every block).
    bool last_of_i = false;

    bool same() const { return pair.i == pair.j; }
    /// The compacted row of local row l.
    std::int64_t global_row(std::int64_t l) const {
        return l < rows_i.size() ? rows_i.begin + l : rows_j.begin + (l - rows_i.size());
    }
};

/// One computed grid tile: C[r * grid + q] = cos(row r of gi, row q of gj) for r < rows.size(),
/// q < cols.size() (the GEMM sees whole zero-padded tiles). Diagonal tiles (gi == gj) hold only
/// the upper triangle with the diagonal (q >= r); each pair belongs above it (q > r).
struct TileView {
    engine::GridTile tile;
    const float* C = nullptr;
    engine::RowRange rows, cols;  ///< compacted rows of the tile's row / column side
    std::int64_t li = 0, lj = 0;  ///< local rows of rows.begin / cols.begin
    bool diagonal() const { return tile.gi == tile.gj; }
};

class GridPass {
  public:
    virtual ~GridPass() = default;
    virtual void prepare_pair(const PairView&) {}
    virtual void begin_pair(int /*thread*/, const PairView&) {}
    virtual void fold(int thread, const PairView&, const TileView&) = 0;
    virtual void merge_row(const PairView&, std::int64_t /*local_row*/) {}
    virtual void end_pair(int /*thread*/, const PairView&) {}
    virtual void after_pair(const PairView&) {}
};

/// thr[l] = global.threshold(p.global_row(l)) for every local row: a thread's starting filter
/// (a candidate below its row's global K-th best cannot enter the final list).
void seed_thresholds(const PairView& p, const engine::TopKLists& global, std::vector<float>& thr);

struct GridRowsOptions {
    const double* center = nullptr;  ///< [d] subtracted before normalising, or none
    /// [d] when given: receives S = sum of the normalised valid rows in row order (float64).
    double* normalized_sum = nullptr;
    /// [n] when given: 1 where a valid row has norm 0 (normalised to zeros), else 0.
    std::uint8_t* zero_rows = nullptr;
    const char* what = "all-pairs";  ///< names the pass in error messages
};

/// Runs pass over every grid tile of plan (made for the n = orig.size() valid rows of source,
/// original indices orig, ascending) that belongs to share, with `threads` OpenMP threads. Every
/// block pair is still visited (prepare_pair ... after_pair, rows loaded), so S and whatever a
/// pass computes per block are whole in every share.
/// @throws ResourceError when a valid row holds non-finite values or memory runs out; whatever a
///         hook throws.
/// Returns the seconds spent reading, normalising and packing rows (the rest is tiles and folds).
double run_grid_pass(RowSource& source, const std::vector<std::int64_t>& orig,
                     const engine::TilePlan& plan, const GridRowsOptions& rows_options, int threads,
                     GridPass& pass, const engine::GridShare& share = {});

}  // namespace embgeom::cpu
