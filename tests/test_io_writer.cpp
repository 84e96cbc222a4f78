// ResultFile: every writer read back by h5py, the square matrix sink (float32 and float16), and
// the atomic temp-file-then-rename behaviour.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "embgeom/errors.hpp"
#include "io/result_file.hpp"
#include "support/test_support.hpp"

namespace {

using embgeom::MatrixDtype;
using embgeom::MatrixView;
using embgeom::ResourceError;
using embgeom::ResultFile;
using namespace embgeom::test;

std::set<std::string> folder_entries(const std::string& dir) {
    std::set<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        names.insert(e.path().filename().string());
    return names;
}

std::string temp_name(const std::string& base) {
    return "." + base + ".tmp." + std::to_string(::getpid());
}

TEST(IoWriter, EveryWriterReadsBackInH5py) {
    TempDir dir;
    const std::string out = dir.file("out.h5");
    {
        ResultFile rf(out);
        EXPECT_EQ(rf.final_path(), out);
        rf.write("/v/f32", std::vector<float>{1.5f, -0.0f, INFINITY, NAN});
        rf.write("/v/f64", std::vector<double>{1e300, -2.5});
        rf.write("/v/i64", std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min(), -1,
                                                     std::numeric_limits<std::int64_t>::max()});
        rf.write("v/i32", std::vector<std::int32_t>{std::numeric_limits<std::int32_t>::min(), 7});
        rf.write("/empty/f32", std::vector<float>{});
        rf.write("/empty/f64", std::vector<double>{});
        rf.write("/empty/i64", std::vector<std::int64_t>{});
        rf.write("/empty/i32", std::vector<std::int32_t>{});
        rf.write_strings("/vocab/tokens",
                         {"\xC4\xA0the", "\xE6\x97\xA5\xE6\x9C\xAC", "\xC3\xA9", "", "a b"});
        rf.write_strings("/empty/strings", {});
        const float m[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11.5f};
        rf.write_matrix("/m/f32", m, 3, 4);
        const std::int64_t idx[6] = {-1, 0, 1, 2, 3, 1ll << 40};
        rf.write_matrix("/m/i64", idx, 2, 3);
        rf.write_matrix("/m/empty", static_cast<const float*>(nullptr), 0, 5);
        rf.write_matrix("/m/empty_i64", static_cast<const std::int64_t*>(nullptr), 4, 0);
        rf.set_attribute("/", "config",
                         std::string("input = \"\xE6\x97\xA5\xE6\x9C\xAC.h5\"\ntopk = 10\n"));
        rf.set_attribute("/", "format_version", std::int64_t{3});
        rf.set_attribute("/", "format_version", std::int64_t{4});  // replaces
        rf.set_attribute("/", "seconds", 1.25);
        rf.set_attribute("/v/f32", "units", std::string("cosine"));  // on a dataset
        rf.set_attribute("/meta/run", "rows", std::int64_t{42});     // creates the groups
        rf.set_attribute("meta", "backend", std::string("cpu"));
        rf.write_outliers("/outliers/norm_high", {{5, "\xC4\xA0the", 3.5, 2.25},
                                                  {9, "\xE6\x97\xA5\xE6\x9C\xAC", -1.0, NAN}});
        rf.write_outliers("/outliers/empty", {});
        rf.write_pairs("/outliers/near_duplicates",
                       {{1, 2, "\xC3\xA9", "e\xCC\x81", 0.9995}, {3, 70000, "", "x", 1.0}});
        rf.write_pairs("/outliers/no_pairs", {});
        // Nothing is at the final path until commit().
        EXPECT_FALSE(file_exists(out));
        EXPECT_TRUE(file_exists(dir.file(temp_name("out.h5"))));
        rf.commit();
    }
    EXPECT_EQ(folder_entries(dir.path()), std::set<std::string>{"out.h5"});
    EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);  // commit closed every handle
    const CommandResult r = run_python(R"(
import sys, math, numpy as np, h5py
def s(x):
    return x.decode('utf-8') if isinstance(x, bytes) else x
with h5py.File(sys.argv[1], 'r') as f:
    a = f['v/f32']
    assert a.dtype == np.dtype('<f4'), a.dtype
    a = a[...]
    assert a[0] == 1.5 and a[1] == 0 and math.copysign(1, a[1]) < 0 and a[2] == np.inf and np.isnan(a[3]), a
    assert f['v/f64'].dtype == np.dtype('<f8') and list(f['v/f64'][...]) == [1e300, -2.5]
    assert f['v/i64'].dtype == np.dtype('<i8')
    assert list(f['v/i64'][...]) == [-2**63, -1, 2**63 - 1]
    assert f['v/i32'].dtype == np.dtype('<i4') and list(f['v/i32'][...]) == [-2**31, 7]
    for name, dt in [('f32', '<f4'), ('f64', '<f8'), ('i64', '<i8'), ('i32', '<i4')]:
        assert f['empty/' + name].shape == (0,) and f['empty/' + name].dtype == np.dtype(dt), name
    t = f['vocab/tokens']
    info = h5py.check_string_dtype(t.dtype)
    assert info.encoding == 'utf-8' and info.length is None, info
    assert list(t.asstr()[...]) == ['Ġthe', '日本', 'é', '', 'a b']
    assert f['empty/strings'].shape == (0,) and h5py.check_string_dtype(f['empty/strings'].dtype)
    assert f['m/f32'].dtype == np.dtype('<f4')
    assert (f['m/f32'][...] == np.array([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11.5]])).all()
    assert f['m/i64'].dtype == np.dtype('<i8')
    assert (f['m/i64'][...] == np.array([[-1, 0, 1], [2, 3, 2**40]])).all()
    assert f['m/empty'].shape == (0, 5) and f['m/empty_i64'].shape == (4, 0)
    assert s(f.attrs['config']) == 'input = "日本.h5"\ntopk = 10\n', f.attrs['config']
    assert isinstance(f.attrs['config'], str)
    assert f.attrs['format_version'] == 4 and f.attrs['format_version'].dtype == np.dtype('<i8')
    assert f.attrs['seconds'] == 1.25 and f.attrs['seconds'].dtype == np.dtype('<f8')
    assert s(f['v/f32'].attrs['units']) == 'cosine'
    assert isinstance(f['meta/run'], h5py.Group) and f['meta/run'].attrs['rows'] == 42
    assert s(f['meta'].attrs['backend']) == 'cpu'
    o = f['outliers/norm_high']
    assert o.dtype.names == ('token_id', 'token', 'score', 'zscore'), o.dtype
    assert o.dtype['token_id'] == np.dtype('<i8') and o.dtype['score'] == np.dtype('<f8')
    assert h5py.check_string_dtype(o.dtype['token']).encoding == 'utf-8'
    o = o[...]
    assert list(o['token_id']) == [5, 9] and [s(x) for x in o['token']] == ['Ġthe', '日本']
    assert list(o['score']) == [3.5, -1.0] and o['zscore'][0] == 2.25 and np.isnan(o['zscore'][1])
    assert f['outliers/empty'].shape == (0,)
    assert f['outliers/empty'].dtype.names == ('token_id', 'token', 'score', 'zscore')
    p = f['outliers/near_duplicates']
    assert p.dtype.names == ('token_id_a', 'token_id_b', 'token_a', 'token_b', 'cosine'), p.dtype
    p = p[...]
    assert list(p['token_id_a']) == [1, 3] and list(p['token_id_b']) == [2, 70000]
    assert [s(x) for x in p['token_a']] == ['é', ''] and [s(x) for x in p['token_b']] == ['e\u0301', 'x']
    assert list(p['cosine']) == [0.9995, 1.0]
    assert f['outliers/no_pairs'].shape == (0,)
print('ok')
)",
                                       shell_quote(out));
    EXPECT_EQ(r.out, "ok\n");
}

// A symmetric n x n matrix with every case the float16 conversion must get right.
std::vector<float> symmetric_reference(std::int64_t n, std::uint64_t seed) {
    std::vector<float> m = random_table(n, n, seed);
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < i; ++j) m[i * n + j] = m[j * n + i];
    const auto put = [&](std::int64_t i, std::int64_t j, float v) {
        m[i * n + j] = v;
        m[j * n + i] = v;
    };
    put(0, 1, 65520.0f);               // rounds to inf in float16
    put(2, 3, 65519.0f);               // rounds to 65504
    put(4, 5, std::ldexp(1.0f, -25));  // tie: rounds to 0
    put(5, 6, std::ldexp(3.0f, -26));  // rounds to the least subnormal
    put(8, 9, -INFINITY);
    put(10, 11, 1.0f + std::ldexp(1.0f, -11));  // tie: rounds to even (1.0)
    put(12, 13, -0.0f);
    for (std::int64_t j = 0; j < n; ++j) put(7, j, NAN);  // an invalid token's row and column
    return m;
}

// Feeds the matrix to the sink the way the all-pairs engine does: upper tiles only (row0 <= col0),
// as views into a larger buffer (ld = n), with edge tiles smaller than the rest.
// The upper-triangle tiles of m, or those of every `stride`-th one from `first` (one thread's).
void write_upper_tiles(embgeom::MatrixSink& sink, const std::vector<float>& m, std::int64_t n,
                       std::int64_t block, int first = 0, int stride = 1) {
    int ordinal = 0;
    for (std::int64_t r0 = 0; r0 < n; r0 += block)
        for (std::int64_t c0 = r0; c0 < n; c0 += block)
            if (ordinal++ % stride == first)
                sink.write_tile(r0, c0,
                            MatrixView<const float>(m.data() + r0 * n + c0, std::min(block, n - r0),
                                                    std::min(block, n - c0), n));
}

TEST(IoWriter, SquareMatrixFromTilesFloat32AndFloat16) {
    TempDir dir;
    const std::string out = dir.file("matrix.h5");
    const std::int64_t n = 300;  // 256-chunks: one full, one partial; 128-tiles: 128, 128, 44
    const std::vector<float> ref = symmetric_reference(n, fresh_seed());
    {
        ResultFile rf(out);
        rf.write_matrix("/reference", ref.data(), n, n);
        auto m32 = rf.create_square_matrix("/similarity/f32", n, MatrixDtype::kFloat32, 0);
        auto m16 = rf.create_square_matrix("/similarity/f16", n, MatrixDtype::kFloat16, 4);
        auto gz32 = rf.create_square_matrix("/similarity/f32_gzip", n, MatrixDtype::kFloat32, 1);
        auto small = rf.create_square_matrix("/similarity/one", 1, MatrixDtype::kFloat16, 0);
        auto none = rf.create_square_matrix("/similarity/none", 0, MatrixDtype::kFloat32, 4);
        write_upper_tiles(*m32, ref, n, 128);
        write_upper_tiles(*m16, ref, n, 100);
        write_upper_tiles(*gz32, ref, n, 300);
        const float one = 1.0f;
        small->write_tile(0, 0, MatrixView<const float>(&one, 1, 1));
        EXPECT_THROW(m32->write_tile(200, 200, MatrixView<const float>(ref.data(), 101, 100)),
                     ResourceError);  // past the edge
        rf.commit();
        EXPECT_THROW(m32->write_tile(0, 0, MatrixView<const float>(ref.data(), 1, 1)),
                     ResourceError);
    }
    const CommandResult r = run_python(R"(
import sys, numpy as np, h5py
with h5py.File(sys.argv[1], 'r') as f:
    ref = f['reference'][...]
    assert (ref == ref.T)[~np.isnan(ref)].all()
    nan = np.isnan(ref)
    for name, opts in [('f32', None), ('f32_gzip', 1)]:
        d = f['similarity/' + name]
        assert d.dtype == np.dtype('<f4') and d.shape == ref.shape and d.chunks == (256, 256), d
        assert d.compression_opts == opts, (name, d.compression, d.compression_opts)
        a = d[...]
        assert (np.isnan(a) == nan).all(), name
        assert (a.view('<u4')[~nan] == ref.view('<u4')[~nan]).all(), name
    d = f['similarity/f16']
    assert d.dtype == np.float16, d.dtype
    assert d.compression == 'gzip' and d.compression_opts == 4 and d.shuffle and d.chunks == (256, 256)
    b = d[...]
    want = ref.astype(np.float16)
    assert (np.isnan(b) == nan).all()
    bad = np.argwhere(b.view('<u2') != want.view('<u2'))
    bad = [tuple(x) for x in bad if not nan[tuple(x)]]
    assert not bad, [(i, j, ref[i, j], b[i, j], want[i, j]) for i, j in bad[:5]]
    assert b[0, 1] == np.inf and b[2, 3] == 65504 and b[4, 5] == 0 and b[5, 6] == np.float16(2**-24)
    assert b[11, 10] == 1.0 and np.signbit(b[13, 12])
    assert f['similarity/one'].shape == (1, 1) and f['similarity/one'][0, 0] == 1
    assert f['similarity/none'].shape == (0, 0)
print('ok')
)",
                                       shell_quote(out));
    EXPECT_EQ(r.out, "ok\n");
}

// /f32 and /f16 of `path` hold /reference's bits, as float32 and as numpy's float16 (h5py).
void expect_f32_and_f16_match_reference(const std::string& path) {
    const CommandResult r = run_python(R"(
import sys, numpy as np, h5py
with h5py.File(sys.argv[1], 'r') as f:
    ref = f['reference'][...]
    nan = np.isnan(ref)
    a = f['f32'][...]
    assert (np.isnan(a) == nan).all() and (a.view('<u4')[~nan] == ref.view('<u4')[~nan]).all()
    b = f['f16'][...]
    want = ref.astype(np.float16)
    assert (np.isnan(b) == nan).all() and (b.view('<u2')[~nan] == want.view('<u2')[~nan]).all()
print('ok')
)",
                                       shell_quote(path));
    EXPECT_EQ(r.out, "ok\n") << r.err;
}

// The CPU engine and an MPI job's rank 0 hand tiles to the sink from several threads at once:
// each packs its tile apart and only the writes take turns; the file must hold every tile's bits.
TEST(IoWriter, SquareMatrixTakesTilesFromManyThreadsAtOnce) {
    TempDir dir;
    const std::string out = dir.file("matrix.h5");
    const std::int64_t n = 300;
    const std::vector<float> ref = symmetric_reference(n, fresh_seed());
    {
        ResultFile rf(out);
        rf.write_matrix("/reference", ref.data(), n, n);
        auto m32 = rf.create_square_matrix("/f32", n, MatrixDtype::kFloat32, 0);
        auto m16 = rf.create_square_matrix("/f16", n, MatrixDtype::kFloat16, 1);
        ASSERT_TRUE(m32->takes_tiles_concurrently() && m16->takes_tiles_concurrently());
        constexpr int kThreads = 4;
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t)
            threads.emplace_back([&, t] {
                write_upper_tiles(*m32, ref, n, 37, t, kThreads);
                write_upper_tiles(*m16, ref, n, 64, t, kThreads);
            });
        for (std::thread& t : threads) t.join();
        rf.commit();
    }
    expect_f32_and_f16_match_reference(out);
}

// Chunks cut by tile edges wait in memory for their other pieces up to a budget; past it their
// pieces go through HDF5's chunk cache and filters, mixed in one dataset with the chunks written
// whole: the file still holds every tile's bits, compressed or not.
TEST(IoWriter, CutChunksPastTheWaitingBudgetGoThroughHdf5) {
    TempDir dir;
    const std::int64_t n = 700;  // 37-tiles cut most of the 3 x 3 chunks of 256
    const std::vector<float> ref = symmetric_reference(n, fresh_seed());
    for (const std::size_t budget : {std::size_t{0}, std::size_t{3} * 256 * 256 * 4}) {
        const std::string out = dir.file("matrix" + std::to_string(budget) + ".h5");
        {
            ResultFile rf(out);
            rf.write_matrix("/reference", ref.data(), n, n);
            auto m32 = rf.create_square_matrix("/f32", n, MatrixDtype::kFloat32, 1, budget);
            auto m16 = rf.create_square_matrix("/f16", n, MatrixDtype::kFloat16, 6, budget);
            std::vector<std::thread> threads;
            for (int t = 0; t < 3; ++t)
                threads.emplace_back([&, t] {
                    write_upper_tiles(*m32, ref, n, 37, t, 3);
                    write_upper_tiles(*m16, ref, n, 300, t, 3);
                });
            for (std::thread& t : threads) t.join();
            rf.commit();
        }
        expect_f32_and_f16_match_reference(out);
    }
}

// Tiles of a million values or more, handed over from outside a parallel region (as the CUDA
// engine does), are packed and compressed by a team of threads, the mirror too: the same bits.
TEST(IoWriter, LargeTilesPackedByATeamKeepTheirBits) {
    TempDir dir;
    const std::string out = dir.file("matrix.h5");
    const std::int64_t n = 2100;  // tiles of 1050^2 values: one diagonal, one mirrored
    const std::vector<float> ref = symmetric_reference(n, fresh_seed());
    {
        ResultFile rf(out);
        rf.write_matrix("/reference", ref.data(), n, n);
        auto m32 = rf.create_square_matrix("/f32", n, MatrixDtype::kFloat32, 0);
        auto m16 = rf.create_square_matrix("/f16", n, MatrixDtype::kFloat16, 1);
        write_upper_tiles(*m32, ref, n, 1050);
        write_upper_tiles(*m16, ref, n, 1050);
        rf.commit();
    }
    expect_f32_and_f16_match_reference(out);
}

TEST(IoWriter, WithoutCommitNothingIsLeft) {
    TempDir dir;
    std::unique_ptr<embgeom::MatrixSink> sink;
    {
        ResultFile rf(dir.file("out.h5"));
        rf.write("/x", std::vector<double>{1, 2, 3});
        sink = rf.create_square_matrix("/m", 10, MatrixDtype::kFloat16, 1);
        EXPECT_EQ(folder_entries(dir.path()), std::set<std::string>{temp_name("out.h5")});
    }
    EXPECT_TRUE(folder_entries(dir.path()).empty());
    EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
    // A sink that outlives its file refuses to write rather than touching a closed file.
    EXPECT_THROW(sink->write_tile(0, 0, MatrixView<const float>(nullptr, 0, 0)), ResourceError);
}

TEST(IoWriter, ExistingTargetUntouchedUntilCommit) {
    TempDir dir;
    const std::string out = dir.file("result.h5");
    write_text_file(out, "previous results");
    {
        ResultFile rf(out);
        rf.write("/x", std::vector<float>{1});
        EXPECT_EQ(read_text_file(out), "previous results");
    }
    EXPECT_EQ(read_text_file(out), "previous results");
    EXPECT_EQ(folder_entries(dir.path()), std::set<std::string>{"result.h5"});
    {
        ResultFile rf(out);
        rf.write("/x", std::vector<float>{1});
        EXPECT_EQ(read_text_file(out), "previous results");
        rf.commit();
        EXPECT_THROW(rf.write("/y", std::vector<float>{1}), ResourceError);
        EXPECT_THROW(rf.commit(), ResourceError);
    }
    EXPECT_EQ(read_text_file(out).substr(0, 8), "\x89HDF\r\n\x1a\n");
    EXPECT_EQ(folder_entries(dir.path()), std::set<std::string>{"result.h5"});
}

TEST(IoWriter, MissingFolderIsAResourceErrorNamingIt) {
    TempDir dir;
    const std::string missing = dir.file("no/such");
    try {
        ResultFile rf(missing + "/out.h5");
        FAIL() << "no error";
    } catch (const ResourceError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "cannot write " + missing + "/out.h5: folder " + missing + " does not exist");
    }
    write_text_file(dir.file("plainfile"), "x");
    EXPECT_THROW(ResultFile(dir.file("plainfile/out.h5")), ResourceError);
    EXPECT_THROW(ResultFile(dir.path()), ResourceError);  // the target is a folder
    EXPECT_TRUE(folder_entries(dir.path()) == std::set<std::string>{"plainfile"});
}

// The finished file is renamed onto its path: a pipe (or, as root, a device such as /dev/null)
// there would be replaced by a regular file. Refused before anything is written; it stays.
TEST(IoWriter, AnOutputPathThatIsNotARegularFileIsRefusedAndStays) {
    TempDir dir;
    const std::string fifo = dir.file("pipe");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    try {
        ResultFile rf(fifo);
        FAIL() << "no error";
    } catch (const ResourceError& e) {
        EXPECT_EQ(std::string(e.what()), "cannot write " + fifo +
                                             ": it is not a regular file (a device, pipe or "
                                             "socket); an HDF5 result needs a file path");
    }
    // Nor through a link to it.
    ASSERT_EQ(::symlink(fifo.c_str(), dir.file("to-pipe").c_str()), 0);
    EXPECT_THROW(ResultFile(dir.file("to-pipe")), ResourceError);
    struct stat st;
    ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
    EXPECT_TRUE(S_ISFIFO(st.st_mode));
    EXPECT_TRUE(folder_entries(dir.path()) == (std::set<std::string>{"pipe", "to-pipe"}));
}

// A symbolic link at the output path is followed: the file it names (in another folder) is
// replaced, atomically as ever, and the link stays a link. A link that names no file is refused.
TEST(IoWriter, AnOutputLinkIsFollowedAndStays) {
    TempDir dir;
    ASSERT_EQ(::mkdir(dir.file("data").c_str(), 0700), 0);
    const std::string target = dir.file("data/results.h5"), link = dir.file("results.h5");
    write_text_file(target, "an earlier result");
    ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
    {
        ResultFile rf(link);
        rf.write("/x", std::vector<double>{1.5, 2.5});
        rf.commit();
    }
    struct stat st;
    ASSERT_EQ(::lstat(link.c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode));
    EXPECT_TRUE(folder_entries(dir.file("data")) == std::set<std::string>{"results.h5"});
    const CommandResult r =
        run_python("import sys, h5py\nprint(list(h5py.File(sys.argv[1], 'r')['x'][...]))",
                   shell_quote(target));
    EXPECT_EQ(r.out, "[1.5, 2.5]\n") << r.err;

    ASSERT_EQ(::symlink(dir.file("data/nothing.h5").c_str(), dir.file("dangling.h5").c_str()), 0);
    try {
        ResultFile rf(dir.file("dangling.h5"));
        FAIL() << "no error";
    } catch (const ResourceError& e) {
        EXPECT_NE(std::string(e.what()).find("is a symbolic link that names no file"),
                  std::string::npos)
            << e.what();
    }
}

TEST(IoWriter, UnwritableFolderIsAResourceErrorNamingIt) {
    TempDir dir;
    const std::string ro = dir.file("readonly");
    ASSERT_EQ(::mkdir(ro.c_str(), 0555), 0);
    ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
    // root may write anywhere, so check as an unprivileged user in a child process.
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(2);
        try {
            ResultFile rf(ro + "/out.h5");
        } catch (const ResourceError& e) {
            const std::string want =
                "cannot write " + ro + "/out.h5: folder " + ro + " is not writable";
            ::_exit(std::string(e.what()) == want ? 0 : 1);
        } catch (...) {
        }
        ::_exit(1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 2) GTEST_SKIP() << "cannot drop root privileges here";
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_TRUE(folder_entries(ro).empty());
}

TEST(IoWriter, HdfFailureIsOneLineAndQuiet) {
    TempDir dir;
    ResultFile rf(dir.file("out.h5"));
    rf.write("/a/b", std::vector<float>{1});
    testing::internal::CaptureStderr();
    std::string m1, m2;
    try {
        rf.write("/a/b", std::vector<float>{2});  // already exists
    } catch (const ResourceError& e) {
        m1 = e.what();
    }
    try {
        rf.write_strings("/a/b/c", {"x"});  // below a dataset
    } catch (const ResourceError& e) {
        m2 = e.what();
    }
    EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
    EXPECT_EQ(m1, dir.file("out.h5") + ": failed writing /a/b");
    EXPECT_EQ(m2, dir.file("out.h5") + ": failed writing /a/b/c");
}

}  // namespace
