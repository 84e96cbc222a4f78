// Run by MpiRanks.TransfersRunToTheirEndWhenARankFails under mpiexec with 3 ranks: the share of
// rank 1 does not fit the others' (another list width), so rank 0 fails adding it, in the first
// step of the reduction. Rank 0 must still take rank 2's share in the second step: the shares
// are megabytes, past MPI's eager limit, so rank 2's send waits until rank 0 receives it, and a
// rank 0 that gave up at its failure would leave rank 2 waiting forever. Then the broadcast runs
// on every rank, and the failure reaches every rank through one agreement. Each rank writes what
// it saw to FOLDER/rank<R>.txt (its own file: the launcher interleaves the ranks' stdout).
#include <fstream>
#include <iostream>
#include <limits>
#include <string>

#include "embgeom/backend.hpp"
#include "embgeom/errors.hpp"
#include "scaleout/job_ranks.hpp"
#include "scaleout/rank_exchange.hpp"

using namespace embgeom;

namespace {

AllPairsResult share_of_width(std::int64_t rows, std::int64_t k, int rank) {
    AllPairsResult r;
    r.rows = rows;
    r.k = k;
    r.neighbor_index.assign(static_cast<std::size_t>(rows * k), -1);
    r.neighbor_sim.assign(static_cast<std::size_t>(rows * k),
                          std::numeric_limits<float>::quiet_NaN());
    r.histogram.assign(4, rank + 1);
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    scaleout::MpiSession mpi(argc, argv);
    const scaleout::JobRanks& ranks = scaleout::job_ranks();
    if (ranks.size != 3 || argc != 2) {
        std::cerr << "usage: mpiexec -n 3 embgeom_mpi_transfer_failures FOLDER\n";
        return 2;
    }
    AllPairsOptions opt;
    AllPairsResult share = share_of_width(200000, ranks.rank == 1 ? 3 : 2, ranks.rank);
    AllPairsPartial sums;
    std::string seen = "reduced", message;
    ExitCode code = ExitCode::kOk;
    try {
        scaleout::reduce_shares_to_root(share, sums, opt);
    } catch (const Error& e) {
        seen = "failed";
        message = e.what();
        code = e.code();
    }
    // The broadcast runs on every rank whatever happened above.
    scaleout::broadcast_from_root(share);
    try {
        scaleout::agree(code, message);
        seen += "; agreed: none failed";
    } catch (const scaleout::RanksAgreedError& e) {
        seen += std::string("; agreed: ") + e.what();
    }
    std::ofstream(std::string(argv[1]) + "/rank" + std::to_string(ranks.rank) + ".txt")
        << seen << ", histogram[0] " << share.histogram[0] << "\n";
    return 0;
}
