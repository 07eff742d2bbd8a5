# federate/eval_site.c: federated evaluation of the Part 2 model at a site.
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_eval_site.c LIBS fp::federate fp::train fp::validate fp::data
                 TIMEOUT 60)
