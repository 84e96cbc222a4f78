// The CUDA backend's shares of one all-pairs job (WorkShare: the work of one MPI rank) add up to
// the one-process result bit for bit: every share plans with the same device bytes and deals the
// same tile pairs, and a re-scored product defers its re-score, so the merged candidates are the
// one-process candidates and are re-scored once (Backend::rescore_candidates). Each share runs on
// a backend of its own, as each rank has. Skips, with the reason, without a usable device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "embgeom/backend.hpp"
#include "embgeom/errors.hpp"
#include "engine/all_pairs_merge.hpp"
#include "engine/precision_policy.hpp"
#include "geometry/csls.hpp"
#include "support/gpu_test.hpp"
#include "support/identical_results.hpp"
#include "support/test_support.hpp"

namespace {

using namespace embgeom;

class CudaShares : public test::GpuTest {};

struct Table {
    std::int64_t V = 0, d = 0;
    std::vector<float> x;
    std::vector<std::uint8_t> valid;
};

// Offset rows (large row means), a NaN row and a near-duplicate pair.
Table awkward_table(std::int64_t V, std::int64_t d) {
    Table t{V, d, test::random_table(V, d, test::fresh_seed(), 0.2f), {}};
    t.x[3 * d] = std::numeric_limits<float>::quiet_NaN();
    for (std::int64_t j = 0; j < d; ++j) t.x[20 * d + j] = t.x[7 * d + j] * 1.0001f;
    t.valid.assign(static_cast<std::size_t>(V), 1);
    t.valid[3] = 0;
    return t;
}

TEST_F(CudaShares, AddUpToTheOneProcessResultInExactAndReScoredProducts) {
    const Table t = awkward_table(500, 40);
    MemoryRowSource source(MatrixView<const float>(t.x.data(), t.V, t.d), "shares");
    const int count = 3;
    for (const Precision p : {Precision::kExact, Precision::kTf32}) {
        SCOPED_TRACE(p == Precision::kExact ? "exact" : "tf32");
        AllPairsOptions opt;
        opt.k = 6;
        opt.block_rows = 128;  // several tile pairs to deal
        opt.precision = p;
        opt.accumulate_row_sums = true;
        opt.dup_threshold = 0.99;
        const AllPairsResult whole = make_cuda_backend()->all_pairs(source, t.valid, opt);

        std::vector<std::unique_ptr<Backend>> ranks;
        std::uint64_t least = std::numeric_limits<std::uint64_t>::max();
        for (int r = 0; r < count; ++r) {
            ranks.push_back(make_cuda_backend());
            least = std::min(least, ranks.back()->all_pairs_plan_bytes());
        }
        ASSERT_GT(least, 0u) << "a CUDA backend plans with device memory";
        AllPairsResult sum;
        AllPairsPartial sums;
        for (int r = 0; r < count; ++r) {
            WorkShare share;
            share.index = r;
            share.count = count;
            share.device_bytes = least;
            AllPairsPartial partial;
            const AllPairsResult part =
                ranks[static_cast<std::size_t>(r)]->all_pairs_share(source, t.valid, opt, share,
                                                                    partial);
            std::int64_t pairs = 0;
            for (const std::int64_t h : part.histogram) pairs += h;
            EXPECT_GT(pairs, 0) << "share " << r << " has work";
            if (r == 0) {
                sum = part;
                sums = partial;
            } else {
                engine::absorb_share(sum, sums, part, partial, opt);
            }
        }
        engine::finish_shares(sum, sums, t.valid, opt);
        if (engine::is_rescored(sum.precision)) {
            ASSERT_GT(sums.candidate_width, 0) << "a deferred re-score leaves its candidates";
            ranks[0]->rescore_candidates(source, t.valid, opt.center, sums.candidate_index,
                                         sums.candidate_width, sum.k, sum.neighbor_index.data(),
                                         sum.neighbor_sim.data());
        }
        test::expect_identical_results(sum, whole);
    }
}

TEST_F(CudaShares, CslsListsMergeToTheOneProcessLists) {
    const Table t = awkward_table(400, 24);
    MemoryRowSource source(MatrixView<const float>(t.x.data(), t.V, t.d), "shares");
    std::vector<float> radius(static_cast<std::size_t>(t.V));
    for (std::size_t i = 0; i < radius.size(); ++i) radius[i] = 0.1f + 0.001f * static_cast<float>(i % 97);
    AllPairsOptions opt;
    opt.block_rows = 96;
    const std::int64_t k = 5;
    const CslsNeighbors whole = make_cuda_backend()->csls_neighbors(source, t.valid, radius, k, opt);
    std::unique_ptr<Backend> a = make_cuda_backend(), b = make_cuda_backend();
    WorkShare share;
    share.count = 2;
    share.device_bytes = std::min(a->all_pairs_plan_bytes(), b->all_pairs_plan_bytes());
    CslsNeighbors merged = a->csls_neighbors_share(source, t.valid, radius, k, opt, share);
    EXPECT_NE(merged.index, whole.index) << "one share is not the whole";
    share.index = 1;
    const CslsNeighbors other = b->csls_neighbors_share(source, t.valid, radius, k, opt, share);
    engine::absorb_csls_share(merged, other);
    EXPECT_EQ(merged.index, whole.index);
    EXPECT_EQ(test::bits(merged.score), test::bits(whole.score));
}

TEST_F(CudaShares, ABackendOfSeveralEnginesRefusesAShare) {
    const Table t = awkward_table(64, 8);
    MemoryRowSource source(MatrixView<const float>(t.x.data(), t.V, t.d), "shares");
    std::unique_ptr<Backend> two = make_cuda_backend({0, 0});
    AllPairsPartial partial;
    WorkShare share;
    share.count = 2;
    try {
        two->all_pairs_share(source, t.valid, AllPairsOptions{}, share, partial);
        ADD_FAILURE() << "a share on two engines ran";
    } catch (const UsageError& e) {
        EXPECT_NE(std::string(e.what()).find("one rank per GPU"), std::string::npos) << e.what();
    }
}

}  // namespace
