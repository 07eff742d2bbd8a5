# federate/server.c + agent.c: the TLS federation on 127.0.0.1 (threads and
# forked processes; every wait bounded).
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_federation.c LIBS fp::federate fp::protocols TIMEOUT 90)
if(TARGET fedpath)
  # pki + synth + tile + aggregate + 3 x site (Part 1) + status + audit, as
  # processes; then the same plan under mpirun simulate must end bit-identical.
  fp_add_script_test(federation_cli ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_federation_cli.sh)
  set_tests_properties(federation_cli PROPERTIES ENVIRONMENT "${FP_TEST_ENV_MPI}") # runs mpirun
  # Part 2 over TLS: pooled statistics (kill -9 after pooling), baselines,
  # model files at every site; equals `mpirun simulate`; a missing site named.
  fp_add_script_test(federation_p2_cli ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_federation_p2_cli.sh)
  set_tests_properties(federation_p2_cli PROPERTIES ENVIRONMENT "${FP_TEST_ENV_MPI}")
endif()
