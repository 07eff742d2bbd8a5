# cli/cmd_simulate.c comparison modes (--holdout, --centralised, --local-only)
# behind scripts/compare_part2.sh.
if(TARGET fedpath)
  fp_add_script_test(compare_cli ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_compare_cli.sh)
  set(_cmpcli_env ${FP_TEST_ENV_MPI} "MPIEXEC=${MPIEXEC_EXECUTABLE}")
  set_tests_properties(compare_cli PROPERTIES TIMEOUT 300 ENVIRONMENT "${_cmpcli_env}")
endif()
