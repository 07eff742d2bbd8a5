# common/: unit tests.
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_common.c LIBS fp::common TIMEOUT 60
                 FAULT_CASES file_commit_survives_kill)
