#include "pipeline/geometry_stages.hpp"

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <cmath>
#include <optional>

#include "analysis/outlier_ranking.hpp"
#include "embgeom/errors.hpp"
#include "engine/k_occurrence.hpp"
#include "geometry/all_but_the_top.hpp"
#include "geometry/isotropy.hpp"
#include "geometry/principal_directions.hpp"
#include "geometry/reference_tokens.hpp"
#include "geometry/rogue_dimensions.hpp"
#include "geometry/undertrained_indicators.hpp"
#include "pipeline/progress.hpp"

namespace embgeom {
namespace {

/// Rows of the principal-direction matrix written to the file: all of them for small d, the
/// leading ones for large d (a 4096 x 4096 float64 matrix would be 128 MiB of mostly noise).
constexpr std::int64_t kMaxWrittenComponents = 256;

std::pair<std::int64_t, std::int64_t> parse_range(const std::string& text) {
    const auto colon = text.find(':');
    try {
        if (colon == std::string::npos) throw std::invalid_argument("no colon");
        std::size_t p1 = 0, p2 = 0;
        const std::int64_t a = std::stoll(text.substr(0, colon), &p1);
        const std::int64_t b = std::stoll(text.substr(colon + 1), &p2);
        if (p1 != colon || p2 != text.size() - colon - 1) throw std::invalid_argument("junk");
        return {a, b};
    } catch (const std::exception&) {
        throw UsageError("--reference-range: '" + text + "' is not A:B (token ids [A, B))");
    }
}

std::vector<std::int64_t> reference_set(const AnalyzeConfig& cfg, const GeometryInputs& in) {
    std::vector<std::int64_t> ids;
    const std::int64_t V = in.table.rows();
    if (!cfg.reference_ids.empty()) ids = reference_ids_from_list(cfg.reference_ids, V);
    if (!cfg.reference_range.empty()) {
        const auto [a, b] = parse_range(cfg.reference_range);
        const auto r = reference_ids_from_range(a, b, V);
        ids.insert(ids.end(), r.begin(), r.end());
    }
    if (!cfg.reference_regex.empty()) {
        if (in.vocab.empty())
            throw UsageError("--reference-regex needs token strings (--vocab or --vocab-file)");
        const auto r = reference_ids_from_regex(cfg.reference_regex, in.vocab);
        if (r.empty())
            throw UsageError("--reference-regex '" + cfg.reference_regex + "' matches no token");
        ids.insert(ids.end(), r.begin(), r.end());
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
}

void write_principal(const PrincipalDirections& pd, const IsoScoreResult& iso,
                     const RogueDimensions& rogue, ResultFile& out, ResultLayout& layout) {
    const std::int64_t d = pd.dims;
    const std::int64_t rows = std::min(d, kMaxWrittenComponents);
    out.write("/principal/eigenvalues", pd.eigenvalues);
    out.write("/principal/explained_ratio", pd.explained_ratio);
    std::vector<float> comps(pd.eigenvectors.begin(), pd.eigenvectors.begin() + rows * d);
    out.write_matrix("/principal/components", comps.data(), rows, d);
    const std::string g = "/principal";
    out.set_attribute(g, "rows", pd.n);
    out.set_attribute(g, "total_variance", pd.total_variance);
    out.set_attribute(g, "effective_rank", pd.effective_rank);
    out.set_attribute(g, "participation_ratio", pd.participation_ratio);
    out.set_attribute(g, "marchenko_pastur_upper_edge", pd.mp_upper_edge);
    out.set_attribute(g, "above_marchenko_pastur_edge", pd.above_mp_edge);
    out.set_attribute(g, "above_marchenko_pastur_edge_4tw", pd.above_mp_edge_margin);
    out.set_attribute(g, "isoscore", iso.score);
    out.set_attribute(g, "isoscore_dims_used", iso.dims_used);
    out.write("/principal/rogue_dimensions/contribution", rogue.contribution);
    std::vector<std::int64_t> dims;
    std::vector<double> contribution, share;
    for (const RogueDimension& r : rogue.top) {
        dims.push_back(r.dim);
        contribution.push_back(r.contribution);
        share.push_back(r.share);
    }
    out.write("/principal/rogue_dimensions/top_dims", dims);
    out.write("/principal/rogue_dimensions/top_contribution", contribution);
    out.write("/principal/rogue_dimensions/top_share", share);
    out.set_attribute("/principal/rogue_dimensions", "mean_cosine", rogue.mean_cosine);
    add_principal_figures(pd, iso, rogue, layout);
}

}  // namespace

void add_principal_figures(const PrincipalDirections& pd, const IsoScoreResult& iso,
                           const RogueDimensions& rogue, ResultLayout& layout) {
    const std::int64_t d = pd.dims;
    // An isotropic Gaussian table: every direction explains 1/d, effective rank ~ d, IsoScore ~ 1.
    const double dd = static_cast<double>(d);
    layout.add_figure("variance explained by PC 1", pd.explained_ratio.empty() ? NAN : pd.explained_ratio[0], 1.0 / dd);
    layout.add_figure("effective rank / d", pd.effective_rank / dd, 1.0);
    layout.add_figure("eigenvalues above Marchenko-Pastur edge", static_cast<double>(pd.above_mp_edge_margin), 0.0);
    layout.add_figure("IsoScore", iso.score, 1.0);
    if (!rogue.top.empty())
        layout.add_figure("share of mean cosine from top dimension", rogue.top[0].share, 1.0 / dd);
}

namespace {

void run_all_but_the_top(const AnalyzeConfig& cfg, const GeometryInputs& in,
                         const PrincipalDirections& pd, Backend& backend, ResultFile& out,
                         ResultLayout& layout, std::ostream& log) {
    const std::int64_t D = std::min(cfg.remove_top, pd.dims);
    PostProcessedRowSource processed(in.table, pd, D, cfg.threads);
    const std::int64_t V = in.table.rows(), d = in.table.cols();
    std::vector<float> norms(static_cast<std::size_t>(V));
    std::vector<std::uint8_t> finite(static_cast<std::size_t>(V));
    std::vector<double> sums(static_cast<std::size_t>(d), 0.0);
    const std::int64_t block = std::max<std::int64_t>(1, std::min<std::int64_t>(V, (64 << 20) / (4 * d)));
    std::vector<float> buf(static_cast<std::size_t>(block * d));
    for (std::int64_t r0 = 0; r0 < V; r0 += block) {
        const std::int64_t n = std::min(block, V - r0);
        processed.read_rows(r0, n, buf.data());
        backend.row_norms_and_sums(MatrixView<const float>(buf.data(), n, d), norms.data() + r0,
                                   finite.data() + r0, sums.data());
    }
    for (std::int64_t i = 0; i < V; ++i)
        if (!in.finite[i]) norms[i] = NAN;
    out.write("/all_but_the_top/norms", norms);
    out.set_attribute("/all_but_the_top", "removed_directions", D);
    log << "  all-but-the-top: removed the mean and " << D << " principal directions\n";
    if (in.pair_options) {
        std::vector<std::uint8_t> valid = in.valid;
        for (std::int64_t i = 0; i < V; ++i) valid[i] = valid[i] && norms[i] > 0.0f;
        AllPairsOptions opt = *in.pair_options;
        opt.matrix = nullptr;
        opt.center.reset();
        opt.progress = progress_reporter("all pairs (all-but-the-top)");
        const AllPairsResult r = backend.all_pairs(processed, valid, opt);
        layout.write_all_pairs("/all_but_the_top", " (all-but-the-top)", r, valid, engine::k_occurrence(r));
    }
}

void run_undertrained(const AnalyzeConfig& cfg, const GeometryInputs& in,
                      const PrincipalDirections& pd, Backend& backend, ResultFile& out,
                      ResultLayout& layout, std::ostream& log) {
    UndertrainedOptions opt;
    if (in.bias) opt.bias = *in.bias;
    opt.first_pc = std::vector<double>(pd.eigenvectors.begin(), pd.eigenvectors.begin() + pd.dims);
    opt.threshold_quantile = cfg.candidate_quantile;
    const std::vector<std::int64_t> reference = reference_set(cfg, in);
    const UndertrainedIndicators u = undertrained_indicators(backend, in.table, in.finite, reference, opt);
    out.write("/undertrained/indicator", u.indicator);
    out.write("/undertrained/reference_ids", u.reference_ids);
    out.write("/undertrained/candidates", u.candidates);
    out.set_attribute("/undertrained", "reference_automatic", static_cast<std::int64_t>(u.reference_automatic));
    out.set_attribute("/undertrained", "threshold_quantile", u.threshold_quantile);
    out.set_attribute("/undertrained", "threshold", u.threshold);
    out.set_attribute("/undertrained", "bias_removed", static_cast<std::int64_t>(in.bias != nullptr));
    const std::int64_t n = cfg.outliers;
    layout.write_ranked("/outliers/undertrained_indicator_lowest", rank_tokens(u.indicator, in.finite, n, Tail::kSmallest));
    layout.write_ranked("/outliers/undertrained_indicator_highest", rank_tokens(u.indicator, in.finite, n, Tail::kLargest));
    log << "  under-trained indicator (Land & Bartolo): " << u.reference_ids.size()
        << (u.reference_automatic ? " automatically chosen" : " given") << " reference tokens, "
        << u.candidates.size() << " candidates at or below the " << 100 * u.threshold_quantile
        << "% quantile\n";
}

}  // namespace

bool any_geometry_stage(const AnalyzeConfig& cfg) {
    return cfg.principal || cfg.remove_top > 0 || cfg.undertrained || cfg.simplex > 0;
}

void validate_geometry_config(const AnalyzeConfig& cfg, std::int64_t rows) {
    if (cfg.rogue_top < 0) throw UsageError("--rogue-top must not be negative");
    if (cfg.remove_top < 0) throw UsageError("--remove-top must not be negative");
    if (!(cfg.candidate_quantile > 0.0 && cfg.candidate_quantile < 1.0))
        throw UsageError("--candidate-quantile must be in (0, 1)");
    const bool reference_given = !cfg.reference_ids.empty() || !cfg.reference_range.empty() ||
                                 !cfg.reference_regex.empty();
    if (reference_given && !cfg.undertrained)
        throw UsageError("--reference-ids/--reference-range/--reference-regex need --undertrained");
    if (!cfg.reference_range.empty()) reference_ids_from_range(parse_range(cfg.reference_range).first,
                                                               parse_range(cfg.reference_range).second, rows);
    if (!cfg.reference_ids.empty()) reference_ids_from_list(cfg.reference_ids, rows);
    if (cfg.simplex < 0) throw UsageError("--simplex must not be negative");
    if (cfg.simplex > 0 && cfg.simplex < 3) throw UsageError("--simplex needs at least 3 vertices");
    if (cfg.simplex > rows) throw UsageError("--simplex " + std::to_string(cfg.simplex) + " exceeds the number of tokens");
    if (!cfg.simplex_plane.empty() && cfg.simplex_plane.size() != 3)
        throw UsageError("--simplex-plane takes exactly three token ids");
    for (std::int64_t id : cfg.simplex_plane)
        if (id < 0 || id >= rows) throw UsageError("--simplex-plane: token id " + std::to_string(id) + " is not in [0, V)");
    if (cfg.simplex_directions < 1) throw UsageError("--simplex-directions must be at least 1");
    if (cfg.corner_tokens < 0) throw UsageError("--corner-tokens must not be negative");
}

void run_geometry_stages(const AnalyzeConfig& cfg, const GeometryInputs& in, Backend& backend,
                         ResultFile& out, ResultLayout& layout, std::ostream& log) {
    const auto timed = [&log](const char* stage, auto&& fn) {
        const auto t0 = std::chrono::steady_clock::now();
        fn();
        log << "  " << stage << ": " << std::fixed << std::setprecision(2)
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
            << " s\n" << std::defaultfloat;
    };
    std::optional<PrincipalDirections> pd;
    if (cfg.principal || cfg.remove_top > 0 || cfg.undertrained) {
        timed("principal directions", [&] {
            CovarianceOptions copt;
            copt.shift = in.centroid;  // the centroid of pass 1: one pass instead of two
            pd = principal_directions(backend, in.table, in.finite, copt);
            const IsoScoreResult iso = isoscore(*pd);
            const RogueDimensions rogue = rogue_dimensions(in.table, in.valid, cfg.rogue_top);
            write_principal(*pd, iso, rogue, out, layout);
        });
    }
    if (cfg.remove_top > 0)
        timed("all-but-the-top", [&] { run_all_but_the_top(cfg, in, *pd, backend, out, layout, log); });
    if (cfg.undertrained) timed("under-trained indicator", [&] { run_undertrained(cfg, in, *pd, backend, out, layout, log); });
    if (cfg.simplex > 0) timed("simplex", [&] { run_simplex_stage(cfg, in, backend, out, layout, log); });
}

}  // namespace embgeom
