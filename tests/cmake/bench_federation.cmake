# Site-side driver of scripts/bench/bench_federation.sh (the fedpath vs Flower
# round benchmark of issue 8 item 9). Not a test and not in any tier: built on
# demand with --target bench_federation.
add_executable(bench_federation EXCLUDE_FROM_ALL ${PROJECT_SOURCE_DIR}/scripts/bench/bench_federation.c)
target_link_libraries(bench_federation PRIVATE fp::federate)
