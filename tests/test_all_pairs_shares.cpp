// The shares of one all-pairs job (WorkShare: the work of one MPI rank) add up to the whole job
// bit for bit, whatever the number of shares, the order they are added in, and the block size or
// thread count each share plans with (engine::GridShare, engine/all_pairs_merge.hpp, the CPU
// backend's all_pairs_share and csls_neighbors_share). The MPI transport around them is tested
// with real ranks in test_mpi_ranks.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>

#include "embgeom/backend.hpp"
#include "engine/all_pairs_merge.hpp"
#include "engine/tile_plan.hpp"
#include "geometry/csls.hpp"
#include "support/test_support.hpp"

namespace embgeom {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() &&
           (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

void expect_same_result(const AllPairsResult& got, const AllPairsResult& want) {
    EXPECT_TRUE(same_bits(got.neighbor_index, want.neighbor_index));
    EXPECT_TRUE(same_bits(got.neighbor_sim, want.neighbor_sim));
    EXPECT_TRUE(same_bits(got.row_mean, want.row_mean));
    EXPECT_TRUE(same_bits(got.row_sum_tiled, want.row_sum_tiled));
    EXPECT_EQ(got.histogram, want.histogram);
    EXPECT_EQ(std::memcmp(&got.pair_cos_sq_sum, &want.pair_cos_sq_sum, sizeof(double)), 0)
        << got.pair_cos_sq_sum << " vs " << want.pair_cos_sq_sum;
    EXPECT_TRUE(same_bits(got.normalized_sum, want.normalized_sum));
    ASSERT_EQ(got.duplicates.size(), want.duplicates.size());
    for (std::size_t p = 0; p < got.duplicates.size(); ++p) {
        EXPECT_EQ(got.duplicates[p].i, want.duplicates[p].i);
        EXPECT_EQ(got.duplicates[p].j, want.duplicates[p].j);
        EXPECT_EQ(got.duplicates[p].cosine, want.duplicates[p].cosine);
    }
    EXPECT_EQ(got.duplicates_truncated, want.duplicates_truncated);
    EXPECT_EQ(got.valid_rows, want.valid_rows);
}

// A table with what every output must carry through the shares: a mean offset (large row means),
// planted near-duplicates (more than the list keeps), a NaN row and a zero row.
struct Case {
    std::int64_t V = 0, d = 0;
    std::vector<float> x;
    std::vector<std::uint8_t> valid;
    MatrixView<const float> view() const { return {x.data(), V, d}; }
};

Case make_case(std::int64_t V, std::int64_t d, std::uint64_t seed) {
    Case c;
    c.V = V;
    c.d = d;
    c.x = test::random_table(V, d, seed, 0.3f);
    std::mt19937_64 rng(seed + 1);
    std::uniform_int_distribution<std::int64_t> row(0, V - 1);
    std::normal_distribution<float> noise(0.0f, 1e-4f);
    for (int p = 0; p < 7; ++p) {  // near-duplicates: a row and a slightly moved copy
        const std::int64_t a = row(rng), b = row(rng);
        if (a == b) continue;
        for (std::int64_t j = 0; j < d; ++j) c.x[b * d + j] = c.x[a * d + j] + noise(rng);
    }
    c.x[5 * d + 2] = kNaN;
    std::fill(c.x.begin() + 9 * d, c.x.begin() + 10 * d, 0.0f);
    c.valid.assign(static_cast<std::size_t>(V), 1);
    c.valid[5] = 0;
    return c;
}

// The shares' results added in the given order, as a rank-0 reduction would.
AllPairsResult add_up(std::vector<AllPairsResult> parts, std::vector<AllPairsPartial> sums,
                      const std::vector<int>& order, const std::vector<std::uint8_t>& valid,
                      const AllPairsOptions& opt) {
    AllPairsResult out = parts[static_cast<std::size_t>(order[0])];
    AllPairsPartial total = sums[static_cast<std::size_t>(order[0])];
    for (std::size_t s = 1; s < order.size(); ++s)
        engine::absorb_share(out, total, parts[static_cast<std::size_t>(order[s])],
                             sums[static_cast<std::size_t>(order[s])], opt);
    engine::finish_shares(out, total, valid, opt);
    return out;
}

TEST(GridShare, DealsEveryTileOfTheTriangleToExactlyOneShare) {
    for (const std::int64_t T : {1, 2, 7, 16})
        for (const int count : {1, 2, 3, 5, 40}) {
            std::int64_t dealt = 0;
            for (std::int64_t gi = 0; gi < T; ++gi)
                for (std::int64_t gj = gi; gj < T; ++gj) {
                    int owners = 0;
                    for (int index = 0; index < count; ++index)
                        owners += engine::GridShare{index, count}.has({gi, gj}, T) ? 1 : 0;
                    EXPECT_EQ(owners, 1) << "tile " << gi << "," << gj;
                    ++dealt;
                }
            std::int64_t counted = 0;
            for (int index = 0; index < count; ++index) {
                const engine::GridShare share{index, count};
                std::int64_t mine = 0;
                for (std::int64_t gi = 0; gi < T; ++gi)
                    for (std::int64_t gj = gi; gj < T; ++gj) mine += share.has({gi, gj}, T);
                EXPECT_EQ(share.tiles(T), mine) << "T " << T << " share " << index << "/" << count;
                counted += share.tiles(T);
            }
            EXPECT_EQ(counted, dealt);
        }
}

TEST(AllPairsShares, AddUpToTheWholeJobBitForBitInAnyOrderBlockSizeAndThreadCount) {
    const Case c = make_case(700, 33, test::fresh_seed());
    MemoryRowSource source(c.view());
    AllPairsOptions opt;
    opt.k = 9;
    opt.hist_bins = 101;
    opt.dup_threshold = 0.999;
    opt.max_dup_pairs = 4;  // fewer than the planted pairs: the cut and its flag must add up too
    opt.accumulate_row_sums = true;
    const std::unique_ptr<Backend> two = make_cpu_backend(2), one = make_cpu_backend(1);
    const AllPairsResult whole = two->all_pairs(source, c.valid, opt);
    ASSERT_TRUE(whole.duplicates_truncated) << "the table must plant more pairs than are kept";
    const std::int64_t n = whole.valid_rows;

    for (const int count : {1, 2, 3, 5}) {
        SCOPED_TRACE(testing::Message() << count << " shares");
        std::vector<AllPairsResult> parts;
        std::vector<AllPairsPartial> sums;
        std::int64_t pairs_seen = 0;
        for (int index = 0; index < count; ++index) {
            // Each share plans as it likes: its own block size and thread count.
            AllPairsOptions o = opt;
            o.block_rows = index % 2 ? 64 : 0;
            WorkShare share;
            share.index = index;
            share.count = count;
            AllPairsPartial partial;
            parts.push_back((index % 2 ? one : two)->all_pairs_share(source, c.valid, o, share, partial));
            sums.push_back(partial);
            std::int64_t mine = 0;
            for (const std::int64_t h : parts.back().histogram) mine += h;
            if (count > 1) {
                EXPECT_LT(mine, n * (n - 1) / 2) << "share " << index << " is a part";
            }
            EXPECT_GT(mine, 0) << "share " << index << " has work";
            pairs_seen += mine;
        }
        EXPECT_EQ(pairs_seen, n * (n - 1) / 2);
        std::vector<int> order(static_cast<std::size_t>(count));
        for (int i = 0; i < count; ++i) order[static_cast<std::size_t>(i)] = i;
        expect_same_result(add_up(parts, sums, order, c.valid, opt), whole);
        std::reverse(order.begin(), order.end());
        expect_same_result(add_up(parts, sums, order, c.valid, opt), whole);
    }
}

// Cells of the V x V matrix as a sink receives them (a tile and its mirror), with how many times
// each was written.
class MatrixCells final : public MatrixSink {
  public:
    explicit MatrixCells(std::int64_t V)
        : V_(V), value_(static_cast<std::size_t>(V * V), 0.0f), writes_(value_.size(), 0) {}
    std::int64_t V_;
    std::vector<float> value_;
    std::vector<int> writes_;

    void write_tile(std::int64_t row0, std::int64_t col0, MatrixView<const float> tile) override {
        for (std::int64_t r = 0; r < tile.rows; ++r)
            for (std::int64_t c = 0; c < tile.cols; ++c) {
                put(row0 + r, col0 + c, tile.row(r)[c]);
                if (row0 != col0) put(col0 + c, row0 + r, tile.row(r)[c]);
            }
    }
  private:
    void put(std::int64_t i, std::int64_t j, float v) {
        value_[static_cast<std::size_t>(i * V_ + j)] = v;
        ++writes_[static_cast<std::size_t>(i * V_ + j)];
    }
};

// What --write-matrix in an MPI job rests on: the shares' tiles, whatever block size each plans
// with, cover every cell once and hold the one-process matrix's bits (rows of a non-finite token
// included, which go with the tile before them).
TEST(AllPairsShares, MatrixTilesOfTheSharesCoverTheWholeMatrixOnce) {
    const Case c = make_case(530, 17, test::fresh_seed());
    MemoryRowSource source(c.view());
    AllPairsOptions opt;
    opt.k = 4;
    const std::unique_ptr<Backend> cpu = make_cpu_backend(2);
    MatrixCells whole(c.V);
    opt.matrix = &whole;
    (void)cpu->all_pairs(source, c.valid, opt);
    for (const int count : {2, 3, 7}) {
        SCOPED_TRACE(testing::Message() << count << " shares");
        MatrixCells shared(c.V);
        for (int index = 0; index < count; ++index) {
            AllPairsOptions o = opt;
            o.matrix = &shared;
            o.block_rows = index % 2 ? 64 : 0;
            WorkShare share;
            share.index = index;
            share.count = count;
            AllPairsPartial partial;
            (void)cpu->all_pairs_share(source, c.valid, o, share, partial);
        }
        EXPECT_TRUE(std::all_of(shared.writes_.begin(), shared.writes_.end(),
                                [](int w) { return w == 1; }))
            << "a cell written " << *std::max_element(shared.writes_.begin(), shared.writes_.end())
            << " times or never";
        EXPECT_TRUE(same_bits(shared.value_, whole.value_));
    }
}

TEST(AllPairsShares, CslsListsMergeToTheWholeListsBitForBit) {
    const Case c = make_case(500, 20, test::fresh_seed());
    MemoryRowSource source(c.view());
    std::mt19937_64 rng(test::fresh_seed());
    std::uniform_real_distribution<float> r(0.0f, 0.5f);
    std::vector<float> radius(static_cast<std::size_t>(c.V));
    for (float& v : radius) v = r(rng);
    AllPairsOptions opt;
    const std::unique_ptr<Backend> backend = make_cpu_backend(2);
    const std::int64_t k = 7;
    const CslsNeighbors whole = backend->csls_neighbors(source, c.valid, radius, k, opt);
    for (const int count : {2, 3}) {
        CslsNeighbors merged;
        for (int index = 0; index < count; ++index) {
            WorkShare share;
            share.index = index;
            share.count = count;
            const CslsNeighbors part =
                backend->csls_neighbors_share(source, c.valid, radius, k, opt, share);
            if (index == 0) {
                merged = part;
                EXPECT_FALSE(same_bits(part.index, whole.index)) << "one share is not the whole";
                continue;
            }
            engine::absorb_csls_share(merged, part);
        }
        EXPECT_TRUE(same_bits(merged.index, whole.index)) << count << " shares";
        EXPECT_TRUE(same_bits(merged.score, whole.score)) << count << " shares";
    }
}

}  // namespace
}  // namespace embgeom
