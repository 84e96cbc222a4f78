#include "scaleout/rank_exchange.hpp"

#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <new>
#include <optional>
#include <type_traits>
#include <vector>

#include "embgeom/errors.hpp"
#include "engine/all_pairs_merge.hpp"
#include "scaleout/job_ranks.hpp"

namespace embgeom::scaleout {
namespace {

using Bytes = std::vector<char>;

// MPI counts are ints, and a receiver without room for a result takes it a piece at a time into
// scratch (drain): results move in pieces of 64 MiB.
constexpr std::size_t kPiece = std::size_t{64} << 20;

// Writes values into bytes; Unpacker reads them back in the same order. Both are called through
// one field list per type (fields_of_*() below), so packing and unpacking cannot drift apart.
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

// The size a rank sends instead of its bytes when it has none to send (it failed before): the
// protocol still runs to its end on every rank, and the failure is agreed afterwards.
constexpr std::uint64_t kNothing = ~std::uint64_t{0};

int piece_size(std::size_t total, std::size_t at) {
    return static_cast<int>(std::min(kPiece, total - at));
}

// Takes every piece of an n-byte message the receiver has no room for, so that the sender, which
// waits for each piece to be taken, gets to its end; then reports the missing room.
template <class TakePiece>
[[noreturn]] void drain(std::uint64_t n, TakePiece take) {
    std::vector<char> scratch(std::min<std::uint64_t>(n, kPiece));
    for (std::uint64_t at = 0; at < n; at += kPiece) take(scratch.data(), piece_size(n, at));
    throw std::bad_alloc();
}

Bytes allocate_or_drain(std::uint64_t n, const std::function<void(char*, int)>& take) {
    try {
        return Bytes(n);
    } catch (const std::bad_alloc&) {
        drain(n, take);
    }
}

void send_bytes(const Bytes* b, int to) {
    const std::uint64_t n = b ? b->size() : kNothing;
    MPI_Send(&n, 1, MPI_UINT64_T, to, kShareTag, MPI_COMM_WORLD);
    if (!b) return;
    for (std::size_t at = 0; at < b->size(); at += kPiece)
        MPI_Send(b->data() + at, piece_size(b->size(), at), MPI_BYTE, to, kShareTag,
                 MPI_COMM_WORLD);
}

// The bytes `from` sent, or nothing when it had none (it failed).
std::optional<Bytes> receive_bytes(int from) {
    std::uint64_t n = 0;
    MPI_Recv(&n, 1, MPI_UINT64_T, from, kShareTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (n == kNothing) return std::nullopt;
    const auto take = [from](char* p, int count) {
        MPI_Recv(p, count, MPI_BYTE, from, kShareTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    };
    Bytes b = allocate_or_drain(n, take);
    for (std::size_t at = 0; at < b.size(); at += kPiece) take(b.data() + at, piece_size(n, at));
    return b;
}

// root's bytes to every rank: b on the others, or nothing there when root had none.
bool broadcast_bytes(Bytes* b, int root) {
    std::uint64_t n = b ? b->size() : kNothing;
    MPI_Bcast(&n, 1, MPI_UINT64_T, root, MPI_COMM_WORLD);
    if (n == kNothing) return false;
    const auto take = [root](char* p, int count) {
        MPI_Bcast(p, count, MPI_BYTE, root, MPI_COMM_WORLD);
    };
    if (job_ranks().rank != root) *b = allocate_or_drain(n, take);
    for (std::size_t at = 0; at < b->size(); at += kPiece) take(b->data() + at, piece_size(n, at));
    return true;
}

// Binomial tree to rank 0: at step s (1, 2, 4, ...) a rank r with r % 2s == s sends to r - s and
// is done; one with r % 2s == 0 receives from r + s (when it exists) and adds it in. Each rank
// runs its part to the end even when something fails (a rank that failed sends nothing; one that
// cannot add a share goes on receiving), since its neighbours wait for its messages; the first
// failure is rethrown afterwards, for the caller to agree on. pack() gives this rank's bytes,
// add(bytes) adds a share received.
template <class Pack, class Add>
void tree_to_root(Pack pack_mine, Add add) {
    const JobRanks& r = job_ranks();
    std::exception_ptr failure;
    for (int step = 1; step < r.size; step *= 2) {
        if (r.rank % (2 * step) == step) {
            std::optional<Bytes> mine;
            if (!failure) try {
                    mine = pack_mine();
                } catch (...) {
                    failure = std::current_exception();
                }
            send_bytes(mine ? &*mine : nullptr, r.rank - step);
            break;
        }
        if (r.rank % (2 * step) != 0 || r.rank + step >= r.size) continue;
        try {
            const std::optional<Bytes> theirs = receive_bytes(r.rank + step);
            if (theirs && !failure) add(*theirs);
        } catch (...) {
            if (!failure) failure = std::current_exception();
        }
    }
    if (failure) std::rethrow_exception(failure);
}

template <class... T>
Bytes packed(const T&... values) {
    Packer p;
    (pack(p, values), ...);
    return std::move(p.bytes);
}

template <class... T>
void unpacked(const Bytes& b, T&... values) {
    Unpacker u(b);
    (unpack(u, values), ...);
}

}  // namespace

std::vector<std::string> gather_strings_to_root(const std::string& s) {
    const JobRanks& r = job_ranks();
    const int mine = static_cast<int>(s.size());
    std::vector<int> sizes(r.root() ? static_cast<std::size_t>(r.size) : 0);
    MPI_Gather(&mine, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
    std::vector<int> offsets(sizes.size());
    int total = 0;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        offsets[i] = total;
        total += sizes[i];
    }
    std::string all(static_cast<std::size_t>(total), '\0');
    MPI_Gatherv(s.data(), mine, MPI_CHAR, all.data(), sizes.data(), offsets.data(), MPI_CHAR, 0,
                MPI_COMM_WORLD);
    std::vector<std::string> out;
    for (std::size_t i = 0; i < sizes.size(); ++i)
        out.push_back(all.substr(static_cast<std::size_t>(offsets[i]),
                                 static_cast<std::size_t>(sizes[i])));
    return out;
}

void broadcast_string(std::string& s, int root) {
    Bytes b(s.begin(), s.end());
    broadcast_bytes(&b, root);
    s.assign(b.begin(), b.end());
}

void reduce_shares_to_root(AllPairsResult& share, AllPairsPartial& sums,
                           const AllPairsOptions& opt) {
    tree_to_root([&] { return packed(share, sums); },
                 [&](const Bytes& b) {
                     AllPairsResult other;
                     AllPairsPartial other_sums;
                     unpacked(b, other, other_sums);
                     engine::absorb_share(share, sums, other, other_sums, opt);
                 });
}

void reduce_csls_to_root(CslsNeighbors& share) {
    tree_to_root([&] { return packed(share); },
                 [&](const Bytes& b) {
                     CslsNeighbors other;
                     unpacked(b, other);
                     engine::absorb_csls_share(share, other);
                 });
}

namespace {

// Root packs, every rank takes part in the broadcast whatever happens, then the first failure
// here is rethrown (root's: it could not pack; the others': nothing came, or no room for it).
template <class T>
void broadcast_packed(T& value) {
    const bool root = job_ranks().root();
    std::exception_ptr failure;
    std::optional<Bytes> bytes;
    if (root) try {
            bytes = packed(value);
        } catch (...) {
            failure = std::current_exception();
        }
    if (!root) bytes.emplace();
    try {
        if (!broadcast_bytes(bytes ? &*bytes : nullptr, 0) && !root)
            throw ResourceError("rank 0 sent no result");
        if (!root) unpacked(*bytes, value);
    } catch (...) {
        if (!failure) failure = std::current_exception();
    }
    if (failure) std::rethrow_exception(failure);
}

}  // namespace

void broadcast_from_root(AllPairsResult& result) { broadcast_packed(result); }
void broadcast_from_root(CslsNeighbors& lists) { broadcast_packed(lists); }

}  // namespace embgeom::scaleout
