// Placeholder so the io library has a source until the HDF5 layer lands (delete then).
namespace embgeom { void io_placeholder() {} }
