#pragma once
// How many cores this process may run on, the thread count a job takes by default, and the note
// a job prints when it asks for more threads than that. A process bound to fewer cores than its
// threads (a cpuset, taskset, an MPI launcher's binding: Open MPI binds each rank to one core by
// default) runs its threads on those cores in turn, and one under a CPU quota (Docker --cpus,
// a Kubernetes CPU limit) is throttled in every time slice: the same results, many times slower,
// and nothing else would say why.
#include <string>

namespace embgeom {

/// The cores in this process's CPU affinity mask, capped by its control group's CPU quota
/// (rounded down; at least 1).
int cores_this_process_may_use();

/// What --threads 0 means: OMP_NUM_THREADS where it is set (OpenMP's own count), else
/// cores_this_process_may_use() (OpenMP alone would count the affinity mask but not a quota)
/// split between the `sharing` processes that may run on those cores (MPI ranks that the
/// launcher did not bind apart), at least 1.
int default_thread_count(int sharing = 1);

/// "" when `threads` (0: the default count) on each of `sharing` processes fit `cores`; else one
/// line saying that the threads take turns on the cores and how to give each rank its own.
std::string thread_oversubscription_note(int threads, int cores, int sharing = 1);

}  // namespace embgeom
