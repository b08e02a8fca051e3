# Installs a configured greenlets build tree into a fresh prefix and checks that the
# package files are there:
#   cmake -DBUILD_DIR=<build tree> -DPREFIX=<prefix> -DINCLUDEDIR=include
#         -DDATADIR=share -P install.cmake
# (Kept out of tests/cmake/*.cmake, which tests/CMakeLists.txt includes.)
foreach(var IN ITEMS BUILD_DIR PREFIX INCLUDEDIR DATADIR)
  if(NOT ${var})
    message(FATAL_ERROR "install.cmake: ${var} is not set")
  endif()
endforeach()

# A stale prefix could hide a header or config file that is no longer installed.
file(REMOVE_RECURSE "${PREFIX}")
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}"
                RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "install.cmake: cmake --install ${BUILD_DIR} failed: ${result}")
endif()

foreach(file IN ITEMS ${INCLUDEDIR}/greenlets/greenlets.hpp
                      ${INCLUDEDIR}/greenlets/gdb/greenlets.py
                      ${DATADIR}/cmake/greenlets/greenletsConfig.cmake
                      ${DATADIR}/cmake/greenlets/greenletsConfigVersion.cmake
                      ${DATADIR}/cmake/greenlets/greenletsTargets.cmake)
  if(NOT EXISTS "${PREFIX}/${file}")
    message(FATAL_ERROR "install.cmake: ${PREFIX}/${file} was not installed")
  endif()
endforeach()
