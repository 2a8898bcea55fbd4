# CUDA backend extras: per-target flags of c8_backend_cuda and the attention benchmark.
# Meant to be included at the end of the top-level CMakeLists.txt:
#   include(cmake/cuda.cmake)
# It also works as -DCMAKE_PROJECT_INCLUDE=<repo>/cmake/cuda.cmake (scripts/device_check.sh),
# in which case it defers itself to the end of the top-level directory.
if(NOT TARGET c8_util AND NOT C8_CUDA_CMAKE_DEFERRED)
  set(C8_CUDA_CMAKE_DEFERRED ON)
  set(C8_CUDA_CMAKE_FILE "${CMAKE_CURRENT_LIST_FILE}")
  # Arguments of a deferred call are expanded when it runs.
  cmake_language(DEFER CALL include "${C8_CUDA_CMAKE_FILE}")
  return()
endif()
if(TARGET c8_backend_cuda AND NOT TARGET cuda_attention_bench)
  # CMake < 3.26 does not know how to ask nvcc for C++20; the kernels need only C++17.
  set_target_properties(c8_backend_cuda PROPERTIES CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON)
  target_compile_options(c8_backend_cuda PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-lineinfo --expt-relaxed-constexpr -Xcompiler=-Wall>)
  add_executable(cuda_attention_bench ${CMAKE_SOURCE_DIR}/benchmarks/cuda_attention_bench.cpp)
  target_link_libraries(cuda_attention_bench PRIVATE c8_backend_cuda c8_kv c8_util)
endif()
