# cmake -DIN=kernels/op.cu -DOUT=op.cpp -P emulate_kernel_source.cmake
# Rewrites the two pieces of CUDA syntax that no header can stand in for, so that the kernel
# emulator can compile a kernels/*.cu file as C++ (everything else comes from cuda_shim/):
#   name<<<grid, block, shared, stream>>>(args)  ->  ::embgeom::emu::launch(name, grid, ...)(args)
#   extern __shared__ T name[];                  ->  T* name = ::embgeom::emu::dynamic_shared<T>();
file(READ "${IN}" text)
string(REGEX REPLACE
  "([A-Za-z_][A-Za-z_0-9:]*(<[^<>;()]*>)?)[ \t\n]*<<<([^;>]*)>>>"
  "::embgeom::emu::launch(\\1, \\3)" text "${text}")
string(REGEX REPLACE
  "extern[ \t]+__shared__[ \t]+([^;\\[]*[^;\\[ \t])[ \t]+([A-Za-z_][A-Za-z_0-9]*)[ \t]*\\[[ \t]*\\][ \t]*;"
  "\\1* \\2 = ::embgeom::emu::dynamic_shared<\\1>();" text "${text}")
if(text MATCHES "<<<|extern[ \t]+__shared__")
  message(FATAL_ERROR "${IN}: a kernel launch or extern __shared__ the emulator's rewrite missed")
endif()
file(WRITE "${OUT}" "// Generated from ${IN} by emulate_kernel_source.cmake: do not edit.\n#line 1 \"${IN}\"\n${text}")
