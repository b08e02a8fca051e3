// The Catch2 runner, compiled with the same flags (and sanitizers) as the tests.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
