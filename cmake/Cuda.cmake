# Cuda.cmake: find a CUDA toolkit and enable the CUDA language, or fall back to a CPU-only build.
# Never fails configure. Sets KUBEFIT_HAVE_CUDA (ON/OFF); trainer/cuda/ builds kubefit_cuda when ON,
# which carries the compile definition KUBEFIT_HAVE_CUDA=1 to whatever links it.
#
# Where nvcc comes from, first match wins (docs/gpu.md):
#   1. -DCMAKE_CUDA_COMPILER=... or $CUDACXX; -DCUDAToolkit_ROOT=... or $CUDAToolkit_ROOT
#   2. /usr/local/cuda (a system toolkit, as on the lent GPU machines)
#   3. the pip wheels hack/setup.d/20-cuda.sh installs:
#      $KUBEFIT_TOOLS/venv-cuda/lib/python3.*/site-packages/nvidia/cu13 (bin/nvcc, include/, lib/)
# The candidate is first built in a throw-away probe project (a sm_90 kernel linked with cudart and
# cuBLAS), so a broken toolkit means a CPU-only build with one STATUS line saying why.
# -DKUBEFIT_CUDA=OFF forces a CPU-only build.

option(KUBEFIT_CUDA "Build the CUDA backend when a usable CUDA toolkit is found" ON)
set(KUBEFIT_HAVE_CUDA OFF)

if(NOT KUBEFIT_CUDA)
  message(STATUS "kubefit: CUDA disabled (-DKUBEFIT_CUDA=OFF), building CPU-only")
  return()
endif()

# _kubefit_cuda_candidate(<out>): the nvcc to try, or "" when none is around.
function(_kubefit_cuda_candidate out)
  set(nvcc "")
  if(CMAKE_CUDA_COMPILER)
    set(nvcc "${CMAKE_CUDA_COMPILER}")
  elseif(DEFINED ENV{CUDACXX} AND NOT "$ENV{CUDACXX}" STREQUAL "")
    set(nvcc "$ENV{CUDACXX}")
  elseif(CUDAToolkit_ROOT)
    set(nvcc "${CUDAToolkit_ROOT}/bin/nvcc")
  elseif(DEFINED ENV{CUDAToolkit_ROOT} AND NOT "$ENV{CUDAToolkit_ROOT}" STREQUAL "")
    set(nvcc "$ENV{CUDAToolkit_ROOT}/bin/nvcc")
  elseif(EXISTS /usr/local/cuda/bin/nvcc)
    set(nvcc /usr/local/cuda/bin/nvcc)
  else()
    if(DEFINED ENV{KUBEFIT_TOOLS} AND NOT "$ENV{KUBEFIT_TOOLS}" STREQUAL "")
      set(tools "$ENV{KUBEFIT_TOOLS}")
    else()
      set(tools "$ENV{HOME}/.cache/kubefit")
    endif()
    file(GLOB pip_nvcc "${tools}/venv-cuda/lib/python3.*/site-packages/nvidia/cu13/bin/nvcc")
    if(pip_nvcc)
      list(SORT pip_nvcc)
      list(POP_BACK pip_nvcc nvcc) # the newest Python's copy
    endif()
  endif()
  set(${out} "${nvcc}" PARENT_SCOPE)
endfunction()

# _kubefit_cuda_probe(<ok> <why> nvcc): builds a kernel + cudart + cuBLAS program with that nvcc.
function(_kubefit_cuda_probe ok why nvcc)
  set(dir "${CMAKE_BINARY_DIR}/CMakeFiles/kubefit-cuda-probe")
  file(REMOVE_RECURSE "${dir}")
  file(WRITE "${dir}/src/CMakeLists.txt" [=[
cmake_minimum_required(VERSION 3.24)
project(kubefit_cuda_probe LANGUAGES C CUDA)
find_package(CUDAToolkit REQUIRED)
if(NOT TARGET CUDA::cublas)
  message(FATAL_ERROR "cuBLAS not found next to nvcc (missing libcublas.so?)")
endif()
add_executable(probe probe.cu)
target_link_libraries(probe PRIVATE CUDA::cublas CUDA::cudart)
]=])
  file(WRITE "${dir}/src/probe.cu" [=[
#include <cublas_v2.h>
#include <cuda_runtime.h>
__global__ void twice(float *x, int n) { int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) x[i] *= 2; }
int main(void) { cublasHandle_t h; twice<<<1, 32>>>(0, 0); return cublasCreate(&h) == CUBLAS_STATUS_SUCCESS ? 0 : 1; }
]=])
  execute_process(
    COMMAND "${CMAKE_COMMAND}" -S "${dir}/src" -B "${dir}/build" -G "${CMAKE_GENERATOR}"
            "-DCMAKE_MAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}" "-DCMAKE_C_COMPILER=${CMAKE_C_COMPILER}"
            "-DCMAKE_CUDA_COMPILER=${nvcc}" "-DCMAKE_CUDA_HOST_COMPILER=${CMAKE_CUDA_HOST_COMPILER}"
            -DCMAKE_CUDA_ARCHITECTURES=90
            -DCMAKE_CUDA_RUNTIME_LIBRARY=Shared
    RESULT_VARIABLE rc OUTPUT_VARIABLE log ERROR_VARIABLE log)
  if(rc EQUAL 0)
    execute_process(COMMAND "${CMAKE_COMMAND}" --build "${dir}/build"
                    RESULT_VARIABLE rc OUTPUT_VARIABLE blog ERROR_VARIABLE blog)
    string(APPEND log "${blog}")
  endif()
  if(rc EQUAL 0)
    set(built TRUE)
  else()
    set(built FALSE)
  endif()
  if(built)
    set(${why} "" PARENT_SCOPE)
  else()
    # The first error line is enough to tell a user what is missing; the rest goes to a file.
    file(WRITE "${CMAKE_BINARY_DIR}/CMakeFiles/kubefit-cuda-probe.log" "${log}")
    string(REGEX MATCH "(cannot find|fatal|error:|not found)[^\n]*" first "${log}")
    if(NOT first)
      string(REGEX MATCH "Error[^\n]*" first "${log}")
    endif()
    set(${why} "${first} (full log: CMakeFiles/kubefit-cuda-probe.log)" PARENT_SCOPE)
  endif()
  set(${ok} ${built} PARENT_SCOPE)
endfunction()

_kubefit_cuda_candidate(_kf_nvcc)
if(_kf_nvcc STREQUAL "" OR NOT EXISTS "${_kf_nvcc}")
  if(_kf_nvcc STREQUAL "")
    message(STATUS "kubefit: no CUDA toolkit found (no nvcc; run hack/setup or set CUDAToolkit_ROOT), building CPU-only")
  else()
    message(STATUS "kubefit: nvcc not found at ${_kf_nvcc}, building CPU-only")
  endif()
  return()
endif()
get_filename_component(_kf_nvcc "${_kf_nvcc}" ABSOLUTE)

# nvcc compiles host code with g++ by default; with clang as the C compiler (fuzz/sanitizer builds)
# use the matching clang++, so objects and sanitizer runtimes come from one toolchain.
if(CMAKE_C_COMPILER_ID MATCHES "Clang" AND NOT CMAKE_CUDA_HOST_COMPILER)
  get_filename_component(_kf_cdir "${CMAKE_C_COMPILER}" DIRECTORY)
  find_program(_kf_clangxx NAMES clang++ HINTS "${_kf_cdir}" NO_CACHE)
  if(_kf_clangxx)
    set(CMAKE_CUDA_HOST_COMPILER "${_kf_clangxx}" CACHE FILEPATH "Host compiler nvcc uses")
  endif()
endif()

# A success is remembered per nvcc + host compiler; a failure is probed again next time
# (hack/setup may fix it).
set(_kf_key "${_kf_nvcc}|${CMAKE_CUDA_HOST_COMPILER}")
if(NOT KUBEFIT_CUDA_PROBED STREQUAL _kf_key)
  _kubefit_cuda_probe(_kf_ok _kf_why "${_kf_nvcc}")
  if(NOT _kf_ok)
    message(STATUS "kubefit: CUDA toolkit at ${_kf_nvcc} unusable: ${_kf_why}; building CPU-only")
    return()
  endif()
  set(KUBEFIT_CUDA_PROBED "${_kf_key}" CACHE INTERNAL "nvcc|host compiler that built the CUDA probe")
endif()

set(CMAKE_CUDA_COMPILER "${_kf_nvcc}" CACHE FILEPATH "CUDA compiler" FORCE)
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90) # H100 / H200: sm_90 code + compute_90 PTX
endif()
set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
enable_language(CUDA)
# CMake 3.25's FindCUDAToolkit errors out when libnvToolsExt is absent (the pip wheels have none)
# and the project requires >= 3.25; it only checks this variable, so lower it for the call.
set(_kf_min "${CMAKE_MINIMUM_REQUIRED_VERSION}")
set(CMAKE_MINIMUM_REQUIRED_VERSION 3.24)
find_package(CUDAToolkit QUIET)
set(CMAKE_MINIMUM_REQUIRED_VERSION "${_kf_min}")
if(NOT CUDAToolkit_FOUND OR NOT TARGET CUDA::cublas)
  message(STATUS "kubefit: CUDA toolkit at ${_kf_nvcc} lacks cudart/cuBLAS, building CPU-only")
  return()
endif()

# The project-wide compile options (top-level add_compile_options, added before this file is
# included) are gcc flags that nvcc rejects: keep them for C/C++ and hand them to nvcc's host
# compiler through -Xcompiler. Options added after this point are not translated. Link options
# need nothing: CMake links CUDA programs with the host compiler.
get_property(_kf_opts DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY COMPILE_OPTIONS)
set(_kf_new "")
foreach(_kf_opt IN LISTS _kf_opts)
  if(_kf_opt MATCHES "^\\$<") # already language-aware
    list(APPEND _kf_new "${_kf_opt}")
    continue()
  endif()
  list(APPEND _kf_new "$<$<COMPILE_LANGUAGE:C,CXX>:${_kf_opt}>")
  # nvcc splits -Xcompiler values at commas: -fsanitize=address,undefined becomes one flag each.
  if(_kf_opt MATCHES "^(-[^=]+=)(.*,.*)$")
    string(REPLACE "," ";" _kf_vals "${CMAKE_MATCH_2}")
    list(TRANSFORM _kf_vals PREPEND "${CMAKE_MATCH_1}")
  else()
    set(_kf_vals "${_kf_opt}")
  endif()
  foreach(_kf_val IN LISTS _kf_vals)
    list(APPEND _kf_new "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${_kf_val}>")
  endforeach()
endforeach()
set_property(DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY COMPILE_OPTIONS "${_kf_new}")

# CMake counts the toolkit's lib folder as an implicit link directory and so writes no RPATH for
# it; programs need it to find libcudart/libcublas outside /usr/local/cuda (the pip wheels).
get_filename_component(KUBEFIT_CUDA_LIBDIR "${CUDAToolkit_LIBRARY_DIR}" REALPATH)

set(KUBEFIT_HAVE_CUDA ON)
message(STATUS "kubefit: CUDA ${CMAKE_CUDA_COMPILER_VERSION} (${_kf_nvcc}), sm_${CMAKE_CUDA_ARCHITECTURES}, cuBLAS: building the CUDA backend")
