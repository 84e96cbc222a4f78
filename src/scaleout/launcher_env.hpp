#pragma once
// What the environment says about the program that started this process: an MPI launcher
// (mpiexec, mpirun, srun with PMI/PMIx), and how many copies of the program it started. Free of
// MPI, so that a build without MPI can tell that a launcher started it several times.
#include <string>

namespace embgeom::scaleout {

/// Whether an MPI launcher started this process (the variables the common launchers set for
/// each process: PMI_* from MPICH/Hydra, Intel MPI and Slurm's pmi2, PMIX_RANK from PMIx
/// launchers such as srun --mpi=pmix, OMPI_* from Open MPI, MV2_* from MVAPICH).
bool started_by_mpi_launcher();

/// How many copies of this program the launcher started, and the variable that says so
/// ({"PMI_SIZE", 4}); count 1 where no launcher says more.
struct LauncherCopies {
    int count = 1;
    std::string variable;
};
LauncherCopies copies_the_launcher_started();

/// @brief The one-line error for copies that a launcher started as one job but that did not
///        join one (each is an MPI job of one rank, or the build has no MPI), which would each
///        run the whole job and write the same output; empty where nothing is wrong.
/// @param[in] ranks    the size of this process's MPI job (1 without MPI).
/// @param[in] library  mpi_library_version(): what the build speaks.
std::string copies_apart_error(const LauncherCopies& copies, int ranks, const std::string& library);

/// @brief A notice (not an error) for copies that srun started without an MPI plugin: the step
///        has several tasks (SLURM_STEP_NUM_TASKS), no launcher variable of an MPI is set, and
///        this process is a job of one rank. Each copy then runs the whole job alone; they write
///        the same results, so nothing is wrong but the waste. It is only a notice because a
///        step may start several tasks of which one runs embgeom (a wrapper script), which looks
///        the same. Said by task 0 only (SLURM_PROCID), so that N copies print it once; empty
///        otherwise.
/// @param[in] ranks  the size of this process's MPI job (1 without MPI).
std::string srun_copies_apart_notice(int ranks);

}  // namespace embgeom::scaleout
