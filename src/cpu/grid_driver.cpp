#include "cpu/grid_driver.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "cpu/packed_panels.hpp"
#include "cpu/tile_gemm.hpp"
#include "embgeom/errors.hpp"
#include "engine/row_normalize.hpp"

namespace embgeom::cpu {

using engine::BlockPair;
using engine::GridTile;
using engine::RowRange;
using engine::TilePlan;

AlignedFloats::AlignedFloats(std::size_t n, bool zero) {
    const std::size_t bytes = std::max<std::size_t>(64, (n * sizeof(float) + 63) / 64 * 64);
    void* p = std::aligned_alloc(64, bytes);
    if (!p) throw ResourceError("out of memory (" + std::to_string(bytes) + " bytes)");
    if (zero) std::memset(p, 0, bytes);
    ptr_.reset(static_cast<float*>(p));
}

void AlignedFloats::Free::operator()(float* p) const noexcept { std::free(p); }

void seed_thresholds(const PairView& p, const engine::TopKLists& global, std::vector<float>& thr) {
    thr.resize(static_cast<std::size_t>(p.n_local));
    for (std::int64_t l = 0; l < p.n_local; ++l) thr[l] = global.threshold(p.global_row(l));
}

namespace {

/// s[k] += rows[r][k] for r ascending: threads own column slices, so the float64 sums follow row
/// order whatever the block size or thread count.
void add_rows_to_sum(const float* rows, std::int64_t count, std::int64_t d, double* s,
                     int threads) {
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        const std::int64_t k0 = d * t / nt, k1 = d * (t + 1) / nt;
        for (std::int64_t r = 0; r < count; ++r) {
            const float* x = rows + r * d;
            for (std::int64_t k = k0; k < k1; ++k) s[k] += x[k];
        }
    }
}

/// Reads the valid rows [range) of the compacted space, normalises them, adds them to sum when
/// given (staging buffer by staging buffer, while the rows are in cache) and packs them into dst
/// (packed_panels.hpp; local row 0 = range.begin). Rows are read in original order through a
/// staging buffer of `stage_rows` rows; invalid rows in between are read and dropped. Writes every
/// row of dst it covers, so dst needs no zeroing; threads pack disjoint value ranges k, so they
/// never share a cache line of dst (and its page faults are spread over them).
void load_rows(RowSource& source, const std::vector<std::int64_t>& orig, RowRange range,
               const GridRowsOptions& o, std::int64_t d, std::int64_t stage_rows,
               std::vector<float>& staging, std::vector<float>& normalized, int threads,
               float* dst, double* sum) {
    staging.resize(static_cast<std::size_t>(stage_rows * std::max<std::int64_t>(d, 1)));
    normalized.resize(staging.size());
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
            const double norm = engine::normalize_row(staging.data() + (orig[r] - o0) * d,
                                                      o.center, d, normalized.data() + (r - c) * d);
            if (!std::isfinite(norm)) bad = std::max(bad, orig[r]);
            if (o.zero_rows) o.zero_rows[r] = norm > 0.0 ? 0 : 1;
        }
        if (bad >= 0)
            throw ResourceError(std::string(o.what) + ": row " + std::to_string(bad) + " of " +
                                source.describe() +
                                " is marked valid but holds non-finite values");
        if (sum) add_rows_to_sum(normalized.data(), c1 - c, d, sum, threads);
        const std::int64_t first = c - range.begin, count = c1 - c;
#pragma omp parallel num_threads(threads)
        {
            const int t = omp_get_thread_num(), nt = omp_get_num_threads();
            const std::int64_t k0 = d * t / nt, k1 = d * (t + 1) / nt;
            for (std::int64_t r = 0; r < count; ++r)
                for (std::int64_t k = k0; k < k1; ++k)
                    dst[packed_index(first + r, k, d)] = normalized[r * d + k];
        }
        c = c1;
    }
}

}  // namespace

double run_grid_pass(RowSource& source, const std::vector<std::int64_t>& orig, const TilePlan& plan,
                     const GridRowsOptions& ro, int threads, GridPass& pass,
                     const engine::GridShare& share) {
    EMBGEOM_EXPECTS(share.count >= 1 && share.index >= 0 && share.index < share.count,
                    "a share is one of count");
    const std::int64_t n = static_cast<std::int64_t>(orig.size()), d = source.cols();
    const std::int64_t G = plan.grid, B = plan.block_rows;
    const int T = std::max(1, threads);

    // Normalised rows: the whole (zero-padded) table when resident, else blocks I and J.
    AlignedFloats table, buf_i, buf_j;
    std::vector<float> staging, normalized;
    double seconds_loading = 0.0;
    const auto timed = [&](auto&& load) {
        const auto t0 = std::chrono::steady_clock::now();
        load();
        seconds_loading +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    if (plan.resident) {
        table = AlignedFloats(static_cast<std::size_t>(plan.grid_tiles * G * d), false);
        timed([&] {
            load_rows(source, orig, {0, n}, ro, d, G, staging, normalized, T, table.data(),
                      ro.normalized_sum);
            zero_packed_rows(n, plan.grid_tiles * G, d, table.data());
        });
    } else {
        buf_i = AlignedFloats(static_cast<std::size_t>(B * d), false);
        buf_j = AlignedFloats(static_cast<std::size_t>(B * d), false);
    }
    // Fills all B rows of dst (the last block zero-padded).
    const auto load_block = [&](std::int64_t b, float* dst, double* sum) {
        const RowRange r = plan.block(b);
        timed([&] {
            load_rows(source, orig, r, ro, d, G, staging, normalized, T, dst, sum);
            zero_packed_rows(r.size(), B, d, dst);
        });
    };

    const TileKernel kernel = best_tile_kernel();
    std::vector<AlignedFloats> tile_buffers;  // one G x G tile per thread
    for (int t = 0; t < T; ++t) tile_buffers.emplace_back(static_cast<std::size_t>(G * G));

    std::exception_ptr failure;
    std::atomic<bool> stop{false};
    std::int64_t loaded_i = -1;
    for (std::size_t pi = 0; pi < plan.block_pairs.size(); ++pi) {
        const BlockPair bp = plan.block_pairs[pi];
        PairView pv;
        pv.pair = bp;
        pv.last_of_i = pi + 1 == plan.block_pairs.size() || plan.block_pairs[pi + 1].i != bp.i;
        pv.rows_i = plan.block(bp.i);
        pv.rows_j = plan.block(bp.j);
        pv.n_local = pv.rows_i.size() + (pv.same() ? 0 : pv.rows_j.size());
        if (plan.resident) {
            pv.xi = table.data() + pv.rows_i.begin * d;
            pv.xj = table.data() + pv.rows_j.begin * d;
        } else {
            // The first pass (I = 0) streams every block in row order: S is summed there.
            double* const sum = bp.i == 0 ? ro.normalized_sum : nullptr;
            if (loaded_i != bp.i) {
                load_block(bp.i, buf_i.data(), sum);
                loaded_i = bp.i;
            }
            if (!pv.same()) load_block(bp.j, buf_j.data(), sum);
            pv.xi = buf_i.data();
            pv.xj = pv.same() ? buf_i.data() : buf_j.data();
        }
        std::vector<GridTile> tiles = plan.grid_tiles_of(bp);
        if (!share.whole())
            tiles.erase(std::remove_if(tiles.begin(), tiles.end(),
                                       [&](const GridTile& t) { return !share.has(t, plan.grid_tiles); }),
                        tiles.end());
        pass.prepare_pair(pv);

        const auto record_failure = [&] {
#pragma omp critical(embgeom_grid_pass_failure)
            if (!failure) failure = std::current_exception();
            stop.store(true);
        };
#pragma omp parallel num_threads(T)
        {
            const int thread = omp_get_thread_num();
            try {
                pass.begin_pair(thread, pv);
            } catch (...) {
                record_failure();
            }
#pragma omp barrier
            float* const C = tile_buffers[static_cast<std::size_t>(thread)].data();
#pragma omp for schedule(dynamic, 1)
            for (std::size_t ti = 0; ti < tiles.size(); ++ti) {
                if (stop.load(std::memory_order_relaxed)) continue;
                try {
                    TileView tv;
                    tv.tile = tiles[ti];
                    tv.rows = plan.grid_rows(tv.tile.gi);
                    tv.cols = plan.grid_rows(tv.tile.gj);
                    tv.li = tv.tile.gi * G - pv.rows_i.begin;
                    tv.lj = (pv.same() ? 0 : pv.rows_i.size()) + tv.tile.gj * G - pv.rows_j.begin;
                    const float* a = pv.xi + (tv.tile.gi * G - pv.rows_i.begin) * d;
                    const float* b = pv.xj + (tv.tile.gj * G - pv.rows_j.begin) * d;
                    packed_tile_gemm(a, b, G, d, C, kernel,
                                     tv.diagonal() ? TilePart::kUpperTriangle : TilePart::kWhole);
                    tv.C = C;
                    pass.fold(thread, pv, tv);
                } catch (...) {
                    record_failure();
                }
            }
            // Implicit barrier: every tile of the pair is folded.
#pragma omp for schedule(static)
            for (std::int64_t l = 0; l < pv.n_local; ++l) {
                if (stop.load(std::memory_order_relaxed)) continue;
                try {
                    pass.merge_row(pv, l);
                } catch (...) {
                    record_failure();
                }
            }
            try {
                pass.end_pair(thread, pv);
            } catch (...) {
                record_failure();
            }
        }
        if (failure) std::rethrow_exception(failure);
        pass.after_pair(pv);
    }
    return seconds_loading;
}

}  // namespace embgeom::cpu
