// Everything in greenlets: greenlets, values, stacks, generators and the hub.
//
//   #include <greenlets/greenlets.hpp>
//   greenlets::greenlet g([] { return 42; });
//   int answer = g.switch_to().get<int>();
#ifndef GREENLETS_GREENLETS_HPP
#define GREENLETS_GREENLETS_HPP

#include "greenlets/error.hpp"
#include "greenlets/generator.hpp"
#include "greenlets/greenlet.hpp"
#include "greenlets/hub.hpp"
#include "greenlets/net.hpp"
#include "greenlets/run_info.hpp"
#include "greenlets/stack.hpp"
#include "greenlets/value.hpp"
#include "greenlets/version.hpp"

#endif  // GREENLETS_GREENLETS_HPP
