#include "pipeline/null_models.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <map>

#include "engine/k_occurrence.hpp"
#include "geometry/isotropy.hpp"
#include "geometry/principal_directions.hpp"
#include "geometry/rogue_dimensions.hpp"
#include "pipeline/geometry_stages.hpp"
#include "pipeline/progress.hpp"
#include "synth/gaussian_row_source.hpp"

namespace embgeom {
namespace {

/// The null model's run through the same stages as the table's, figures into layout.
void run_one(const AnalyzeConfig& cfg, const std::string& model, RowSource& source,
             Backend& backend, const AllPairsOptions* pair_options, ResultLayout& layout) {
    const std::int64_t V = source.rows(), d = source.cols();
    const std::int64_t block = std::max<std::int64_t>(1, std::min<std::int64_t>(V, (64 << 20) / (4 * d)));
    const PerToken t = per_token_passes(source, backend, block, nullptr);
    layout.write_per_token(t.norms, t.centered_norms, {}, t.centroid, t.finite, t.valid, t.zero_rows);
    if (pair_options) {
        AllPairsOptions opt = *pair_options;
        opt.matrix = nullptr;
        opt.center.reset();
        opt.progress = progress_reporter("all pairs (" + model + " null)");
        const AllPairsResult r = backend.all_pairs(source, t.valid, opt);
        layout.write_all_pairs("", "", r, t.valid, engine::k_occurrence(r));
    }
    if (cfg.principal) {
        CovarianceOptions copt;
        copt.shift = t.centroid;
        const PrincipalDirections pd = principal_directions(backend, source, t.finite, copt);
        add_principal_figures(pd, isoscore(pd), rogue_dimensions(source, t.valid, cfg.rogue_top), layout);
    }
    layout.write_headline(V, d);
}

}  // namespace

void run_null_models(const AnalyzeConfig& cfg, RowSource& table, const PerToken& tok,
                     Backend& backend, const AllPairsOptions* pair_options, ResultFile& out,
                     const ResultLayout& real, std::ostream& log) {
    if (cfg.null_models.empty()) return;
    const std::int64_t V = table.rows(), d = table.cols();
    const ColumnMoments moments = column_moments(table, tok.finite);
    std::vector<std::string> models;
    std::vector<std::map<std::string, double>> values;
    for (const std::string& model : cfg.null_models) {
        if (std::find(models.begin(), models.end(), model) != models.end()) continue;
        // Different seeds per model so the two nulls are independent draws.
        const std::uint64_t seed = cfg.seed * 2 + (model == "matched" ? 1 : 0);
        GaussianRowSource source = model == "isotropic"
                                       ? isotropic_null(V, d, moments.total_variance, seed)
                                       : matched_null(V, moments.mean, moments.variance, seed);
        ResultLayout layout(out, {}, 0, "/null/" + model);
        run_one(cfg, model, source, backend, pair_options, layout);
        out.set_attribute("/null/" + model, "description", source.describe());
        out.set_attribute("/null/" + model, "seed", static_cast<std::int64_t>(seed));
        models.push_back(model);
        std::map<std::string, double> by_name;
        for (const auto& f : layout.figures()) by_name[f.name] = f.value;
        values.push_back(std::move(by_name));
    }

    std::vector<std::string> names;
    std::vector<double> real_values, analytic;
    std::vector<std::vector<double>> null_values(models.size());
    for (const auto& f : real.figures()) {
        names.push_back(f.name);
        real_values.push_back(f.value);
        analytic.push_back(f.isotropic);
        for (std::size_t m = 0; m < models.size(); ++m) {
            const auto it = values[m].find(f.name);
            null_values[m].push_back(it == values[m].end() ? std::nan("") : it->second);
        }
    }
    out.write_strings("/stats/departure/figure", names);
    out.write("/stats/departure/value", real_values);
    out.write("/stats/departure/analytic_isotropic", analytic);
    for (std::size_t m = 0; m < models.size(); ++m)
        out.write("/stats/departure/null_" + models[m], null_values[m]);

    log << "  departure from the null models:\n  " << std::left << std::setw(44) << "figure"
        << std::right << std::setw(12) << "table";
    for (const std::string& m : models) log << std::setw(12) << m;
    log << "\n";
    for (std::size_t i = 0; i < names.size(); ++i) {
        log << "  " << std::left << std::setw(44) << names[i] << std::right << std::setprecision(4)
            << std::setw(12) << real_values[i];
        for (std::size_t m = 0; m < models.size(); ++m) log << std::setw(12) << null_values[m][i];
        log << "\n";
    }
}

}  // namespace embgeom
