# data/ synth: the phantom cohort generator (issue 3).
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_synth.c LIBS fp::data TIMEOUT 120)
# OpenSlide reads what `fedpath synth` writes: vendor, levels, dimensions, mpp,
# associated images, class colours at known regions, and the CLI's bad-argument
# contract. Needs Debian's python3-openslide and python3-numpy.
fp_add_script_test(synth.openslide /usr/bin/python3
                   ${CMAKE_CURRENT_SOURCE_DIR}/reference/synth_openslide_check.py)
set_tests_properties(synth.openslide PROPERTIES LABELS reference TIMEOUT 180)
