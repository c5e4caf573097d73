# no_seams.cmake - cmake -DBIN=path -P no_seams.cmake: fails if the binary
# holds a test seam string (a HZSHM_AGENT_TEST_* variable, a seam's log line
# or function name). Run on the shipped hzshm-agent (test agent_no_seams) and,
# to show the check can fail, on hzshm-agent-seams (agent_no_seams_detects).
if(NOT EXISTS "${BIN}")
  message(FATAL_ERROR "no such binary: ${BIN}")
endif()
file(STRINGS "${BIN}" hits REGEX "HZSHM_AGENT_TEST|[Tt]est (seam|hook)|hzc_test_|agent_test_|test_block|test: ")
if(hits)
  list(REMOVE_DUPLICATES hits)
  string(REPLACE ";" "\n  " shown "${hits}")
  message(FATAL_ERROR "${BIN} contains test seam strings:\n  ${shown}")
endif()
message(STATUS "${BIN}: no test seam string")
