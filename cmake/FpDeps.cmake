# Third-party libraries, each through its own CMake package or pkg-config,
# exposed as imported targets. scripts/bootstrap installs the Debian packages.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL 3.0 REQUIRED)                       # OpenSSL::SSL OpenSSL::Crypto
find_package(TIFF REQUIRED)                              # TIFF::TIFF
find_package(JPEG REQUIRED)                              # JPEG::JPEG (libjpeg-turbo)
find_package(HDF5 REQUIRED COMPONENTS C)                 # hdf5::hdf5 (target created below)
find_package(MPI REQUIRED COMPONENTS C)                  # MPI::MPI_C
find_package(OpenMP REQUIRED COMPONENTS C)               # OpenMP::OpenMP_C
pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)     # PkgConfig::OPENBLAS
pkg_check_modules(OPENJP2 REQUIRED IMPORTED_TARGET libopenjp2)    # PkgConfig::OPENJP2
pkg_check_modules(PROTOBUFC REQUIRED IMPORTED_TARGET libprotobuf-c)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(INIH REQUIRED IMPORTED_TARGET inih)
find_program(PROTOC_C NAMES protoc-c REQUIRED)

if(NOT TARGET hdf5::hdf5)
  add_library(hdf5::hdf5 INTERFACE IMPORTED)
  target_include_directories(hdf5::hdf5 INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
  target_link_libraries(hdf5::hdf5 INTERFACE ${HDF5_C_LIBRARIES})
  target_compile_definitions(hdf5::hdf5 INTERFACE ${HDF5_DEFINITIONS} H5_USE_110_API)
endif()

# Short aliases the module CMakeLists use.
add_library(fp::openblas ALIAS PkgConfig::OPENBLAS)
add_library(fp::openjp2 ALIAS PkgConfig::OPENJP2)
add_library(fp::protobufc ALIAS PkgConfig::PROTOBUFC)
add_library(fp::jansson ALIAS PkgConfig::JANSSON)
add_library(fp::inih ALIAS PkgConfig::INIH)

# oneDNN: Debian's CMake package config drags in OpenCL (its GPU runtime), which
# we never use, so the library is found directly.
find_library(FP_DNNL_LIBRARY NAMES dnnl REQUIRED)
find_path(FP_DNNL_INCLUDE_DIR NAMES oneapi/dnnl/dnnl.h REQUIRED)
add_library(DNNL::dnnl INTERFACE IMPORTED)
target_link_libraries(DNNL::dnnl INTERFACE ${FP_DNNL_LIBRARY})
target_include_directories(DNNL::dnnl INTERFACE ${FP_DNNL_INCLUDE_DIR})
