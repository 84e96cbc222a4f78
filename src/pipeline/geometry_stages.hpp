#pragma once
// The optional stages about the shape of the whole cloud: principal directions (spectrum,
// IsoScore, rogue dimensions), all-but-the-top, the under-trained token indicator of Land &
// Bartolo, and the simplex (vertices, extremeness, plane projection, corners).
#include <ostream>
#include <string>
#include <vector>

#include "embgeom/backend.hpp"
#include "embgeom/config.hpp"
#include "embgeom/row_source.hpp"
#include "geometry/isotropy.hpp"
#include "geometry/principal_directions.hpp"
#include "geometry/rogue_dimensions.hpp"
#include "io/result_file.hpp"
#include "pipeline/result_layout.hpp"

namespace embgeom {

/// What the stages need from the per-token passes.
struct GeometryInputs {
    RowSource& table;
    const std::vector<std::uint8_t>& finite;  ///< every element finite
    const std::vector<std::uint8_t>& valid;   ///< finite and non-zero
    const std::vector<double>& centroid;
    const std::vector<std::string>& vocab;    ///< may be empty
    const std::vector<double>* bias;          ///< may be null
    const AllPairsOptions* pair_options;      ///< null when the all-pairs engine is off
};

/// True when cfg asks for any of the stages below.
bool any_geometry_stage(const AnalyzeConfig& cfg);

/// Checks the stages' flags (needs V for id ranges). @throws UsageError naming the flag.
void validate_geometry_config(const AnalyzeConfig& cfg, std::int64_t rows);

/// The headline figures of --principal (spectrum, IsoScore, rogue dimensions), also used for the
/// null-model runs so that /stats/departure compares like with like.
void add_principal_figures(const PrincipalDirections& pd, const IsoScoreResult& iso,
                           const RogueDimensions& rogue, ResultLayout& layout);

/// --simplex K (src/pipeline/simplex_stage.cpp); the extremeness counts run on backend.
void run_simplex_stage(const AnalyzeConfig& cfg, const GeometryInputs& in, Backend& backend,
                       ResultFile& out, ResultLayout& layout, std::ostream& log);

/// Runs the stages cfg asks for and writes their results (groups /principal, /all_but_the_top,
/// /undertrained, /simplex and their outlier lists).
void run_geometry_stages(const AnalyzeConfig& cfg, const GeometryInputs& in, Backend& backend,
                         ResultFile& out, ResultLayout& layout, std::ostream& log);

}  // namespace embgeom
