#pragma once
// --csls: neighbour lists by cross-domain similarity local scaling (Conneau et al. 2018),
// CSLS(x, y) = 2 cos(x, y) - r_x - r_y with r the mean cosine to the K nearest neighbours of the
// first pass. A second pass over all pairs on the job's backend (Backend::csls_neighbors), written
// to /csls.
#include <ostream>

#include "embgeom/backend.hpp"
#include "embgeom/config.hpp"
#include "io/result_file.hpp"
#include "pipeline/result_layout.hpp"

namespace embgeom {

void run_csls(Backend& backend, const AnalyzeConfig& cfg, RowSource& table,
              const std::vector<std::uint8_t>& valid, const AllPairsResult& first_pass,
              const AllPairsOptions& opt, ResultFile& out, ResultLayout& layout,
              std::ostream& log);

}  // namespace embgeom
