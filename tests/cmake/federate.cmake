# protocols/ (frames, streams, TLS channel) and federate/ PKI and audit log.
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_protocols.c LIBS fp::protocols TIMEOUT 60)
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_tls.c LIBS fp::federate fp::protocols TIMEOUT 60)
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_pki.c LIBS fp::federate fp::protocols TIMEOUT 60)
fp_add_test_file(${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit.c LIBS fp::federate TIMEOUT 60)
