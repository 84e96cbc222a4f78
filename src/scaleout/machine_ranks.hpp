#pragma once
// The job's ranks on this machine (MPI builds only: defined in mpi_job.cpp, which holds the
// machine's communicator). Used where ranks on one machine share a resource, such as a GPU.

namespace embgeom::scaleout {

/// How many of the job's ranks on this machine pass the same key (a collective step of the
/// machine's ranks; keys must be >= 0), e.g. ranks sharing one GPU. 1 for a job of one rank.
int ranks_on_this_machine_alike(int key);

}  // namespace embgeom::scaleout
