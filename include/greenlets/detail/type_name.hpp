// Readable type names for error messages: demangled, with the standard
// library's long spellings shortened to what users write.
#ifndef GREENLETS_DETAIL_TYPE_NAME_HPP
#define GREENLETS_DETAIL_TYPE_NAME_HPP

#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>

#if defined(__GNUG__) || defined(__clang__)
#include <cxxabi.h>
#endif

namespace greenlets::detail {

inline void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (std::size_t pos = s.find(from); pos != std::string::npos;
       pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

/// Demangled name of `t`, e.g. "std::string" rather than "NSt7__cxx1112basic_string...".
inline std::string type_name(const std::type_info& t) {
  if (t == typeid(void)) return "nothing";
  std::string name = t.name();
#if defined(__GNUG__) || defined(__clang__)
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(
      abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status), std::free);
  if (status == 0 && demangled) name = demangled.get();
#endif
  replace_all(name, "std::__cxx11::", "std::");
  replace_all(name, "char const*", "const char*");
  replace_all(name, "std::basic_string<char, std::char_traits<char>, std::allocator<char> >",
              "std::string");
  replace_all(name, "std::basic_string_view<char, std::char_traits<char> >", "std::string_view");
  for (std::size_t pos; (pos = name.find(" >")) != std::string::npos;) name.erase(pos, 1);
  return name;
}

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_TYPE_NAME_HPP
