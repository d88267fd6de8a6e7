# fuzz.cmake - the fuzz targets: tests/fuzz/fuzz_<name>.c, one per parser of outside input.
#   -DDSTMC_FUZZ=ON (CC=clang, its own build dir, e.g. build-fuzz): each target is a libFuzzer
#       binary (ASan, UBSan, LeakSanitizer); ctest runs each briefly and deterministically
#       (fuzz-run/<name>, label "fuzz"); `make fuzz` runs them for long (tests/fuzz/fuzz.sh).
#   otherwise (the gcc build, and the ASan build): each target with tests/fuzz/driver.c, which
#       replays the seed corpus tests/fuzz/corpus/<name>/ (fuzz/<name>, label "unit").
file(GLOB DSTMC_FUZZ_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
set(DSTMC_FUZZ_DIR ${CMAKE_SOURCE_DIR}/tests/fuzz)
add_custom_target(fuzzers)
foreach(src IN LISTS DSTMC_FUZZ_SRC)
  get_filename_component(target ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" name ${target})
  add_executable(${target} ${src} ${DSTMC_FUZZ_DIR}/common.c)
  target_include_directories(${target} PRIVATE ${DSTMC_FUZZ_DIR})
  target_link_libraries(${target} PRIVATE dstmc_services PkgConfig::HIREDIS)
  add_dependencies(fuzzers ${target})
  if(DSTMC_FUZZ)
    target_link_options(${target} PRIVATE -fsanitize=fuzzer)
    add_test(NAME fuzz-run/${name}
             COMMAND ${DSTMC_FUZZ_DIR}/fuzz.sh short ${CMAKE_BINARY_DIR} ${name})
    set_tests_properties(fuzz-run/${name} PROPERTIES LABELS fuzz TIMEOUT 120)
  else()
    target_sources(${target} PRIVATE ${DSTMC_FUZZ_DIR}/driver.c)
    add_test(NAME fuzz/${name} COMMAND ${target} ${DSTMC_FUZZ_DIR}/corpus/${name})
    set_tests_properties(fuzz/${name} PROPERTIES LABELS unit TIMEOUT 120)
  endif()
endforeach()
