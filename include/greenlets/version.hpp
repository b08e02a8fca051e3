// The library's version, as macros and as a string.
//
//   static_assert(GREENLETS_VERSION_MAJOR == 0);
//   std::cout << greenlets::version_string;
//
// The three numbers below are the one place the version is written: CMake reads them
// for project(VERSION) and the installed package's version file.
#ifndef GREENLETS_VERSION_HPP
#define GREENLETS_VERSION_HPP

/// The major version: changes break compatibility.
#define GREENLETS_VERSION_MAJOR 0
/// The minor version: changes add features.
#define GREENLETS_VERSION_MINOR 1
/// The patch version: changes fix bugs.
#define GREENLETS_VERSION_PATCH 0

#define GREENLETS_DETAIL_STRINGIFY_(x) #x
#define GREENLETS_DETAIL_STRINGIFY(x) GREENLETS_DETAIL_STRINGIFY_(x)

namespace greenlets {
/// The version as "major.minor.patch".
inline constexpr const char* version_string =
    GREENLETS_DETAIL_STRINGIFY(GREENLETS_VERSION_MAJOR) "." GREENLETS_DETAIL_STRINGIFY(
        GREENLETS_VERSION_MINOR) "." GREENLETS_DETAIL_STRINGIFY(GREENLETS_VERSION_PATCH);
}  // namespace greenlets

#endif  // GREENLETS_VERSION_HPP
