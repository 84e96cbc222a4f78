#pragma once
// Moving results between the ranks of an MPI job: results packed into bytes, a binomial-tree
// reduction of the shares to rank 0 (log2 R steps, two shares held per rank at a time) and
// broadcasts from rank 0. Every rank runs each transfer to its end even when its own part fails
// (it sends "nothing", or takes a result it has no room for into scratch), so no rank is left
// waiting; the failure is rethrown afterwards for the ranks to agree on (job_ranks.hpp: agree).
// MPI's own errors end the job (MPI's default error handler).
#include <string>
#include <vector>

#include "embgeom/backend.hpp"
#include "geometry/csls.hpp"

namespace embgeom::scaleout {

/// Every rank's s, in rank order, on rank 0 (empty on the others).
std::vector<std::string> gather_strings_to_root(const std::string& s);

/// s on every rank becomes root's.
void broadcast_string(std::string& s, int root);

/// Rank 0's share becomes the sum of every rank's (engine::absorb_share), in a fixed tree, so
/// the grouping never depends on timing (and the sum is exact in any grouping anyway). Other
/// ranks' shares are left consumed.
void reduce_shares_to_root(AllPairsResult& share, AllPairsPartial& sums, const AllPairsOptions& opt);

/// The same for CSLS lists (engine::absorb_csls_share).
void reduce_csls_to_root(CslsNeighbors& share);

/// Every rank's result becomes rank 0's.
void broadcast_from_root(AllPairsResult& result);
void broadcast_from_root(CslsNeighbors& lists);

}  // namespace embgeom::scaleout
