#pragma once
// --null isotropic,matched: the same pipeline on Gaussian tables of the table's shape, generated
// on the fly (never written to disk), and /stats/departure: every headline figure of the real
// table beside the null runs' values and the analytic expectation.
#include <ostream>

#include "embgeom/backend.hpp"
#include "embgeom/config.hpp"
#include "io/result_file.hpp"
#include "pipeline/per_token_passes.hpp"
#include "pipeline/result_layout.hpp"

namespace embgeom {

/// Runs every model of cfg.null_models and writes /null/<model>/... and /stats/departure.
/// real: the layout of the table's own run, with all its figures added. pair_options: null when
/// the all-pairs engine is off.
void run_null_models(const AnalyzeConfig& cfg, RowSource& table, const PerToken& tok,
                     Backend& backend, const AllPairsOptions* pair_options, ResultFile& out,
                     const ResultLayout& real, std::ostream& log);

}  // namespace embgeom
