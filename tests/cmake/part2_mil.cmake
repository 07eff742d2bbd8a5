# The Part 2 MIL option (plan part2.kind = mil) through the CLI: plan checks,
# `mpirun simulate`, `predict --caches`, and aggregate + site over mutual TLS
# with federated evaluation (federate/plan.c, server.c, agent.c, eval_site.c,
# cli/cmd_simulate.c, cli/cmd_site.c).
if(TARGET fedpath)
  fp_add_script_test(part2_mil_cli ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_part2_mil_cli.sh)
  set(_milcli_env ${FP_TEST_ENV_MPI} "MPIEXEC=${MPIEXEC_EXECUTABLE}")
  set_tests_properties(part2_mil_cli PROPERTIES TIMEOUT 180 ENVIRONMENT "${_milcli_env}")
endif()
