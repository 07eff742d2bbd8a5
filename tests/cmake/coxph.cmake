# train/coxph.c: the reference Cox model against R's survival::coxph.
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_coxph.c LIBS fp::train LABELS reference TIMEOUT 60)
