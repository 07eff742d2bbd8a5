# validate/: unit tests (fast) and the reference tests against R's goldens
# (tests/data/validate, made by scripts/gen_validate_goldens.R).
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_validate.c LIBS fp::validate)
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_validate_pool.c LIBS fp::validate)
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_validate_reference.c LIBS fp::validate
                 LABELS reference)
if(TARGET fedpath)
  fp_add_script_test(validate_stats_cli ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_validate_cli.sh)
  fp_add_script_test(validate_report ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_validate_report.sh)
  set_tests_properties(validate_report PROPERTIES SKIP_RETURN_CODE 77)
endif()

# Timing driver for scripts/bench/bench_validate.sh (not a test; built on demand).
add_executable(bench_validate EXCLUDE_FROM_ALL ${PROJECT_SOURCE_DIR}/scripts/bench/bench_validate.c)
target_link_libraries(bench_validate PRIVATE fp::validate)
if(TARGET fedpath)
  # `fedpath report pull` wiring (the TLS exchange is tested in test_federation.c).
  fp_add_script_test(report_pull_cli ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_report_pull.sh)
endif()
