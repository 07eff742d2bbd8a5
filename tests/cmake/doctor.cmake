# cli/cmd_doctor.c: `fedpath doctor` on good and broken site setups.
if(TARGET fedpath)
  fp_add_script_test(doctor_cli ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_doctor.sh)
endif()
