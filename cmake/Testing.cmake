# kubefit_test(NAME n SOURCES a.c ... [LIBS l ...] [LABELS unit ...] [TIMEOUT s] [ENV K=V ...])
# Builds one test executable and registers it with ctest. Exit code 77 means skipped.
function(kubefit_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS;ENV" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} m)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
                       SKIP_RETURN_CODE 77
                       ENVIRONMENT "KUBEFIT_SOURCE_DIR=${PROJECT_SOURCE_DIR};KUBEFIT_BINARY_DIR=${PROJECT_BINARY_DIR};${T_ENV}")
endfunction()

# kubefit_script_test(NAME n COMMAND cmd args... [LABELS ...] [TIMEOUT s] [ENV K=V ...])
# Registers a shell/Python test script. Exit code 77 means skipped.
function(kubefit_script_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "COMMAND;LABELS;ENV" ${ARGN})
  add_test(NAME ${T_NAME} COMMAND ${T_COMMAND} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
                       SKIP_RETURN_CODE 77
                       ENVIRONMENT "KUBEFIT_SOURCE_DIR=${PROJECT_SOURCE_DIR};KUBEFIT_BINARY_DIR=${PROJECT_BINARY_DIR};${T_ENV}")
endfunction()
