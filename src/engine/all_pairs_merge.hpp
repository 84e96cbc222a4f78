#pragma once
// Adding up the shares of one all-pairs job: the results of engines or processes that computed
// disjoint parts of the same plan (WorkShare, the CUDA engines of --devices) merge exactly into
// the one-engine result, in any grouping and order. Host-only; shared by the multi-device driver
// (src/cuda/cuda_multi_device.cpp) and the MPI ranks (src/scaleout/).
//
// Why it is exact: top-K lists merge under one total order (engine::TopKLists), the histogram,
// the fixed-point cos^2 and row sums and the duplicate counts are integers, and duplicate lists
// are the first max_dup_pairs pairs by (i, j) of a union of disjoint sets.
#include <cstdint>
#include <vector>

#include "embgeom/backend.hpp"
#include "geometry/csls.hpp"

namespace embgeom::engine {

/// Per-row lists [n, k] (padded with -1 / NaN) replaced by the best k of theirs and other's.
void merge_neighbor_lists(std::int64_t n, std::int64_t k, std::vector<std::int64_t>& index,
                          std::vector<float>& sim, const std::vector<std::int64_t>& other_index,
                          const std::vector<float>& other_sim);

/// CSLS lists of another share added into `into`: the best k of both per row; resident only
/// when both were. @throws ResourceError (internal) when the two have another shape.
void absorb_csls_share(CslsNeighbors& into, const CslsNeighbors& other);

/// @brief Adds share `other` into `into`: lists merged, histogram and gflop added, duplicates
///        merged by (i, j) and cut at opt.max_dup_pairs, exact sums added, deferred candidates
///        merged (the best K' by the fast cosine). Row means, S and valid_rows stay into's (every
///        share computes them whole).
/// @throws ResourceError (internal) when the two shares did not run the same plan.
void absorb_share(AllPairsResult& into, AllPairsPartial& into_sums, const AllPairsResult& other,
                  const AllPairsPartial& other_sums, const AllPairsOptions& opt);

/// Sets what the exact sums of every share give once all are in: pair_cos_sq_sum,
/// row_sum_tiled (with opt.accumulate_row_sums) and duplicates_truncated.
void finish_shares(AllPairsResult& out, const AllPairsPartial& sums,
                   const std::vector<std::uint8_t>& valid, const AllPairsOptions& opt);

/// The partial sums a CPU share reports beside its result (the CPU engine keeps its duplicate
/// list cut and flagged): duplicates_found = the list's size, or max_dup_pairs + 1 when cut.
unsigned long long duplicates_found_of(const AllPairsResult& share, const AllPairsOptions& opt);

}  // namespace embgeom::engine
