# tests.cmake - registers every test with ctest.
#   unit:        tests/unit/<dir>/test_<file>.c, one cmocka binary each (label "unit")
#   integration: tests/integration/test_*.py, stdlib python3 driving the real binary ("integration")
#   e2e:         tests/e2e/*.test.mjs, playwright-core + Debian chromium ("e2e")
file(GLOB_RECURSE DSTMC_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src IN LISTS DSTMC_UNIT_TESTS)
  get_filename_component(name ${src} NAME_WE)
  get_filename_component(dir ${src} DIRECTORY)
  get_filename_component(dir ${dir} NAME)
  set(target unit_${dir}_${name})
  add_executable(${target} ${src})
  target_include_directories(${target} PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit)
  if(dir STREQUAL "core")
    set(lib dstmc_core) # core tests need only the core
  else()
    set(lib dstmc_services)
  endif()
  target_link_libraries(${target} PRIVATE ${lib} PkgConfig::CMOCKA PkgConfig::MHD
                        PkgConfig::CURL PkgConfig::SQLITE)
  add_test(NAME ${dir}/${name} COMMAND ${target})
  # A test whose server is not installed exits 77: ctest shows it as skipped.
  set_tests_properties(${dir}/${name} PROPERTIES LABELS unit TIMEOUT 120 SKIP_RETURN_CODE 77)
endforeach()

find_program(PYTHON3 python3)
file(GLOB DSTMC_INTEGRATION_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integration/test_*.py)
foreach(src IN LISTS DSTMC_INTEGRATION_TESTS)
  get_filename_component(name ${src} NAME_WE)
  add_test(NAME integration/${name} COMMAND ${PYTHON3} -m unittest -v ${name}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/integration)
  set_tests_properties(integration/${name} PROPERTIES LABELS integration TIMEOUT 600
                       ENVIRONMENT "DSTMC_BIN=$<TARGET_FILE:dstmc>;PYTHONDONTWRITEBYTECODE=1")
endforeach()
# The Compose smoke test builds the images first (a cold build: debootstrap, apt, a compile).
if(TEST integration/test_compose)
  set_tests_properties(integration/test_compose PROPERTIES TIMEOUT 2400)
endif()

find_program(NODE node)
file(GLOB DSTMC_E2E_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/e2e/*.test.mjs)
foreach(src IN LISTS DSTMC_E2E_TESTS)
  get_filename_component(name ${src} NAME_WE)
  add_test(NAME e2e/${name} COMMAND ${NODE} ${src} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  # A test that cannot run here (monitor_drill without root or network namespaces) exits 77.
  set_tests_properties(e2e/${name} PROPERTIES LABELS e2e TIMEOUT 300 SKIP_RETURN_CODE 77
                       ENVIRONMENT "DSTMC_BIN=$<TARGET_FILE:dstmc>;DSTMC_E2E_OUT=${CMAKE_BINARY_DIR}/e2e")
endforeach()
