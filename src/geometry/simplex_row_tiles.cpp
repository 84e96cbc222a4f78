#include "geometry/simplex_row_tiles.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "embgeom/errors.hpp"

namespace embgeom::simplex_detail {

int resolve_threads(int threads) {
    EMBGEOM_EXPECTS(threads >= 0, "threads >= 0");
    return threads > 0 ? threads : std::max(1, omp_get_max_threads());
}

void check_table(const RowSource& source, const std::vector<std::uint8_t>& valid) {
    EMBGEOM_EXPECTS(valid.empty() || static_cast<std::int64_t>(valid.size()) == source.rows(),
                    "valid mask has " + std::to_string(valid.size()) + " entries for " +
                        std::to_string(source.rows()) + " rows");
    if (source.cols() < 1)
        throw InputError(source.describe() + ": the table has no columns; no simplex to analyse");
}

std::string format_g(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", v);
    return buf;
}

std::int64_t count_valid(const RowSource& source, const std::vector<std::uint8_t>& valid) {
    if (valid.empty()) return source.rows();
    return std::count_if(valid.begin(), valid.end(), [](std::uint8_t v) { return v != 0; });
}

std::vector<double> read_row_f64(RowSource& source, const std::vector<std::uint8_t>& valid,
                                 std::int64_t id, const char* what) {
    if (id < 0 || id >= source.rows())
        throw InputError(source.describe() + ": " + what + " token " + std::to_string(id) +
                         " is out of range (the table has " + std::to_string(source.rows()) +
                         " rows)");
    if (!row_is_valid(valid, id))
        throw InputError(source.describe() + ": " + what + " token " + std::to_string(id) +
                         " is not a valid (finite) row");
    const std::int64_t d = source.cols();
    std::vector<float> row(static_cast<std::size_t>(d));
    source.read_rows(id, 1, row.data());
    std::vector<double> out(row.begin(), row.end());
    for (double v : out)
        if (!std::isfinite(v))
            throw InputError(source.describe() + ": " + what + " token " + std::to_string(id) +
                             " holds a non-finite value");
    return out;
}

void for_each_tile_chunk(
    RowSource& source, const std::vector<std::uint8_t>& valid, std::int64_t block_rows,
    const std::function<void(std::int64_t first, std::int64_t count, const float* rows)>& fn) {
    EMBGEOM_EXPECTS(block_rows >= 0, "block_rows >= 0");
    const std::int64_t V = source.rows(), d = source.cols();
    if (V == 0) return;
    const std::int64_t read_rows =
        block_rows > 0 ? block_rows
                       : std::max<std::int64_t>(
                             1, (std::int64_t{32} << 20) / (4 * std::max<std::int64_t>(d, 1)));
    const std::int64_t chunk =
        std::min(round_up(read_rows, kSimplexTileRows), round_up(V, kSimplexTileRows));
    std::vector<float> buf(static_cast<std::size_t>(chunk * d));
    for (std::int64_t first = 0; first < V; first += chunk) {
        const std::int64_t count = std::min(chunk, V - first);
        for (std::int64_t r = 0; r < count; r += read_rows)
            source.read_rows(first + r, std::min(read_rows, count - r), buf.data() + r * d);
        if (!valid.empty())
            for (std::int64_t r = 0; r < count; ++r)
                if (valid[static_cast<std::size_t>(first + r)] == 0)
                    std::memset(buf.data() + r * d, 0, sizeof(float) * static_cast<std::size_t>(d));
        const std::int64_t padded = round_up(count, kSimplexTileRows);
        std::fill(buf.data() + count * d, buf.data() + padded * d, 0.0f);
        fn(first, count, buf.data());
    }
}

}  // namespace embgeom::simplex_detail
