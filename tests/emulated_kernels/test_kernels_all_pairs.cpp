// The all-pairs engine's tile kernels (kernels/tile_row_fold.cu, tile_pairs.cu, mirror_upper.cu,
// transpose.cu, scale_tile.cu, csls_scores.cu, mask_invalid.cu, rescore_candidates.cu,
// select_topk.cu) run by the
// kernel emulator against host references of their contracts: the top-K order (similarity
// descending, index ascending) and fixed-point sums of src/engine, the histogram binning of
// include/embgeom/histogram_binning.hpp. Tiles hold quantised values, so ties are common.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "csls_scores.cuh"
#include "embgeom/histogram_binning.hpp"
#include "engine/candidate_rescore.hpp"
#include "engine/fixed_point.hpp"
#include "geometry/csls.hpp"
#include "kernel_emulator.hpp"
#include "mask_invalid.cuh"
#include "mirror_upper.cuh"
#include "rescore_candidates.cuh"
#include "scale_tile.cuh"
#include "select_topk.cuh"
#include "tile_col_fold.cuh"
#include "tile_pairs.cuh"
#include "tile_row_fold.cuh"
#include "transpose.cuh"

namespace {

namespace kn = embgeom::kernels;
namespace emu = embgeom::emu;
using embgeom::engine::cos_fixed;
using embgeom::engine::cos_sq_fixed;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Values in [-1, 1] on a grid of 1/64: many exact ties within a row.
std::vector<float> quantised(std::size_t n, std::mt19937& rng) {
    std::uniform_int_distribution<int> step(-64, 64);
    std::vector<float> v(n);
    for (float& x : v) x = static_cast<float>(step(rng)) / 64.0f;
    return v;
}

std::vector<std::uint8_t> mask(std::int64_t n, std::mt19937& rng, double invalid_share) {
    std::bernoulli_distribution drop(invalid_share);
    std::vector<std::uint8_t> m(static_cast<std::size_t>(n));
    for (auto& x : m) x = drop(rng) ? 0 : 1;
    return m;
}

// A V x V "cosine" matrix, symmetric (a tile and its transpose hold the same values), with NaN in
// every cell of an invalid token: no kernel may read those into a result.
struct Cosines {
    std::int64_t n;
    std::vector<float> m;
    std::vector<std::uint8_t> valid;
    float at(std::int64_t i, std::int64_t j) const { return m[i * n + j]; }
};

Cosines make_cosines(std::int64_t n, std::uint32_t seed, double invalid_share) {
    std::mt19937 rng(seed);
    Cosines c{n, quantised(static_cast<std::size_t>(n * n), rng), mask(n, rng, invalid_share)};
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < i; ++j) c.m[i * n + j] = c.m[j * n + i];
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < n; ++j)
            if (!c.valid[i] || !c.valid[j]) c.m[i * n + j] = kNaN;
    return c;
}

// Rows [r0, r0 + rows) x columns [c0, c0 + cols), with a leading dimension larger than cols.
std::vector<float> tile_of(const Cosines& c, std::int64_t r0, std::int64_t rows, std::int64_t c0,
                           std::int64_t cols, std::int64_t ld) {
    std::vector<float> t(static_cast<std::size_t>(rows * ld), -7.0f);
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t q = 0; q < cols; ++q) t[r * ld + q] = c.at(r0 + r, c0 + q);
    return t;
}

struct Lists {
    std::vector<float> sim;
    std::vector<std::int64_t> index;
    std::vector<long long> sums;
    bool operator==(const Lists& o) const {
        // Bitwise on the similarities (-inf slots included), as the results are compared.
        return index == o.index && sums == o.sums &&
               std::equal(sim.begin(), sim.end(), o.sim.begin(), o.sim.end(),
                          [](float a, float b) { return std::memcmp(&a, &b, 4) == 0; });
    }
};

// The best k of every (cosine, j) with j valid and j != i, for valid rows i; empty slots are
// (-inf, kTopkEmptyIndex); sums[i] = sum of cos_fixed over the same j.
Lists reference_lists(const Cosines& c, int k) {
    Lists out{std::vector<float>(c.n * k, -INFINITY),
              std::vector<std::int64_t>(c.n * k, kn::kTopkEmptyIndex),
              std::vector<long long>(c.n, 0)};
    for (std::int64_t i = 0; i < c.n; ++i) {
        if (!c.valid[i]) continue;
        std::vector<std::pair<float, std::int64_t>> cand;
        for (std::int64_t j = 0; j < c.n; ++j)
            if (c.valid[j] && j != i) {
                cand.emplace_back(c.at(i, j), j);
                out.sums[i] += cos_fixed(c.at(i, j));
            }
        std::sort(cand.begin(), cand.end(), [](const auto& a, const auto& b) {
            return a.first > b.first || (a.first == b.first && a.second < b.second);
        });
        for (std::size_t s = 0; s < cand.size() && s < static_cast<std::size_t>(k); ++s) {
            out.sim[i * k + s] = cand[s].first;
            out.index[i * k + s] = cand[s].second;
        }
    }
    return out;
}

// Lists of n tokens with max(k, 1) slots each, every slot empty (launch_topk_init), sums zero.
Lists empty_lists(std::int64_t n, int k) {
    const std::size_t slots = static_cast<std::size_t>(n) * std::max(k, 1);
    Lists l{std::vector<float>(slots), std::vector<std::int64_t>(slots),
            std::vector<long long>(static_cast<std::size_t>(n), 0)};
    kn::launch_topk_init(l.sim.data(), l.index.data(), static_cast<std::int64_t>(slots), nullptr);
    return l;
}

// The engine's use of the fold: the rows of each block folded against every column block, tiles
// visited in the given order (pairs of block starts), lists and sums accumulated on one set of
// buffers.
Lists fold_blocks(const Cosines& c, int k, std::int64_t block,
                  const std::vector<std::pair<std::int64_t, std::int64_t>>& order) {
    Lists out = empty_lists(c.n, k);
    for (auto [i0, j0] : order) {
        const std::int64_t rows = std::min(block, c.n - i0), cols = std::min(block, c.n - j0);
        const std::int64_t ld = cols + 5;
        const std::vector<float> t = tile_of(c, i0, rows, j0, cols, ld);
        kn::launch_tile_row_fold(t.data(), ld, rows, cols, i0, j0, c.valid.data(), out.sim.data(),
                                 out.index.data(), k, out.sums.data(), nullptr, nullptr);
    }
    return out;
}

std::vector<std::pair<std::int64_t, std::int64_t>> all_tiles(std::int64_t n, std::int64_t block,
                                                             bool reversed) {
    std::vector<std::pair<std::int64_t, std::int64_t>> order;
    for (std::int64_t i0 = 0; i0 < n; i0 += block)
        for (std::int64_t j0 = 0; j0 < n; j0 += block) order.emplace_back(i0, j0);
    if (reversed) std::reverse(order.begin(), order.end());
    return order;
}

void expect_lists_equal(const Lists& got, const Lists& want, int k) {
    ASSERT_EQ(got.index.size(), want.index.size());
    for (std::size_t e = 0; e < want.index.size(); ++e) {
        ASSERT_EQ(got.index[e], want.index[e]) << "row " << e / k << " slot " << e % k;
        ASSERT_EQ(got.sim[e], want.sim[e]) << "row " << e / k << " slot " << e % k;
    }
    for (std::size_t i = 0; i < want.sums.size(); ++i)
        ASSERT_EQ(got.sums[i], want.sums[i]) << "row sum " << i;
}

// (tokens, tile side, k): one tile wider than the block kernel's 2048-column chunk, blocks that
// split rows unevenly; the warp kernel's register lists at k = 1, 10, 32, 33, 40 and 128 (one, two
// and four slots per lane), and the block kernel's candidate buffer (k + 512 slots) filling
// several times, up to the largest k.
class EmulatedTileRowFold : public ::testing::TestWithParam<std::tuple<int, int, int>> {};

TEST_P(EmulatedTileRowFold, ListsAndRowSumsAreTheBestKOfEveryTile) {
    const auto [n, block, k] = GetParam();
    const Cosines c = make_cosines(n, 1000 + n + k, 0.1);
    const Lists want = reference_lists(c, k);
    expect_lists_equal(fold_blocks(c, k, block, all_tiles(n, block, false)), want, k);
    // Another tile order and another thread order: the same bits.
    emu::set_schedule(emu::Schedule::kShuffled, 5);
    const Lists shuffled = fold_blocks(c, k, block, all_tiles(n, block, true));
    emu::set_schedule(emu::Schedule::kForward);
    expect_lists_equal(shuffled, want, k);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, EmulatedTileRowFold,
    ::testing::Values(std::make_tuple(2300, 2300, 10), std::make_tuple(130, 47, 1),
                      std::make_tuple(700, 333, 10), std::make_tuple(300, 300, 32),
                      std::make_tuple(300, 120, 33), std::make_tuple(500, 260, 40),
                      std::make_tuple(400, 400, 128), std::make_tuple(600, 600, 129),
                      std::make_tuple(900, 900, 300), std::make_tuple(1100, 1100, 1024)));

TEST(EmulatedTileRowFold, ListsOnlyAndSumsOnlyMatchTheFusedFold) {
    const Cosines c = make_cosines(400, 77, 0.2);
    const Lists both = fold_blocks(c, 7, 150, all_tiles(c.n, 150, false));
    Lists lists = empty_lists(c.n, 7);
    std::vector<long long> sums(c.n, 0);
    for (auto [i0, j0] : all_tiles(c.n, 150, false)) {
        const std::int64_t rows = std::min<std::int64_t>(150, c.n - i0);
        const std::int64_t cols = std::min<std::int64_t>(150, c.n - j0);
        const std::vector<float> t = tile_of(c, i0, rows, j0, cols, cols);
        kn::launch_tile_row_fold(t.data(), cols, rows, cols, i0, j0, c.valid.data(),
                                 lists.sim.data(), lists.index.data(), 7, nullptr, nullptr,
                                 nullptr);
        kn::launch_tile_row_fold(t.data(), cols, rows, cols, i0, j0, c.valid.data(), nullptr,
                                 nullptr, 0, sums.data(), nullptr, nullptr);
    }
    lists.sums = sums;
    EXPECT_TRUE(lists == both);
    expect_lists_equal(both, reference_lists(c, 7), 7);
}

// The column fold is the row fold of the transposed tile, bit for bit: lists and sums of the
// column tokens, over several tiles in a row (so lists arrive partly filled), for every list
// width it takes, with tile sides that are not multiples of its 16 columns or 128-row chunks,
// and on a diagonal tile (its own token skipped).
TEST(EmulatedTileColFold, IsTheRowFoldOfTheTransposedTile) {
    const Cosines c = make_cosines(700, 31, 0.15);
    const std::vector<std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t>> tiles{
        {0, 300, 300, 277},
        {300, 150, 300, 277},
        {450, 250, 300, 277},
        {0, 129, 0, 129},
        {129, 171, 577, 123}};
    for (int k : {0, 1, 10, 32, 33, 64, 65, 128}) {
        Lists col = empty_lists(c.n, k);
        Lists row = col;
        const bool sums = k == 0 || k == 10 || k == 65;
        for (auto [r0, rows, c0, cols] : tiles) {
            const std::int64_t ld = cols + 3;
            const std::vector<float> t = tile_of(c, r0, rows, c0, cols, ld);
            std::vector<float> tt(static_cast<std::size_t>(cols * rows));
            for (std::int64_t r = 0; r < rows; ++r)
                for (std::int64_t q = 0; q < cols; ++q) tt[q * rows + r] = t[r * ld + q];
            kn::launch_tile_col_fold(t.data(), ld, rows, cols, r0, c0, c.valid.data(),
                                     col.sim.data(), col.index.data(), k,
                                     sums ? col.sums.data() : nullptr, nullptr);
            kn::launch_tile_row_fold(tt.data(), rows, cols, rows, c0, r0, c.valid.data(),
                                     row.sim.data(), row.index.data(), k,
                                     sums ? row.sums.data() : nullptr, nullptr, nullptr);
        }
        EXPECT_TRUE(col == row) << "k = " << k;
        if (k > 0) {
            std::int64_t filled = 0;
            for (std::int64_t e : col.index) filled += e != kn::kTopkEmptyIndex;
            EXPECT_GT(filled, 0) << "k = " << k;
        }
    }
}

// The histogram, cos^2 and duplicate counts of one tile: pairs i < j of valid tokens.
struct PairFold {
    std::vector<unsigned long long> hist;
    unsigned long long cos_sq = 0, dups = 0;
    std::vector<long long> row_dups;
};

PairFold reference_pairs(const Cosines& c, std::int64_t r0, std::int64_t rows, std::int64_t c0,
                         std::int64_t cols, int bins, float dup_min) {
    PairFold out{std::vector<unsigned long long>(bins, 0), 0, 0, std::vector<long long>(rows, 0)};
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t q = 0; q < cols; ++q) {
            const std::int64_t i = r0 + r, j = c0 + q;
            if (i >= j || !c.valid[i] || !c.valid[j]) continue;
            const float v = c.at(i, j);
            ++out.hist[embgeom::histogram_bin(v, 0.5f * bins, bins)];
            out.cos_sq += static_cast<unsigned long long>(cos_sq_fixed(v));
            if (v >= dup_min) {
                ++out.dups;
                ++out.row_dups[r];
            }
        }
    return out;
}

PairFold device_pairs(const std::vector<float>& t, std::int64_t ld, const Cosines& c,
                      std::int64_t r0, std::int64_t rows, std::int64_t c0, std::int64_t cols,
                      int bins, float dup_min) {
    PairFold out{std::vector<unsigned long long>(bins, 0), 0, 0, std::vector<long long>(rows, -1)};
    kn::launch_tile_pairs(t.data(), ld, rows, cols, r0, c0, c.valid.data(), bins, 0.5f * bins,
                          out.hist.data(), &out.cos_sq, dup_min, out.row_dups.data(), &out.dups,
                          nullptr);
    return out;
}

TEST(EmulatedTilePairs, HistogramCosSquaredAndDuplicatesOfDiagonalAndOffDiagonalTiles) {
    const Cosines c = make_cosines(300, 9, 0.15);
    const float dup_min = 0.75f;
    // A diagonal tile, an off-diagonal one; bins counted in shared memory and in global memory.
    for (int bins : {100, kn::kPairsSharedHistMaxBins + 1000}) {
        for (auto [r0, rows, c0, cols] :
             {std::make_tuple(0, 170, 0, 170), std::make_tuple(40, 90, 170, 130)}) {
            const std::int64_t ld = cols + 3;
            const std::vector<float> t = tile_of(c, r0, rows, c0, cols, ld);
            const PairFold want = reference_pairs(c, r0, rows, c0, cols, bins, dup_min);
            const PairFold got = device_pairs(t, ld, c, r0, rows, c0, cols, bins, dup_min);
            EXPECT_EQ(got.hist, want.hist) << bins << " bins, tile at " << r0 << "," << c0;
            EXPECT_EQ(got.cos_sq, want.cos_sq);
            EXPECT_EQ(got.dups, want.dups);
            EXPECT_EQ(got.row_dups, want.row_dups);
            EXPECT_GT(want.dups, 0u) << "the test needs duplicates";
        }
    }
}

// The fold that counts the pairs of the rows of I in the same read (every list width: none, the
// warp kernel's three register widths, the block kernel's, which counts them in a second read)
// gives tile_pairs' statistics bit for bit and the lists and sums of the fold without them.
TEST(EmulatedTilePairs, TheFoldCountsThePairsOfItsRowsAsTilePairsDoes) {
    const Cosines c = make_cosines(300, 13, 0.15);
    const float dup_min = 0.75f;
    for (int k : {0, 10, 40, 100, 200}) {
        for (int bins : {100, kn::kPairsSharedHistMaxBins + 1000}) {
            for (auto [r0, rows, c0, cols] :
                 {std::make_tuple(0, 170, 0, 170), std::make_tuple(40, 90, 170, 130)}) {
                const std::int64_t ld = cols + 3;
                const std::vector<float> t = tile_of(c, r0, rows, c0, cols, ld);
                const PairFold want = reference_pairs(c, r0, rows, c0, cols, bins, dup_min);
                PairFold got{std::vector<unsigned long long>(bins, 0), 0, 0,
                             std::vector<long long>(rows, -1)};
                kn::TilePairStats stats;
                stats.hist_bins = bins;
                stats.hist_scale = 0.5f * bins;
                stats.hist = got.hist.data();
                stats.cos_sq_fixed = &got.cos_sq;
                stats.dup_min = dup_min;
                stats.row_dup_count = got.row_dups.data();
                stats.dup_total = &got.dups;
                Lists with = empty_lists(c.n, k);
                Lists without = with;
                // The sums ride along for k = 0 and 40 only, so each kernel variant runs.
                const bool sums = k == 0 || k == 40;
                kn::launch_tile_row_fold(t.data(), ld, rows, cols, r0, c0, c.valid.data(),
                                         with.sim.data(), with.index.data(), k,
                                         sums ? with.sums.data() : nullptr, &stats, nullptr);
                kn::launch_tile_row_fold(t.data(), ld, rows, cols, r0, c0, c.valid.data(),
                                         without.sim.data(), without.index.data(), k,
                                         sums ? without.sums.data() : nullptr, nullptr, nullptr);
                const std::string at = "k " + std::to_string(k) + ", " + std::to_string(bins) +
                                       " bins, tile at " + std::to_string(r0) + "," +
                                       std::to_string(c0);
                EXPECT_EQ(got.hist, want.hist) << at;
                EXPECT_EQ(got.cos_sq, want.cos_sq) << at;
                EXPECT_EQ(got.dups, want.dups) << at;
                EXPECT_EQ(got.row_dups, want.row_dups) << at;
                EXPECT_TRUE(with == without) << at;
            }
        }
    }
}

TEST(EmulatedTilePairs, DuplicatePairsAreWrittenInPairOrderAcrossWindows) {
    const Cosines c = make_cosines(260, 21, 0.1);
    const float dup_min = 0.8f;
    const std::int64_t r0 = 0, rows = 260, c0 = 0, cols = 260;
    const std::vector<float> t = tile_of(c, r0, rows, c0, cols, cols);
    const PairFold counts = device_pairs(t, cols, c, r0, rows, c0, cols, 10, dup_min);
    std::vector<long long> offsets(rows);
    long long running = 0;
    for (std::int64_t r = 0; r < rows; ++r) {
        offsets[r] = running;
        running += counts.row_dups[r];
    }
    std::vector<kn::TilePair> want;
    for (std::int64_t i = 0; i < rows; ++i)
        for (std::int64_t j = i + 1; j < cols; ++j)
            if (c.valid[i] && c.valid[j] && c.at(i, j) >= dup_min)
                want.push_back({i, j, c.at(i, j)});
    ASSERT_EQ(static_cast<long long>(want.size()), running);
    ASSERT_GT(want.size(), 100u);
    // Windows of 37 pairs: every pair lands once, at its rank in (i, j) order.
    std::vector<kn::TilePair> got;
    for (long long first = 0; first < running; first += 37) {
        const long long count = std::min<long long>(37, running - first);
        std::vector<kn::TilePair> window(count, kn::TilePair{-1, -1, kNaN});
        kn::launch_tile_dup_write(t.data(), cols, rows, cols, r0, c0, c.valid.data(), dup_min,
                                  counts.row_dups.data(), offsets.data(), first, count,
                                  window.data(), nullptr);
        got.insert(got.end(), window.begin(), window.end());
    }
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t q = 0; q < want.size(); ++q) {
        EXPECT_EQ(got[q].i, want[q].i) << q;
        EXPECT_EQ(got[q].j, want[q].j) << q;
        EXPECT_EQ(got[q].cosine, want[q].cosine) << q;
    }
}

TEST(EmulatedTileCopies, MirrorUpperAndTransposeAreExactCopies) {
    std::mt19937 rng(3);
    const std::int64_t n = 70, ld = 75;
    std::vector<float> tile = quantised(static_cast<std::size_t>(n * ld), rng);
    const std::vector<float> before = tile;
    kn::launch_mirror_upper(tile.data(), ld, n, nullptr);
    for (std::int64_t r = 0; r < n; ++r)
        for (std::int64_t q = 0; q < ld; ++q) {
            const float want = q < n && r > q ? before[q * ld + r] : before[r * ld + q];
            ASSERT_EQ(tile[r * ld + q], want) << r << "," << q;
        }

    const std::int64_t rows = 45, cols = 70, ld_in = 72, ld_out = 50;
    const std::vector<float> in = quantised(static_cast<std::size_t>(rows * ld_in), rng);
    std::vector<float> out(static_cast<std::size_t>(cols * ld_out), -3.0f);
    kn::launch_transpose(in.data(), rows, cols, ld_in, out.data(), ld_out, nullptr);
    for (std::int64_t q = 0; q < cols; ++q)
        for (std::int64_t r = 0; r < ld_out; ++r)
            ASSERT_EQ(out[q * ld_out + r], r < rows ? in[r * ld_in + q] : -3.0f) << q << "," << r;
}

TEST(EmulatedTileScaling, ScaleTileCslsAndMaskFollowTheirHostFormulas) {
    std::mt19937 rng(11);
    std::uniform_real_distribution<double> scale(0.2, 3.0);
    const std::int64_t rows = 33, cols = 290, ld = 300, row0 = 5, col0 = 40;
    std::vector<float> tile = quantised(static_cast<std::size_t>(rows * ld), rng);
    std::vector<double> rs(rows), cs(cols);
    for (double& s : rs) s = scale(rng);
    for (double& s : cs) s = scale(rng);
    std::vector<float> scaled = tile;
    kn::launch_scale_tile(scaled.data(), ld, rows, cols, rs.data(), cs.data(), nullptr);
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t q = 0; q < cols; ++q)
            ASSERT_EQ(scaled[r * ld + q],
                      static_cast<float>(static_cast<double>(tile[r * ld + q]) * rs[r] * cs[q]));

    const std::int64_t V = col0 + cols;
    std::vector<float> radius(V);
    std::uniform_real_distribution<float> rad(0.0f, 0.9f);
    for (float& x : radius) x = rad(rng);
    std::vector<float> csls = tile;
    kn::launch_csls_scores(csls.data(), ld, rows, cols, row0, col0, radius.data(), nullptr);
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t q = 0; q < cols; ++q) {
            const std::int64_t i = row0 + r, j = col0 + q;
            const float want = embgeom::csls_score(tile[r * ld + q], radius[std::min(i, j)],
                                                   radius[std::max(i, j)]);
            ASSERT_EQ(csls[r * ld + q], want) << r << "," << q;
        }

    const std::vector<std::uint8_t> valid = mask(V, rng, 0.2);
    std::vector<float> masked = tile;
    kn::launch_mask_invalid(masked.data(), ld, rows, cols, row0, col0, valid.data(), nullptr);
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t q = 0; q < ld; ++q) {
            const float v = masked[r * ld + q];
            if (q < cols && (!valid[row0 + r] || !valid[col0 + q]))
                ASSERT_TRUE(std::isnan(v)) << r << "," << q;
            else
                ASSERT_EQ(v, tile[r * ld + q]) << r << "," << q;
        }
}

TEST(EmulatedRescore, ListsAndPairsAreTheHostRescoreDotBitForBit) {
    std::mt19937 rng(13);
    std::normal_distribution<float> g;
    const std::int64_t n = 120, d = 77, ld = 80, kc = 6;
    std::vector<float> x(static_cast<std::size_t>(n * ld));
    for (float& v : x) v = g(rng);
    std::uniform_int_distribution<std::int64_t> pick(0, n - 1);
    std::vector<std::int64_t> index(n * kc);
    std::vector<float> sims(n * kc, 42.0f);
    for (std::int64_t e = 0; e < n * kc; ++e)
        index[e] = e % 5 == 4 ? kn::kTopkEmptyIndex : pick(rng);
    kn::launch_rescore_lists(x.data(), n, d, ld, index.data(), static_cast<int>(kc), sims.data(),
                             nullptr);
    for (std::int64_t e = 0; e < n * kc; ++e) {
        if (index[e] == kn::kTopkEmptyIndex) {
            EXPECT_EQ(sims[e], 42.0f) << "empty slot " << e << " left as it was";
            continue;
        }
        const float want =
            embgeom::engine::rescore_dot(x.data() + (e / kc) * ld, x.data() + index[e] * ld, d);
        ASSERT_EQ(sims[e], want) << e;
    }

    // Pairs between two blocks of the same table: a = rows [10, ...), b = rows [50, ...).
    std::vector<kn::TilePair> pairs;
    for (int q = 0; q < 40; ++q) pairs.push_back({10 + q, 50 + (q * 7) % 60, kNaN});
    kn::launch_rescore_pairs(x.data() + 10 * ld, 10, x.data() + 50 * ld, 50, d, ld, pairs.data(),
                             static_cast<std::int64_t>(pairs.size()), nullptr);
    for (const kn::TilePair& p : pairs)
        ASSERT_EQ(p.cosine,
                  embgeom::engine::rescore_dot(x.data() + p.i * ld, x.data() + p.j * ld, d));
}

// Candidate lists as the engine leaves them before the final selection: re-scored (any order,
// quantised sims so ties are common, empty slots anywhere, a NaN now and then) or sorted.
TEST(EmulatedSelectTopk, IsTheHostSelectionBitForBit) {
    const unsigned seed = std::random_device{}();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    struct Shape {
        std::int64_t rows;
        int kc;
        std::int64_t k;
    };
    const Shape shapes[] = {{1, 1, 1},      {57, 40, 10},  {33, 7, 20},
                            {20, 64, 64},   {41, 100, 33}, {9, 128, 128},
                            {30, 200, 128}, {12, 300, 5},  {18, 40, 1}};
    for (const Shape& sh : shapes) {
        SCOPED_TRACE("rows " + std::to_string(sh.rows) + ", kc " + std::to_string(sh.kc) + ", k " +
                     std::to_string(sh.k));
        const std::size_t slots = static_cast<std::size_t>(sh.rows) * sh.kc;
        std::vector<float> sim = quantised(slots, rng);
        std::vector<std::int64_t> index(slots);
        std::uniform_int_distribution<int> what(0, 19);
        for (std::int64_t r = 0; r < sh.rows; ++r) {
            // Distinct indices per row, as the folds leave them.
            std::vector<std::int64_t> ids(static_cast<std::size_t>(sh.kc) * 3);
            for (std::size_t q = 0; q < ids.size(); ++q) ids[q] = static_cast<std::int64_t>(q);
            std::shuffle(ids.begin(), ids.end(), rng);
            for (int q = 0; q < sh.kc; ++q) {
                const std::size_t e = static_cast<std::size_t>(r) * sh.kc + q;
                const int w = what(rng);
                index[e] = w == 0 ? kn::kTopkEmptyIndex : ids[q];
                if (w == 1) sim[e] = kNaN;
            }
        }
        const std::size_t out_slots = static_cast<std::size_t>(sh.rows) * sh.k;
        std::vector<std::int64_t> want_index(out_slots), got_index(out_slots, 77);
        std::vector<float> want_sim(out_slots), got_sim(out_slots, 77.0f);
        embgeom::engine::select_rescored_topk(index.data(), sim.data(), sh.rows, sh.kc, sh.k,
                                              want_index.data(), want_sim.data());
        kn::launch_select_topk(index.data(), sim.data(), sh.rows, sh.kc, sh.k, got_index.data(),
                               got_sim.data(), nullptr);
        for (std::size_t e = 0; e < out_slots; ++e) {
            ASSERT_EQ(got_index[e], want_index[e]) << "slot " << e;
            if (std::isnan(want_sim[e]))
                ASSERT_TRUE(std::isnan(got_sim[e])) << "slot " << e;
            else
                ASSERT_EQ(got_sim[e], want_sim[e]) << "slot " << e;
        }
    }
}

}  // namespace
