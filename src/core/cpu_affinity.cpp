#include "core/cpu_affinity.hpp"

#include <sched.h>

#include <algorithm>

namespace embgeom {

int cores_this_process_may_use() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    return std::max(1, CPU_COUNT(&set));
}

std::string thread_oversubscription_note(int threads, int cores) {
    if (threads <= cores) return "";
    const std::string t = std::to_string(threads), c = std::to_string(cores);
    return "--threads " + t + " but this process may run on " + c +
           (cores == 1 ? " core" : " cores") +
           " (its CPU affinity), so its threads take turns on " + (cores == 1 ? "it" : "them") +
           "; an MPI launcher binds ranks to cores (Open MPI: one core per rank by default): "
           "give each rank its cores, e.g. mpirun --map-by slot:PE=" + t +
           " (Open MPI), srun --cpus-per-task=" + t + " (Slurm), or --bind-to none";
}

}  // namespace embgeom
