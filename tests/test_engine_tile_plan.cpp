// Tile plan: every unordered pair of grid tiles exactly once, blocks partition the rows, the
// memory budget is respected whenever it can be.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "embgeom/errors.hpp"
#include "engine/tile_plan.hpp"

namespace {

using embgeom::engine::make_tile_plan;
using embgeom::engine::TilePlan;
using embgeom::engine::TilePlanRequest;

TilePlanRequest request(std::int64_t rows, std::int64_t dim, std::int64_t block_rows,
                        std::uint64_t budget, int threads = 2, std::int64_t k = 10) {
    TilePlanRequest r;
    r.rows = rows;
    r.dim = dim;
    r.k = k;
    r.threads = threads;
    r.block_rows = block_rows;
    r.memory_budget = budget;
    return r;
}

void check_coverage(const TilePlan& p) {
    ASSERT_GT(p.grid, 0);
    EXPECT_EQ(p.block_rows % p.grid, 0);
    EXPECT_EQ(p.grid_tiles, (p.rows + p.grid - 1) / p.grid);
    // Blocks partition [0, rows).
    std::int64_t next = 0;
    for (std::int64_t b = 0; b < p.blocks; ++b) {
        EXPECT_EQ(p.block(b).begin, next);
        EXPECT_GT(p.block(b).size(), 0);
        next = p.block(b).end;
    }
    EXPECT_EQ(next, p.rows);
    // Block pairs: each I <= J once.
    std::set<std::pair<std::int64_t, std::int64_t>> bps;
    for (const auto& bp : p.block_pairs) {
        EXPECT_LE(bp.i, bp.j);
        EXPECT_TRUE(bps.insert({bp.i, bp.j}).second);
    }
    EXPECT_EQ(static_cast<std::int64_t>(bps.size()), p.blocks * (p.blocks + 1) / 2);
    // Grid tiles: each gi <= gj exactly once over all block pairs, inside its blocks.
    std::map<std::pair<std::int64_t, std::int64_t>, int> seen;
    for (const auto& bp : p.block_pairs)
        for (const auto& t : p.grid_tiles_of(bp)) {
            EXPECT_LE(t.gi, t.gj);
            EXPECT_GE(t.gi * p.grid, p.block(bp.i).begin);
            EXPECT_LT(t.gi * p.grid, p.block(bp.i).end);
            EXPECT_GE(t.gj * p.grid, p.block(bp.j).begin);
            EXPECT_LT(t.gj * p.grid, p.block(bp.j).end);
            ++seen[{t.gi, t.gj}];
        }
    EXPECT_EQ(static_cast<std::int64_t>(seen.size()), p.grid_tiles * (p.grid_tiles + 1) / 2);
    for (const auto& [tile, count] : seen) EXPECT_EQ(count, 1);
    // Every pair of rows i < j lies in exactly one grid tile.
    for (std::int64_t i = 0; i < p.rows; i += 7)
        for (std::int64_t j = i + 1; j < p.rows; j += 11)
            EXPECT_EQ(seen.count({i / p.grid, j / p.grid}), 1u);
}

TEST(EngineTilePlan, GridSideDependsOnRowsOnly) {
    EXPECT_EQ(embgeom::engine::default_grid_side(0), 32);
    EXPECT_EQ(embgeom::engine::default_grid_side(300), 32);
    EXPECT_EQ(embgeom::engine::default_grid_side(700), 64);
    EXPECT_EQ(embgeom::engine::default_grid_side(30522), 512);
    EXPECT_EQ(embgeom::engine::default_grid_side(10000000), 512);
    // Block size, budget and threads change blocks, never the grid.
    const auto a = make_tile_plan(request(5000, 64, 7, 0, 1));
    const auto b = make_tile_plan(request(5000, 64, 0, 1, 2));
    EXPECT_EQ(a.grid, b.grid);
}

TEST(EngineTilePlan, CoversEveryPairOnce) {
    for (std::int64_t rows : {0, 1, 2, 31, 33, 300, 517, 700, 2049, 30522})
        for (std::int64_t block_rows : {0, 7, 64, 1000})
            for (std::uint64_t budget :
                 {std::uint64_t{1}, std::uint64_t{200000}, std::uint64_t{0}}) {
                SCOPED_TRACE(testing::Message() << "rows " << rows << " block_rows " << block_rows
                                                << " budget " << budget);
                const TilePlan p = make_tile_plan(request(rows, 65, block_rows, budget));
                check_coverage(p);
                if (block_rows > 0) {
                    EXPECT_EQ(p.block_rows, std::min((block_rows + p.grid - 1) / p.grid,
                                                     std::max<std::int64_t>(1, p.grid_tiles)) *
                                                p.grid);
                }
            }
}

TEST(EngineTilePlan, BudgetIsRespectedWhenPossible) {
    const std::int64_t rows = 30522, dim = 384, k = 10;
    const int threads = 2;
    const std::int64_t g = embgeom::engine::default_grid_side(rows);
    const std::uint64_t min_stream =
        embgeom::engine::working_set_bytes(rows, dim, k, threads, g, g, false);
    const std::uint64_t min_resident =
        embgeom::engine::working_set_bytes(rows, dim, k, threads, g, g, true);
    ASSERT_LT(min_stream, min_resident);

    for (std::uint64_t budget : {min_stream, min_stream + 12345678, min_resident - 1, min_resident,
                                 std::uint64_t{1} << 30, std::uint64_t{16} << 30}) {
        SCOPED_TRACE(budget);
        const TilePlan p = make_tile_plan(request(rows, dim, 0, budget, threads, k));
        EXPECT_LE(p.working_set_bytes, budget);
        EXPECT_EQ(p.resident, budget >= min_resident);
        // Largest block that fits: one more grid tile per block would not.
        if (p.block_grids < p.grid_tiles) {
            EXPECT_GT(embgeom::engine::working_set_bytes(rows, dim, k, threads, g, p.block_rows + g,
                                                         p.resident),
                      budget);
        }
        check_coverage(p);
    }
    // The whole table fits in 1 GiB: one resident block.
    const TilePlan big = make_tile_plan(request(rows, dim, 0, 0, threads, k));
    EXPECT_TRUE(big.resident);
    EXPECT_EQ(big.blocks, 1);

    // Below the smallest plan: streaming with one-grid-tile blocks, and the plan says it is over.
    const TilePlan tiny = make_tile_plan(request(rows, dim, 0, 1000, threads, k));
    EXPECT_FALSE(tiny.resident);
    EXPECT_EQ(tiny.block_rows, g);
    EXPECT_GT(tiny.working_set_bytes, tiny.memory_budget);
}

TEST(EngineTilePlan, RejectsBadRequests) {
    EXPECT_THROW(make_tile_plan(request(-1, 4, 0, 0)), embgeom::ResourceError);
    EXPECT_THROW(make_tile_plan(request(10, 4, 0, 0, 1, 0)), embgeom::ResourceError);
}

}  // namespace
