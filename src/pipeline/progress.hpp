#pragma once
// Progress of long all-pairs passes on stderr (a million-token vocabulary takes hours on a CPU):
// silent for the first 10 s, then one line at most every 10 s with the share done and an
// estimate of the time left. stdout keeps only the job's own report.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace embgeom {

/// A callback for AllPairsOptions::progress that reports under `label` ("all pairs",
/// "all pairs (centred)", ...).
std::function<void(std::int64_t, std::int64_t)> progress_reporter(const std::string& label);

}  // namespace embgeom
