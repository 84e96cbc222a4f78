// The MPI side of job_ranks.hpp: initialisation, the job's ranks, and agreement on failures.
#include <mpi.h>
#include <sched.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <vector>

#include "scaleout/job_ranks.hpp"
#include "scaleout/launcher_env.hpp"
#include "scaleout/machine_ranks.hpp"
#include "scaleout/rank_exchange.hpp"

namespace embgeom::scaleout {
namespace {

JobRanks g_ranks;
int g_thread_level = MPI_THREAD_SINGLE;  // what MPI_Init_thread provided
MPI_Comm g_machine = MPI_COMM_NULL;  // the job's ranks on this machine

}  // namespace

MpiSession::MpiSession(int& argc, char**& argv) {
    // Without a launcher this is a plain process and MPI is left alone: a singleton MPI_Init can
    // be slow or fail where no process manager runs.
    if (!started_by_mpi_launcher()) return;
    // Threads call MPI one at a time: the main thread, and with --write-matrix the thread of an
    // engine sending its tiles or rank 0's thread receiving them (matrix_tiles.hpp).
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &g_thread_level);
    initialised_ = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_ranks.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_ranks.size);
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_ranks.rank, MPI_INFO_NULL,
                        &g_machine);
    MPI_Comm_rank(g_machine, &g_ranks.local_rank);
    MPI_Comm_size(g_machine, &g_ranks.local_size);
}

MpiSession::~MpiSession() {
    if (!initialised_) return;
    MPI_Comm_free(&g_machine);
    MPI_Finalize();
}

int ranks_on_this_machine_alike(int key) {
    if (!job_ranks().several()) return 1;
    MPI_Comm alike;
    MPI_Comm_split(g_machine, key, g_ranks.local_rank, &alike);
    int n = 1;
    MPI_Comm_size(alike, &n);
    MPI_Comm_free(&alike);
    return n;
}

int ranks_sharing_my_cores() {
    if (!job_ranks().several()) return 1;
    // Every rank's affinity mask, as words of bits, to every rank on the machine.
    constexpr int kWords = CPU_SETSIZE / 64;
    std::uint64_t mine[kWords] = {};
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE; ++c)
            if (CPU_ISSET(c, &set)) mine[c / 64] |= std::uint64_t{1} << (c % 64);
    std::vector<std::uint64_t> all(static_cast<std::size_t>(kWords) * g_ranks.local_size);
    MPI_Allgather(mine, kWords, MPI_UINT64_T, all.data(), kWords, MPI_UINT64_T, g_machine);
    int sharing = 0;
    for (int r = 0; r < g_ranks.local_size; ++r) {
        bool overlap = false;
        for (int w = 0; w < kWords; ++w) overlap |= (all[r * kWords + w] & mine[w]) != 0;
        sharing += overlap ? 1 : 0;
    }
    return std::max(sharing, 1);
}

const JobRanks& job_ranks() { return g_ranks; }

bool ranks_can_send_matrix_tiles() {
    return !g_ranks.several() || g_thread_level >= MPI_THREAD_SERIALIZED;
}

std::string mpi_library_version() {
    char text[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(text, &len);
    // Open MPI counts the terminating NUL in len; a NUL inside a message would cut it short.
    std::string first_line(text, strnlen(text, static_cast<std::size_t>(len)));
    if (const auto nl = first_line.find('\n'); nl != std::string::npos) first_line.resize(nl);
    // "MPICH Version:\t4.0.2" -> "MPICH Version: 4.0.2": one space between words.
    std::string s;
    for (const char c : first_line) {
        const bool blank = c == ' ' || c == '\t' || c == '\r';
        if (!blank) s += c;
        else if (!s.empty() && s.back() != ' ') s += ' ';
    }
    if (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

void agree(ExitCode code, const std::string& message) {
    const JobRanks& r = job_ranks();
    if (!r.several()) return;
    int mine = code == ExitCode::kOk ? r.size : r.rank;
    int first = r.size;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == r.size) return;
    // The first failing rank tells every rank its exit code and message.
    int what = static_cast<int>(code);
    MPI_Bcast(&what, 1, MPI_INT, first, MPI_COMM_WORLD);
    std::string text = r.rank == first ? message : std::string();
    broadcast_string(text, first);
    if (first != 0) text = "rank " + std::to_string(first) + ": " + text;
    throw RanksAgreedError(static_cast<ExitCode>(what), text);
}

void check_same_on_every_rank(const std::string& what, const std::string& text) {
    const JobRanks& r = job_ranks();
    if (!r.several()) return;
    agree();  // a rank that failed before meets the others here
    std::string root_text = text;
    broadcast_string(root_text, 0);
    std::string differs;
    if (root_text != text) {
        std::istringstream a(root_text), b(text);
        std::string la, lb;
        while (true) {
            const bool more_a = static_cast<bool>(std::getline(a, la));
            const bool more_b = static_cast<bool>(std::getline(b, lb));
            if (!more_a) la = "(nothing)";
            if (!more_b) lb = "(nothing)";
            if (la != lb || (!more_a && !more_b)) break;
        }
        differs = "another " + what + " than rank 0's (first difference: '" + lb +
                  "' against rank 0's '" + la + "'); every rank of one job must have the same";
    }
    agree(differs.empty() ? ExitCode::kOk : ExitCode::kUsage, differs);
}

}  // namespace embgeom::scaleout
