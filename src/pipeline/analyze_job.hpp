#pragma once
// The analyze job: HDF5 table in, per-token geometry, all-pairs cosine results, statistics beside
// the isotropic Gaussian null model and outlier lists out, written atomically to one HDF5 file.
#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "embgeom/config.hpp"

namespace embgeom {

/// What the job tells its caller (printed by the CLI, checked by tests and the demo).
struct AnalyzeReport {
    std::string output;
    std::string backend;
    std::int64_t rows = 0, dims = 0, valid_rows = 0;
    std::vector<std::int64_t> closest_to_centroid;  ///< ids, best first
    double seconds_per_token = 0.0, seconds_all_pairs = 0.0, seconds_total = 0.0;
    double seconds_read = 0.0, seconds_backend_start = 0.0;  ///< table into memory; device set-up
    std::vector<std::pair<std::string, double>> all_pairs_phases;  ///< the main pass's, if measured
    bool table_mapped = false;       ///< the table was mapped from the file, not read
    bool table_on_device = false;    ///< the backend held the table on the device for every pass
    double seconds_to_device = 0.0;  ///< time to copy it there (Backend::hold_table)
    std::string table_on_device_dtype;  ///< what the copy holds (Backend::held_table_dtype)
    double all_pairs_gflops = 0.0;   ///< achieved GEMM rate in the all-pairs phase
};

/// Checks flag values that need no input file. @throws UsageError naming the flag.
void validate_config(const AnalyzeConfig& cfg);

/// Runs the whole job. Progress and the summary go to log; nothing is left at cfg.output unless
/// the job succeeds. @throws UsageError, InputError, ResourceError (one-line messages).
AnalyzeReport run_analyze(const AnalyzeConfig& cfg, std::ostream& log);

/// The resolved configuration as TOML (the same keys as the config file), stored in the output.
std::string config_to_toml(const AnalyzeConfig& cfg);

}  // namespace embgeom
