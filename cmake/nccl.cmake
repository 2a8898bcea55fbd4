# NCCL for tensor parallelism (src/c8/backend/cuda/nccl_communicator.*): optional. Included by the
# top-level CMakeLists.txt right after c8_backend_cuda is created. Looks for nccl.h and
# libnccl.so(.2) in -DC8_NCCL_ROOT=<dir>, $NCCL_HOME / $NCCL_ROOT, the CUDA toolkit, the system
# directories and the nvidia-nccl pip wheel of the default python3 (site-packages/nvidia/nccl,
# where PyTorch's images keep it). When found, c8_backend_cuda links it and gets
# C8_WITH_NCCL=1 (PUBLIC); otherwise CreateNcclCommunicators answers an error.
set(C8_NCCL_ROOT "" CACHE PATH "Directory holding include/nccl.h and lib/libnccl.so (optional)")

set(C8_HAVE_NCCL OFF)
if(TARGET c8_backend_cuda)
  set(_c8_nccl_hints "")
  foreach(_d "${C8_NCCL_ROOT}" "$ENV{NCCL_HOME}" "$ENV{NCCL_ROOT}")
    if(_d)
      list(APPEND _c8_nccl_hints "${_d}")
    endif()
  endforeach()
  # The pip wheel (nvidia-nccl-cu12 / -cu13): <purelib>/nvidia/nccl/{include,lib}.
  find_program(_c8_python3 python3)
  if(_c8_python3)
    execute_process(
      COMMAND "${_c8_python3}" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"
      OUTPUT_VARIABLE _c8_purelib OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
    if(_rc EQUAL 0 AND EXISTS "${_c8_purelib}/nvidia/nccl")
      list(APPEND _c8_nccl_hints "${_c8_purelib}/nvidia/nccl")
    endif()
  endif()
  set(_c8_inc_hints ${CUDAToolkit_INCLUDE_DIRS})
  set(_c8_lib_hints ${CUDAToolkit_LIBRARY_DIR})
  foreach(_d ${_c8_nccl_hints})
    list(APPEND _c8_inc_hints "${_d}/include")
    list(APPEND _c8_lib_hints "${_d}/lib" "${_d}/lib64")
  endforeach()
  find_path(C8_NCCL_INCLUDE_DIR nccl.h
            HINTS ${_c8_inc_hints}
            PATHS /usr/local/include /usr/include /usr/local/cuda/include)
  find_library(C8_NCCL_LIBRARY NAMES nccl libnccl.so.2
               HINTS ${_c8_lib_hints}
               PATHS /usr/local/lib /usr/lib/x86_64-linux-gnu /usr/local/cuda/lib64
                     /usr/local/cuda/lib)
  if(C8_NCCL_INCLUDE_DIR AND C8_NCCL_LIBRARY)
    file(STRINGS "${C8_NCCL_INCLUDE_DIR}/nccl.h" _c8_v REGEX "^#define NCCL_(MAJOR|MINOR) +[0-9]+")
    string(REGEX REPLACE ".*NCCL_MAJOR +([0-9]+).*" "\\1" _c8_major "${_c8_v}")
    string(REGEX REPLACE ".*NCCL_MINOR +([0-9]+).*" "\\1" _c8_minor "${_c8_v}")
    set(C8_HAVE_NCCL ON)
    target_include_directories(c8_backend_cuda SYSTEM PRIVATE "${C8_NCCL_INCLUDE_DIR}")
    # c8_backend_cuda is static: its users link libnccl too (the build tree's RPATH finds it).
    target_link_libraries(c8_backend_cuda PUBLIC "${C8_NCCL_LIBRARY}")
    target_compile_definitions(c8_backend_cuda PUBLIC C8_WITH_NCCL=1)
    message(STATUS "c8: NCCL ON (${_c8_major}.${_c8_minor}: ${C8_NCCL_LIBRARY}; "
                   "header: ${C8_NCCL_INCLUDE_DIR})")
  else()
    message(STATUS "c8: NCCL OFF (nccl.h or libnccl not found; set C8_NCCL_ROOT)")
  endif()
endif()
