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

// Writes values into bytes; Unpacker reads them back in the same order. Both are called through
// one field list per type (fields() below), so packing and unpacking cannot drift apart.
class Packer {
  public:
    template <class T>
    void operator()(const T& v) {
        static_assert(std::is_trivially_copyable_v<T>, "plain values only");
        const char* p = reinterpret_cast<const char*>(&v);
        bytes.insert(bytes.end(), p, p + sizeof(T));
    }
    template <class T>
    void operator()(const std::vector<T>& v) {
        static_assert(std::is_trivially_copyable_v<T>, "plain values only");
        (*this)(static_cast<std::uint64_t>(v.size()));
        const char* p = reinterpret_cast<const char*>(v.data());
        bytes.insert(bytes.end(), p, p + sizeof(T) * v.size());
    }
    void operator()(const std::vector<std::pair<std::string, double>>& v) {
        (*this)(static_cast<std::uint64_t>(v.size()));
        for (const auto& [name, value] : v) {
            (*this)(static_cast<std::uint64_t>(name.size()));
            bytes.insert(bytes.end(), name.begin(), name.end());
            (*this)(value);
        }
    }
    Bytes bytes;
};

class Unpacker {
  public:
    explicit Unpacker(const Bytes& b) : b_(b) {}
    template <class T>
    void operator()(T& v) {
        take(&v, sizeof(T));
    }
    template <class T>
    void operator()(std::vector<T>& v) {
        v.resize(size());
        take(v.data(), sizeof(T) * v.size());
    }
    void operator()(std::vector<std::pair<std::string, double>>& v) {
        v.resize(size());
        for (auto& [name, value] : v) {
            name.resize(size());
            take(name.data(), name.size());
            (*this)(value);
        }
    }

  private:
    std::uint64_t size() {
        std::uint64_t n = 0;
        (*this)(n);
        return n;
    }
    void take(void* out, std::size_t n) {
        EMBGEOM_EXPECTS(at_ + n <= b_.size(), "a packed result is whole");
        if (n) std::memcpy(out, b_.data() + at_, n);
        at_ += n;
    }
    const Bytes& b_;
    std::size_t at_ = 0;
};

// The fields that travel, once per type, for Packer (R const) and Unpacker alike.
template <class Io, class R>
void fields_of_result(Io& io, R& r) {
    io(r.rows), io(r.k), io(r.neighbor_index), io(r.neighbor_sim), io(r.row_mean);
    io(r.row_sum_tiled), io(r.histogram), io(r.pair_cos_sq_sum), io(r.normalized_sum);
    io(r.duplicates), io(r.duplicates_truncated), io(r.valid_rows), io(r.precision);
    io(r.gflop), io(r.seconds), io(r.phase_seconds);
}
template <class Io, class S>
void fields_of_sums(Io& io, S& s) {
    io(s.cos_sq_fixed), io(s.row_sums), io(s.duplicates_found), io(s.candidate_width);
    io(s.candidate_index), io(s.candidate_sim);
}
template <class Io, class C>
void fields_of_csls(Io& io, C& c) {
    io(c.rows), io(c.k), io(c.index), io(c.score), io(c.valid_rows), io(c.resident);
}
void pack(Packer& p, const AllPairsResult& r) { fields_of_result(p, r); }
void unpack(Unpacker& u, AllPairsResult& r) { fields_of_result(u, r); }
void pack(Packer& p, const AllPairsPartial& s) { fields_of_sums(p, s); }
void unpack(Unpacker& u, AllPairsPartial& s) { fields_of_sums(u, s); }
void pack(Packer& p, const CslsNeighbors& c) { fields_of_csls(p, c); }
void unpack(Unpacker& u, CslsNeighbors& c) { fields_of_csls(u, c); }

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

template <class... T>
void send_packed(int to, const T&... values) {
    Packer p;
    (pack(p, values), ...);
    send_bytes(p.bytes, to);
}

template <class... T>
void receive_packed(int from, T&... values) {
    const Bytes b = receive_bytes(from);
    Unpacker u(b);
    (unpack(u, values), ...);
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
        [&](int to) { send_packed(to, share, sums); },
        [&](int from) {
            AllPairsResult other;
            AllPairsPartial other_sums;
            receive_packed(from, other, other_sums);
            engine::absorb_share(share, sums, other, other_sums, opt);
        });
}

void reduce_csls_to_root(CslsNeighbors& share) {
    tree_to_root(
        [&](int to) { send_packed(to, share); },
        [&](int from) {
            CslsNeighbors other;
            receive_packed(from, other);
            EMBGEOM_EXPECTS(other.rows == share.rows && other.k == share.k,
                            "every rank's CSLS lists have one shape");
            engine::merge_neighbor_lists(share.rows, share.k, share.index, share.score,
                                         other.index, other.score);
            share.resident = share.resident && other.resident;
        });
}

namespace {

template <class T>
void broadcast_packed(T& value) {
    Packer p;
    if (job_ranks().root()) pack(p, value);
    broadcast_bytes(p.bytes, 0);
    if (!job_ranks().root()) {
        Unpacker u(p.bytes);
        unpack(u, value);
    }
}

}  // namespace

void broadcast_from_root(AllPairsResult& result) { broadcast_packed(result); }
void broadcast_from_root(CslsNeighbors& lists) { broadcast_packed(lists); }

}  // namespace embgeom::scaleout
