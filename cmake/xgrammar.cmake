# xgrammar's C++ core (the grammar engine of structured output), compiled from the sources that
# scripts/install_deps.sh puts in .deps/xgrammar (PyPI sdist, pinned and checksum-verified).
# Built here with c8's flags rather than its own CMakeLists (which adds -Werror, LTO and Python
# bindings). Defines C8_HAVE_XGRAMMAR and the target c8_xgrammar when the sources are present.
set(C8_XGRAMMAR_DIR "${CMAKE_SOURCE_DIR}/.deps/xgrammar" CACHE PATH "xgrammar source tree")
set(C8_HAVE_XGRAMMAR OFF)
if(EXISTS "${C8_XGRAMMAR_DIR}/include/xgrammar/xgrammar.h")
  file(GLOB_RECURSE _xg_srcs "${C8_XGRAMMAR_DIR}/cpp/*.cc")
  list(FILTER _xg_srcs EXCLUDE REGEX "/cpp/tvm_ffi/")
  list(FILTER _xg_srcs EXCLUDE REGEX "/cpp/nanobind/")
  add_library(c8_xgrammar STATIC ${_xg_srcs})
  set_target_properties(c8_xgrammar PROPERTIES CXX_STANDARD 17 POSITION_INDEPENDENT_CODE ON)
  target_include_directories(c8_xgrammar PUBLIC "${C8_XGRAMMAR_DIR}/include")
  target_include_directories(c8_xgrammar SYSTEM PUBLIC "${C8_XGRAMMAR_DIR}/3rdparty/picojson"
                                                       "${C8_XGRAMMAR_DIR}/3rdparty/dlpack/include")
  target_compile_definitions(c8_xgrammar PUBLIC XGRAMMAR_ENABLE_CPPTRACE=0)
  target_compile_options(c8_xgrammar PRIVATE -O2 -w)
  target_link_libraries(c8_xgrammar PUBLIC Threads::Threads)
  set(C8_HAVE_XGRAMMAR ON)
endif()
message(STATUS "c8: xgrammar (structured output) ${C8_HAVE_XGRAMMAR}")
