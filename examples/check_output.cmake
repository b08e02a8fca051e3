# Runs one example and compares what it prints with the `// Expected output:` block at
# the end of its source file. Used by ctest:
#
#   cmake -DEXAMPLE=<executable> -DSOURCE=<example .cpp> -P check_output.cmake
#
# The block is every comment line after the line `// Expected output:`, with the
# leading `//` and one space removed. Lines are compared exactly, except that
# `{number}` in an expected line matches any number (as `12`, `0.0153` or `1.5e-05`):
# that is how the timing examples state lines whose figures vary from run to run.
cmake_minimum_required(VERSION 3.16)

if(NOT EXAMPLE OR NOT SOURCE)
  message(FATAL_ERROR "usage: cmake -DEXAMPLE=<exe> -DSOURCE=<file.cpp> -P check_output.cmake")
endif()

# CMake lists split on `;` and treat `[` `]` specially: hide them while splitting.
function(split_lines text out_var)
  string(REPLACE "@" "@at@" text "${text}")
  string(REPLACE ";" "@semicolon@" text "${text}")
  string(REPLACE "[" "@lbracket@" text "${text}")
  string(REPLACE "]" "@rbracket@" text "${text}")
  string(REPLACE "\r\n" "\n" text "${text}")
  if(text MATCHES "\n$")
    string(REGEX REPLACE "\n$" "" text "${text}")
  endif()
  string(REPLACE "\n" ";" lines "${text}")
  set(${out_var} "${lines}" PARENT_SCOPE)
endfunction()

function(restore line out_var)
  string(REPLACE "@rbracket@" "]" line "${line}")
  string(REPLACE "@lbracket@" "[" line "${line}")
  string(REPLACE "@semicolon@" ";" line "${line}")
  string(REPLACE "@at@" "@" line "${line}")
  set(${out_var} "${line}" PARENT_SCOPE)
endfunction()

# The expected output block.
file(READ "${SOURCE}" source_text)
string(FIND "${source_text}" "// Expected output:" marker)
if(marker EQUAL -1)
  message(FATAL_ERROR "${SOURCE}: no `// Expected output:` block")
endif()
string(SUBSTRING "${source_text}" ${marker} -1 block)
split_lines("${block}" block_lines)
list(REMOVE_AT block_lines 0)  # the marker line itself
set(expected_lines "")
set(expected_count 0)
foreach(line IN LISTS block_lines)
  if(NOT line MATCHES "^//")
    break()
  endif()
  string(REGEX REPLACE "^// ?" "" line "${line}")
  list(APPEND expected_lines "${line}")
  math(EXPR expected_count "${expected_count} + 1")
endforeach()

# The actual output.
execute_process(COMMAND "${EXAMPLE}"
                OUTPUT_VARIABLE actual_text
                ERROR_VARIABLE error_text
                RESULT_VARIABLE exit_code
                TIMEOUT 120)
if(NOT exit_code STREQUAL "0")
  message(FATAL_ERROR "${EXAMPLE} failed (exit: ${exit_code})\nstdout:\n${actual_text}\nstderr:\n${error_text}")
endif()
set(actual_lines "")
set(actual_count 0)
if(NOT actual_text STREQUAL "")
  split_lines("${actual_text}" actual_lines)
  list(LENGTH actual_lines actual_count)
endif()

# Compare line by line; report every difference, diff-style.
set(number_regex "[-+]?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?")
set(report "")
set(failed FALSE)
if(expected_count GREATER actual_count)
  set(count ${expected_count})
else()
  set(count ${actual_count})
endif()
set(i 0)
while(i LESS count)
  math(EXPR lineno "${i} + 1")
  set(have_expected FALSE)
  set(have_actual FALSE)
  if(i LESS expected_count)
    list(GET expected_lines ${i} want)
    restore("${want}" want)
    set(have_expected TRUE)
  endif()
  if(i LESS actual_count)
    list(GET actual_lines ${i} got)
    restore("${got}" got)
    set(have_actual TRUE)
  endif()
  set(same FALSE)
  if(have_expected AND have_actual)
    if(want MATCHES "{number}")
      # Everything but {number} is literal: escape regex characters, then substitute.
      set(pattern "${want}")
      foreach(ch "\\" "^" "$" "." "|" "?" "*" "+" "(" ")" "[" "]")
        string(REPLACE "${ch}" "\\${ch}" pattern "${pattern}")
      endforeach()
      string(REPLACE "{number}" "${number_regex}" pattern "${pattern}")
      if(got MATCHES "^${pattern}$")
        set(same TRUE)
      endif()
    elseif(want STREQUAL got)
      set(same TRUE)
    endif()
  endif()
  if(same)
    string(APPEND report "   ${got}\n")
  else()
    set(failed TRUE)
    if(have_expected)
      string(APPEND report "-  ${want}    (expected, line ${lineno})\n")
    endif()
    if(have_actual)
      string(APPEND report "+  ${got}    (actual, line ${lineno})\n")
    endif()
  endif()
  math(EXPR i "${i} + 1")
endwhile()

if(failed)
  message(FATAL_ERROR "${EXAMPLE}: output differs from the `// Expected output:` block of "
                      "${SOURCE} (- expected, + actual):\n${report}")
endif()
message(STATUS "${EXAMPLE}: output matches (${actual_count} lines)")
