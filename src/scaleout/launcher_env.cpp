#include "scaleout/launcher_env.hpp"

#include <cstdlib>

namespace embgeom::scaleout {
namespace {

// A positive count from variable `name`, else 0.
int count_in(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v) return 0;
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    return (*end == '\0' && n > 0 && n < (1L << 30)) ? static_cast<int>(n) : 0;
}

}  // namespace

bool started_by_mpi_launcher() {
    for (const char* v : {"PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE",
                          "MV2_COMM_WORLD_SIZE"})
        if (std::getenv(v)) return true;
    return false;
}

LauncherCopies copies_the_launcher_started() {
    LauncherCopies most;
    const auto take = [&](const char* name) {
        const int n = count_in(name);
        if (n > most.count) most = {n, name};
    };
    take("PMI_SIZE");
    take("OMPI_COMM_WORLD_SIZE");
    take("MV2_COMM_WORLD_SIZE");
    // PMIx sets no size of its own in the environment; under srun the step's task count is it.
    if (std::getenv("PMIX_RANK")) take("SLURM_STEP_NUM_TASKS");
    return most;
}

std::string copies_apart_error(const LauncherCopies& copies, int ranks,
                               const std::string& library) {
    if (copies.count <= 1 || ranks > 1) return {};
    const std::string started = "the launcher started " + std::to_string(copies.count) +
                                " copies of embgeom (" + copies.variable + "=" +
                                std::to_string(copies.count) + ") but they did not join one MPI job";
    if (library == "built without MPI")
        return started + ": this embgeom is built without MPI (rebuild it with -DEMBGEOM_MPI=ON), "
                         "or start one copy";
    return started + ": this embgeom speaks " + library +
           ", and the launcher belongs to another MPI (or is an srun without a plugin this MPI "
           "speaks); launch it with its own MPI's mpiexec (`embgeom --version` names that MPI), "
           "or start one copy";
}

std::string srun_copies_apart_notice(int ranks) {
    const int tasks = count_in("SLURM_STEP_NUM_TASKS");
    const char* procid = std::getenv("SLURM_PROCID");
    if (ranks > 1 || tasks <= 1 || !procid || std::string(procid) != "0" ||
        started_by_mpi_launcher())
        return {};
    return "srun started " + std::to_string(tasks) +
           " tasks (SLURM_STEP_NUM_TASKS=" + std::to_string(tasks) +
           ") and this embgeom joined no MPI job: if each task runs embgeom, each runs the whole "
           "job alone (for one job of " +
           std::to_string(tasks) +
           " ranks, srun needs an MPI plugin: --mpi=pmix or --mpi=pmi2, as `srun --mpi=list` "
           "shows; for one copy, srun -n 1)";
}

}  // namespace embgeom::scaleout
