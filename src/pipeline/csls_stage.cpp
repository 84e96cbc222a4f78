#include "pipeline/csls_stage.hpp"

#include <cmath>

#include "analysis/hubness.hpp"
#include "analysis/outlier_ranking.hpp"
#include "engine/k_occurrence.hpp"
#include "geometry/csls.hpp"

namespace embgeom {

// The second pass runs on the backend: BLAS on the CPU, the CUDA all-pairs engine's CSLS mode on
// a GPU (Backend::csls_neighbors). Only opt's block size and memory budget matter to it.
void run_csls(Backend& backend, const AnalyzeConfig& cfg, RowSource& table,
              const std::vector<std::uint8_t>& valid, const AllPairsResult& first_pass,
              const AllPairsOptions& opt, ResultFile& out, ResultLayout& layout,
              std::ostream& log) {
    const std::vector<float> radius = csls_radius(first_pass.neighbor_sim, first_pass.k);
    const CslsNeighbors c = backend.csls_neighbors(table, valid, radius, first_pass.k, opt);
    out.write("/csls/radius", radius);
    out.write_matrix("/csls/indices", c.index.data(), c.rows, c.k);
    out.write_matrix("/csls/scores", c.score.data(), c.rows, c.k);
    // k-occurrence of the CSLS lists: the same counting as for the cosine lists.
    AllPairsResult lists;
    lists.rows = c.rows;
    lists.k = c.k;
    lists.neighbor_index = c.index;
    const std::vector<std::int32_t> occurrence = engine::k_occurrence(lists);
    out.write("/csls/k_occurrence", occurrence);
    const HubnessFigures h = hubness_figures(occurrence, valid, c.k);
    out.set_attribute("/csls", "k_occurrence_skewness", h.skewness);
    out.set_attribute("/csls", "robin_hood_index", h.robin_hood_index);
    out.set_attribute("/csls", "antihubs", h.antihubs);
    out.set_attribute("/csls", "hubs", h.hubs);
    layout.add_figure("k-occurrence skewness (CSLS)", h.skewness, std::nan(""));
    layout.write_ranked("/outliers/csls_hubs", rank_tokens(occurrence, valid, cfg.outliers, Tail::kLargest));
    log << "  CSLS neighbours: k-occurrence skewness " << h.skewness << " (cosine lists: see below)\n";
}

}  // namespace embgeom
