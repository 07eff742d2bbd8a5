# train/part2*.c: the Part 2 patient table, federated standardisation, and the regimen model.
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_part2_table.c LIBS fp::train TIMEOUT 60)
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_part2.c LIBS fp::train TIMEOUT 120)
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_part2_mil.c LIBS fp::federate fp::train TIMEOUT 120)
