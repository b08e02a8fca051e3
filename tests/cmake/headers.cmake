# Header self-containment: one generated translation unit per public header, each
# including only that header (twice, for the include guard), compiled as part of the
# default build with our warnings. A header that misses an #include breaks the build.

set(GREENLETS_INCLUDE_DIR ${PROJECT_SOURCE_DIR}/include)
# Public headers are everything under include/greenlets/ except detail/.
file(GLOB_RECURSE GREENLETS_PUBLIC_HEADERS CONFIGURE_DEPENDS
     RELATIVE ${GREENLETS_INCLUDE_DIR} ${GREENLETS_INCLUDE_DIR}/greenlets/*.hpp)
list(FILTER GREENLETS_PUBLIC_HEADERS EXCLUDE REGEX "^greenlets/detail/")

set(GREENLETS_HEADER_CHECK_SOURCES)
foreach(GREENLETS_HEADER IN LISTS GREENLETS_PUBLIC_HEADERS)
  string(REGEX REPLACE "[/.]" "_" name ${GREENLETS_HEADER})
  set(source ${CMAKE_CURRENT_BINARY_DIR}/header_check/${name}.cpp)
  # configure_file rewrites only on change, so reconfiguring rebuilds nothing.
  configure_file(${CMAKE_CURRENT_LIST_DIR}/header_check.cpp.in ${source} @ONLY)
  list(APPEND GREENLETS_HEADER_CHECK_SOURCES ${source})
endforeach()

add_library(greenlets_header_check OBJECT ${GREENLETS_HEADER_CHECK_SOURCES})
target_link_libraries(greenlets_header_check PRIVATE greenlets::greenlets greenlets_dev)

# The build above already fails on a bad header; this makes the check visible in ctest.
get_property(GREENLETS_MULTI_CONFIG GLOBAL PROPERTY GENERATOR_IS_MULTI_CONFIG)
if(GREENLETS_MULTI_CONFIG)
  set(GREENLETS_BUILD_CONFIG --config $<CONFIG>)
else()
  set(GREENLETS_BUILD_CONFIG)
endif()
add_test(NAME headers.self_contained
  COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target greenlets_header_check
          ${GREENLETS_BUILD_CONFIG})
set_tests_properties(headers.self_contained PROPERTIES LABELS headers)
