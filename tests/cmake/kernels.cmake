# kernels/: both backends against the plain-C reference, finite-difference
# gradient checks of the reference, PyTorch/R goldens (tests/data/kernels).
# gpu_* cases need a CUDA device: label gpu, exit code 77 = skipped.

# The Part 1-like test network (kernels/testnet), shared by the golden test,
# the benchmark and scripts/gpu-check; not part of the library.
add_library(fp_kernels_testnet STATIC ${PROJECT_SOURCE_DIR}/kernels/testnet/fp_part1_net.c)
target_include_directories(fp_kernels_testnet PUBLIC ${PROJECT_SOURCE_DIR}/kernels/testnet)
target_link_libraries(fp_kernels_testnet PUBLIC fp::kernels)

set(_fp_kernels_gpu gpu_conv2d gpu_linear gpu_elementwise gpu_pooling gpu_groupnorm gpu_batchnorm
    gpu_losses gpu_cox gpu_attnpool gpu_optimisers gpu_aggregate gpu_mean_rows gpu_augment_tiles)
set(_fp_kernels_golden_gpu gpu_golden_conv_linear gpu_golden_act_pool_norm gpu_golden_losses_attn
    gpu_golden_cox_ties gpu_golden_optim_agg gpu_golden_net_adamw gpu_net_rerun_bitwise gpu_mixed_net_adamw)
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_kernels.c LIBS fp::kernels TIMEOUT 120
                 GPU_CASES ${_fp_kernels_gpu})
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_kernels_grad.c LIBS fp::kernels)
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_kernels_golden.c LIBS fp_kernels_testnet
                 LABELS reference GPU_CASES ${_fp_kernels_golden_gpu})
if(FP_HAVE_CUDA AND TARGET fp_cuda)
  target_compile_definitions(test_kernels PRIVATE FP_TEST_CUDA_MODULE="$<TARGET_FILE:fp_cuda>")
endif()
foreach(_c ${_fp_kernels_gpu} cuda_request_falls_back_to_cpu cuda_module_loads_and_reports)
  set_tests_properties(test_kernels.${_c} PROPERTIES SKIP_RETURN_CODE 77)
endforeach()
foreach(_c ${_fp_kernels_golden_gpu})
  set_tests_properties(test_kernels_golden.${_c} PROPERTIES SKIP_RETURN_CODE 77)
endforeach()

# Benchmark driver for scripts/bench/bench_kernels.sh (not a test).
add_executable(bench_kernels ${PROJECT_SOURCE_DIR}/kernels/testnet/bench_kernels.c)
target_link_libraries(bench_kernels PRIVATE fp_kernels_testnet)
