#include "core/cpu_affinity.hpp"

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "core/cgroup_limits.hpp"

namespace embgeom {

int cores_this_process_may_use() {
    int cores = 1;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) cores = std::max(1, CPU_COUNT(&set));
    if (const auto quota = this_process_cpu_limit())
        cores = std::min(cores, std::max(1, static_cast<int>(std::floor(*quota))));
    return cores;
}

int default_thread_count(int sharing) {
    if (std::getenv("OMP_NUM_THREADS")) return std::max(1, omp_get_max_threads());
    return std::max(1, cores_this_process_may_use() / std::max(1, sharing));
}

std::string thread_oversubscription_note(int threads, int cores) {
    if (threads <= cores) return "";
    const std::string t = std::to_string(threads), c = std::to_string(cores);
    return "--threads " + t + " but this process may run on " + c +
           (cores == 1 ? " core" : " cores") +
           " (its CPU affinity and CPU quota), so its threads take turns on " +
           (cores == 1 ? "it" : "them") +
           "; an MPI launcher binds ranks to cores (Open MPI: one core per rank by default): "
           "give each rank its cores, e.g. mpirun --map-by slot:PE=" + t +
           " (Open MPI), srun --cpus-per-task=" + t + " (Slurm), or --bind-to none";
}

}  // namespace embgeom
