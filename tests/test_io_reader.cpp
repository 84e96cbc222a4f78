// Hdf5TableReader, read_vector, read_string_dataset and read_vocab_file against files written by
// h5py (the outside HDF5 client), and against broken or unsuitable input.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "embgeom/errors.hpp"
#include "io/table_reader.hpp"
#include "support/test_support.hpp"

namespace {

using embgeom::Hdf5TableReader;
using embgeom::InputError;
using embgeom::StoredDtype;
using namespace embgeom::test;

constexpr std::int64_t kRows = 37;  // not a multiple of any chunk or block size used below
constexpr std::int64_t kCols = 13;

std::vector<float> read_f32(const std::string& path) {
    const std::string raw = read_text_file(path);
    std::vector<float> v(raw.size() / 4);
    std::memcpy(v.data(), raw.data(), v.size() * 4);
    return v;
}

std::uint32_t bits_of(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

// Values must match bit for bit (so -0.0 and the sign of inf count); NaN matches any NaN.
void expect_same_floats(const std::vector<float>& want, const std::vector<float>& got,
                        const std::string& what) {
    ASSERT_EQ(want.size(), got.size()) << what;
    int bad = 0;
    for (std::size_t i = 0; i < want.size() && bad < 5; ++i) {
        const bool ok =
            std::isnan(want[i]) ? std::isnan(got[i]) : bits_of(want[i]) == bits_of(got[i]);
        if (!ok) {
            ++bad;
            ADD_FAILURE() << what << " element " << i << " (row " << i / kCols << "): want "
                          << want[i] << ", got " << got[i];
        }
    }
}

// Writes every float dtype x layout variant of one random table with h5py.
const char* kWriteTables = R"(
import sys, numpy as np, h5py
d, rows, cols = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
x = np.fromfile(d + '/table.f32', dtype='<f4').reshape(rows, cols)

def bf16_bits(a):
    u = a.view('<u4').astype(np.uint64)
    r = ((u + 0x7fff + ((u >> 16) & 1)) >> 16).astype(np.uint16)   # round to nearest even
    nan = np.isnan(a)
    r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)             # keep NaNs NaN
    return r

def bf16_type(big_endian):
    t = (h5py.h5t.IEEE_F32BE if big_endian else h5py.h5t.IEEE_F32LE).copy()
    t.set_fields(15, 7, 8, 0, 7)
    t.set_size(2)
    t.set_ebias(127)
    return t

layouts = {
    'contiguous': {},
    'chunked': dict(chunks=(5, 4)),
    'gzip': dict(chunks=(8, cols), compression='gzip', compression_opts=4, shuffle=True),
}
bits = bf16_bits(x)
with h5py.File(d + '/tables.h5', 'w') as f:
    for name, kw in layouts.items():
        f.create_dataset('f32/' + name, data=x, **kw)
        f.create_dataset('f64/' + name, data=x.astype('<f8'), **kw)
        f.create_dataset('f16/' + name, data=x.astype('<f2'), **kw)
    f.create_dataset('f32/bigendian', data=x.astype('>f4'))
    f.create_dataset('f64/bigendian', data=x.astype('>f8'), chunks=(5, 4))
    f.create_dataset('f16/bigendian', data=x.astype('>f2'), chunks=(5, 4), compression='gzip')
    assert f['f32/bigendian'].dtype == np.dtype('>f4')
    # bfloat16: h5py has no such dtype, so build the HDF5 float type (8-bit exponent, 7-bit
    # mantissa) and write the raw 16-bit patterns through the low-level API.
    f.require_group('bf16')
    for name, big in [('contiguous', False), ('chunked', False), ('gzip', False), ('bigendian', True)]:
        t = bf16_type(big)
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        if name != 'contiguous':
            dcpl.set_chunk((5, 4))
        if name == 'gzip':
            dcpl.set_shuffle()
            dcpl.set_deflate(6)
        space = h5py.h5s.create_simple((rows, cols))
        ds = h5py.h5d.create(f['bf16'].id, name.encode(), t, space, dcpl=dcpl)
        ds.write(h5py.h5s.ALL, h5py.h5s.ALL, bits.astype('>u2' if big else '<u2'), mtype=t)
x.astype('<f2').astype('<f4').tofile(d + '/expect_f16.f32')
(bits.astype('<u4') << 16).view('<f4').tofile(d + '/expect_bf16.f32')
)";

TEST(IoReader, EveryDtypeAndLayoutMatchesH5py) {
    TempDir dir;
    std::vector<float> x = random_table(kRows, kCols, fresh_seed());
    // Special values in the first rows: infinities, NaN, -0, float16 subnormals and overflow,
    // float32 subnormal, float16 max, a large float32.
    const float specials[] = {INFINITY, -INFINITY, NAN,     -0.0f, 1e-6f,    -6e-8f,
                              70000.0f, 1e-40f,    65504.f, 3e38f, -2.5e-5f, 1.0f / 3};
    std::copy(std::begin(specials), std::end(specials), x.begin());
    write_text_file(dir.file("table.f32"),
                    std::string(reinterpret_cast<const char*>(x.data()), x.size() * 4));
    run_python(kWriteTables,
               shell_quote(dir.path()) + " " + std::to_string(kRows) + " " + std::to_string(kCols));
    const std::vector<float> want_f16 = read_f32(dir.file("expect_f16.f32"));
    const std::vector<float> want_bf16 = read_f32(dir.file("expect_bf16.f32"));

    struct Case {
        std::string group;
        StoredDtype dtype;
        const std::vector<float>* want;
    };
    const Case cases[] = {{"f32", StoredDtype::kFloat32, &x},
                          {"f64", StoredDtype::kFloat64, &x},
                          {"f16", StoredDtype::kFloat16, &want_f16},
                          {"bf16", StoredDtype::kBFloat16, &want_bf16}};
    const std::string file = dir.file("tables.h5");
    for (const Case& c : cases) {
        for (const char* layout : {"contiguous", "chunked", "gzip", "bigendian"}) {
            const std::string ds = c.group + "/" + layout;
            Hdf5TableReader reader(file, ds, 1 << 20);
            EXPECT_EQ(reader.rows(), kRows);
            EXPECT_EQ(reader.cols(), kCols);
            EXPECT_EQ(reader.stored_dtype(), c.dtype) << ds;
            EXPECT_EQ(reader.describe(), file + ":/" + ds);
            for (std::int64_t block : {std::int64_t{1}, std::int64_t{7}, kRows}) {
                std::vector<float> got(static_cast<std::size_t>(kRows * kCols), -12345.0f);
                for (std::int64_t r = 0; r < kRows; r += block)
                    reader.read_rows(r, std::min(block, kRows - r), got.data() + r * kCols);
                expect_same_floats(*c.want, got, ds + " in blocks of " + std::to_string(block));
            }
            // An arbitrary range out of order, and an empty read.
            std::vector<float> mid(static_cast<std::size_t>(5 * kCols));
            reader.read_rows(20, 5, mid.data());
            expect_same_floats(
                std::vector<float>(c.want->begin() + 20 * kCols, c.want->begin() + 25 * kCols), mid,
                ds + " rows 20..24");
            reader.read_rows(kRows, 0, nullptr);
            // Mapped in place only where the file holds the rows as used: native float32,
            // contiguous; the mapping then is the table, bit for bit.
            const float* mapped = reader.mapped_rows();
            const bool as_used = c.group == "f32" && std::string(layout) == "contiguous";
            EXPECT_EQ(mapped != nullptr, as_used) << ds;
            if (mapped)
                expect_same_floats(*c.want, std::vector<float>(mapped, mapped + kRows * kCols),
                                   ds + " mapped");
        }
    }
    // Every handle the readers opened is closed again.
    EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
}

// Contiguous float32 that must still be read, not mapped: a file with a user block (HDF5's offsets
// then need care), and a dataset never written (no storage yet: the fill value, zeros).
TEST(IoReader, MappingFallsBackToReadingWhereTheBytesAreNotTheRows) {
    TempDir dir;
    run_python(R"(
import sys, numpy as np, h5py
x = np.arange(24, dtype='<f4').reshape(4, 6) + 0.5
with h5py.File(sys.argv[1] + '/ub.h5', 'w', userblock_size=512) as f:
    f['t'] = x
with h5py.File(sys.argv[1] + '/empty.h5', 'w') as f:
    f.create_dataset('t', shape=(4, 6), dtype='<f4')
with h5py.File(sys.argv[1] + '/plain.h5', 'w') as f:
    f['t'] = x
)",
               shell_quote(dir.path()));
    for (const char* name : {"ub.h5", "empty.h5", "plain.h5"}) {
        Hdf5TableReader reader(dir.file(name), "/t");
        std::vector<float> got(24);
        reader.read_rows(0, 4, got.data());
        const bool empty = std::string(name) == "empty.h5";
        for (int i = 0; i < 24; ++i) EXPECT_EQ(got[i], empty ? 0.0f : i + 0.5f) << name;
        const float* mapped = reader.mapped_rows();
        EXPECT_EQ(mapped != nullptr, std::string(name) == "plain.h5") << name;
        if (mapped) {
            for (int i = 0; i < 24; ++i) EXPECT_EQ(mapped[i], got[i]) << name;
        }
        EXPECT_EQ(reader.mapped_rows(), mapped) << name << ": asked twice, one answer";
    }
}

TEST(IoReader, Float64OutsideFloat32RangeBecomesInfinity) {
    TempDir dir;
    run_python(R"(
import sys, numpy as np, h5py
with h5py.File(sys.argv[1], 'w') as f:
    f['t'] = np.array([[1e300, -1e300, 1e-300, 0.1]], dtype='<f8')
)",
               shell_quote(dir.file("t.h5")));
    Hdf5TableReader reader(dir.file("t.h5"), "/t");
    float out[4];
    reader.read_rows(0, 1, out);
    EXPECT_EQ(out[0], INFINITY);
    EXPECT_EQ(out[1], -INFINITY);
    EXPECT_EQ(out[2], 0.0f);
    EXPECT_EQ(out[3], 0.1f);
}

TEST(IoReader, ReadVectorShapesAndTypes) {
    TempDir dir;
    run_python(R"(
import sys, numpy as np, h5py
v = np.arange(13, dtype='<f8') / 7 - 0.5
with h5py.File(sys.argv[1], 'w') as f:
    f['bias'] = v.astype('<f4')
    f['model/bias_row'] = v.reshape(1, 13)
    f['bias_col'] = v.astype('>f2').reshape(13, 1)
    f['bias_short'] = v[:5]
    f['ints'] = np.arange(13, dtype='<i4')
    f['square'] = np.zeros((13, 13))
)",
               shell_quote(dir.file("v.h5")));
    const std::string file = dir.file("v.h5");
    std::vector<double> want(13);
    for (int i = 0; i < 13; ++i) want[static_cast<std::size_t>(i)] = i / 7.0 - 0.5;

    const std::vector<double> f32 = embgeom::read_vector(file, "bias", 13);
    const std::vector<double> row = embgeom::read_vector(file, "/model/bias_row", 13);
    const std::vector<double> col = embgeom::read_vector(file, "bias_col", -1);
    ASSERT_EQ(f32.size(), 13u);
    ASSERT_EQ(row.size(), 13u);
    ASSERT_EQ(col.size(), 13u);
    for (std::size_t i = 0; i < 13; ++i) {
        EXPECT_EQ(f32[i], static_cast<double>(static_cast<float>(want[i])));
        EXPECT_EQ(row[i], want[i]);
        EXPECT_NEAR(col[i], want[i], 1e-3);
    }
    try {
        embgeom::read_vector(file, "bias_short", 13);
        FAIL() << "short vector accepted";
    } catch (const InputError& e) {
        EXPECT_EQ(std::string(e.what()),
                  file + ":/bias_short has shape [5], expected [13] (the table's dimension)");
    }
    EXPECT_THROW(embgeom::read_vector(file, "square", 13), InputError);
    EXPECT_THROW(embgeom::read_vector(file, "nope", 13), InputError);
    try {
        embgeom::read_vector(file, "ints", 13);
        FAIL() << "int vector accepted";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find(":/ints has type int32"), std::string::npos)
            << e.what();
    }
}

TEST(IoReader, StringDatasetsEveryEncodingAndPadding) {
    TempDir dir;
    run_python(R"(
import sys, numpy as np, h5py
toks = ['Ġthe', '日本', 'é', 'hello', '', 'a b']
ascii = ['the', 'cat', 'a b', ' lead', '', 'eight_ch']
def fixed(f, name, strings, pad, size=8):
    t = h5py.h5t.C_S1.copy()
    t.set_size(size)
    t.set_strpad(pad)
    raw = [s.encode() + (b' ' if pad == h5py.h5t.STR_SPACEPAD else b'\0') * (size - len(s.encode()))
           for s in strings]
    ds = h5py.h5d.create(f.id, name.encode(), t, h5py.h5s.create_simple((len(strings),)))
    ds.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array(raw, dtype='S%d' % size), mtype=t)
with h5py.File(sys.argv[1], 'w') as f:
    f.create_dataset('vlen_utf8', data=toks, dtype=h5py.string_dtype())
    f.create_dataset('fixed_utf8', data=[t.encode() for t in toks], dtype=h5py.string_dtype('utf-8', 12))
    f.create_dataset('vlen_ascii', data=[t.encode() for t in ascii], dtype=h5py.string_dtype('ascii'))
    f.create_dataset('fixed_ascii', data=np.array([t.encode() for t in ascii], dtype='S8'))
    f.create_dataset('vocab/chunked', data=toks * 50, dtype=h5py.string_dtype(), chunks=(7,), compression='gzip')
    fixed(f, 'nullterm', ascii, h5py.h5t.STR_NULLTERM, 9)
    fixed(f, 'spacepad', ascii, h5py.h5t.STR_SPACEPAD)
    f.create_dataset('empty', shape=(0,), dtype=h5py.string_dtype())
    f['numbers'] = np.arange(3)
    f.create_dataset('grid', data=[['a', 'b']], dtype=h5py.string_dtype())
)",
               shell_quote(dir.file("s.h5")));
    const std::string file = dir.file("s.h5");
    const std::vector<std::string> toks = {
        "\xC4\xA0the", "\xE6\x97\xA5\xE6\x9C\xAC", "\xC3\xA9", "hello", "", "a b"};
    const std::vector<std::string> ascii = {"the", "cat", "a b", " lead", "", "eight_ch"};
    EXPECT_EQ(embgeom::read_string_dataset(file, "vlen_utf8"), toks);
    EXPECT_EQ(embgeom::read_string_dataset(file, "/fixed_utf8"), toks);
    EXPECT_EQ(embgeom::read_string_dataset(file, "vlen_ascii"), ascii);
    EXPECT_EQ(embgeom::read_string_dataset(file, "fixed_ascii"), ascii);
    EXPECT_EQ(embgeom::read_string_dataset(file, "nullterm"), ascii);
    EXPECT_EQ(embgeom::read_string_dataset(file, "spacepad"),
              (std::vector<std::string>{"the", "cat", "a b", " lead", "", "eight_ch"}));
    std::vector<std::string> many;
    for (int i = 0; i < 50; ++i) many.insert(many.end(), toks.begin(), toks.end());
    EXPECT_EQ(embgeom::read_string_dataset(file, "vocab/chunked"), many);
    EXPECT_TRUE(embgeom::read_string_dataset(file, "empty").empty());
    EXPECT_THROW(embgeom::read_string_dataset(file, "numbers"), InputError);
    EXPECT_THROW(embgeom::read_string_dataset(file, "grid"), InputError);
    try {
        embgeom::read_string_dataset(file, "tokens");
        FAIL() << "missing dataset accepted";
    } catch (const InputError& e) {
        // The suggestions are the string datasets.
        EXPECT_NE(std::string(e.what()).find("no dataset '/tokens'"), std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("/vlen_utf8"), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).find("/numbers"), std::string::npos) << e.what();
    }
}

TEST(IoReader, VocabFileLines) {
    TempDir dir;
    const auto vocab = [&](const std::string& text) {
        write_text_file(dir.file("v.txt"), text);
        return embgeom::read_vocab_file(dir.file("v.txt"));
    };
    using V = std::vector<std::string>;
    EXPECT_EQ(vocab("a\nb\r\n\nc\n"), (V{"a", "b", "", "c"}));
    EXPECT_EQ(vocab("a\nb"), (V{"a", "b"}));
    EXPECT_EQ(vocab(""), V{});
    EXPECT_EQ(vocab("\n"), V{""});
    EXPECT_EQ(vocab("\xEF\xBB\xBF\xC4\xA0the\r\n \n"), (V{"\xC4\xA0the", " "}));
    try {
        embgeom::read_vocab_file(dir.file("missing.txt"));
        FAIL() << "missing vocab accepted";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find(dir.file("missing.txt")), std::string::npos);
    }
    EXPECT_THROW(embgeom::read_vocab_file(dir.path()), InputError);
}

// ---- unusable input ------------------------------------------------------------------------

// One file of bad datasets, and a few broken files, shared by the cases below.
class IoReaderBadInput : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = new TempDir;
        run_python(R"(
import sys, os, numpy as np, h5py
d = sys.argv[1]
with open(d + '/text.h5', 'w') as f:
    f.write('token,value\nthe,1\n' * 100)
with h5py.File(d + '/other.h5', 'w') as f:
    f['emb'] = np.ones((4, 3), dtype='f4')
with h5py.File(d + '/bad.h5', 'w') as f:
    f['emb'] = np.ones((4, 3), dtype='f4')
    f['model/weights'] = np.ones((4, 3), dtype='f2')
    f['r1'] = np.ones(5, dtype='f4')
    f['r3'] = np.ones((2, 3, 4), dtype='f4')
    f['scalar'] = np.float32(1)
    f['ints'] = np.ones((4, 3), dtype='<i4')
    f['zero_rows'] = np.ones((0, 3), dtype='f4')
    f['zero_cols'] = np.ones((3, 0), dtype='f4')
    f.create_dataset('strings', data=['a', 'b'], dtype=h5py.string_dtype())
    f.create_dataset('strings2d', data=[['a', 'b']], dtype=h5py.string_dtype())
    f.create_dataset('lzf', data=np.ones((4, 3), dtype='f4'), compression='lzf')
    with open(d + '/raw.bin', 'wb') as r:
        r.write(np.ones((4, 3), dtype='f4').tobytes())
    f.create_dataset('external', shape=(4, 3), dtype='f4', external=[(d + '/raw.bin', 0, 48)])
    f['extlink'] = h5py.ExternalLink(d + '/other.h5', '/emb')
    layout = h5py.VirtualLayout(shape=(4, 3), dtype='f4')
    layout[:] = h5py.VirtualSource(d + '/other.h5', 'emb', shape=(4, 3))
    f.create_virtual_dataset('virtual', layout)
    f.create_dataset('corrupt', data=np.random.default_rng(1).random((64, 16)).astype('f4'),
                     chunks=(16, 16), compression='gzip')
# Overwrite the compressed bytes of the second chunk (rows 16..31) with garbage.
with h5py.File(d + '/bad.h5', 'r') as f:
    info = f['corrupt'].id.get_chunk_info(1)
    assert info.chunk_offset == (16, 0)
with open(d + '/bad.h5', 'r+b') as raw:
    raw.seek(info.byte_offset)
    raw.write(b'\xff' * info.size)
with h5py.File(d + '/trunc.h5', 'w') as f:
    f['emb'] = np.ones((1000, 100), dtype='f4')
size = os.path.getsize(d + '/trunc.h5')
with open(d + '/trunc.h5', 'r+b') as f:
    f.truncate(size // 2)
)",
                   shell_quote(dir_->path()));
    }
    static void TearDownTestSuite() {
        // Failed opens and reads leave no HDF5 object open.
        EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
        delete dir_;
        dir_ = nullptr;
    }

    // Runs fn, which must throw an InputError whose message contains every needle, while
    // nothing at all reaches stderr (in particular no HDF5-DIAG error stack).
    static void expect_input_error(const std::function<void()>& fn,
                                   const std::vector<std::string>& needles) {
        testing::internal::CaptureStderr();
        std::string message = "(no exception)";
        try {
            fn();
        } catch (const InputError& e) {
            message = e.what();
        } catch (const std::exception& e) {
            message = std::string("wrong exception type: ") + e.what();
        }
        const std::string err = testing::internal::GetCapturedStderr();
        for (const std::string& n : needles)
            EXPECT_NE(message.find(n), std::string::npos) << "'" << n << "' not in: " << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
        EXPECT_EQ(err, "") << "stderr was not quiet";
    }
    static void expect_table_error(const std::string& file, const std::string& ds,
                                   const std::vector<std::string>& needles) {
        expect_input_error([&] { Hdf5TableReader r(file, ds); }, needles);
    }
    static std::string bad() { return dir_->file("bad.h5"); }
    static TempDir* dir_;
};
TempDir* IoReaderBadInput::dir_ = nullptr;

TEST_F(IoReaderBadInput, MissingFile) {
    expect_table_error(dir_->file("nope.h5"), "emb", {dir_->file("nope.h5") + ": no such file"});
}

TEST_F(IoReaderBadInput, NotHdf5) {
    expect_table_error(dir_->file("text.h5"), "emb",
                       {dir_->file("text.h5") + ": not an HDF5 file"});
    expect_table_error(dir_->path(), "emb", {dir_->path() + ": is a folder"});
}

TEST_F(IoReaderBadInput, TruncatedFile) {
    expect_table_error(dir_->file("trunc.h5"), "emb",
                       {dir_->file("trunc.h5") + ": cannot open (corrupt or truncated HDF5 file)"});
}

TEST_F(IoReaderBadInput, MissingDatasetListsCandidates) {
    expect_table_error(bad(), "embeddings",
                       {bad() + ": no dataset '/embeddings'", "/emb", "/model/weights"});
    expect_table_error(bad(), "model/nope/deeper", {"no dataset '/model/nope/deeper'"});
    expect_table_error(bad(), "emb/below", {"no dataset '/emb/below'"});
    expect_table_error(bad(), "model", {bad() + ":/model is a group, not a dataset"});
}

TEST_F(IoReaderBadInput, WrongRank) {
    expect_table_error(bad(), "r1",
                       {bad() + ":/r1 has rank 1, expected a 2-D [tokens, dims] table"});
    expect_table_error(bad(), "/r3", {bad() + ":/r3 has rank 3, expected a 2-D"});
    expect_table_error(bad(), "scalar", {bad() + ":/scalar has rank 0"});
}

TEST_F(IoReaderBadInput, WrongType) {
    expect_table_error(
        bad(), "ints",
        {bad() + ":/ints has type int32, expected float16/bfloat16/float32/float64"});
    expect_table_error(bad(), "strings", {bad() + ":/strings has rank 1"});
    expect_table_error(bad(), "strings2d", {bad() + ":/strings2d has type string(vlen, utf-8)"});
}

TEST_F(IoReaderBadInput, EmptyTables) {
    expect_table_error(bad(), "zero_rows", {bad() + ":/zero_rows has zero rows"});
    expect_table_error(bad(), "zero_cols", {bad() + ":/zero_cols has zero columns"});
}

TEST_F(IoReaderBadInput, StorageWeRefuse) {
    expect_table_error(bad(), "lzf", {bad() + ":/lzf is compressed with filter", "32000"});
    expect_table_error(bad(), "external", {bad() + ":/external keeps its data in external"});
    expect_table_error(bad(), "extlink", {bad() + ":/extlink is an external link"});
    expect_table_error(bad(), "virtual", {bad() + ":/virtual is a virtual dataset"});
}

TEST_F(IoReaderBadInput, CorruptChunkFailsTheReadThatTouchesIt) {
    Hdf5TableReader reader(bad(), "corrupt");
    std::vector<float> buf(64 * 16);
    reader.read_rows(0, 16, buf.data());  // first chunk is intact
    expect_input_error([&] { reader.read_rows(10, 20, buf.data()); },
                       {bad() + ":/corrupt: read failed at rows 10..29 (corrupt data?)"});
    reader.read_rows(32, 32, buf.data());  // and the reader still works past it
}

TEST_F(IoReaderBadInput, QuietOnOtherThreadsToo) {
    // HDF5 is built thread-safe on Debian, where the error-printing switch is per thread.
    std::thread t([&] { expect_table_error(bad(), "ints", {"has type int32"}); });
    t.join();
}

TEST_F(IoReaderBadInput, VectorAndStringReadersNameFileAndDataset) {
    expect_input_error([&] { embgeom::read_vector(dir_->file("nope.h5"), "b", 3); },
                       {dir_->file("nope.h5") + ": no such file"});
    expect_input_error([&] { embgeom::read_vector(bad(), "bias", 3); },
                       {bad() + ": no dataset '/bias'"});
    expect_input_error([&] { embgeom::read_string_dataset(bad(), "emb"); },
                       {bad() + ":/emb has type float32, expected strings"});
    expect_input_error([&] { embgeom::read_string_dataset(dir_->file("trunc.h5"), "v"); },
                       {dir_->file("trunc.h5") + ": cannot open"});
}

}  // namespace
