#pragma once
// How many cores this process may run on, and the note a job prints when it asks for more
// threads than that. A process bound to fewer cores than its threads (a cpuset, taskset, an MPI
// launcher's binding: Open MPI binds each rank to one core by default) runs its threads on those
// cores in turn: the same results, many times slower, and nothing else would say why.
#include <string>

namespace embgeom {

/// The cores in this process's CPU affinity mask (at least 1).
int cores_this_process_may_use();

/// "" when `threads` (0: one per core this process may use) fits `cores`; else one line saying
/// that the threads share the cores and how an MPI launcher is told to give a rank more.
std::string thread_oversubscription_note(int threads, int cores);

}  // namespace embgeom
