// CSLS neighbour lists: the all-pairs engine's grid driver (cpu/grid_driver.hpp) with a different
// fold.
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

#include "cpu/grid_driver.hpp"
#include "embgeom/errors.hpp"
#include "engine/tile_plan.hpp"
#include "engine/topk_lists.hpp"
#include "geometry/block_stream.hpp"

namespace embgeom {
namespace {

using engine::TilePlan;
using engine::TopKLists;

struct ThreadState {
    TopKLists lists;           ///< partial lists of the local rows of the current block pair
    std::vector<float> thr;    ///< per local row: max(global K-th score, partial K-th score)
    std::vector<float> score;  ///< one tile row of scores
};

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

/// The CSLS fold as a pass of the shared grid driver (cpu/grid_driver.hpp): the same cosines as
/// the all-pairs engine, ranked by CSLS score into per-thread partial lists, merged per pair.
class CslsPass final : public cpu::GridPass {
  public:
    CslsPass(std::int64_t n, std::int64_t K, std::int64_t G, int threads,
             const std::vector<float>& rad)
        : global_(n, K), rad_(rad), states_(static_cast<std::size_t>(threads)), G_(G) {
        for (auto& ts : states_) {
            ts.lists = TopKLists(0, K);
            ts.score.assign(static_cast<std::size_t>(G), 0.0f);
        }
    }
    void begin_pair(int thread, const cpu::PairView& p) override {
        ThreadState& ts = states_[static_cast<std::size_t>(thread)];
        ts.lists.reset(p.n_local);
        cpu::seed_thresholds(p, global_, ts.thr);
    }
    void fold(int thread, const cpu::PairView&, const cpu::TileView& t) override {
        fold_tile(t.C, G_, t.rows.size(), t.cols.size(), t.diagonal(), t.rows.begin, t.cols.begin,
                  t.li, t.lj, rad_.data(), states_[static_cast<std::size_t>(thread)]);
    }
    void merge_row(const cpu::PairView& p, std::int64_t l) override {
        for (const ThreadState& ts : states_) global_.merge_row(p.global_row(l), ts.lists, l);
    }
    const TopKLists& lists() const { return global_; }

  private:
    TopKLists global_;
    const std::vector<float>& rad_;
    std::vector<ThreadState> states_;
    const std::int64_t G_;
};

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

void check_csls_inputs(std::int64_t V, const std::vector<std::uint8_t>& valid,
                       const std::vector<float>& radius, std::int64_t k, std::int64_t block_rows) {
    EMBGEOM_EXPECTS(valid.empty() || static_cast<std::int64_t>(valid.size()) == V,
                    "csls: valid has " + std::to_string(valid.size()) + " flags for " +
                        std::to_string(V) + " rows");
    EMBGEOM_EXPECTS(static_cast<std::int64_t>(radius.size()) == V,
                    "csls: radius has " + std::to_string(radius.size()) + " values for " +
                        std::to_string(V) + " rows");
    EMBGEOM_EXPECTS(k >= 1, "csls needs k >= 1");
    EMBGEOM_EXPECTS(block_rows >= 0, "csls: block_rows >= 0");
    std::int64_t n_valid = 0;
    for (std::int64_t i = 0; i < V; ++i) n_valid += detail::is_valid(valid, i);
    for (std::int64_t i = 0; i < V && n_valid >= 2; ++i)
        EMBGEOM_EXPECTS(
            !detail::is_valid(valid, i) || std::isfinite(radius[static_cast<std::size_t>(i)]),
            "csls: radius of valid row " + std::to_string(i) + " is not finite");
}

std::vector<std::uint8_t> checked_csls_mask(std::int64_t V, const std::vector<std::uint8_t>& valid,
                                            const std::vector<float>& radius, std::int64_t k,
                                            std::int64_t block_rows) {
    check_csls_inputs(V, valid, radius, k, block_rows);
    return detail::valid_mask_or_all(valid, V);
}

CslsNeighbors csls_neighbors(RowSource& source, const std::vector<std::uint8_t>& valid,
                             const std::vector<float>& radius, std::int64_t k,
                             std::int64_t block_rows, std::uint64_t memory_budget, int threads,
                             const engine::GridShare& share) {
    const std::int64_t V = source.rows(), d = source.cols();
    check_csls_inputs(V, valid, radius, k, block_rows);
    EMBGEOM_EXPECTS(threads >= 0, "csls: threads >= 0");
    const int T = threads > 0 ? threads : std::max(1, omp_get_max_threads());

    std::vector<std::int64_t> orig;
    for (std::int64_t i = 0; i < V; ++i)
        if (detail::is_valid(valid, i)) orig.push_back(i);
    const std::int64_t n = static_cast<std::int64_t>(orig.size());
    std::vector<float> rad(static_cast<std::size_t>(n));
    for (std::int64_t c = 0; c < n; ++c) rad[c] = radius[static_cast<std::size_t>(orig[c])];
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

    CslsPass pass(n, K, plan.grid, T, rad);
    cpu::GridRowsOptions rows;
    rows.what = "csls";
    cpu::run_grid_pass(source, orig, plan, rows, T, pass, share);
    const TopKLists& global = pass.lists();

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
