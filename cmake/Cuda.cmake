# Placeholder: the CUDA detection (pip toolchain or /usr/local/cuda) lands here.
set(KUBEFIT_HAVE_CUDA OFF)
message(STATUS "kubefit: no CUDA toolkit found, building CPU-only")
