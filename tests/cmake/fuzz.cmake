# Fuzz targets: tests/fuzz/fuzz_<name>.c defines LLVMFuzzerTestOneInput.
# Every build replays tests/fuzz/corpus/<name>/ (plus any extra corpus folders
# listed in FP_FUZZ_EXTRA_CORPUS_<name>) through replay_main.c; with
# -DFP_FUZZ=ON and clang, tests/fuzz/CMakeLists.txt also builds real libFuzzer
# binaries.
file(GLOB _fuzz_srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_*.c)
set(FP_FUZZ_EXTRA_CORPUS_slide_reader ${CMAKE_CURRENT_SOURCE_DIR}/data/malformed)
set(FP_FUZZ_EXTRA_CORPUS_tiff_preparse ${CMAKE_CURRENT_SOURCE_DIR}/data/malformed)
foreach(_src ${_fuzz_srcs})
  get_filename_component(_name ${_src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" _target ${_name})
  set(_corpus ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${_target})
  add_executable(fuzz_replay_${_target} ${_src} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/replay_main.c)
  target_link_libraries(fuzz_replay_${_target} PRIVATE fp::federate fp::protocols fp::data fp::common)
  set(_dirs ${_corpus})
  foreach(_extra ${FP_FUZZ_EXTRA_CORPUS_${_target}})
    if(EXISTS ${_extra})
      list(APPEND _dirs ${_extra})
    endif()
  endforeach()
  add_test(NAME fuzz_replay.${_target} COMMAND fuzz_replay_${_target} ${_dirs})
  set_tests_properties(fuzz_replay.${_target} PROPERTIES TIMEOUT 120 LABELS fault
                       ENVIRONMENT "${FP_TEST_ENV}")
endforeach()
