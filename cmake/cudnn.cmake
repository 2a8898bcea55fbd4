# cuDNN prefill attention (src/c8/backend/cuda/cuda_cudnn_prefill.*): optional. Included by the
# top-level CMakeLists.txt right after c8_backend_cuda is created. Turns on when both
#   - the header-only cudnn_frontend (scripts/install_deps.sh fetches it into .deps/, or
#     -DC8_CUDNN_FRONTEND_INCLUDE=<dir holding cudnn_frontend.h>), and
#   - cuDNN 9 (cudnn.h and libcudnn.so, in the CUDA toolkit or the system directories)
# are found; then c8_backend_cuda gets C8_WITH_CUDNN=1 and links libcudnn (and NVRTC, which the
# frontend's experimental engines reference), and the
# cudnn_prefill_bench target exists. Otherwise nothing changes (the module compiles inert).
set(C8_CUDNN_FRONTEND_INCLUDE "" CACHE PATH
    "Directory holding cudnn_frontend.h (default: <source>/.deps/cudnn_frontend/include)")

set(C8_HAVE_CUDNN OFF)
set(_c8_cudnn_why "")
if(C8_CUDNN_FRONTEND_INCLUDE)
  set(_c8_fe_dir "${C8_CUDNN_FRONTEND_INCLUDE}")
else()
  set(_c8_fe_dir "${CMAKE_SOURCE_DIR}/.deps/cudnn_frontend/include")
endif()

if(NOT TARGET c8_backend_cuda)
  set(_c8_cudnn_why "no c8_backend_cuda target")
elseif(NOT EXISTS "${_c8_fe_dir}/cudnn_frontend.h")
  set(_c8_cudnn_why "no cudnn_frontend.h in ${_c8_fe_dir}; run scripts/install_deps.sh")
else()
  find_path(C8_CUDNN_INCLUDE_DIR cudnn.h
            HINTS ${CUDAToolkit_INCLUDE_DIRS}
            PATHS /usr/include /usr/include/x86_64-linux-gnu)
  find_library(C8_CUDNN_LIBRARY NAMES cudnn
               HINTS ${CUDAToolkit_LIBRARY_DIR}
               PATHS /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu)
  if(NOT C8_CUDNN_INCLUDE_DIR)
    set(_c8_cudnn_why "cudnn.h not found")
  elseif(NOT C8_CUDNN_LIBRARY)
    set(_c8_cudnn_why "libcudnn.so not found")
  else()
    # cudnn_version.h (cuDNN 8+) holds the version macros.
    set(_c8_cudnn_version "")
    foreach(_h cudnn_version.h cudnn.h)
      if(NOT _c8_cudnn_version AND EXISTS "${C8_CUDNN_INCLUDE_DIR}/${_h}")
        file(STRINGS "${C8_CUDNN_INCLUDE_DIR}/${_h}" _c8_v
             REGEX "^#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) +[0-9]+")
        string(REGEX REPLACE ".*CUDNN_MAJOR +([0-9]+).*" "\\1" _c8_major "${_c8_v}")
        string(REGEX REPLACE ".*CUDNN_MINOR +([0-9]+).*" "\\1" _c8_minor "${_c8_v}")
        string(REGEX REPLACE ".*CUDNN_PATCHLEVEL +([0-9]+).*" "\\1" _c8_patch "${_c8_v}")
        if(_c8_major MATCHES "^[0-9]+$")
          set(_c8_cudnn_version "${_c8_major}.${_c8_minor}.${_c8_patch}")
        endif()
      endif()
    endforeach()
    if(NOT _c8_cudnn_version OR _c8_cudnn_version VERSION_LESS 9.0)
      set(_c8_cudnn_why "cuDNN ${_c8_cudnn_version} in ${C8_CUDNN_INCLUDE_DIR} is older than 9")
    elseif(NOT TARGET CUDA::nvrtc)
      # The frontend's experimental engines call NVRTC directly (no dynamic loading).
      set(_c8_cudnn_why "no NVRTC library in the CUDA toolkit")
    else()
      set(C8_HAVE_CUDNN ON)
    endif()
  endif()
endif()

if(C8_HAVE_CUDNN)
  target_include_directories(c8_backend_cuda SYSTEM PRIVATE "${_c8_fe_dir}" "${C8_CUDNN_INCLUDE_DIR}")
  # The pip wheel ships no nlohmann/json copy; graph (de)serialization is not used.
  target_compile_definitions(c8_backend_cuda PRIVATE CUDNN_FRONTEND_SKIP_JSON_LIB=1)
  target_compile_definitions(c8_backend_cuda PUBLIC C8_WITH_CUDNN=1)
  # c8_backend_cuda is static: its users link libcudnn too.
  target_link_libraries(c8_backend_cuda PUBLIC "${C8_CUDNN_LIBRARY}" CUDA::nvrtc ${CMAKE_DL_LIBS})
  message(STATUS "c8: cuDNN prefill ON (cuDNN ${_c8_cudnn_version}: ${C8_CUDNN_LIBRARY}; "
                 "frontend: ${_c8_fe_dir})")
  if(NOT TARGET cudnn_prefill_bench)
    add_executable(cudnn_prefill_bench ${CMAKE_SOURCE_DIR}/benchmarks/cudnn_prefill_bench.cpp)
    target_link_libraries(cudnn_prefill_bench PRIVATE c8_backend_cuda c8_util)
  endif()
else()
  message(STATUS "c8: cuDNN prefill OFF (${_c8_cudnn_why})")
endif()
