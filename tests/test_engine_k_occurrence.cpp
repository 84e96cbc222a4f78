// k-occurrence from final neighbour lists.
#include <gtest/gtest.h>

#include "embgeom/errors.hpp"
#include "engine/k_occurrence.hpp"

namespace {

TEST(EngineKOccurrence, CountsAppearancesAndSkipsEmptySlots) {
    embgeom::AllPairsResult r;
    r.rows = 4;
    r.k = 2;
    r.neighbor_index = {1,  2,    // row 0
                        0,  2,    // row 1
                        -1, -1,   // row 2 invalid
                        1,  -1};  // row 3 has one other valid row only
    const std::vector<std::int32_t> n = embgeom::engine::k_occurrence(r);
    EXPECT_EQ(n, (std::vector<std::int32_t>{1, 2, 2, 0}));
    std::int64_t total = 0;
    for (auto c : n) total += c;
    EXPECT_EQ(total, 5);  // one per filled slot

    r.neighbor_index[0] = 4;
    EXPECT_THROW(embgeom::engine::k_occurrence(r), embgeom::ResourceError);
    r.neighbor_index.pop_back();
    EXPECT_THROW(embgeom::engine::k_occurrence(r), embgeom::ResourceError);
}

TEST(EngineKOccurrence, EmptyResult) {
    embgeom::AllPairsResult r;
    r.k = 3;
    EXPECT_TRUE(embgeom::engine::k_occurrence(r).empty());
}

}  // namespace
