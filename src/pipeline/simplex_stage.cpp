// --simplex K: vertices by SPA, random-direction extremeness, the plane through three vertices,
// and the corners of the simplex (src/geometry/simplex*.hpp does the math; the extremeness
// projections, V x d x M flops, run on the backend).
#include <array>
#include <cmath>

#include "analysis/outlier_ranking.hpp"
#include "geometry/simplex.hpp"
#include "pipeline/geometry_stages.hpp"

namespace embgeom {

void run_simplex_stage(const AnalyzeConfig& cfg, const GeometryInputs& in, Backend& backend,
                       ResultFile& out, ResultLayout& layout, std::ostream& log) {
    const SpaVertices spa = spa_vertices(in.table, in.finite, in.centroid, cfg.simplex);
    std::vector<std::string> names;
    for (std::int64_t v : spa.vertices) names.push_back(layout.token(v));
    out.write("/simplex/vertices", spa.vertices);
    out.write_strings("/simplex/vertex_tokens", names);
    out.write("/simplex/residual_norms", spa.residual_norms);

    ExtremenessOptions eopt;
    eopt.directions = cfg.simplex_directions;
    eopt.seed = cfg.seed;
    eopt.center = in.centroid;
    const Extremeness ext = backend.extremeness(in.table, in.finite, eopt);
    out.write("/simplex/extremeness/counts", ext.counts);
    out.set_attribute("/simplex/extremeness", "directions", cfg.simplex_directions);
    out.set_attribute("/simplex/extremeness", "seed", static_cast<std::int64_t>(cfg.seed));
    std::int64_t never = 0, finite_rows = 0;
    for (std::size_t i = 0; i < ext.counts.size(); ++i) {
        finite_rows += in.finite[i];
        never += in.finite[i] && ext.counts[i] == 0;
    }
    out.set_attribute("/simplex/extremeness", "never_extreme", never);
    layout.write_ranked("/outliers/most_extreme", rank_tokens(ext.counts, in.finite, cfg.outliers, Tail::kLargest));

    std::array<std::int64_t, 3> plane{spa.vertices[0], spa.vertices[1], spa.vertices[2]};
    if (cfg.simplex_plane.size() == 3) plane = {cfg.simplex_plane[0], cfg.simplex_plane[1], cfg.simplex_plane[2]};
    const VertexPlaneProjection proj = project_onto_vertex_plane(in.table, in.finite, plane);
    out.write("/simplex/plane/vertices", std::vector<std::int64_t>(plane.begin(), plane.end()));
    const std::int64_t V = in.table.rows();
    std::vector<float> coords(proj.coords.begin(), proj.coords.end());
    std::vector<float> bary(proj.barycentric.begin(), proj.barycentric.end());
    out.write_matrix("/simplex/plane/coords", coords.data(), V, 2);
    out.write_matrix("/simplex/plane/barycentric", bary.data(), V, 3);
    out.write("/simplex/plane/distance", std::vector<float>(proj.distance.begin(), proj.distance.end()));
    out.write("/simplex/plane/triangle", std::vector<double>(proj.triangle.begin(), proj.triangle.end()));

    CornerOptions copt;
    copt.top_n = cfg.corner_tokens;
    const SimplexCorners corners = simplex_corners(in.table, in.finite, spa.vertices, copt);
    out.write("/simplex/corners/assignment", corners.assignment);
    out.write("/simplex/corners/weight", corners.weight);
    out.write("/simplex/corners/size", corners.corner_size);
    out.write_matrix("/simplex/corners/top_tokens", corners.top_tokens.data(), cfg.simplex, corners.top_n);
    std::vector<std::string> top_names;
    for (std::int64_t id : corners.top_tokens) top_names.push_back(id < 0 ? "" : layout.token(id));
    out.write_strings("/simplex/corners/top_token_strings", top_names);
    std::vector<float> top_w(corners.top_weights.begin(), corners.top_weights.end());
    out.write_matrix("/simplex/corners/top_weights", top_w.data(), cfg.simplex, corners.top_n);

    layout.add_figure("tokens never extreme (simplex interior) share",
                      finite_rows ? static_cast<double>(never) / finite_rows : NAN, NAN);
    log << "  simplex: " << cfg.simplex << " vertices by SPA, first three: " << names[0] << ", "
        << names[1] << ", " << names[2] << "; " << never << " of " << finite_rows
        << " tokens never extreme along " << cfg.simplex_directions << " random directions\n";
}

}  // namespace embgeom
