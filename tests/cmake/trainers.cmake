# federate/trainers.c, train/part2_ckpt.c, cli/cmd_simulate.c, cli/cmd_predict.c:
# the Part 2 federated adapter, its checkpoint, and the simulate -> predict path.
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_trainers.c LIBS fp::federate fp::train fp::data TIMEOUT 60)
if(TARGET fedpath)
  fp_add_script_test(simulate_cli ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_simulate_cli.sh)
  set(_simcli_env ${FP_TEST_ENV_MPI} "MPIEXEC=${MPIEXEC_EXECUTABLE}")
  set_tests_properties(simulate_cli PROPERTIES TIMEOUT 180 ENVIRONMENT "${_simcli_env}")
endif()
