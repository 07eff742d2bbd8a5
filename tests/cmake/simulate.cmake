# federate/simulate.c: the MPI round loop, as a real mpiexec job.
add_executable(test_simulate_mpi ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_simulate_mpi.c)
target_link_libraries(test_simulate_mpi PRIVATE fp::federate MPI::MPI_C)
add_test(NAME simulate.mpi_fedavg_4ranks
         COMMAND sh -c "d=$(mktemp -d) && ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 4 --oversubscribe $<TARGET_FILE:test_simulate_mpi> $d; rc=$?; rm -rf $d; exit $rc")
set_tests_properties(simulate.mpi_fedavg_4ranks PROPERTIES TIMEOUT 180 LABELS fast ENVIRONMENT "${FP_TEST_ENV_MPI}")
