// list_datasets (`embgeom inspect`) over a file with nested groups and every kind of dataset.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "embgeom/errors.hpp"
#include "io/table_reader.hpp"
#include "support/test_support.hpp"

namespace {

using embgeom::DatasetInfo;
using namespace embgeom::test;

TEST(IoInspect, NestedGroupsTypesLayoutsFilters) {
    TempDir dir;
    run_python(R"(
import sys, numpy as np, h5py
with h5py.File(sys.argv[1], 'w') as f:
    f['emb'] = np.zeros((10, 4), dtype='<f4')
    f.create_dataset('model/layers/0/w', data=np.zeros((10, 4), dtype='<f2'), chunks=(5, 2),
                     compression='gzip', compression_opts=4, shuffle=True)
    f.create_dataset('model/layers/1/w', data=np.zeros((10, 4), dtype='>f8'), chunks=(10, 4),
                     fletcher32=True)
    f['model/ids'] = np.arange(10, dtype='<i8')
    f['model/u8'] = np.arange(10, dtype='u1')
    f['model/i16'] = np.arange(10, dtype='>i2')
    f.create_dataset('vocab/tokens', data=['a'] * 10, dtype=h5py.string_dtype())
    f.create_dataset('vocab/fixed', data=np.array([b'a'] * 10, dtype='S8'))
    f.create_dataset('vocab/fixed_utf8', data=[b'a'] * 10, dtype=h5py.string_dtype('utf-8', 6))
    f['table'] = np.zeros(3, dtype=[('id', '<i8'), ('score', '<f8')])
    f['scalar'] = np.int32(3)
    f['empty'] = np.zeros((0, 4), dtype='<f4')
    f['flags'] = np.zeros((2, 2), dtype=bool)
    f.create_dataset('lzf', data=np.zeros((4, 4), dtype='<f4'), compression='lzf')
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    h5py.h5d.create(f.id, b'small', h5py.h5t.IEEE_F32LE, h5py.h5s.create_simple((2, 3)), dcpl=dcpl)
    f['alias'] = h5py.SoftLink('/emb')
    f['model/layers/0/same'] = f['emb']  # a second hard link: listed once
)",
               shell_quote(dir.file("in.h5")));
    const std::vector<DatasetInfo> all = embgeom::list_datasets(dir.file("in.h5"));

    struct Want {
        const char* path;
        std::vector<std::int64_t> shape;
        const char* type;
        const char* layout;
        std::vector<std::int64_t> chunk;
        std::vector<std::string> filters;
        bool table, vocab;
    };
    const std::vector<Want> want = {
        {"/emb", {10, 4}, "float32", "contiguous", {}, {}, true, false},
        {"/empty", {0, 4}, "float32", "contiguous", {}, {}, false, false},
        {"/flags", {2, 2}, "other", "contiguous", {}, {}, false, false},
        {"/lzf", {4, 4}, "float32", "chunked", {4, 4}, {"lzf"}, false, false},
        {"/model/i16", {10}, "int16", "contiguous", {}, {}, false, false},
        {"/model/ids", {10}, "int64", "contiguous", {}, {}, false, false},
        {"/model/layers/0/w",
         {10, 4},
         "float16",
         "chunked",
         {5, 2},
         {"shuffle", "gzip(4)"},
         true,
         false},
        {"/model/layers/1/w", {10, 4}, "float64", "chunked", {10, 4}, {"fletcher32"}, true, false},
        {"/model/u8", {10}, "uint8", "contiguous", {}, {}, false, false},
        {"/scalar", {}, "int32", "contiguous", {}, {}, false, false},
        {"/small", {2, 3}, "float32", "compact", {}, {}, true, false},
        {"/table", {3}, "compound", "contiguous", {}, {}, false, false},
        {"/vocab/fixed", {10}, "string(fixed 8, ascii)", "contiguous", {}, {}, false, true},
        {"/vocab/fixed_utf8", {10}, "string(fixed 6, utf-8)", "contiguous", {}, {}, false, true},
        {"/vocab/tokens", {10}, "string(vlen, utf-8)", "contiguous", {}, {}, false, true},
    };
    ASSERT_EQ(all.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        SCOPED_TRACE(want[i].path);
        EXPECT_EQ(all[i].path, want[i].path);
        EXPECT_EQ(all[i].shape, want[i].shape);
        EXPECT_EQ(all[i].type, want[i].type);
        EXPECT_EQ(all[i].layout, want[i].layout);
        EXPECT_EQ(all[i].chunk, want[i].chunk);
        EXPECT_EQ(all[i].filters, want[i].filters);
        EXPECT_EQ(all[i].usable_as_table, want[i].table);
        EXPECT_EQ(all[i].usable_as_vocab, want[i].vocab);
    }
}

TEST(IoInspect, BadFilesAreInputErrors) {
    TempDir dir;
    write_text_file(dir.file("notes.txt"), "not hdf5\n");
    EXPECT_THROW(embgeom::list_datasets(dir.file("notes.txt")), embgeom::InputError);
    EXPECT_THROW(embgeom::list_datasets(dir.file("missing.h5")), embgeom::InputError);
    run_python("import sys, h5py\nh5py.File(sys.argv[1], 'w').close()\n",
               shell_quote(dir.file("empty.h5")));
    EXPECT_TRUE(embgeom::list_datasets(dir.file("empty.h5")).empty());
}

}  // namespace
