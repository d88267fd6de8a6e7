# assets.cmake - embeds the files listed below into the binary (see src/core/assets.h).
# Each entry is URL_PATH=FILE. The table and an .S file with .incbin are generated at build
# time by cmake/embed.cmake, so editing a web file only re-runs the generator.
set(NM ${CMAKE_SOURCE_DIR}/web/node_modules)
set(DSTMC_ASSETS
  "/index.html=${CMAKE_SOURCE_DIR}/web/index.html"
  "/session.js=${CMAKE_SOURCE_DIR}/web/session.js"
  "/app.js=${CMAKE_SOURCE_DIR}/web/app.js"
  "/format.js=${CMAKE_SOURCE_DIR}/web/format.js"
  "/results.js=${CMAKE_SOURCE_DIR}/web/results.js"
  "/charts.js=${CMAKE_SOURCE_DIR}/web/charts.js"
  "/style.css=${CMAKE_SOURCE_DIR}/web/style.css"
  "/favicon.svg=${CMAKE_SOURCE_DIR}/web/favicon.svg"
  "/vendor/uPlot.iife.min.js=${NM}/uplot/dist/uPlot.iife.min.js"
  "/vendor/uPlot.min.css=${NM}/uplot/dist/uPlot.min.css"
  "/swagger/index.html=${CMAKE_SOURCE_DIR}/web/swagger.html"
  "/swagger/swagger-ui-bundle.js=${NM}/swagger-ui-dist/swagger-ui-bundle.js"
  "/swagger/swagger-ui.css=${NM}/swagger-ui-dist/swagger-ui.css"
  "/monitor/index.html=${CMAKE_SOURCE_DIR}/web/monitor/index.html"
  "/monitor/monitor.js=${CMAKE_SOURCE_DIR}/web/monitor/monitor.js"
  "/monitor/monitor.css=${CMAKE_SOURCE_DIR}/web/monitor/monitor.css"
  # what the two live status pages share (helpers, theme, event stream), under each page
  "/monitor/live.js=${CMAKE_SOURCE_DIR}/web/live.js"
  # the dashboard's stylesheet again: the monitor serves only /monitor/, its page builds on it
  "/monitor/style.css=${CMAKE_SOURCE_DIR}/web/style.css"
  # the toy store front end's live page (/status/): the dashboard's and the monitor's
  # stylesheets again, its own small one on top
  "/status/index.html=${CMAKE_SOURCE_DIR}/web/toystore/index.html"
  "/status/status.js=${CMAKE_SOURCE_DIR}/web/toystore/status.js"
  "/status/status.css=${CMAKE_SOURCE_DIR}/web/toystore/status.css"
  "/status/style.css=${CMAKE_SOURCE_DIR}/web/style.css"
  "/status/monitor.css=${CMAKE_SOURCE_DIR}/web/monitor/monitor.css"
  "/status/live.js=${CMAKE_SOURCE_DIR}/web/live.js"
  "/api/v1/openapi.json=${CMAKE_SOURCE_DIR}/src/speedtest/api/openapi.json"
  # where the original's Swashbuckle served its document
  "/swagger/v1/swagger.json=${CMAKE_SOURCE_DIR}/src/speedtest/api/openapi.json"
)

set(_deps "")
foreach(entry IN LISTS DSTMC_ASSETS)
  string(REGEX REPLACE "^[^=]*=" "" file "${entry}")
  if(NOT EXISTS "${file}")
    message(FATAL_ERROR "missing asset ${file}: run scripts/deps.sh (npm packages of web/)")
  endif()
  list(APPEND _deps "${file}")
endforeach()

set(DSTMC_ASSETS_SRC ${CMAKE_BINARY_DIR}/assets_gen.c ${CMAKE_BINARY_DIR}/assets_gen.S)
string(REPLACE ";" "|" _list "${DSTMC_ASSETS}")
add_custom_command(
  OUTPUT ${DSTMC_ASSETS_SRC}
  COMMAND ${CMAKE_COMMAND} "-DASSETS=${_list}" -DOUT_DIR=${CMAKE_BINARY_DIR}
          -P ${CMAKE_SOURCE_DIR}/cmake/embed.cmake
  DEPENDS ${_deps} ${CMAKE_SOURCE_DIR}/cmake/embed.cmake
  COMMENT "Embedding web assets"
  VERBATIM)
