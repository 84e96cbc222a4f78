// CSLS neighbour lists: the all-pairs engine's tiling with a different fold.
//
// Rows are compacted to the n valid ones (original order kept, so compact i < j iff original
// i < j). Tiles (gi, gj), gi <= gj, of the fixed grid put every pair with its lower index on the
// tile row side (diagonal tiles: upper triangle only), so csls_score(c, r_row, r_col) is always
// called with the lower index first and each pair is scored once, then offered to both lists.
//
// Determinism: as in cpu_all_pairs.cpp, candidates go to per-thread partial lists of the rows of
// the current block pair, pre-filtered by the global lists' K-th scores (read-only during the
// pair), and are merged afterwards under TopKLists' total order. No candidate reaches two partial
// lists of one row, and the top-K of a set under a total order does not depend on how the set
// was split, so the lists do not depend on the schedule, the block size or the budget.
#include "geometry/csls.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <string>

#include "embgeom/errors.hpp"
#include "engine/row_normalize.hpp"
#include "engine/tile_plan.hpp"
#include "engine/topk_lists.hpp"

namespace embgeom {
namespace {

using engine::BlockPair;
using engine::GridTile;
using engine::RowRange;
using engine::TilePlan;
using engine::TopKLists;

/// 64-byte aligned, zero-initialised floats: GEMM operands start at the same alignment whether
/// they come from the resident table or a streamed block (as in cpu_all_pairs.cpp).
class AlignedFloats {
  public:
    AlignedFloats() = default;
    explicit AlignedFloats(std::size_t n) {
        const std::size_t bytes = std::max<std::size_t>(64, (n * sizeof(float) + 63) / 64 * 64);
        void* p = std::aligned_alloc(64, bytes);
        if (!p) throw ResourceError("csls: out of memory (" + std::to_string(bytes) + " bytes)");
        std::memset(p, 0, bytes);
        ptr_.reset(static_cast<float*>(p));
    }
    float* data() const { return ptr_.get(); }

  private:
    struct Free {
        void operator()(float* p) const noexcept { std::free(p); }
    };
    std::unique_ptr<float, Free> ptr_;
};

struct ThreadState {
    TopKLists lists;           ///< partial lists of the local rows of the current block pair
    std::vector<float> thr;    ///< per local row: max(global K-th score, partial K-th score)
    AlignedFloats tile;        ///< G x G cosines
    std::vector<float> score;  ///< one tile row of scores
};

/// Normalises valid rows [range) of the compacted space into dst (ld d), reading the source in
/// original order through a staging buffer of stage_rows rows (invalid rows in between are read
/// and dropped).
void load_rows(RowSource& source, const std::vector<std::int64_t>& orig, RowRange range,
               std::int64_t d, std::int64_t stage_rows, std::vector<float>& staging, int threads,
               float* dst) {
    staging.resize(static_cast<std::size_t>(stage_rows * std::max<std::int64_t>(d, 1)));
    std::int64_t c = range.begin;
    while (c < range.end) {
        const std::int64_t o0 = orig[c];
        const std::int64_t o1 = std::min(orig[range.end - 1] + 1, o0 + stage_rows);
        source.read_rows(o0, o1 - o0, staging.data());
        std::int64_t c1 = c;
        while (c1 < range.end && orig[c1] < o1) ++c1;
        std::int64_t bad = -1;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(max : bad)
        for (std::int64_t r = c; r < c1; ++r) {
            const double norm = engine::normalize_row(staging.data() + (orig[r] - o0) * d, nullptr,
                                                      d, dst + (r - range.begin) * d);
            if (!std::isfinite(norm)) bad = std::max(bad, orig[r]);
        }
        if (bad >= 0)
            throw InputError("csls: row " + std::to_string(bad) + " of " + source.describe() +
                             " is marked valid but holds non-finite values");
        c = c1;
    }
}

/// Folds one G x G cosine tile (mi x mj used) into the thread's partial lists. row0 / col0:
/// compact index of the first row of the tile's row / column side; li / lj: their local rows.
void fold_tile(const float* C, std::int64_t G, std::int64_t mi, std::int64_t mj, bool diag,
               std::int64_t row0, std::int64_t col0, std::int64_t li, std::int64_t lj,
               const float* rad, ThreadState& ts) {
    float* const thr = ts.thr.data();
    float* const s = ts.score.data();
    for (std::int64_t r = 0; r < mi; ++r) {
        const std::int64_t q0 = diag ? r + 1 : 0;
        const std::int64_t len = mj - q0;
        if (len <= 0) continue;
        const float* const c = C + r * G + q0;
        const float* const rc = rad + col0 + q0;
        const float ri = rad[row0 + r];
        for (std::int64_t p = 0; p < len; ++p) s[p] = csls_score(c[p], ri, rc[p]);

        const std::int64_t lr = li + r;
        float* const tcol = thr + lj + q0;
        for (std::int64_t p = 0; p < len; ++p) {
            const float v = s[p];
            // thr only rises, so failing it means the candidate cannot enter.
            if (v >= thr[lr] && ts.lists.offer(lr, v, col0 + q0 + p))
                thr[lr] = std::max(thr[lr], ts.lists.threshold(lr));
            if (v >= tcol[p] && ts.lists.offer(lj + q0 + p, v, row0 + r))
                tcol[p] = std::max(tcol[p], ts.lists.threshold(lj + q0 + p));
        }
    }
}

}  // namespace

std::vector<float> csls_radius(const std::vector<float>& neighbor_sim, std::int64_t k,
                               std::int64_t knn) {
    EMBGEOM_EXPECTS(k >= 1, "csls_radius needs k >= 1");
    EMBGEOM_EXPECTS(knn >= 0 && knn <= k, "csls_radius needs 0 <= knn <= k");
    EMBGEOM_EXPECTS(neighbor_sim.size() % static_cast<std::size_t>(k) == 0,
                    "neighbor_sim holds " + std::to_string(neighbor_sim.size()) +
                        " values, not a multiple of k = " + std::to_string(k));
    const std::int64_t rows = static_cast<std::int64_t>(neighbor_sim.size()) / k;
    const std::int64_t use = knn > 0 ? knn : k;
    std::vector<float> r(static_cast<std::size_t>(rows), std::numeric_limits<float>::quiet_NaN());
    for (std::int64_t i = 0; i < rows; ++i) {
        double sum = 0.0;
        std::int64_t count = 0;
        for (std::int64_t p = 0; p < use; ++p) {
            const float v = neighbor_sim[static_cast<std::size_t>(i * k + p)];
            if (!std::isfinite(v)) continue;
            sum += v;
            ++count;
        }
        if (count > 0) r[i] = static_cast<float>(sum / static_cast<double>(count));
    }
    return r;
}

CslsNeighbors csls_neighbors(RowSource& source, const std::vector<std::uint8_t>& valid,
                             const std::vector<float>& radius, std::int64_t k,
                             std::int64_t block_rows, std::uint64_t memory_budget, int threads) {
    const std::int64_t V = source.rows(), d = source.cols();
    EMBGEOM_EXPECTS(valid.empty() || static_cast<std::int64_t>(valid.size()) == V,
                    "csls: valid has " + std::to_string(valid.size()) + " flags for " +
                        std::to_string(V) + " rows");
    EMBGEOM_EXPECTS(static_cast<std::int64_t>(radius.size()) == V,
                    "csls: radius has " + std::to_string(radius.size()) + " values for " +
                        std::to_string(V) + " rows");
    EMBGEOM_EXPECTS(k >= 1, "csls needs k >= 1");
    EMBGEOM_EXPECTS(block_rows >= 0 && threads >= 0, "csls: block_rows >= 0 and threads >= 0");
    const int T = threads > 0 ? threads : std::max(1, omp_get_max_threads());

    std::vector<std::int64_t> orig;
    for (std::int64_t i = 0; i < V; ++i)
        if (valid.empty() || valid[static_cast<std::size_t>(i)]) orig.push_back(i);
    const std::int64_t n = static_cast<std::int64_t>(orig.size());
    std::vector<float> rad(static_cast<std::size_t>(n));
    for (std::int64_t c = 0; c < n; ++c) {
        rad[c] = radius[static_cast<std::size_t>(orig[c])];
        EMBGEOM_EXPECTS(n < 2 || std::isfinite(rad[c]),
                        "csls: radius of valid row " + std::to_string(orig[c]) + " is not finite");
    }
    // Lists never need more slots than there are other rows; the output is padded to k.
    const std::int64_t K = std::max<std::int64_t>(1, std::min(k, n - 1));

    engine::TilePlanRequest req;
    req.rows = n;
    req.dim = d;
    req.k = K;
    req.threads = T;
    req.block_rows = block_rows;
    req.memory_budget = memory_budget;
    const TilePlan plan = engine::make_tile_plan(req);
    const std::int64_t G = plan.grid, B = plan.block_rows;

    TopKLists global(n, K);
    std::vector<ThreadState> states(static_cast<std::size_t>(T));
    for (auto& ts : states) {
        ts.lists = TopKLists(0, K);
        ts.tile = AlignedFloats(static_cast<std::size_t>(G * G));
        ts.score.assign(static_cast<std::size_t>(G), 0.0f);
    }

    // Normalised rows, zero-padded to whole grid tiles: the table, or blocks I and J.
    AlignedFloats table, buf_i, buf_j;
    std::vector<float> staging;
    if (plan.resident) {
        table = AlignedFloats(static_cast<std::size_t>(plan.grid_tiles * G * d));
        load_rows(source, orig, {0, n}, d, G, staging, T, table.data());
    } else {
        buf_i = AlignedFloats(static_cast<std::size_t>(B * d));
        buf_j = AlignedFloats(static_cast<std::size_t>(B * d));
    }
    const auto load_block = [&](std::int64_t b, float* dst) {
        const RowRange r = plan.block(b);
        load_rows(source, orig, r, d, G, staging, T, dst);
        std::fill(dst + r.size() * d, dst + B * d, 0.0f);  // zero padding of the last block
    };

    std::exception_ptr failure;
    std::atomic<bool> stop{false};
    std::int64_t loaded_i = -1;
    for (const BlockPair& bp : plan.block_pairs) {
        const RowRange ri = plan.block(bp.i), rj = plan.block(bp.j);
        const bool same = bp.i == bp.j;
        const float* xi;
        const float* xj;
        if (plan.resident) {
            xi = table.data() + ri.begin * d;
            xj = table.data() + rj.begin * d;
        } else {
            if (loaded_i != bp.i) {
                load_block(bp.i, buf_i.data());
                loaded_i = bp.i;
            }
            if (!same) load_block(bp.j, buf_j.data());
            xi = buf_i.data();
            xj = same ? buf_i.data() : buf_j.data();
        }

        const std::vector<GridTile> tiles = plan.grid_tiles_of(bp);
        const std::int64_t n_local = ri.size() + (same ? 0 : rj.size());
        const auto global_row = [&](std::int64_t l) {
            return l < ri.size() ? ri.begin + l : rj.begin + (l - ri.size());
        };

#pragma omp parallel num_threads(T)
        {
            // OpenBLAS (OpenMP build) runs single-threaded inside an active parallel region or
            // when omp_get_max_threads() == 1: the grid shape is never split by BLAS threads.
            omp_set_num_threads(1);
            ThreadState& ts = states[static_cast<std::size_t>(omp_get_thread_num())];
            ts.lists.reset(n_local);
            ts.thr.resize(static_cast<std::size_t>(n_local));
            for (std::int64_t l = 0; l < n_local; ++l) ts.thr[l] = global.threshold(global_row(l));

#pragma omp for schedule(dynamic, 1)
            for (std::size_t ti = 0; ti < tiles.size(); ++ti) {
                if (stop.load(std::memory_order_relaxed)) continue;
                try {
                    const GridTile t = tiles[ti];
                    const RowRange gi = plan.grid_rows(t.gi), gj = plan.grid_rows(t.gj);
                    float* C = ts.tile.data();
                    if (d > 0) {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, G, G, d, 1.0f,
                                    xi + (t.gi * G - ri.begin) * d, d,
                                    xj + (t.gj * G - rj.begin) * d, d, 0.0f, C, G);
                    } else {
                        std::fill(C, C + G * G, 0.0f);
                    }
                    const std::int64_t li = t.gi * G - ri.begin;
                    const std::int64_t lj = (same ? 0 : ri.size()) + t.gj * G - rj.begin;
                    fold_tile(C, G, gi.size(), gj.size(), t.gi == t.gj, gi.begin, gj.begin, li, lj,
                              rad.data(), ts);
                } catch (...) {
#pragma omp critical(embgeom_csls_failure)
                    if (!failure) failure = std::current_exception();
                    stop.store(true);
                }
            }
            // Implicit barrier: every partial list is complete. Rows are disjoint: no conflicts.
            const int team = omp_get_num_threads();
#pragma omp for schedule(static)
            for (std::int64_t l = 0; l < n_local; ++l)
                for (int o = 0; o < team; ++o)
                    global.merge_row(global_row(l), states[static_cast<std::size_t>(o)].lists, l);
        }
        if (failure) std::rethrow_exception(failure);
    }

    CslsNeighbors res;
    res.rows = V;
    res.k = k;
    res.index.assign(static_cast<std::size_t>(V * k), -1);
    res.score.assign(static_cast<std::size_t>(V * k), std::numeric_limits<float>::quiet_NaN());
    res.valid_rows = n;
    res.resident = plan.resident;
    const std::int64_t slots = std::min(k, K);
    for (std::int64_t c = 0; c < n; ++c) {
        const std::int64_t o = orig[c];
        const float* s = global.sims(c);
        const std::int64_t* x = global.indices(c);
        for (std::int64_t p = 0; p < slots && x[p] != engine::kEmptyIndex; ++p) {
            res.index[static_cast<std::size_t>(o * k + p)] = orig[x[p]];
            res.score[static_cast<std::size_t>(o * k + p)] = s[p];
        }
    }
    return res;
}

}  // namespace embgeom
