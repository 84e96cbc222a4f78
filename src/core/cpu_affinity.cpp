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

std::string thread_oversubscription_note(int threads, int cores, int sharing) {
    sharing = std::max(1, sharing);
    if (static_cast<long long>(threads) * sharing <= cores) return "";
    const std::string t = std::to_string(threads), c = std::to_string(cores);
    const std::string others =
        sharing == 1 ? ""
                     : ", as do " + std::to_string(sharing - 1) + " other rank" +
                           (sharing == 2 ? "" : "s") + " of this job with " + t + " each";
    return "--threads " + t + " but this process may run on " + c +
           (cores == 1 ? " core" : " cores") + " (its CPU affinity and CPU quota)" + others +
           ", so the threads take turns on " + (cores == 1 ? "it" : "them") +
           "; ask for fewer, or give each rank cores of its own: mpirun --map-by slot:PE=" + t +
           " (Open MPI, which binds each rank to one core by default), srun --cpus-per-task=" +
           t + " (Slurm), mpiexec -bind-to core:" + t + " (MPICH)";
}

}  // namespace embgeom
