# train/: the Part 1 tile model, trainer, checkpoints, quantification.
# gpu_* cases need a CUDA device (label gpu; exit code 77 = skipped).
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_train.c LIBS fp::train TIMEOUT 120
  GPU_CASES gpu_matches_cpu)
set_tests_properties(test_train.gpu_matches_cpu PROPERTIES SKIP_RETURN_CODE 77)
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_train_aug.c LIBS fp::train TIMEOUT 120
  GPU_CASES gpu_step_tiles_matches_cpu)
set_tests_properties(test_train_aug.gpu_step_tiles_matches_cpu PROPERTIES SKIP_RETURN_CODE 77)
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_train_fault.c LIBS fp::train LABELS fault TIMEOUT 60)
if(TARGET fedpath)
  fp_add_script_test(train_cli ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_train_cli.sh)
  set_tests_properties(train_cli PROPERTIES ENVIRONMENT "${FP_TEST_ENV_MPI}") # runs mpirun
  # Host and device gradient-exchange paths equal (mpirun; 77 = no mpirun).
  fp_add_script_test(train_dist ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_train_dist.sh)
  set_tests_properties(train_dist PROPERTIES ENVIRONMENT "${FP_TEST_ENV_MPI}" SKIP_RETURN_CODE 77)
endif()
