# Tests of `fedpath tile`: slide readers, pre-parser, tiling, tile caches,
# clinical loader (data/), and the CLI end to end. tests/unit/test_tile_util.h
# writes the small slides the unit tests read.
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_tile_slide.c LIBS fp::data TIFF::TIFF)
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_tile.c LIBS fp::data TIFF::TIFF)
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_tile_cache.c LIBS fp::data hdf5::hdf5 Threads::Threads)
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_clinical.c LIBS fp::data)

# The CLI on the malformed corpus, mixed good/bad runs, reruns and the
# per-slide timeout (fault tier), and the comparison with OpenSlide's
# read_region (reference tier). Both exit 77 (skipped) without vips.
fp_add_script_test(tile_cli_check sh ${CMAKE_CURRENT_SOURCE_DIR}/fault/tile_cli_check.sh)
set_tests_properties(tile_cli_check PROPERTIES LABELS fault SKIP_RETURN_CODE 77 TIMEOUT 300)
fp_add_script_test(tile_openslide_reference /usr/bin/python3
                   ${CMAKE_CURRENT_SOURCE_DIR}/reference/tile_openslide_check.py)
set_tests_properties(tile_openslide_reference PROPERTIES LABELS reference SKIP_RETURN_CODE 77 TIMEOUT 300)
# kill -9 of `fedpath tile` at random moments, then resume (fault tier).
fp_add_script_test(tile_kill_resume sh ${CMAKE_CURRENT_SOURCE_DIR}/fault/tile_kill_resume.sh)
set_tests_properties(tile_kill_resume PROPERTIES LABELS fault TIMEOUT 180)
