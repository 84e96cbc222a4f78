// share_between_ranks: a Backend whose all-pairs and CSLS passes are shared by the job's ranks.
// Every other call runs on this rank's backend as it is (each rank computes it whole).
//
// One pass, on every rank in the same order (every rank runs the same job, so the passes match):
//  1. the ranks agree on the device bytes to plan with (the least any has), so that their CUDA
//     engines make one plan and deal its tile pairs alike;
//  2. each computes its share (Backend::all_pairs_share), deferring any re-score;
//  3. agree: a rank whose share failed stops every rank with its error;
//  4. the shares are added up on rank 0 (rank_exchange.hpp), agree, then rank 0 finishes the
//     result and, on a re-scored path, re-scores the merged candidates once on its backend;
//  5. agree again (rank 0's finish may fail), then rank 0's result goes to every rank, and a last
//     agreement (a rank may have had no room for it). Transfers never leave a rank waiting:
//     each runs to its end on every rank before its failure is agreed.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>

#include <unistd.h>

#include "engine/all_pairs_merge.hpp"
#include "engine/precision_policy.hpp"
#include "geometry/csls.hpp"
#include "geometry/extremeness.hpp"
#include "scaleout/job_ranks.hpp"
#include "scaleout/machine_ranks.hpp"
#include "scaleout/matrix_tiles.hpp"
#include "scaleout/rank_exchange.hpp"

namespace embgeom::scaleout {
namespace {

// Runs step; on failure agrees it (every rank stops with the first failing rank's error), and on
// success agrees too, since another rank may have failed.
void agreed_step(const std::function<void()>& step) {
    Failure failure{ExitCode::kOk, {}};
    try {
        step();
    } catch (const RanksAgreedError&) {
        throw;
    } catch (...) {
        failure = failure_of(std::current_exception());
    }
    agree(failure.code, failure.message);
}

// The word before the first space of a backend's name: "cpu", "cuda".
std::string kind_of(const Backend& b) {
    const std::string n = b.name();
    return n.substr(0, n.find(' '));
}

class RankedBackend final : public Backend {
  public:
    // ranks_sharing_memory: ranks of the job whose backend plans with the same device memory
    // (on one GPU), which split it.
    RankedBackend(std::unique_ptr<Backend> local, int ranks_sharing_memory)
        : local_(std::move(local)), ranks_sharing_memory_(std::max(1, ranks_sharing_memory)) {}

    std::string name() const override {
        const JobRanks& r = job_ranks();
        return local_->name() + ", all-pairs shared by " + std::to_string(r.size) + " MPI ranks";
    }
    void prepare() override { local_->prepare(); }
    // Ranks sharing a GPU do not hold the table there: each would see the GPU's free memory,
    // not its part of it, and they could race for it. Their passes upload the rows instead (the
    // same bits: HeldTable.* in the GPU tests).
    bool hold_table(RowSource& source, const AllPairsOptions& engine) override {
        if (ranks_sharing_memory_ > 1) return false;
        return local_->hold_table(source, engine);
    }
    void release_table() override { local_->release_table(); }
    bool holds_table(const RowSource& source) const override { return local_->holds_table(source); }
    std::string held_table_dtype() const override { return local_->held_table_dtype(); }
    void row_norms_and_sums(const TableBlock& block, float* norms, std::uint8_t* finite,
                            double* column_sums) override {
        local_->row_norms_and_sums(block, norms, finite, column_sums);
    }
    void distances_to_points(const TableBlock& block, const std::vector<const double*>& points,
                             const std::vector<float*>& out) override {
        local_->distances_to_points(block, points, out);
    }

    AllPairsResult all_pairs(RowSource& source, const std::vector<std::uint8_t>& valid,
                             const AllPairsOptions& opt) override {
        const auto start = std::chrono::steady_clock::now();
        const WorkShare share = this_share();
        AllPairsResult result;
        AllPairsPartial sums;
        agreed_step([&] { result = share_writing_matrix(source, valid, opt, share, sums); });
        agreed_step([&] { reduce_shares_to_root(result, sums, opt); });
        agreed_step([&] {
            if (!job_ranks().root()) return;
            engine::finish_shares(result, sums, valid, opt);
            if (engine::is_rescored(result.precision) && sums.candidate_width > 0)
                local_->rescore_candidates(source, valid, opt.center, sums.candidate_index,
                                           sums.candidate_width, result.k,
                                           result.neighbor_index.data(),
                                           result.neighbor_sim.data());
        });
        agreed_step([&] { broadcast_from_root(result); });
        result.seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return result;
    }

    AllPairsResult all_pairs_share(RowSource& source, const std::vector<std::uint8_t>& valid,
                                   const AllPairsOptions& opt, const WorkShare& share,
                                   AllPairsPartial& partial) override {
        return local_->all_pairs_share(source, valid, opt, share, partial);
    }
    std::uint64_t all_pairs_plan_bytes() override { return local_->all_pairs_plan_bytes(); }
    void rescore_candidates(RowSource& source, const std::vector<std::uint8_t>& valid,
                            const std::optional<std::vector<double>>& center,
                            const std::vector<std::int64_t>& cand_index, int kc, std::int64_t k,
                            std::int64_t* out_index, float* out_sim) override {
        local_->rescore_candidates(source, valid, center, cand_index, kc, k, out_index, out_sim);
    }

    std::unique_ptr<GramAccumulator> gram_accumulator(std::int64_t d,
                                                      const std::vector<double>& shift) override {
        return local_->gram_accumulator(d, shift);
    }
    void symmetric_eigen(std::int64_t d, std::vector<double>& a,
                         std::vector<double>& eigenvalues) override {
        local_->symmetric_eigen(d, a, eigenvalues);
    }

    CslsNeighbors csls_neighbors(RowSource& source, const std::vector<std::uint8_t>& valid,
                                 const std::vector<float>& radius, std::int64_t k,
                                 const AllPairsOptions& opt) override {
        const WorkShare share = this_share();
        CslsNeighbors lists;
        agreed_step([&] { lists = local_->csls_neighbors_share(source, valid, radius, k, opt, share); });
        agreed_step([&] { reduce_csls_to_root(lists); });
        agreed_step([&] { broadcast_from_root(lists); });
        return lists;
    }
    CslsNeighbors csls_neighbors_share(RowSource& source, const std::vector<std::uint8_t>& valid,
                                       const std::vector<float>& radius, std::int64_t k,
                                       const AllPairsOptions& opt,
                                       const WorkShare& share) override {
        return local_->csls_neighbors_share(source, valid, radius, k, opt, share);
    }

    Extremeness extremeness(RowSource& source, const std::vector<std::uint8_t>& valid,
                            const ExtremenessOptions& opt) override {
        return local_->extremeness(source, valid, opt);
    }

  private:
    // This rank's share of the pass; with a matrix, its tiles go to rank 0's file (rank 0 writes
    // every rank's as they come) and the pass ends only when rank 0 has written them all.
    AllPairsResult share_writing_matrix(RowSource& source, const std::vector<std::uint8_t>& valid,
                                        const AllPairsOptions& opt, const WorkShare& share,
                                        AllPairsPartial& sums) {
        if (!opt.matrix) return local_->all_pairs_share(source, valid, opt, share, sums);
        MatrixToRoot matrix(*opt.matrix);
        AllPairsOptions mine = opt;
        mine.matrix = matrix.sink();
        AllPairsResult result;
        try {
            result = local_->all_pairs_share(source, valid, mine, share, sums);
        } catch (...) {
            matrix.end_after_failure();
            throw;
        }
        matrix.end();
        return result;
    }

    // This rank's share, with the device bytes every rank plans with (0 from a CPU backend:
    // its plan needs no agreement).
    WorkShare this_share() {
        const JobRanks& r = job_ranks();
        WorkShare share;
        share.index = r.rank;
        share.count = r.size;
        std::uint64_t bytes = 0;
        agreed_step([&] { bytes = local_->all_pairs_plan_bytes() / ranks_sharing_memory_; });
        std::uint64_t least = 0;
        MPI_Allreduce(&bytes, &least, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
        if (least > 0) share.device_bytes = least;
        return share;
    }

    std::unique_ptr<Backend> local_;
    int ranks_sharing_memory_;
};

std::vector<std::string> g_rank_backends;  // rank_backends(), on rank 0

}  // namespace

const std::vector<std::string>& rank_backends() { return g_rank_backends; }

std::unique_ptr<Backend> share_between_ranks(std::unique_ptr<Backend> local, int device) {
    const JobRanks& r = job_ranks();
    if (!r.several()) return local;
    // Every rank must run the same kind of backend: the CPU and CUDA deal different tiles.
    agree();  // every collective step starts here: a rank that failed before stops them all
    const std::string mine = kind_of(*local);
    std::string root_kind = mine;
    broadcast_string(root_kind, 0);
    const std::string differs =
        mine == root_kind ? std::string()
                          : "this rank runs the " + mine + " backend and rank 0 the " + root_kind +
                                " backend; every rank must run the same one (give --backend " +
                                root_kind + " or --backend cpu; `embgeom devices` on this rank's "
                                "machine says why it runs another)";
    agree(differs.empty() ? ExitCode::kOk : ExitCode::kUsage, differs);
    // Which machine and device computed each share, for the output's provenance.
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "?");
    const int gpu = std::max(0, device);
    const std::vector<std::string> each = gather_strings_to_root(
        std::string(host) + ": " + local->name() +
        (mine == "cuda" ? ", device " + std::to_string(gpu) : std::string()));
    g_rank_backends.clear();
    for (std::size_t i = 0; i < each.size(); ++i)
        g_rank_backends.push_back("rank " + std::to_string(i) + " on " + each[i]);
    // Ranks on one GPU (more ranks than GPUs on a machine, or --devices N) split its memory.
    const int sharing = mine == "cuda" ? ranks_on_this_machine_alike(gpu) : 1;
    return std::make_unique<RankedBackend>(std::move(local), sharing);
}

}  // namespace embgeom::scaleout
