# cli/: the command-line contract.
fp_add_script_test(cli.contract ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli.sh)
