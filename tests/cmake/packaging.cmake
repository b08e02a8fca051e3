# Packaging proof, as fmt and nlohmann do it: two tiny consumer projects, built and run
# by `ctest --build-and-test`, one using add_subdirectory() on our sources and one using
# find_package() on an install of this build tree.

set(GREENLETS_PACKAGING_DIR ${CMAKE_CURRENT_BINARY_DIR}/packaging)

# Build the consumers the way this tree is built: same generator, compiler and type.
set(GREENLETS_CONSUMER_GENERATOR --build-generator ${CMAKE_GENERATOR})
if(CMAKE_GENERATOR_PLATFORM)
  list(APPEND GREENLETS_CONSUMER_GENERATOR --build-generator-platform ${CMAKE_GENERATOR_PLATFORM})
endif()
if(CMAKE_GENERATOR_TOOLSET)
  list(APPEND GREENLETS_CONSUMER_GENERATOR --build-generator-toolset ${CMAKE_GENERATOR_TOOLSET})
endif()
if(CMAKE_MAKE_PROGRAM)
  list(APPEND GREENLETS_CONSUMER_GENERATOR --build-makeprogram ${CMAKE_MAKE_PROGRAM})
endif()
get_property(GREENLETS_MULTI_CONFIG GLOBAL PROPERTY GENERATOR_IS_MULTI_CONFIG)
if(GREENLETS_MULTI_CONFIG)
  list(APPEND GREENLETS_CONSUMER_GENERATOR --build-config $<CONFIG>)
endif()

set(GREENLETS_CONSUMER_OPTIONS
  -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}
  "-DCMAKE_CXX_FLAGS=${CMAKE_CXX_FLAGS}")
if(NOT GREENLETS_MULTI_CONFIG)
  list(APPEND GREENLETS_CONSUMER_OPTIONS -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE})
endif()
# Whichever Boost this tree found, the consumers must find too.
if(Boost_DIR)
  list(APPEND GREENLETS_CONSUMER_OPTIONS -DBoost_DIR=${Boost_DIR})
endif()

# A consumer's build tree left from an earlier run keeps its cache (greenlets' options
# among it), which would hide a change in their defaults: start from empty trees.
add_test(NAME packaging.clean
  COMMAND ${CMAKE_COMMAND} -E remove_directory ${GREENLETS_PACKAGING_DIR})
set_tests_properties(packaging.clean PROPERTIES
  LABELS packaging FIXTURES_SETUP greenlets_packaging_clean)

# (a) add_subdirectory(): a subproject sees only greenlets::greenlets, with tests,
# examples, benchmarks and install rules off.
add_test(NAME packaging.add_subdirectory
  COMMAND ${CMAKE_CTEST_COMMAND}
    --build-and-test ${CMAKE_CURRENT_LIST_DIR}/add_subdirectory
                     ${GREENLETS_PACKAGING_DIR}/add_subdirectory
    ${GREENLETS_CONSUMER_GENERATOR}
    --build-options ${GREENLETS_CONSUMER_OPTIONS}
                    -DGREENLETS_SOURCE_DIR=${PROJECT_SOURCE_DIR}
    --test-command ${GREENLETS_PACKAGING_DIR}/add_subdirectory/app)
set_tests_properties(packaging.add_subdirectory PROPERTIES
  LABELS packaging TIMEOUT 600 FIXTURES_REQUIRED greenlets_packaging_clean)

# (b) find_package(): install this build tree (header-only, so configuring is enough)
# into a prefix inside the build tree, then build the consumer against that prefix only.
if(GREENLETS_INSTALL)
  set(GREENLETS_INSTALL_PREFIX ${GREENLETS_PACKAGING_DIR}/prefix)
  set(GREENLETS_INSTALLED_CONFIG_DIR
      ${GREENLETS_INSTALL_PREFIX}/${CMAKE_INSTALL_DATADIR}/cmake/greenlets)
  add_test(NAME packaging.install
    COMMAND ${CMAKE_COMMAND}
      -DBUILD_DIR=${PROJECT_BINARY_DIR}
      -DPREFIX=${GREENLETS_INSTALL_PREFIX}
      -DINCLUDEDIR=${CMAKE_INSTALL_INCLUDEDIR}
      -DDATADIR=${CMAKE_INSTALL_DATADIR}
      -P ${CMAKE_CURRENT_LIST_DIR}/scripts/install.cmake)
  set_tests_properties(packaging.install PROPERTIES
    LABELS packaging FIXTURES_SETUP greenlets_installed
    FIXTURES_REQUIRED greenlets_packaging_clean)

  add_test(NAME packaging.find_package
    COMMAND ${CMAKE_CTEST_COMMAND}
      --build-and-test ${CMAKE_CURRENT_LIST_DIR}/find_package
                       ${GREENLETS_PACKAGING_DIR}/find_package
      ${GREENLETS_CONSUMER_GENERATOR}
      --build-options ${GREENLETS_CONSUMER_OPTIONS}
                      -DCMAKE_PREFIX_PATH=${GREENLETS_INSTALL_PREFIX}
                      -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
                      -DGREENLETS_EXPECTED_VERSION=${PROJECT_VERSION}
                      -DGREENLETS_EXPECTED_DIR=${GREENLETS_INSTALLED_CONFIG_DIR}
      --test-command ${GREENLETS_PACKAGING_DIR}/find_package/app)
  set_tests_properties(packaging.find_package PROPERTIES
    LABELS packaging TIMEOUT 600
    FIXTURES_REQUIRED "greenlets_packaging_clean;greenlets_installed")
else()
  message(STATUS "greenlets: GREENLETS_INSTALL is OFF, so the find_package test is not added")
endif()
