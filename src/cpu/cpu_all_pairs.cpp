// The CPU all-pairs engine.
//
// Rows: invalid rows are dropped up front; the engine works on the n valid rows in their original
// order ("compacted" indices, mapped back at the end), so the fold never tests a mask.
//
// Tiles: the shared grid driver (cpu/grid_driver.hpp, engine/tile_plan.hpp). Every similarity
// comes from our own tile product (cpu/tile_gemm.hpp) on the packed table: one fma chain over k
// per pair, which makes each cos(i, j) independent of block size, budget, thread count and CPU.
// Threads take grid tiles dynamically; diagonal tiles use their upper triangle only and feed both
// rows of each pair, so every unordered pair is seen exactly once. This file is the fold and the merge.
//
// Fold (one pass over each tile while its 1 MiB is in L2): for each tile row one vectorised scan
// marks, in bitmasks, the values passing the row-side filter (the row's K-th best, or the
// duplicate threshold) and the column-side filters (each column row's K-th best), computes the
// histogram bins (scattered into per-thread int32 counters) and adds cos^2 in fixed point. The
// insertion code then visits only the marked columns (about 1% of the values, yet as much time
// as the scan when insertions were a branchy shift loop missing the cache on every list: see
// fold_lists.hpp for the list layout and the AVX-512 insertion used where the CPU has it).
//
// Determinism without write conflicts: all candidates go to per-thread partial lists covering the
// rows of the current block pair, pre-filtered by the global lists' thresholds (read-only during
// the pair) and by thresholds the threads share (each a K-th best some thread has found, so a
// candidate below it cannot be in the final list); after the pair the partial lists are merged
// into the global ones, parallel over rows. Top-K under a total order, integer histograms,
// fixed-point sums and (i, j)-sorted duplicates do not depend on which thread saw what, so
// results are bit-identical for any schedule.
#include "cpu/cpu_all_pairs.hpp"

#include <omp.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>

#include "cpu/fold_lists.hpp"
#include "cpu/grid_driver.hpp"
#include "cpu/packed_panels.hpp"
#include "cpu/tile_gemm.hpp"
#include "embgeom/errors.hpp"
#include "embgeom/histogram_binning.hpp"
#include "engine/duplicate_list.hpp"
#include "engine/all_pairs_merge.hpp"
#include "engine/fixed_point.hpp"
#include "engine/padded_result.hpp"
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

__extension__ typedef __int128 Int128;

constexpr int kHistCopies = 4;                    // independent counters hide store forwarding
constexpr std::int64_t kHistFlushAt = 1ll << 30;  // int32 sub-histograms flushed before overflow

struct FoldParams {
    std::int64_t grid = 0;
    int bins = 0;
    float hist_scale = 0.0f;
    float dup_min = 0.0f;  ///< smallest float >= dup_threshold
    bool row_sums = false;
};

struct ThreadState {
    cpu::FoldLists lists;    ///< partial lists of the local rows of the current block pair
    std::vector<float> thr;  ///< per local row: max(global, partial and shared K-th bests)
    std::vector<std::int32_t> hist32;  ///< kHistCopies x bins
    std::int64_t hist32_count = 0;
    std::vector<std::int64_t> hist;
    Int128 cos_sq = 0;
    std::vector<std::int64_t> row_sum;  ///< [n] fixed point (accumulate_row_sums only)
    engine::DuplicateList dups;
    std::vector<std::int32_t> bin_scratch;
    std::vector<std::uint64_t> row_bits, col_bits;  ///< pre-pass results of one tile row
    std::vector<float> sink_tile;

    void flush_hist() {
        const std::size_t bins = hist.size();
        for (int c = 0; c < kHistCopies; ++c)
            for (std::size_t b = 0; b < bins; ++b) {
                hist[b] += hist32[c * bins + b];
                hist32[c * bins + b] = 0;
            }
        hist32_count = 0;
    }
};

/// Clears the ceil(len / 64) words of both bit masks of a tile row.
inline void clear_row_bits(std::int64_t len, std::uint64_t* rbits, std::uint64_t* cbits) {
    for (std::int64_t w = 0; w < (len + 63) / 64; ++w) rbits[w] = cbits[w] = 0;
}

/// scan_row's work for values [q, len), one at a time: the vector paths' tails and the portable
/// path, with the float operations the vector lanes use.
inline std::int64_t scan_row_from(std::int64_t q, const float* c, const float* tcol,
                                  std::int64_t len, float t_row, float scale, int nbins,
                                  std::uint64_t* rbits, std::uint64_t* cbits, std::int32_t* bins) {
    std::int64_t total = 0;
    for (; q < len; ++q) {
        const float v = c[q];
        rbits[q >> 6] |= static_cast<std::uint64_t>(v >= t_row) << (q & 63);
        cbits[q >> 6] |= static_cast<std::uint64_t>(v >= tcol[q]) << (q & 63);
        total += engine::cos_sq_fixed(v);
        bins[q] = histogram_bin(v, scale, nbins);
    }
    return total;
}

/// Pre-pass over one tile row c[0, len): sets bit p of rbits when c[p] >= t_row and of cbits when
/// c[p] >= tcol[p] (words of 64 columns, ceil(len / 64) of them, cleared here), writes the
/// histogram bin of every value to bins, and returns the sum of cos_sq_fixed(c[p]). The scalar
/// tail and the portable version use the same float operations in the same order, so every path
/// gives the same integers.
std::int64_t scan_row(const float* c, const float* tcol, std::int64_t len, float t_row, float scale,
                      int nbins, std::uint64_t* rbits, std::uint64_t* cbits, std::int32_t* bins) {
    clear_row_bits(len, rbits, cbits);
    std::int64_t total = 0;
    std::int64_t q = 0;
#if defined(__AVX2__)
    const __m256 vt = _mm256_set1_ps(t_row), vsq = _mm256_set1_ps(engine::kCosSqScale);
    const __m256 vhalf = _mm256_set1_ps(0.5f), vone = _mm256_set1_ps(1.0f);
    const __m256 vscale = _mm256_set1_ps(scale), vzero = _mm256_setzero_ps();
    const __m256i vlast = _mm256_set1_epi32(nbins - 1);
    while (q + 8 <= len) {
        // int32 lanes take at most 64 values of <= 2^24 + 1 before they are widened.
        __m256i acc = _mm256_setzero_si256();
        const std::int64_t stop = std::min(len & ~std::int64_t{7}, q + 512);
        for (; q < stop; q += 8) {
            const __m256 v = _mm256_loadu_ps(c + q);
            const unsigned mr =
                static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v, vt, _CMP_GE_OQ)));
            const unsigned mc = static_cast<unsigned>(
                _mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_loadu_ps(tcol + q), _CMP_GE_OQ)));
            rbits[q >> 6] |= static_cast<std::uint64_t>(mr) << (q & 63);
            cbits[q >> 6] |= static_cast<std::uint64_t>(mc) << (q & 63);
            const __m256 sq = _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(v, v), vsq), vhalf);
            acc = _mm256_add_epi32(acc, _mm256_cvttps_epi32(sq));
            const __m256 t = _mm256_mul_ps(_mm256_add_ps(v, vone), vscale);
            __m256i b = _mm256_cvttps_epi32(t);
            b = _mm256_and_si256(b, _mm256_castps_si256(_mm256_cmp_ps(t, vzero, _CMP_GE_OQ)));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(bins + q), _mm256_min_epi32(b, vlast));
        }
        alignas(32) std::int32_t lanes[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc);
        for (const std::int32_t l : lanes) total += l;
    }
#endif
    return total + scan_row_from(q, c, tcol, len, t_row, scale, nbins, rbits, cbits, bins);
}

#if defined(EMBGEOM_FOLD_AVX512)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's own AVX-512 headers (bug 105593)
/// scan_row with 16 lanes: the same float operations per value (no contraction), so the same bits,
/// bins and integers as the AVX2 and scalar paths; 16-lane compares give the masks directly.
EMBGEOM_FOLD_AVX512_TARGET std::int64_t scan_row_avx512(const float* c, const float* tcol,
                                                        std::int64_t len, float t_row, float scale,
                                                        int nbins, std::uint64_t* rbits,
                                                        std::uint64_t* cbits, std::int32_t* bins) {
    clear_row_bits(len, rbits, cbits);
    std::int64_t total = 0;
    std::int64_t q = 0;
    const __m512 vt = _mm512_set1_ps(t_row), vsq = _mm512_set1_ps(engine::kCosSqScale);
    const __m512 vhalf = _mm512_set1_ps(0.5f), vone = _mm512_set1_ps(1.0f);
    const __m512 vscale = _mm512_set1_ps(scale), vzero = _mm512_setzero_ps();
    const __m512i vlast = _mm512_set1_epi32(nbins - 1);
    while (q + 16 <= len) {
        // int32 lanes take at most 64 values of <= 2^24 + 1 before they are widened.
        __m512i acc = _mm512_setzero_si512();
        const std::int64_t stop = std::min(len & ~std::int64_t{15}, q + 1024);
        for (; q < stop; q += 16) {
            const __m512 v = _mm512_loadu_ps(c + q);
            const __mmask16 mr = _mm512_cmp_ps_mask(v, vt, _CMP_GE_OQ);
            const __mmask16 mc = _mm512_cmp_ps_mask(v, _mm512_loadu_ps(tcol + q), _CMP_GE_OQ);
            rbits[q >> 6] |= static_cast<std::uint64_t>(mr) << (q & 63);
            cbits[q >> 6] |= static_cast<std::uint64_t>(mc) << (q & 63);
            const __m512 sq = _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(v, v), vsq), vhalf);
            acc = _mm512_add_epi32(acc, _mm512_cvttps_epi32(sq));
            const __m512 t = _mm512_mul_ps(_mm512_add_ps(v, vone), vscale);
            const __m512i b = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(t, vzero, _CMP_GE_OQ),
                                                     _mm512_cvttps_epi32(t));
            _mm512_storeu_si512(bins + q, _mm512_min_epi32(b, vlast));
        }
        alignas(64) std::int32_t lanes[16];
        _mm512_store_si512(lanes, acc);
        for (const std::int32_t l : lanes) total += l;
    }
    return total + scan_row_from(q, c, tcol, len, t_row, scale, nbins, rbits, cbits, bins);
}
#pragma GCC diagnostic pop
#endif

/// How the fold inserts into its partial lists: FoldLists::offer, or its AVX-512 form.
struct ScalarInsert {
    static bool offer(cpu::FoldLists& lists, std::int64_t r, float sim, std::int32_t index,
                      float* threshold) {
        return lists.offer(r, sim, index, threshold);
    }
};

#if defined(EMBGEOM_FOLD_AVX512)
/// Needs an AVX-512 CPU and k <= FoldLists::kVectorSlots.
struct Avx512Insert {
    EMBGEOM_FOLD_AVX512_TARGET static bool offer(cpu::FoldLists& lists, std::int64_t r, float sim,
                                                 std::int32_t index, float* threshold) {
        return lists.offer_avx512(r, sim, index, threshold);
    }
};
#endif

/// Folds one computed G x G tile (rows of grid tile gi against rows of gj) into the thread's
/// state. row0 / col0: first (compacted) row of gi / gj; li / lj: its local row in the partial
/// lists. Always inlined into one function per insertion kind (below), so that the AVX-512
/// insertion is inlined too.
template <class Insert>
inline __attribute__((always_inline)) void fold_tile_impl(const float* C, std::int64_t mi,
                                                          std::int64_t mj, bool diag,
                                                          std::int64_t row0, std::int64_t col0,
                                                          std::int64_t li, std::int64_t lj,
                                                          ThreadState& ts, const FoldParams& fp) {
    const std::int64_t G = fp.grid;
    float* const thr = ts.thr.data();
    std::uint64_t* const rbits = ts.row_bits.data();
    std::uint64_t* const cbits = ts.col_bits.data();
    std::int32_t* const bins = ts.bin_scratch.data();
    std::int32_t* const h0 = ts.hist32.data();
    std::int32_t* const h1 = h0 + fp.bins;
    std::int32_t* const h2 = h1 + fp.bins;
    std::int32_t* const h3 = h2 + fp.bins;
    Int128 cos_sq = 0;
    // The column-side insertions go to the lists of all mj columns, a few each per tile: fetch
    // those records now rather than miss on them one insertion at a time.
    ts.lists.prefetch(lj, mj);

    for (std::int64_t r = 0; r < mi; ++r) {
        const std::int64_t q0 = diag ? r + 1 : 0;  // diagonal tiles: upper triangle only
        const std::int64_t len = mj - q0;
        if (len <= 0) continue;
        const float* const c = C + r * G + q0;
        float* const tcol = thr + lj + q0;
        const std::int64_t lr = li + r;
        const float t_row = std::min(thr[lr], fp.dup_min);
#if defined(EMBGEOM_FOLD_AVX512)
        if constexpr (std::is_same_v<Insert, Avx512Insert>)
            cos_sq += scan_row_avx512(c, tcol, len, t_row, fp.hist_scale, fp.bins, rbits, cbits,
                                      bins);
        else
#endif
            cos_sq += scan_row(c, tcol, len, t_row, fp.hist_scale, fp.bins, rbits, cbits, bins);

        std::int64_t q = 0;
        for (; q + 4 <= len; q += 4) {
            ++h0[bins[q]];
            ++h1[bins[q + 1]];
            ++h2[bins[q + 2]];
            ++h3[bins[q + 3]];
        }
        for (; q < len; ++q) ++h0[bins[q]];
        ts.hist32_count += len;

        // The rare insertions: only the columns whose bit is set.
        const std::int64_t words = (len + 63) / 64;
        for (std::int64_t w = 0; w < words; ++w) {
            for (std::uint64_t m = rbits[w]; m != 0; m &= m - 1) {
                const std::int64_t p = w * 64 + __builtin_ctzll(m);
                const float v = c[p];
                if (v >= fp.dup_min) ts.dups.add(row0 + r, col0 + q0 + p, v);
                // thr[lr] rises as this row's list fills: test again.
                float t;
                if (v >= thr[lr] &&
                    Insert::offer(ts.lists, lr, v, static_cast<std::int32_t>(lj + q0 + p), &t))
                    thr[lr] = std::max(thr[lr], t);
            }
            // Each column occurs once per row, so its bit is still exact here.
            for (std::uint64_t m = cbits[w]; m != 0; m &= m - 1) {
                const std::int64_t p = w * 64 + __builtin_ctzll(m);
                float t;
                if (Insert::offer(ts.lists, lj + q0 + p, c[p], static_cast<std::int32_t>(lr), &t))
                    tcol[p] = std::max(tcol[p], t);
            }
        }
        if (fp.row_sums) {
            std::int64_t* const rs = ts.row_sum.data() + col0 + q0;
            std::int64_t acc = 0;
            for (std::int64_t p = 0; p < len; ++p) {
                const std::int64_t f = engine::cos_fixed(c[p]);
                acc += f;
                rs[p] += f;
            }
            ts.row_sum[row0 + r] += acc;
        }
    }
    ts.cos_sq += cos_sq;
    if (ts.hist32_count >= kHistFlushAt) ts.flush_hist();
}

using FoldTileFn = void (*)(const float* C, std::int64_t mi, std::int64_t mj, bool diag,
                            std::int64_t row0, std::int64_t col0, std::int64_t li, std::int64_t lj,
                            ThreadState& ts, const FoldParams& fp);

void fold_tile_scalar_insert(const float* C, std::int64_t mi, std::int64_t mj, bool diag,
                             std::int64_t row0, std::int64_t col0, std::int64_t li, std::int64_t lj,
                             ThreadState& ts, const FoldParams& fp) {
    fold_tile_impl<ScalarInsert>(C, mi, mj, diag, row0, col0, li, lj, ts, fp);
}

#if defined(EMBGEOM_FOLD_AVX512)
EMBGEOM_FOLD_AVX512_TARGET void fold_tile_avx512(const float* C, std::int64_t mi, std::int64_t mj,
                                                 bool diag, std::int64_t row0, std::int64_t col0,
                                                 std::int64_t li, std::int64_t lj, ThreadState& ts,
                                                 const FoldParams& fp) {
    fold_tile_impl<Avx512Insert>(C, mi, mj, diag, row0, col0, li, lj, ts, fp);
}
#endif

/// The fold for this CPU and list length k. It follows the tile kernel's choice, so that
/// EMBGEOM_TILE_KERNEL=avx2 runs what an AVX2-only CPU runs (tests, benchmarks).
FoldTileFn pick_fold_tile(std::int64_t k) {
#if defined(EMBGEOM_FOLD_AVX512)
    __builtin_cpu_init();
    // The AVX-512 tile kernel implies avx512f; the insertion also needs bw, vl and dq.
    if (k <= cpu::FoldLists::kVectorSlots && cpu::best_tile_kernel() == cpu::TileKernel::kAvx512 &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
        return fold_tile_avx512;
#endif
    return fold_tile_scalar_insert;
}

/// Thresholds shared by the threads during a block pair: per local row, the highest list
/// threshold any thread has published. Each is the K-th best of K real candidates of that row
/// (or the global threshold), so a candidate below it cannot be in the row's final list and every
/// thread may skip it; which thread saw what still does not change the result. Threads read them
/// when they start a tile and publish after it, so sharing costs two passes over the tile's rows.
void take_shared(const std::atomic<float>* shared, float* thr, std::int64_t l0, std::int64_t n) {
    for (std::int64_t l = l0; l < l0 + n; ++l)
        thr[l] = std::max(thr[l], shared[l].load(std::memory_order_relaxed));
}

void publish_shared(std::atomic<float>* shared, const float* thr, std::int64_t l0, std::int64_t n) {
    for (std::int64_t l = l0; l < l0 + n; ++l) {
        float cur = shared[l].load(std::memory_order_relaxed);
        while (cur < thr[l] &&
               !shared[l].compare_exchange_weak(cur, thr[l], std::memory_order_relaxed)) {
        }
    }
}

/// Where each valid row came from, and the original-row extent of each grid tile (used to hand
/// tiles to a MatrixSink: extents partition [0, V), invalid rows go with the tile before them).
struct RowMap {
    std::vector<std::int64_t> orig;  ///< [n] original index of each valid row, ascending
    std::int64_t total = 0;          ///< V

    std::int64_t extent_begin(const TilePlan& p, std::int64_t g) const {
        return g == 0 ? 0 : orig[static_cast<std::size_t>(g * p.grid)];
    }
    std::int64_t extent_end(const TilePlan& p, std::int64_t g) const {
        return g + 1 >= p.grid_tiles ? total : orig[static_cast<std::size_t>((g + 1) * p.grid)];
    }
};

void emit_sink_tile(MatrixSink& sink, const RowMap& map, const TilePlan& plan, const float* C,
                    GridTile t, std::vector<float>& buf) {
    const std::int64_t G = plan.grid;
    const std::int64_t r0 = map.extent_begin(plan, t.gi), r1 = map.extent_end(plan, t.gi);
    const std::int64_t c0 = map.extent_begin(plan, t.gj), c1 = map.extent_end(plan, t.gj);
    const std::int64_t nr = r1 - r0, nc = c1 - c0;
    buf.assign(static_cast<std::size_t>(nr * nc), std::numeric_limits<float>::quiet_NaN());
    const RowRange ri = plan.grid_rows(t.gi), rj = plan.grid_rows(t.gj);
    for (std::int64_t a = 0; a < ri.size(); ++a) {
        float* out = buf.data() + (map.orig[ri.begin + a] - r0) * nc;
        for (std::int64_t b = 0; b < rj.size(); ++b) {
            // Diagonal tiles: the upper triangle is the canonical value of each pair; mirror it so
            // the sink gets an exactly symmetric block.
            const float v = (t.gi == t.gj && b < a) ? C[b * G + a] : C[a * G + b];
            out[map.orig[rj.begin + b] - c0] = v;
        }
    }
    sink.write_tile(r0, c0, MatrixView<const float>(buf.data(), nr, nc));
}

/// All rows invalid: the matrix is all NaN; hand it over in bounded tiles.
void emit_nan_matrix(MatrixSink& sink, std::int64_t V) {
    constexpr std::int64_t kSide = 1024;
    std::vector<float> buf;
    for (std::int64_t r0 = 0; r0 < V; r0 += kSide)
        for (std::int64_t c0 = r0; c0 < V; c0 += kSide) {
            const std::int64_t nr = std::min(kSide, V - r0), nc = std::min(kSide, V - c0);
            buf.assign(static_cast<std::size_t>(nr * nc), std::numeric_limits<float>::quiet_NaN());
            sink.write_tile(r0, c0, MatrixView<const float>(buf.data(), nr, nc));
        }
}

/// The all-pairs fold as a pass of the shared grid driver (cpu/grid_driver.hpp).
class AllPairsPass final : public cpu::GridPass {
  public:
    AllPairsPass(const AllPairsOptions& opt, const FoldParams& fp, const RowMap& map,
                 const TilePlan& plan, std::int64_t K, int threads, std::int64_t d,
                 const engine::GridShare& share)
        : opt_(opt), fp_(fp), map_(map), plan_(plan), share_(share), K_(K), d_(d),
          fold_tile_(pick_fold_tile(K)),
          global_(static_cast<std::int64_t>(map.orig.size()), K),
          sum_(static_cast<std::size_t>(d), 0.0),
          row_mean_(map.orig.size(), 0.0),
          zero_row_(map.orig.size(), 0),
          states_(static_cast<std::size_t>(threads)) {
        const std::int64_t n = static_cast<std::int64_t>(map.orig.size()), G = plan.grid;
        for (auto& ts : states_) {
            ts.lists = cpu::FoldLists(K);
            ts.hist32.assign(static_cast<std::size_t>(kHistCopies * fp.bins), 0);
            ts.hist.assign(static_cast<std::size_t>(fp.bins), 0);
            if (fp.row_sums) ts.row_sum.assign(static_cast<std::size_t>(n), 0);
            ts.dups = engine::DuplicateList(opt.max_dup_pairs);
            ts.bin_scratch.assign(static_cast<std::size_t>(G), 0);
            ts.row_bits.assign(static_cast<std::size_t>((G + 63) / 64), 0);
            ts.col_bits.assign(static_cast<std::size_t>((G + 63) / 64), 0);
        }
        std::int64_t max_local = 0;
        for (const BlockPair& bp : plan.block_pairs)
            max_local = std::max(max_local, plan.block(bp.i).size() +
                                                (bp.i == bp.j ? 0 : plan.block(bp.j).size()));
        shared_thr_.reset(new std::atomic<float>[static_cast<std::size_t>(max_local)]);
    }

    cpu::GridRowsOptions rows_options(const double* center) {
        cpu::GridRowsOptions o;
        o.center = center;
        o.normalized_sum = sum_.data();
        o.zero_rows = zero_row_.data();
        o.what = "cpu all-pairs";
        return o;
    }

    void prepare_pair(const cpu::PairView& p) override {
        for (std::int64_t l = 0; l < p.n_local; ++l)
            shared_thr_[l].store(global_.threshold(p.global_row(l)), std::memory_order_relaxed);
    }

    void begin_pair(int thread, const cpu::PairView& p) override {
        ThreadState& ts = states_[static_cast<std::size_t>(thread)];
        ts.lists.reset(p.n_local);
        cpu::seed_thresholds(p, global_, ts.thr);
    }

    void fold(int thread, const cpu::PairView&, const cpu::TileView& t) override {
        ThreadState& ts = states_[static_cast<std::size_t>(thread)];
        take_shared(shared_thr_.get(), ts.thr.data(), t.li, t.rows.size());
        if (t.lj != t.li) take_shared(shared_thr_.get(), ts.thr.data(), t.lj, t.cols.size());
        fold_tile_(t.C, t.rows.size(), t.cols.size(), t.diagonal(), t.rows.begin, t.cols.begin, t.li,
                   t.lj, ts, fp_);
        publish_shared(shared_thr_.get(), ts.thr.data(), t.li, t.rows.size());
        if (t.lj != t.li) publish_shared(shared_thr_.get(), ts.thr.data(), t.lj, t.cols.size());
        if (opt_.progress) {
            const std::int64_t done = tiles_done_.fetch_add(1) + 1;
            if (thread == 0) opt_.progress(done, total_tiles());
        }
        if (opt_.matrix && opt_.matrix->takes_tiles_concurrently()) {
            emit_sink_tile(*opt_.matrix, map_, plan_, t.C, t.tile, ts.sink_tile);
        } else if (opt_.matrix) {
            // Exceptions must not leave a critical region: caught inside it, rethrown outside.
            std::exception_ptr e;
#pragma omp critical(embgeom_matrix_sink)
            try {
                emit_sink_tile(*opt_.matrix, map_, plan_, t.C, t.tile, ts.sink_tile);
            } catch (...) {
                e = std::current_exception();
            }
            if (e) std::rethrow_exception(e);
        }
    }

    void merge_row(const cpu::PairView& p, std::int64_t l) override {
        const std::int64_t g = p.global_row(l);
        for (const ThreadState& ts : states_) {
            const float* sim = ts.lists.sims(l);
            const std::int32_t* index = ts.lists.indices(l);
            // Best first: once one does not enter, none of the rest can.
            for (std::int64_t q = 0; q < K_ && index[q] != cpu::FoldLists::kEmpty; ++q)
                if (!global_.offer(g, sim[q], p.global_row(index[q]))) break;
        }
    }

    void end_pair(int thread, const cpu::PairView&) override {
        states_[static_cast<std::size_t>(thread)].flush_hist();
    }

    void after_pair(const cpu::PairView& p) override {
        // Every block pair of I is done and S is complete (see PairView::last_of_i).
        if (!p.last_of_i) return;
        const RowRange r = p.rows_i;
#pragma omp parallel num_threads(static_cast<int>(states_.size()))
        {
            std::vector<float> row(static_cast<std::size_t>(d_));
#pragma omp for schedule(static)
            for (std::int64_t i = r.begin; i < r.end; ++i) {
                cpu::unpack_row(p.xi, i - r.begin, d_, row.data());
                row_mean_[i] = engine::row_mean_identity(
                    engine::dot_with_sum(row.data(), sum_.data(), d_), zero_row_[i],
                    static_cast<std::int64_t>(map_.orig.size()));
            }
        }
    }

    /// The result in original row order; partial, when given, receives the exact sums.
    AllPairsResult finish(std::int64_t V, AllPairsPartial* partial) {
        const std::int64_t n = static_cast<std::int64_t>(map_.orig.size());
        AllPairsResult res = engine::padded_result(V, opt_);
        const std::int64_t slots = std::min(opt_.k, K_);
        if (partial && opt_.accumulate_row_sums) partial->row_sums.assign(static_cast<std::size_t>(V), 0);
        for (std::int64_t c = 0; c < n; ++c) {
            const std::int64_t o = map_.orig[c];
            const float* s = global_.sims(c);
            const std::int64_t* x = global_.indices(c);
            for (std::int64_t p = 0; p < slots; ++p) {
                if (x[p] == engine::kEmptyIndex) break;
                res.neighbor_index[o * opt_.k + p] = map_.orig[x[p]];
                res.neighbor_sim[o * opt_.k + p] = s[p];
            }
            res.row_mean[o] = static_cast<float>(row_mean_[c]);
            if (opt_.accumulate_row_sums) {
                std::int64_t acc = 0;
                for (const auto& ts : states_) acc += ts.row_sum[c];
                res.row_sum_tiled[o] = static_cast<double>(acc) / engine::kCosScale;
                if (partial) partial->row_sums[o] = acc;
            }
        }
        res.histogram.assign(static_cast<std::size_t>(fp_.bins), 0);
        Int128 cos_sq = 0;
        engine::DuplicateList dups(opt_.max_dup_pairs);
        for (auto& ts : states_) {
            for (int b = 0; b < fp_.bins; ++b) res.histogram[b] += ts.hist[b];
            cos_sq += ts.cos_sq;
            dups.absorb(ts.dups);
        }
        res.pair_cos_sq_sum = static_cast<double>(cos_sq) / static_cast<double>(engine::kCosSqScale);
        res.normalized_sum = std::move(sum_);
        res.duplicates = dups.finish(&res.duplicates_truncated);
        for (auto& p : res.duplicates) {
            p.i = map_.orig[p.i];
            p.j = map_.orig[p.j];
        }
        res.valid_rows = n;
        res.gflop = static_cast<double>(total_tiles()) * 2.0 * plan_.grid * plan_.grid * d_ / 1e9;
        if (partial) {
            partial->cos_sq_fixed = static_cast<unsigned __int128>(cos_sq);
            partial->duplicates_found = engine::duplicates_found_of(res, opt_);
        }
        return res;
    }

  private:
    const AllPairsOptions& opt_;
    const FoldParams fp_;
    const RowMap& map_;
    const TilePlan& plan_;
    const engine::GridShare share_;
    const std::int64_t K_, d_;
    const FoldTileFn fold_tile_;
    TopKLists global_;
    std::vector<double> sum_;
    std::vector<double> row_mean_;
    std::vector<std::uint8_t> zero_row_;
    std::vector<ThreadState> states_;
    std::unique_ptr<std::atomic<float>[]> shared_thr_;
    std::atomic<std::int64_t> tiles_done_{0};

    /// Grid tiles (= SGEMM calls) this pass computes: the whole upper triangle, T (T + 1) / 2
    /// for T grid tiles, or the share's part of it.
    std::int64_t total_tiles() const { return share_.tiles(plan_.grid_tiles); }
};

}  // namespace

AllPairsResult cpu_all_pairs(RowSource& source, const std::vector<std::uint8_t>& valid,
                             const AllPairsOptions& opt, int threads,
                             const engine::GridShare& share, AllPairsPartial* partial) {
    const auto t_start = std::chrono::steady_clock::now();
    const std::int64_t V = source.rows(), d = source.cols();
    EMBGEOM_EXPECTS(static_cast<std::int64_t>(valid.size()) == V, "valid has one flag per row");
    EMBGEOM_EXPECTS(opt.k >= 1, "all-pairs needs k >= 1");
    EMBGEOM_EXPECTS(opt.hist_bins >= 1, "all-pairs needs hist_bins >= 1");
    EMBGEOM_EXPECTS(opt.max_dup_pairs >= 0, "max_dup_pairs >= 0");
    const double* center = nullptr;
    if (opt.center) {
        EMBGEOM_EXPECTS(static_cast<std::int64_t>(opt.center->size()) == d, "center has d values");
        for (const double c : *opt.center) EMBGEOM_EXPECTS(std::isfinite(c), "finite center");
        center = opt.center->data();
    }
    const int T = threads > 0 ? threads : omp_get_max_threads();

    RowMap map;
    map.total = V;
    for (std::int64_t i = 0; i < V; ++i)
        if (valid[i]) map.orig.push_back(i);
    const std::int64_t n = static_cast<std::int64_t>(map.orig.size());
    // Lists never need more slots than there are other rows; the output is padded to opt.k.
    const std::int64_t K = std::max<std::int64_t>(1, std::min(opt.k, n - 1));

    engine::TilePlanRequest req;
    req.rows = n;
    req.dim = d;
    req.k = K;
    req.threads = T;
    req.block_rows = opt.block_rows;
    req.memory_budget = opt.memory_budget;
    const TilePlan plan = engine::make_tile_plan(req);

    FoldParams fp;
    fp.grid = plan.grid;
    fp.bins = opt.hist_bins;
    fp.hist_scale = 0.5f * static_cast<float>(opt.hist_bins);
    fp.dup_min = engine::duplicate_min(opt.dup_threshold);
    fp.row_sums = opt.accumulate_row_sums;

    AllPairsPass pass(opt, fp, map, plan, K, T, d, share);
    const auto t_grid = std::chrono::steady_clock::now();
    const double seconds_loading =
        cpu::run_grid_pass(source, map.orig, plan, pass.rows_options(center), T, pass, share);
    // A share writes the matrix tiles of its grid tiles (an MPI job's rank 0 gathers them); with
    // no valid row there is no grid, and the first share writes the NaN matrix alone.
    if (opt.matrix && n == 0 && share.index == 0) emit_nan_matrix(*opt.matrix, V);
    const auto t_finish = std::chrono::steady_clock::now();
    AllPairsResult res = pass.finish(V, partial);
    const auto t_end = std::chrono::steady_clock::now();
    const auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
    res.seconds = secs(t_start, t_end);
    // Loading interleaves with the tiles when the table is streamed; it is counted apart anyway.
    res.phase_seconds = {{"set-up", secs(t_start, t_grid)},
                         {"load", seconds_loading},
                         {"tiles", secs(t_grid, t_finish) - seconds_loading},
                         {"finish", secs(t_finish, t_end)}};
    return res;
}

}  // namespace embgeom
