#pragma once
// Scale-out beyond one process: MPI ranks share the all-pairs work of one analyze job. This
// header is free of MPI types, so the pipeline and the CLI build the same with and without MPI
// (without it, every process is a job of one rank).
//
// How a job runs on R ranks (docs/architecture.md, "MPI ranks"):
//  - every rank runs the whole job on its own backend (each reads the table and computes the
//    per-token passes, which are O(V d)); the backend is wrapped by share_between_ranks, so each
//    all-pairs and CSLS pass computes only this rank's share of the tiles (WorkShare) and the
//    shares are added up exactly (engine/all_pairs_merge.hpp) and handed back to every rank: every
//    rank then holds the one-process result, bit for bit, and the job goes on identically;
//  - rank 0 writes the output and the log; the others write nothing (ResultFileMode::kDiscard);
//  - failures are agreed: each collective step first learns whether any rank failed, and every
//    rank then stops with the first failing rank's error (RanksAgreedError); rank 0 prints it.
#include <memory>
#include <string>
#include <vector>

#include "embgeom/backend.hpp"
#include "embgeom/errors.hpp"

namespace embgeom::scaleout {

/// This process's place in the job.
struct JobRanks {
    int rank = 0;
    int size = 1;
    int local_rank = 0;  ///< rank among the job's processes on this machine (its GPU, by default)
    int local_size = 1;  ///< the job's processes on this machine (they split its memory)
    bool root() const { return rank == 0; }
    bool several() const { return size > 1; }
};

/// Initialises MPI when an MPI launcher (mpiexec, mpirun, srun with PMI/PMIx) started this
/// process and the build has MPI, and finalises it when it goes. One per process, in main.
class MpiSession {
  public:
    MpiSession(int& argc, char**& argv);
    ~MpiSession();
    MpiSession(const MpiSession&) = delete;
    MpiSession& operator=(const MpiSession&) = delete;

  private:
    bool initialised_ = false;
};

/// The job's ranks ({0, 1, 0} outside an MPI job).
const JobRanks& job_ranks();

/// @brief How many of the job's ranks on this machine may run on a core this rank may run on
///        (its CPU affinity), itself included: every rank on the machine where the launcher bound
///        none (MPICH's default), 1 where it bound each to cores of its own. A collective step of
///        the machine's ranks, to be called where every rank has agreed that none failed. 1 for
///        a job of one rank.
int ranks_sharing_my_cores();

/// @brief For --write-matrix on a rank other than 0, which writes no file: the sink to hand the
///        all-pairs pass, whose shared form (share_between_ranks) sends the rank's tiles to rank
///        0's file instead (scaleout/matrix_tiles.hpp). Never written to itself.
/// @param[in] float16  rank 0's file keeps the matrix as float16 (the tiles travel so).
std::unique_ptr<MatrixSink> matrix_written_by_rank0(bool float16);

/// Whether the ranks can send rank 0 their matrix tiles: the MPI library lets threads call it in
/// turn (MPI_THREAD_SERIALIZED), which the engines' threads need. True for a job of one rank.
bool ranks_can_send_matrix_tiles();

/// "MPICH Version: 4.0.2 ..." (first line of MPI_Get_library_version), or "built without MPI".
std::string mpi_library_version();

/// An error every rank of the job stops with, agreed in a collective step: rank 0 prints it, the
/// others stay silent, and no rank takes part in another agreement.
class RanksAgreedError : public Error {
  public:
    RanksAgreedError(ExitCode code, const std::string& message) : Error(code, message) {}
};

/// @brief The collective step where ranks learn whether any of them failed: every rank calls it
///        once per step with its own failure (code kOk: none). No-op for one rank.
/// @throws RanksAgreedError with the first failing rank's code and message ("rank r: ..." when
///         r is not 0) on every rank when any failed.
void agree(ExitCode code = ExitCode::kOk, const std::string& message = {});

/// On rank 0 after share_between_ranks: one line per rank, "rank R on HOST: BACKEND", in rank
/// order (which machine and which device computed each share, for the output's provenance).
/// Empty on the other ranks and for one rank.
const std::vector<std::string>& rank_backends();

/// @brief Checks that every rank holds the same `text` (a collective step): a rank that holds
///        another stops every rank with a usage error naming `what` and the first line that
///        differs from rank 0's. No-op for one rank.
/// @throws RanksAgreedError as agree.
void check_same_on_every_rank(const std::string& what, const std::string& text);

/// @brief The backend of this rank, wrapped so that all_pairs and csls_neighbors share their
///        tiles between the job's ranks and every rank receives the whole result; `local` itself
///        for one rank. A collective step.
/// @param[in] device  the GPU `local` runs on (CUDA), so that ranks sharing a GPU split its
///                    memory; ignored for the CPU.
/// @throws RanksAgreedError when the ranks run different kinds of backend (CPU and CUDA).
std::unique_ptr<Backend> share_between_ranks(std::unique_ptr<Backend> local, int device = 0);

}  // namespace embgeom::scaleout
