# fp_add_module(<folder> DEPS <targets...>)
# Builds the static library fp_<folder> from the folder's *.c files, and its
# *.cu files when the CUDA backend is on. A folder with no sources yet gets an
# INTERFACE library so that the dependency graph is already in place.
# NO_CUDA_SOURCES: the folder builds its *.cu itself (kernels/: a module
# loaded at run time); the library still gets FP_HAVE_CUDA.
function(fp_add_module name)
  cmake_parse_arguments(M "NO_CUDA_SOURCES" "" "DEPS;PRIVATE_DEPS;CUDA_DEPS" ${ARGN})
  file(GLOB _c CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.c)
  set(_cu "")
  if(FP_HAVE_CUDA AND NOT M_NO_CUDA_SOURCES)
    file(GLOB _cu CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cu)
  endif()
  set(_srcs ${_c} ${_cu} ${M_EXTRA_SOURCES})
  if(_srcs)
    add_library(fp_${name} STATIC ${_srcs})
    target_include_directories(fp_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}
                               ${PROJECT_BINARY_DIR}/generated)
    target_link_libraries(fp_${name} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
    if(FP_HAVE_CUDA)
      target_compile_definitions(fp_${name} PUBLIC FP_HAVE_CUDA=1)
      target_link_libraries(fp_${name} PRIVATE ${M_CUDA_DEPS})
      set_target_properties(fp_${name} PROPERTIES CUDA_SEPARABLE_COMPILATION OFF
                                                  CUDA_RESOLVE_DEVICE_SYMBOLS ON)
    endif()
  else()
    add_library(fp_${name} INTERFACE)
    target_include_directories(fp_${name} INTERFACE ${CMAKE_CURRENT_SOURCE_DIR})
    target_link_libraries(fp_${name} INTERFACE ${M_DEPS})
  endif()
  add_library(fp::${name} ALIAS fp_${name})
endfunction()
