#pragma once
// Where every result goes in the output file (docs/output-schema.md describes the same layout),
// and the headline table printed to the terminal. One place, so the schema has one home.
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "analysis/outlier_ranking.hpp"
#include "analysis/summary_stats.hpp"
#include "embgeom/backend.hpp"
#include "io/result_file.hpp"

namespace embgeom {

class ResultLayout {
  public:
    /// vocab may be empty (tokens are then named by their id). root prefixes every path ("" for
    /// the table itself, "/null/isotropic" for a null model's run).
    ResultLayout(ResultFile& out, const std::vector<std::string>& vocab, std::int64_t outliers,
                 std::string root = "");

    /// /norms, /centroid, /centered_norms, /bias_norms, /stats/<quantity>, per-token outlier lists.
    void write_per_token(const std::vector<float>& norms, const std::vector<float>& centered_norms,
                         const std::vector<float>& bias_norms, const std::vector<double>& centroid,
                         const std::vector<std::uint8_t>& finite,
                         const std::vector<std::uint8_t>& valid, std::int64_t zero_rows);

    /// /neighbors, /cosine, /hubness and the pair/hub outlier lists, under prefix ("" for the
    /// raw vectors, "/centered", "/all_but_the_top", "/null/<model>"); label names the view in
    /// the headline figures ("" or e.g. " (centred)").
    void write_all_pairs(const std::string& prefix, const std::string& label, const AllPairsResult& r,
                         const std::vector<std::uint8_t>& valid,
                         const std::vector<std::int32_t>& k_occurrence);

    /// /stats/headline: every headline figure beside its isotropic-Gaussian value.
    void write_headline(std::int64_t rows, std::int64_t dims);

    /// A headline figure beside its isotropic-Gaussian value (NaN: no closed form).
    void add_figure(const std::string& name, double value, double isotropic);
    /// An /outliers-style table from ranked tokens (token strings from the vocabulary).
    void write_ranked(const std::string& path, const std::vector<RankedToken>& ranked);
    /// Token string: the vocabulary entry, or the id in decimal without a vocabulary.
    std::string token(std::int64_t id) const;

    void print_summary(std::ostream& log) const;

    struct Figure {
        std::string name;
        double value;
        double isotropic;
    };
    const std::vector<Figure>& figures() const { return figures_; }
    std::vector<std::int64_t> closest_to_centroid_ids() const { return closest_ids_; }

  private:
    void write_summary(const std::string& path, const Summary& s);

    ResultFile& out_;
    const std::vector<std::string>& vocab_;
    std::int64_t outliers_;
    std::string root_;
    std::vector<Figure> figures_;
    std::vector<std::int64_t> closest_ids_;
    std::vector<std::string> closest_names_;
    std::int64_t rows_ = 0, dims_ = 0;
};

}  // namespace embgeom
