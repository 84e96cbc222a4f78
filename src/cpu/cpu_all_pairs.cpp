// The CPU all-pairs engine.
//
// Rows: invalid rows are dropped up front; the engine works on the n valid rows in their original
// order ("compacted" indices, mapped back at the end), so the fold never tests a mask.
//
// Tiles: see engine/tile_plan.hpp. Every similarity comes from one single-threaded cblas_sgemm on
// a fixed G x G grid tile (gi <= gj), which makes each cos(i, j) independent of block size, budget
// and thread count. Threads take grid tiles dynamically; diagonal tiles use their upper triangle
// only and feed both rows of each pair, so every unordered pair is seen exactly once.
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

#include <cblas.h>
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

#include "cpu/fold_lists.hpp"
#include "embgeom/errors.hpp"
#include "embgeom/histogram_binning.hpp"
#include "engine/duplicate_list.hpp"
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

/// 64-byte aligned float buffer, zero-initialised unless asked not to be (the normalised table
/// is written row by row by the loader, in parallel, which also spreads its page faults over the
/// threads: zeroing it first, in one thread, took about 2% of the all-pairs time at 30522 x 384).
class AlignedFloats {
  public:
    AlignedFloats() = default;
    explicit AlignedFloats(std::size_t n, bool zero = true) : size_(n) {
        const std::size_t bytes = std::max<std::size_t>(64, (n * sizeof(float) + 63) / 64 * 64);
        void* p = std::aligned_alloc(64, bytes);
        if (!p)
            throw ResourceError("cpu all-pairs: out of memory (" + std::to_string(bytes) +
                                " bytes)");
        if (zero) std::memset(p, 0, bytes);
        ptr_.reset(static_cast<float*>(p));
    }
    float* data() const { return ptr_.get(); }
    std::size_t size() const { return size_; }

  private:
    struct Free {
        void operator()(float* p) const noexcept { std::free(p); }
    };
    std::unique_ptr<float, Free> ptr_;
    std::size_t size_ = 0;
};

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
    AlignedFloats tile;
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

float smallest_float_at_least(double t) {
    if (std::isnan(t)) return std::numeric_limits<float>::infinity();
    if (t > std::numeric_limits<float>::max()) return std::numeric_limits<float>::infinity();
    float f = static_cast<float>(t);
    if (static_cast<double>(f) < t) f = std::nextafter(f, std::numeric_limits<float>::infinity());
    return f;
}

/// Pre-pass over one tile row c[0, len): sets bit p of rbits when c[p] >= t_row and of cbits when
/// c[p] >= tcol[p] (words of 64 columns, ceil(len / 64) of them, cleared here), writes the
/// histogram bin of every value to bins, and returns the sum of cos_sq_fixed(c[p]). The scalar
/// tail and the portable version use the same float operations in the same order, so every path
/// gives the same integers.
std::int64_t scan_row(const float* c, const float* tcol, std::int64_t len, float t_row, float scale,
                      int nbins, std::uint64_t* rbits, std::uint64_t* cbits, std::int32_t* bins) {
    const std::int64_t words = (len + 63) / 64;
    for (std::int64_t w = 0; w < words; ++w) rbits[w] = cbits[w] = 0;
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
    for (; q < len; ++q) {
        const float v = c[q];
        rbits[q >> 6] |= static_cast<std::uint64_t>(v >= t_row) << (q & 63);
        cbits[q >> 6] |= static_cast<std::uint64_t>(v >= tcol[q]) << (q & 63);
        total += engine::cos_sq_fixed(v);
        bins[q] = histogram_bin(v, scale, nbins);
    }
    return total;
}

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

/// The fold for this CPU and list length k.
FoldTileFn pick_fold_tile(std::int64_t k) {
#if defined(EMBGEOM_FOLD_AVX512)
    __builtin_cpu_init();
    if (k <= cpu::FoldLists::kVectorSlots && __builtin_cpu_supports("avx512f") &&
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

/// Reads valid rows [range) of the compacted space, normalises them into dst (ld d) and, when sum
/// is given, adds them to it (add_rows_to_sum, staging buffer by staging buffer while the rows
/// are still in cache). Rows are read in original order through a staging buffer of `stage_rows`
/// rows; invalid rows in between are read and dropped.
void load_rows(RowSource& source, const RowMap& map, RowRange range, const double* center,
               std::int64_t d, std::int64_t stage_rows, std::vector<float>& staging, int threads,
               float* dst, std::uint8_t* zero_row, double* sum) {
    std::int64_t c = range.begin;
    staging.resize(static_cast<std::size_t>(stage_rows * std::max<std::int64_t>(d, 1)));
    while (c < range.end) {
        const std::int64_t o0 = map.orig[c];
        const std::int64_t o1 = std::min(map.orig[range.end - 1] + 1, o0 + stage_rows);
        source.read_rows(o0, o1 - o0, staging.data());
        std::int64_t c1 = c;
        while (c1 < range.end && map.orig[c1] < o1) ++c1;
        std::int64_t bad = -1;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(max : bad)
        for (std::int64_t r = c; r < c1; ++r) {
            const double norm = engine::normalize_row(staging.data() + (map.orig[r] - o0) * d,
                                                      center, d, dst + (r - range.begin) * d);
            if (!std::isfinite(norm)) bad = std::max(bad, map.orig[r]);
            zero_row[r] = norm > 0.0 ? 0 : 1;
        }
        if (bad >= 0)
            throw ResourceError("cpu all-pairs: row " + std::to_string(bad) + " of " +
                                source.describe() + " is marked valid but holds non-finite values");
        if (sum) add_rows_to_sum(dst + (c - range.begin) * d, c1 - c, d, sum, threads);
        c = c1;
    }
}

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

}  // namespace

AllPairsResult cpu_all_pairs(RowSource& source, const std::vector<std::uint8_t>& valid,
                             const AllPairsOptions& opt, int threads) {
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
    const std::int64_t G = plan.grid, B = plan.block_rows;

    FoldParams fp;
    fp.grid = G;
    fp.bins = opt.hist_bins;
    fp.hist_scale = 0.5f * static_cast<float>(opt.hist_bins);
    fp.dup_min = smallest_float_at_least(opt.dup_threshold);
    fp.row_sums = opt.accumulate_row_sums;
    const FoldTileFn fold_tile = pick_fold_tile(K);

    TopKLists global(n, K);
    std::vector<double> sum(static_cast<std::size_t>(d), 0.0);
    std::vector<double> row_mean_c(static_cast<std::size_t>(n), 0.0);
    std::vector<std::uint8_t> zero_row(static_cast<std::size_t>(n), 0);

    std::vector<ThreadState> states(static_cast<std::size_t>(T));
    for (auto& ts : states) {
        ts.lists = cpu::FoldLists(K);
        ts.hist32.assign(static_cast<std::size_t>(kHistCopies * fp.bins), 0);
        ts.hist.assign(static_cast<std::size_t>(fp.bins), 0);
        if (fp.row_sums) ts.row_sum.assign(static_cast<std::size_t>(n), 0);
        ts.dups = engine::DuplicateList(opt.max_dup_pairs);
        ts.tile = AlignedFloats(static_cast<std::size_t>(G * G));
        ts.bin_scratch.assign(static_cast<std::size_t>(G), 0);
        ts.row_bits.assign(static_cast<std::size_t>((G + 63) / 64), 0);
        ts.col_bits.assign(static_cast<std::size_t>((G + 63) / 64), 0);
    }

    // Normalised rows: the whole (zero-padded) table when resident, else block I and block J.
    AlignedFloats table, buf_i, buf_j;
    std::vector<float> staging;
    if (plan.resident) {
        table = AlignedFloats(static_cast<std::size_t>(plan.grid_tiles * G * d), false);
        load_rows(source, map, {0, n}, center, d, G, staging, T, table.data(), zero_row.data(),
                  sum.data());
        std::fill(table.data() + n * d, table.data() + plan.grid_tiles * G * d, 0.0f);
    } else {
        buf_i = AlignedFloats(static_cast<std::size_t>(B * d), false);
        buf_j = AlignedFloats(static_cast<std::size_t>(B * d), false);
    }
    // Fills all B rows of dst (the last block zero-padded); sum: see load_rows.
    const auto load_block = [&](std::int64_t b, float* dst, double* sum_or_null) {
        const RowRange r = plan.block(b);
        load_rows(source, map, r, center, d, G, staging, T, dst, zero_row.data(), sum_or_null);
        std::fill(dst + r.size() * d, dst + B * d, 0.0f);  // zero padding of the last block
    };
    const auto compute_row_means = [&](RowRange r, const float* rows) {
#pragma omp parallel for num_threads(T) schedule(static)
        for (std::int64_t i = r.begin; i < r.end; ++i)
            row_mean_c[i] = engine::row_mean_identity(
                engine::dot_with_sum(rows + (i - r.begin) * d, sum.data(), d), zero_row[i], n);
    };

    std::exception_ptr failure;
    std::atomic<bool> stop{false};
    const auto record_failure = [&] {
#pragma omp critical(embgeom_all_pairs_failure)
        if (!failure) failure = std::current_exception();
        stop.store(true);
    };
    std::int64_t max_local = 0;
    for (const BlockPair& bp : plan.block_pairs)
        max_local = std::max(
            max_local, plan.block(bp.i).size() + (bp.i == bp.j ? 0 : plan.block(bp.j).size()));
    std::unique_ptr<std::atomic<float>[]> shared_thr(
        new std::atomic<float>[static_cast<std::size_t>(max_local)]);
    std::int64_t gemm_calls = 0;
    std::int64_t loaded_i = -1;
    // Progress in grid tiles (one block pair can be the whole run): reported by thread 0, the
    // calling thread, as tiles complete on any thread.
    std::int64_t total_tiles = 0;
    if (opt.progress)
        for (const BlockPair& bp : plan.block_pairs)
            total_tiles += static_cast<std::int64_t>(plan.grid_tiles_of(bp).size());
    std::atomic<std::int64_t> tiles_done{0};
    for (std::size_t pi = 0; pi < plan.block_pairs.size(); ++pi) {
        const BlockPair bp = plan.block_pairs[pi];
        const RowRange ri = plan.block(bp.i), rj = plan.block(bp.j);
        const float* xi;
        const float* xj;
        if (plan.resident) {
            xi = table.data() + ri.begin * d;
            xj = table.data() + rj.begin * d;
        } else {
            // The first pass (I = 0) streams every block in row order: accumulate S there.
            double* const sum_pass0 = bp.i == 0 ? sum.data() : nullptr;
            if (loaded_i != bp.i) {
                load_block(bp.i, buf_i.data(), sum_pass0);
                loaded_i = bp.i;
            }
            if (bp.j != bp.i) load_block(bp.j, buf_j.data(), sum_pass0);
            xi = buf_i.data();
            xj = bp.j == bp.i ? buf_i.data() : buf_j.data();
        }

        const std::vector<GridTile> tiles = plan.grid_tiles_of(bp);
        const bool same = bp.i == bp.j;
        const std::int64_t n_local = ri.size() + (same ? 0 : rj.size());
        const auto global_row = [&](std::int64_t l) {
            return l < ri.size() ? ri.begin + l : rj.begin + (l - ri.size());
        };
        gemm_calls += static_cast<std::int64_t>(tiles.size());

#pragma omp parallel num_threads(T)
        {
            // OpenBLAS (OpenMP build) runs single-threaded when omp_get_max_threads() == 1 or
            // inside an active parallel region; this covers the one-thread team too. The grid
            // shape must not be split further by BLAS threads (see tile_plan.hpp).
            omp_set_num_threads(1);
            ThreadState& ts = states[static_cast<std::size_t>(omp_get_thread_num())];
            ts.lists.reset(n_local);
            ts.thr.resize(static_cast<std::size_t>(n_local));
            for (std::int64_t l = 0; l < n_local; ++l) ts.thr[l] = global.threshold(global_row(l));
#pragma omp for schedule(static)
            for (std::int64_t l = 0; l < n_local; ++l)
                shared_thr[l].store(ts.thr[l], std::memory_order_relaxed);
                // Implicit barrier: shared_thr is set before any tile reads it.

#pragma omp for schedule(dynamic, 1)
            for (std::size_t ti = 0; ti < tiles.size(); ++ti) {
                if (stop.load(std::memory_order_relaxed)) continue;
                try {
                    const GridTile t = tiles[ti];
                    const RowRange gi = plan.grid_rows(t.gi), gj = plan.grid_rows(t.gj);
                    const float* a = xi + (t.gi * G - ri.begin) * d;
                    const float* b = xj + (t.gj * G - rj.begin) * d;
                    float* C = ts.tile.data();
                    if (d > 0) {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, G, G, d, 1.0f, a, d, b,
                                    d, 0.0f, C, G);
                    } else {
                        std::fill(C, C + G * G, 0.0f);
                    }
                    const std::int64_t li = t.gi * G - ri.begin;
                    const std::int64_t lj = (same ? 0 : ri.size()) + t.gj * G - rj.begin;
                    take_shared(shared_thr.get(), ts.thr.data(), li, gi.size());
                    if (lj != li) take_shared(shared_thr.get(), ts.thr.data(), lj, gj.size());
                    fold_tile(C, gi.size(), gj.size(), t.gi == t.gj, gi.begin, gj.begin, li, lj, ts,
                              fp);
                    publish_shared(shared_thr.get(), ts.thr.data(), li, gi.size());
                    if (lj != li) publish_shared(shared_thr.get(), ts.thr.data(), lj, gj.size());
                    if (opt.progress) {
                        const std::int64_t done = tiles_done.fetch_add(1) + 1;
                        if (omp_get_thread_num() == 0) opt.progress(done, total_tiles);
                    }
                    if (opt.matrix) {
                        // Exceptions must not leave a critical region: caught inside it.
#pragma omp critical(embgeom_matrix_sink)
                        try {
                            emit_sink_tile(*opt.matrix, map, plan, C, t, ts.sink_tile);
                        } catch (...) {
                            record_failure();
                        }
                    }
                } catch (...) {
                    record_failure();
                }
            }
            // Implicit barrier: every partial list is complete. Rows are disjoint: no conflicts.
            const int team = omp_get_num_threads();
#pragma omp for schedule(static)
            for (std::int64_t l = 0; l < n_local; ++l) {
                const std::int64_t g = global_row(l);
                for (int o = 0; o < team; ++o) {
                    const cpu::FoldLists& part = states[static_cast<std::size_t>(o)].lists;
                    const float* sim = part.sims(l);
                    const std::int32_t* index = part.indices(l);
                    // Best first: once one does not enter, none of the rest can.
                    for (std::int64_t p = 0; p < K && index[p] != cpu::FoldLists::kEmpty; ++p)
                        if (!global.offer(g, sim[p], global_row(index[p]))) break;
                }
            }
            ts.flush_hist();
        }
        if (failure) std::rethrow_exception(failure);

        if (!plan.resident &&
            (pi + 1 == plan.block_pairs.size() || plan.block_pairs[pi + 1].i != bp.i)) {
            // Pass I is over; S is complete once pass 0 is.
            compute_row_means(ri, buf_i.data());
        }
    }
    if (plan.resident) compute_row_means({0, n}, table.data());
    if (opt.matrix && n == 0) emit_nan_matrix(*opt.matrix, V);

    // Assemble the result in original row order.
    AllPairsResult res = engine::padded_result(V, opt);
    const std::int64_t slots = std::min(opt.k, K);
    for (std::int64_t c = 0; c < n; ++c) {
        const std::int64_t o = map.orig[c];
        const float* s = global.sims(c);
        const std::int64_t* x = global.indices(c);
        for (std::int64_t p = 0; p < slots; ++p) {
            if (x[p] == engine::kEmptyIndex) break;
            res.neighbor_index[o * opt.k + p] = map.orig[x[p]];
            res.neighbor_sim[o * opt.k + p] = s[p];
        }
        res.row_mean[o] = static_cast<float>(row_mean_c[c]);
        if (opt.accumulate_row_sums) {
            std::int64_t acc = 0;
            for (const auto& ts : states) acc += ts.row_sum[c];
            res.row_sum_tiled[o] = static_cast<double>(acc) / engine::kCosScale;
        }
    }
    res.histogram.assign(static_cast<std::size_t>(fp.bins), 0);
    Int128 cos_sq = 0;
    engine::DuplicateList dups(opt.max_dup_pairs);
    for (auto& ts : states) {
        for (int b = 0; b < fp.bins; ++b) res.histogram[b] += ts.hist[b];
        cos_sq += ts.cos_sq;
        dups.absorb(ts.dups);
    }
    res.pair_cos_sq_sum = static_cast<double>(cos_sq) / static_cast<double>(engine::kCosSqScale);
    res.normalized_sum = std::move(sum);
    res.duplicates = dups.finish(&res.duplicates_truncated);
    for (auto& p : res.duplicates) {
        p.i = map.orig[p.i];
        p.j = map.orig[p.j];
    }
    res.valid_rows = n;
    res.gflop = static_cast<double>(gemm_calls) * 2.0 * G * G * d / 1e9;
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    return res;
}

}  // namespace embgeom
