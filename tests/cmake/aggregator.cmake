# federate/aggregator.c: round state, strategies, crash-safe resumption.
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_aggregator.c LIBS fp::federate TIMEOUT 120
                 FAULT_CASES kill9_resume_bit_identical_fedavg kill9_resume_bit_identical_fedyogi
                             torn_journal_and_damaged_model)
