#include "pipeline/per_token_passes.hpp"

#include <algorithm>
#include <limits>

#include "core/row_block_reader.hpp"
#include "embgeom/errors.hpp"

namespace embgeom {

std::int64_t per_token_block_rows(const AnalyzeConfig& cfg, std::uint64_t budget, std::int64_t V,
                                  std::int64_t d) {
    if (cfg.block_rows > 0) return std::min(cfg.block_rows, V);
    const std::uint64_t by_budget = budget / 8 / (static_cast<std::uint64_t>(d) * sizeof(float));
    return std::clamp<std::int64_t>(static_cast<std::int64_t>(by_budget), 1,
                                    std::min<std::int64_t>(V, 65536));
}

PerToken per_token_passes(RowSource& table, Backend& backend, std::int64_t block_rows,
                          const std::vector<double>* bias) {
    const std::int64_t V = table.rows(), d = table.cols();
    PerToken t;
    t.norms.resize(V);
    t.finite.resize(V);
    t.centroid.assign(d, 0.0);
    // A backend holding the table reads its own copy: no host rows are read for it.
    const bool held = backend.holds_table(table);
    RowBlockReader blocks(table, held ? 1 : block_rows);
    const auto block = [&](std::int64_t r0, std::int64_t n) {
        return TableBlock(MatrixView<const float>(held ? nullptr : blocks.read(r0, n), n, d), table,
                          r0);
    };
    for (std::int64_t r0 = 0; r0 < V; r0 += block_rows) {
        const std::int64_t n = std::min(block_rows, V - r0);
        backend.row_norms_and_sums(block(r0, n), t.norms.data() + r0, t.finite.data() + r0,
                                   t.centroid.data());
    }
    t.valid.resize(V);
    for (std::int64_t i = 0; i < V; ++i) {
        t.finite_rows += t.finite[i];
        t.zero_rows += t.finite[i] && t.norms[i] == 0.0f;
        t.valid[i] = t.finite[i] && t.norms[i] > 0.0f;
    }
    if (t.finite_rows == 0)
        throw InputError(table.describe() + ": every row holds NaN or Inf; nothing to analyse");
    for (double& c : t.centroid) c /= static_cast<double>(t.finite_rows);

    // Pass 2 needs the centroid of pass 1, hence a second read of the table (one for both
    // points).
    t.centered_norms.resize(V);
    if (bias) t.bias_norms.resize(V);
    std::vector<const double*> points{t.centroid.data()};
    if (bias) points.push_back(bias->data());
    for (std::int64_t r0 = 0; r0 < V; r0 += block_rows) {
        const std::int64_t n = std::min(block_rows, V - r0);
        std::vector<float*> out{t.centered_norms.data() + r0};
        if (bias) out.push_back(t.bias_norms.data() + r0);
        backend.distances_to_points(block(r0, n), points, out);
    }
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (std::int64_t i = 0; i < V; ++i) {
        if (t.finite[i]) continue;
        t.centered_norms[i] = nan;
        if (bias) t.bias_norms[i] = nan;
    }
    return t;
}

}  // namespace embgeom
