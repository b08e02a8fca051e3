// The library's version, as macros and as a string.
//
//   static_assert(GREENLETS_VERSION_MAJOR == 0);
//   std::cout << greenlets::version_string;
#ifndef GREENLETS_VERSION_HPP
#define GREENLETS_VERSION_HPP

#define GREENLETS_VERSION_MAJOR 0
#define GREENLETS_VERSION_MINOR 1
#define GREENLETS_VERSION_PATCH 0

namespace greenlets {
/// The version as "major.minor.patch".
inline constexpr const char* version_string = "0.1.0";
}  // namespace greenlets

#endif  // GREENLETS_VERSION_HPP
