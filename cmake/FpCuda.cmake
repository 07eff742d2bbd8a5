# FP_WITH_CUDA: AUTO builds the CUDA backend whenever nvcc is found, so CUDA
# sources always compile and link where the toolkit exists; OFF never does.
# The result is FP_HAVE_CUDA. At run time a missing GPU falls back to the CPU.
set(FP_HAVE_CUDA OFF)
if(NOT FP_WITH_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER)
    find_program(_fp_nvcc nvcc PATHS /usr/local/cuda/bin ENV CUDA_HOME PATH_SUFFIXES bin)
    if(_fp_nvcc)
      set(CMAKE_CUDA_COMPILER ${_fp_nvcc})
    endif()
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90)   # Hopper (H100/H200); override with -DCMAKE_CUDA_ARCHITECTURES
    endif()
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)
    find_package(CUDAToolkit REQUIRED)
    find_library(FP_CUDNN_LIBRARY NAMES cudnn
                 HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/lib/x86_64-linux-gnu /usr/local/cuda/lib64)
    find_path(FP_CUDNN_INCLUDE_DIR NAMES cudnn.h
              HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/include /usr/local/cuda/include
              PATH_SUFFIXES x86_64-linux-gnu)
    if(FP_CUDNN_LIBRARY AND FP_CUDNN_INCLUDE_DIR)
      add_library(fp::cudnn INTERFACE IMPORTED)
      target_link_libraries(fp::cudnn INTERFACE ${FP_CUDNN_LIBRARY})
      target_include_directories(fp::cudnn INTERFACE ${FP_CUDNN_INCLUDE_DIR})
      set(FP_HAVE_CUDA ON)
    elseif(FP_WITH_CUDA STREQUAL "ON")
      message(FATAL_ERROR "FP_WITH_CUDA=ON but cuDNN was not found (cudnn.h / libcudnn)")
    else()
      message(WARNING "nvcc found but cuDNN missing: building without CUDA")
    endif()
  elseif(FP_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "FP_WITH_CUDA=ON but no CUDA compiler (nvcc) was found")
  endif()
endif()
