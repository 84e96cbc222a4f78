#include "pipeline/result_layout.hpp"

#include <cmath>
#include <iomanip>
#include <limits>

#include "analysis/hubness.hpp"
#include "analysis/null_model.hpp"
#include "analysis/outlier_ranking.hpp"
#include "embgeom/histogram_binning.hpp"

namespace embgeom {
namespace {

std::vector<double> quantile_levels() {
    return std::vector<double>(kQuantileLevels.begin(), kQuantileLevels.end());
}

}  // namespace

ResultLayout::ResultLayout(ResultFile& out, const std::vector<std::string>& vocab,
                           std::int64_t outliers, std::string root)
    : out_(out), vocab_(vocab), outliers_(outliers), root_(std::move(root)) {}

std::string ResultLayout::token(std::int64_t id) const {
    return vocab_.empty() ? std::to_string(id) : vocab_[static_cast<std::size_t>(id)];
}

void ResultLayout::write_summary(const std::string& relative, const Summary& s) {
    const std::string path = root_ + relative;
    out_.set_attribute(path, "count", s.count);
    out_.set_attribute(path, "mean", s.mean);
    out_.set_attribute(path, "std", s.std);
    out_.set_attribute(path, "min", s.min);
    out_.set_attribute(path, "max", s.max);
    out_.set_attribute(path, "median", s.median);
    out_.set_attribute(path, "mad", s.mad);
    out_.set_attribute(path, "skewness", s.skewness);
    out_.set_attribute(path, "relative_width", s.std / s.mean);
    out_.write(path + "/quantile_levels", quantile_levels());
    out_.write(path + "/quantiles", std::vector<double>(s.quantiles.begin(), s.quantiles.end()));
}

void ResultLayout::write_ranked(const std::string& relative, const std::vector<RankedToken>& ranked) {
    const std::string path = root_ + relative;
    std::vector<OutlierRow> rows;
    rows.reserve(ranked.size());
    for (const RankedToken& r : ranked) rows.push_back({r.token_id, token(r.token_id), r.score, r.zscore});
    out_.write_outliers(path, rows);
}

void ResultLayout::write_per_token(const std::vector<float>& norms,
                                   const std::vector<float>& centered_norms,
                                   const std::vector<float>& bias_norms,
                                   const std::vector<double>& centroid,
                                   const std::vector<std::uint8_t>& finite,
                                   const std::vector<std::uint8_t>& valid, std::int64_t zero_rows) {
    rows_ = static_cast<std::int64_t>(norms.size());
    dims_ = static_cast<std::int64_t>(centroid.size());
    out_.write(root_ + "/norms", norms);
    out_.write(root_ + "/centroid", centroid);
    out_.write(root_ + "/centered_norms", centered_norms);
    const Summary norm_s = summarize(norms, finite);
    const Summary centered_s = summarize(centered_norms, finite);
    write_summary("/stats/norms", norm_s);
    write_summary("/stats/centered_norms", centered_s);
    const IsotropicGaussianExpectation null = isotropic_gaussian_expectation(rows_, dims_);
    out_.set_attribute(root_ + "/stats/norms", "isotropic_gaussian_relative_width", null.norm_relative_width);
    out_.set_attribute(root_ + "/stats/centered_norms", "isotropic_gaussian_relative_width",
                       null.norm_relative_width);

    double centroid_norm = 0.0;
    for (double c : centroid) centroid_norm += c * c;
    centroid_norm = std::sqrt(centroid_norm);
    figures_.push_back({"norm relative width (std/mean)", norm_s.std / norm_s.mean, null.norm_relative_width});
    figures_.push_back({"centred norm relative width", centered_s.std / centered_s.mean, null.norm_relative_width});
    figures_.push_back({"|centroid| / mean norm", centroid_norm / norm_s.mean, null.centroid_norm_over_mean_norm});

    std::int64_t finite_rows = 0;
    for (auto f : finite) finite_rows += f;
    out_.set_attribute(root_ + "/stats", "rows", rows_);
    out_.set_attribute(root_ + "/stats", "finite_rows", finite_rows);
    out_.set_attribute(root_ + "/stats", "non_finite_rows", rows_ - finite_rows);
    out_.set_attribute(root_ + "/stats", "zero_norm_rows", zero_rows);
    out_.set_attribute(root_ + "/stats", "centroid_norm", centroid_norm);
    out_.set_attribute(root_ + "/stats", "centroid_norm_over_mean_norm", centroid_norm / norm_s.mean);
    out_.set_attribute(root_ + "/stats", "isotropic_gaussian_centroid_norm_over_mean_norm",
                       null.centroid_norm_over_mean_norm);

    const auto closest = rank_tokens(centered_norms, finite, outliers_, Tail::kSmallest);
    write_ranked("/outliers/closest_to_centroid", closest);
    write_ranked("/outliers/farthest_from_centroid", rank_tokens(centered_norms, finite, outliers_, Tail::kLargest));
    write_ranked("/outliers/smallest_norm", rank_tokens(norms, finite, outliers_, Tail::kSmallest));
    write_ranked("/outliers/largest_norm", rank_tokens(norms, finite, outliers_, Tail::kLargest));
    for (const RankedToken& r : closest) {
        closest_ids_.push_back(r.token_id);
        closest_names_.push_back(token(r.token_id));
    }
    // Rows holding NaN/Inf: listed in id order, excluded from every statistic.
    std::vector<RankedToken> bad;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (std::int64_t i = 0; i < rows_ && static_cast<std::int64_t>(bad.size()) < outliers_; ++i)
        if (!finite[i]) bad.push_back({i, nan, nan});
    write_ranked("/outliers/non_finite", bad);

    if (!bias_norms.empty()) {
        out_.write(root_ + "/bias_norms", bias_norms);
        const Summary bias_s = summarize(bias_norms, finite);
        write_summary("/stats/bias_norms", bias_s);
        out_.set_attribute(root_ + "/stats/bias_norms", "isotropic_gaussian_relative_width", null.norm_relative_width);
        figures_.push_back({"bias-distance relative width", bias_s.std / bias_s.mean, null.norm_relative_width});
        write_ranked("/outliers/closest_to_bias", rank_tokens(bias_norms, finite, outliers_, Tail::kSmallest));
    }
    (void)valid;
}

void ResultLayout::write_all_pairs(const std::string& prefix, const std::string& label,
                                   const AllPairsResult& r,
                                   const std::vector<std::uint8_t>& valid,
                                   const std::vector<std::int32_t>& k_occurrence) {
    const std::string p = prefix;       // relative to root_, for write_summary / write_ranked
    const std::string abs = root_ + prefix;  // for direct writes
    out_.write_matrix(abs + "/neighbors/indices", r.neighbor_index.data(), r.rows, r.k);
    out_.write_matrix(abs + "/neighbors/similarities", r.neighbor_sim.data(), r.rows, r.k);
    out_.write(abs + "/cosine/row_mean", r.row_mean);
    out_.write(abs + "/cosine/histogram/counts", r.histogram);
    out_.write(abs + "/cosine/histogram/edges", histogram_edges(static_cast<int>(r.histogram.size())));
    out_.write(abs + "/hubness/k_occurrence", k_occurrence);

    // Mean over pairs from the O(V d) identity sum_{i<j} c_ij = (|S|^2 - n) / 2; the second moment
    // from the exact fixed-point sum of c^2 accumulated in the tiled pass.
    const double n = static_cast<double>(r.valid_rows);
    const double pairs = n * (n - 1.0) / 2.0;
    double s2 = 0.0;
    for (double s : r.normalized_sum) s2 += s * s;
    const double mean = pairs > 0 ? (s2 - n) / 2.0 / pairs : std::nan("");
    const double var = pairs > 0 ? r.pair_cos_sq_sum / pairs - mean * mean : std::nan("");
    const double stdev = std::sqrt(std::max(var, 0.0));
    const IsotropicGaussianExpectation null = isotropic_gaussian_expectation(rows_, dims_);
    const std::string g = abs + "/stats/pair_cosine";
    out_.set_attribute(g, "pairs", static_cast<std::int64_t>(pairs));
    out_.set_attribute(g, "mean", mean);
    out_.set_attribute(g, "std", stdev);
    out_.set_attribute(g, "isotropic_gaussian_mean", null.pair_cosine_mean);
    out_.set_attribute(g, "isotropic_gaussian_std", null.pair_cosine_std);
    figures_.push_back({"mean pairwise cosine" + label, mean, null.pair_cosine_mean});
    figures_.push_back({"std of pairwise cosine" + label, stdev, null.pair_cosine_std});

    write_summary(p + "/stats/row_mean_cosine", summarize(r.row_mean, valid));
    write_summary(p + "/stats/k_occurrence", summarize(k_occurrence, valid));
    const HubnessFigures h = hubness_figures(k_occurrence, valid, r.k);
    const std::string hg = abs + "/stats/hubness";
    out_.set_attribute(hg, "k", r.k);
    out_.set_attribute(hg, "k_occurrence_skewness", h.skewness);
    out_.set_attribute(hg, "robin_hood_index", h.robin_hood_index);
    out_.set_attribute(hg, "antihubs", h.antihubs);
    out_.set_attribute(hg, "hubs", h.hubs);
    out_.set_attribute(hg, "gini", h.gini);
    out_.set_attribute(hg, "antihub_share", h.antihub_share);
    out_.set_attribute(hg, "hub_share", h.hub_share);
    const double twonn = twonn_dimension(r.neighbor_sim, r.k, valid);
    out_.set_attribute(abs + "/stats/intrinsic_dimension", "twonn", twonn);
    figures_.push_back({"TwoNN intrinsic dimension" + label, twonn, std::nan("")});
    figures_.push_back({"k-occurrence skewness" + label, h.skewness, std::nan("")});
    figures_.push_back({"Robin Hood index" + label, h.robin_hood_index, std::nan("")});

    write_ranked(p + "/outliers/hubs", rank_tokens(k_occurrence, valid, outliers_, Tail::kLargest));
    std::vector<std::uint8_t> zero(valid.size(), 0);
    for (std::size_t i = 0; i < valid.size(); ++i) zero[i] = valid[i] && k_occurrence[i] == 0;
    write_ranked(p + "/outliers/antihubs", rank_tokens(k_occurrence, zero, outliers_, Tail::kSmallest));
    write_ranked(p + "/outliers/highest_mean_cosine", rank_tokens(r.row_mean, valid, outliers_, Tail::kLargest));
    write_ranked(p + "/outliers/lowest_mean_cosine", rank_tokens(r.row_mean, valid, outliers_, Tail::kSmallest));

    std::vector<PairRow> dups;
    dups.reserve(r.duplicates.size());
    for (const DuplicatePair& d : r.duplicates) dups.push_back({d.i, d.j, token(d.i), token(d.j), d.cosine});
    out_.write_pairs(abs + "/outliers/near_duplicates", dups);
    out_.set_attribute(abs + "/outliers/near_duplicates", "truncated",
                       static_cast<std::int64_t>(r.duplicates_truncated));
}

void ResultLayout::add_figure(const std::string& name, double value, double isotropic) {
    figures_.push_back({name, value, isotropic});
}

void ResultLayout::write_headline(std::int64_t rows, std::int64_t dims) {
    std::vector<std::string> names;
    std::vector<double> values, isotropic;
    for (const Figure& f : figures_) {
        names.push_back(f.name);
        values.push_back(f.value);
        isotropic.push_back(f.isotropic);
    }
    out_.write_strings(root_ + "/stats/headline/figure", names);
    out_.write(root_ + "/stats/headline/value", values);
    out_.write(root_ + "/stats/headline/isotropic_gaussian", isotropic);
    out_.set_attribute(root_ + "/stats/headline", "rows", rows);
    out_.set_attribute(root_ + "/stats/headline", "dims", dims);
}

void ResultLayout::print_summary(std::ostream& log) const {
    log << "  " << std::left << std::setw(40) << "figure" << std::right << std::setw(14)
        << "this table" << std::setw(20) << "isotropic Gaussian" << "\n";
    for (const Figure& f : figures_) {
        log << "  " << std::left << std::setw(40) << f.name << std::right << std::setw(14)
            << std::setprecision(4) << std::defaultfloat << f.value << std::setw(20);
        if (std::isnan(f.isotropic)) log << "-";
        else log << f.isotropic;
        log << "\n";
    }
    log << "  closest to the centroid (under-trained candidates):";
    for (std::size_t i = 0; i < closest_names_.size() && i < 8; ++i) log << " " << closest_names_[i];
    log << "\n";
}

}  // namespace embgeom
