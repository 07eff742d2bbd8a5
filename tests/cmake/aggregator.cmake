# federate/aggregator.c: round state, strategies, crash-safe resumption.
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_aggregator.c LIBS fp::federate TIMEOUT 120
                 FAULT_CASES kill9_resume_bit_identical_fedavg kill9_resume_bit_identical_fedyogi
                             torn_journal_and_damaged_model)

# Benchmark driver for scripts/bench/bench_aggregator.sh (not a test; built on demand).
add_executable(bench_aggregator EXCLUDE_FROM_ALL ${PROJECT_SOURCE_DIR}/scripts/bench/bench_aggregator.c)
target_link_libraries(bench_aggregator PRIVATE fp::federate)
