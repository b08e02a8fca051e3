// The patch as a CMake target (greenlets::patch): this file is its one translation unit.
// The C library's fortified wrappers would be inline definitions of the very functions
// defined here.
#undef _FORTIFY_SOURCE
#define GREENLETS_PATCH_IMPLEMENTATION
#include "greenlets/patch.hpp"
