#include "scaleout/rank_exchange.hpp"

#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "embgeom/errors.hpp"
#include "engine/all_pairs_merge.hpp"
#include "scaleout/job_ranks.hpp"

namespace embgeom::scaleout {
namespace {

using Bytes = std::vector<char>;

// MPI counts are ints: large results move in pieces of at most 1 GiB.
constexpr std::size_t kPiece = std::size_t{1} << 30;

class Packer {
  public:
    template <class T>
    void put(const T& v) {
        static_assert(std::is_trivially_copyable_v<T>, "plain values only");
        const char* p = reinterpret_cast<const char*>(&v);
        bytes.insert(bytes.end(), p, p + sizeof(T));
    }
    template <class T>
    void put(const std::vector<T>& v) {
        static_assert(std::is_trivially_copyable_v<T>, "plain values only");
        put(static_cast<std::uint64_t>(v.size()));
        const char* p = reinterpret_cast<const char*>(v.data());
        bytes.insert(bytes.end(), p, p + sizeof(T) * v.size());
    }
    void put(const std::string& s) {
        put(static_cast<std::uint64_t>(s.size()));
        bytes.insert(bytes.end(), s.begin(), s.end());
    }
    Bytes bytes;
};

class Unpacker {
  public:
    explicit Unpacker(const Bytes& b) : b_(b) {}
    template <class T>
    void get(T& v) {
        take(&v, sizeof(T));
    }
    template <class T>
    void get(std::vector<T>& v) {
        std::uint64_t n = 0;
        get(n);
        v.resize(n);
        take(v.data(), sizeof(T) * n);
    }
    void get(std::string& s) {
        std::uint64_t n = 0;
        get(n);
        s.resize(n);
        take(s.data(), n);
    }

  private:
    void take(void* out, std::size_t n) {
        EMBGEOM_EXPECTS(at_ + n <= b_.size(), "a packed result is whole");
        if (n) std::memcpy(out, b_.data() + at_, n);
        at_ += n;
    }
    const Bytes& b_;
    std::size_t at_ = 0;
};

void pack(Packer& p, const AllPairsResult& r) {
    p.put(r.rows);
    p.put(r.k);
    p.put(r.neighbor_index);
    p.put(r.neighbor_sim);
    p.put(r.row_mean);
    p.put(r.row_sum_tiled);
    p.put(r.histogram);
    p.put(r.pair_cos_sq_sum);
    p.put(r.normalized_sum);
    p.put(r.duplicates);
    p.put(r.duplicates_truncated);
    p.put(r.valid_rows);
    p.put(r.precision);
    p.put(r.gflop);
    p.put(r.seconds);
    p.put(static_cast<std::uint64_t>(r.phase_seconds.size()));
    for (const auto& [name, s] : r.phase_seconds) {
        p.put(name);
        p.put(s);
    }
}

void unpack(Unpacker& u, AllPairsResult& r) {
    u.get(r.rows);
    u.get(r.k);
    u.get(r.neighbor_index);
    u.get(r.neighbor_sim);
    u.get(r.row_mean);
    u.get(r.row_sum_tiled);
    u.get(r.histogram);
    u.get(r.pair_cos_sq_sum);
    u.get(r.normalized_sum);
    u.get(r.duplicates);
    u.get(r.duplicates_truncated);
    u.get(r.valid_rows);
    u.get(r.precision);
    u.get(r.gflop);
    u.get(r.seconds);
    std::uint64_t phases = 0;
    u.get(phases);
    r.phase_seconds.resize(phases);
    for (auto& [name, s] : r.phase_seconds) {
        u.get(name);
        u.get(s);
    }
}

void pack(Packer& p, const AllPairsPartial& s) {
    p.put(s.cos_sq_fixed);
    p.put(s.row_sums);
    p.put(s.duplicates_found);
    p.put(s.candidate_width);
    p.put(s.candidate_index);
    p.put(s.candidate_sim);
}

void unpack(Unpacker& u, AllPairsPartial& s) {
    u.get(s.cos_sq_fixed);
    u.get(s.row_sums);
    u.get(s.duplicates_found);
    u.get(s.candidate_width);
    u.get(s.candidate_index);
    u.get(s.candidate_sim);
}

void pack(Packer& p, const CslsNeighbors& c) {
    p.put(c.rows);
    p.put(c.k);
    p.put(c.index);
    p.put(c.score);
    p.put(c.valid_rows);
    p.put(c.resident);
}

void unpack(Unpacker& u, CslsNeighbors& c) {
    u.get(c.rows);
    u.get(c.k);
    u.get(c.index);
    u.get(c.score);
    u.get(c.valid_rows);
    u.get(c.resident);
}

constexpr int kShareTag = 7401;

void send_bytes(const Bytes& b, int to) {
    std::uint64_t n = b.size();
    MPI_Send(&n, 1, MPI_UINT64_T, to, kShareTag, MPI_COMM_WORLD);
    for (std::size_t at = 0; at < b.size(); at += kPiece)
        MPI_Send(b.data() + at, static_cast<int>(std::min(kPiece, b.size() - at)), MPI_BYTE, to,
                 kShareTag, MPI_COMM_WORLD);
}

Bytes receive_bytes(int from) {
    std::uint64_t n = 0;
    MPI_Recv(&n, 1, MPI_UINT64_T, from, kShareTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    Bytes b(n);
    for (std::size_t at = 0; at < b.size(); at += kPiece)
        MPI_Recv(b.data() + at, static_cast<int>(std::min(kPiece, b.size() - at)), MPI_BYTE, from,
                 kShareTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    return b;
}

void broadcast_bytes(Bytes& b, int root) {
    std::uint64_t n = b.size();
    MPI_Bcast(&n, 1, MPI_UINT64_T, root, MPI_COMM_WORLD);
    b.resize(n);
    for (std::size_t at = 0; at < b.size(); at += kPiece)
        MPI_Bcast(b.data() + at, static_cast<int>(std::min(kPiece, b.size() - at)), MPI_BYTE, root,
                  MPI_COMM_WORLD);
}

// Binomial tree to rank 0: at step s (1, 2, 4, ...) a rank r with r % 2s == s sends to r - s and
// is done; one with r % 2s == 0 receives from r + s (when it exists) and adds it in.
template <class Send, class ReceiveAndAdd>
void tree_to_root(Send send, ReceiveAndAdd receive_and_add) {
    const JobRanks& r = job_ranks();
    for (int step = 1; step < r.size; step *= 2) {
        if (r.rank % (2 * step) == step) {
            send(r.rank - step);
            return;
        }
        if (r.rank % (2 * step) == 0 && r.rank + step < r.size) receive_and_add(r.rank + step);
    }
}

}  // namespace

void broadcast_string(std::string& s, int root) {
    Bytes b(s.begin(), s.end());
    broadcast_bytes(b, root);
    s.assign(b.begin(), b.end());
}

void reduce_shares_to_root(AllPairsResult& share, AllPairsPartial& sums,
                           const AllPairsOptions& opt) {
    tree_to_root(
        [&](int to) {
            Packer p;
            pack(p, share);
            pack(p, sums);
            send_bytes(p.bytes, to);
        },
        [&](int from) {
            const Bytes b = receive_bytes(from);
            Unpacker u(b);
            AllPairsResult other;
            AllPairsPartial other_sums;
            unpack(u, other);
            unpack(u, other_sums);
            engine::absorb_share(share, sums, other, other_sums, opt);
        });
}

void reduce_csls_to_root(CslsNeighbors& share) {
    tree_to_root(
        [&](int to) {
            Packer p;
            pack(p, share);
            send_bytes(p.bytes, to);
        },
        [&](int from) {
            const Bytes b = receive_bytes(from);
            Unpacker u(b);
            CslsNeighbors other;
            unpack(u, other);
            EMBGEOM_EXPECTS(other.rows == share.rows && other.k == share.k,
                            "every rank's CSLS lists have one shape");
            engine::merge_neighbor_lists(share.rows, share.k, share.index, share.score,
                                         other.index, other.score);
            share.resident = share.resident && other.resident;
        });
}

void broadcast_from_root(AllPairsResult& result) {
    Packer p;
    if (job_ranks().root()) pack(p, result);
    broadcast_bytes(p.bytes, 0);
    if (!job_ranks().root()) {
        Unpacker u(p.bytes);
        unpack(u, result);
    }
}

void broadcast_from_root(CslsNeighbors& lists) {
    Packer p;
    if (job_ranks().root()) pack(p, lists);
    broadcast_bytes(p.bytes, 0);
    if (!job_ranks().root()) {
        Unpacker u(p.bytes);
        unpack(u, lists);
    }
}

}  // namespace embgeom::scaleout
