#include "engine/tile_plan.hpp"

#include <algorithm>
#include <string>

#include "embgeom/errors.hpp"

namespace embgeom::engine {
namespace {

constexpr std::uint64_t kDefaultBudget = 1ull << 30;
constexpr std::int64_t kMaxGrid = 512;
constexpr std::int64_t kMinGrid = 32;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

}  // namespace

RowRange TilePlan::block(std::int64_t b) const {
    return {std::min(rows, b * block_rows), std::min(rows, (b + 1) * block_rows)};
}

RowRange TilePlan::grid_rows(std::int64_t g) const {
    return {std::min(rows, g * grid), std::min(rows, (g + 1) * grid)};
}

RowRange TilePlan::block_grid_range(std::int64_t b) const {
    return {std::min(grid_tiles, b * block_grids), std::min(grid_tiles, (b + 1) * block_grids)};
}

std::vector<GridTile> TilePlan::grid_tiles_of(const BlockPair& p) const {
    const RowRange gi = block_grid_range(p.i), gj = block_grid_range(p.j);
    std::vector<GridTile> tiles;
    tiles.reserve(static_cast<std::size_t>(gi.size() * gj.size()));
    for (std::int64_t a = gi.begin; a < gi.end; ++a)
        for (std::int64_t b = (p.i == p.j ? a : gj.begin); b < gj.end; ++b) tiles.push_back({a, b});
    return tiles;
}

std::int64_t default_grid_side(std::int64_t rows) {
    std::int64_t g = kMinGrid;
    while (g < kMaxGrid && g * 16 < rows) g *= 2;
    return g;
}

std::uint64_t working_set_bytes(std::int64_t rows, std::int64_t dim, std::int64_t k, int threads,
                                std::int64_t grid, std::int64_t block_rows, bool resident) {
    const auto u = [](std::int64_t v) { return static_cast<std::uint64_t>(v); };
    const std::uint64_t padded_rows = u(ceil_div(rows, grid) * grid);
    const std::uint64_t table =
        resident ? padded_rows * u(dim) * 4 : (2 * u(block_rows) + u(grid)) * u(dim) * 4;
    const std::uint64_t lists = u(rows) * u(k) * 12;
    const std::uint64_t per_thread = u(grid) * u(grid) * 4 + 2 * u(block_rows) * (u(k) * 12 + 4);
    return table + lists + u(threads) * per_thread;
}

TilePlan make_tile_plan(const TilePlanRequest& req) {
    EMBGEOM_EXPECTS(req.rows >= 0 && req.dim >= 0 && req.block_rows >= 0 && req.grid >= 0,
                    "tile plan sizes");
    EMBGEOM_EXPECTS(req.k >= 1, "tile plan needs k >= 1");
    TilePlan p;
    p.rows = req.rows;
    p.dim = req.dim;
    p.k = req.k;
    p.threads = std::max(1, req.threads);
    p.grid = req.grid > 0 ? req.grid : default_grid_side(req.rows);
    p.grid_tiles = ceil_div(p.rows, p.grid);
    p.memory_budget = req.memory_budget > 0 ? req.memory_budget : kDefaultBudget;
    const std::int64_t max_grids = std::max<std::int64_t>(1, p.grid_tiles);

    const auto fits = [&](std::int64_t grids, bool resident) {
        return working_set_bytes(p.rows, p.dim, p.k, p.threads, p.grid, grids * p.grid, resident) <=
               p.memory_budget;
    };
    // Largest block (in grid tiles) within the budget; working_set_bytes grows with B.
    const auto largest_fitting = [&](bool resident) {
        std::int64_t lo = 1, hi = max_grids;
        while (lo < hi) {
            const std::int64_t mid = lo + (hi - lo + 1) / 2;
            if (fits(mid, resident))
                lo = mid;
            else
                hi = mid - 1;
        }
        return lo;
    };

    std::int64_t grids =
        req.block_rows > 0 ? std::min(max_grids, ceil_div(req.block_rows, p.grid)) : 0;
    p.resident = fits(grids > 0 ? grids : 1, true);
    if (grids == 0) grids = largest_fitting(p.resident);
    p.block_grids = grids;
    p.block_rows = grids * p.grid;
    p.blocks = ceil_div(p.grid_tiles, p.block_grids);
    p.working_set_bytes =
        working_set_bytes(p.rows, p.dim, p.k, p.threads, p.grid, p.block_rows, p.resident);
    for (std::int64_t i = 0; i < p.blocks; ++i)
        for (std::int64_t j = i; j < p.blocks; ++j) p.block_pairs.push_back({i, j});
    return p;
}

}  // namespace embgeom::engine
