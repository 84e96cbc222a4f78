// job_ranks.hpp in a build without MPI: every process is a job of one rank.
#include "scaleout/job_ranks.hpp"

namespace embgeom::scaleout {

MpiSession::MpiSession(int&, char**&) {}
MpiSession::~MpiSession() = default;

const JobRanks& job_ranks() {
    static const JobRanks one;
    return one;
}

int ranks_sharing_my_cores() { return 1; }

// One rank writes its matrix itself.
std::unique_ptr<MatrixSink> matrix_written_by_rank0(bool) { return nullptr; }
bool ranks_can_send_matrix_tiles() { return true; }

std::string mpi_library_version() { return "built without MPI"; }

void agree(ExitCode, const std::string&) {}

void check_same_on_every_rank(const std::string&, const std::string&) {}

const std::vector<std::string>& rank_backends() {
    static const std::vector<std::string> none;
    return none;
}

std::unique_ptr<Backend> share_between_ranks(std::unique_ptr<Backend> local, int) { return local; }

}  // namespace embgeom::scaleout
