//===- PlannerModule.cpp - Python bindings of the planner -----------------===//

#include "bptt/Planner/ByteSize.h"
#include "bptt/Planner/Planner.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <variant>

namespace py = pybind11;
using namespace bptt::planner;

namespace {

template <typename T>
using ScalarOrList = std::variant<T, std::vector<T>>;

template <typename T> std::vector<T> toVector(const ScalarOrList<T> &v) {
  if (auto *scalar = std::get_if<T>(&v))
    return {*scalar};
  return std::get<std::vector<T>>(v);
}

[[noreturn]] void raise(llvm::Error err) {
  throw py::value_error(llvm::toString(std::move(err)));
}

int64_t toBytes(const std::variant<int64_t, std::string> &v) {
  if (auto *n = std::get_if<int64_t>(&v))
    return *n;
  llvm::Expected<int64_t> bytes = parseByteSize(std::get<std::string>(v));
  if (!bytes)
    raise(bytes.takeError());
  return *bytes;
}

Strategy toStrategy(const std::string &name) {
  std::optional<Strategy> s = parseStrategy(name);
  if (!s)
    throw py::value_error("strategy must be one of all, chen, revolve, hsm, "
                          "ism, msm; got '" + name + "'");
  return *s;
}

py::list actionsToList(const std::vector<Action> &actions) {
  py::list out;
  for (const Action &a : actions)
    out.append(
        py::make_tuple(stringify(a.kind).str(), a.step, a.offset, a.count));
  return out;
}

/// Accepts (kind, step, offset, count) and, for actions of one step,
/// (kind, step, offset).
std::vector<Action> actionsFromList(const py::list &list) {
  std::vector<Action> actions;
  for (py::handle item : list) {
    auto t = item.cast<py::tuple>();
    if (t.size() != 3 && t.size() != 4)
      throw py::value_error("an action is (kind, step, offset[, count]); got " +
                            py::str(item).cast<std::string>());
    auto name = t[0].cast<std::string>();
    std::optional<ActionKind> kind = parseActionKind(name);
    if (!kind)
      throw py::value_error("unknown action '" + name + "'");
    actions.push_back({*kind, t[1].cast<int64_t>(), t[2].cast<int64_t>(),
                       t.size() == 4 ? t[3].cast<int64_t>() : 1});
  }
  return actions;
}

} // namespace

PYBIND11_MODULE(_bptt, m) {
  m.doc() = "bptt planner: optimal checkpointing for BPTT under a byte budget";

  py::list strategies;
  for (Strategy s : allStrategies())
    strategies.append(stringify(s).str());
  m.attr("STRATEGIES") = strategies;

  py::class_<Chain>(m, "Chain", R"doc(
A recurrence of `steps` steps as the planner sees it. Each of forward_cost,
backward_cost, hidden_bytes and internal_bytes is one value (uniform) or a
list with one value per step (heterogeneous). Byte sizes accept ints or
strings such as "64MiB".)doc")
      .def(py::init([](int64_t steps, ScalarOrList<std::variant<int64_t, std::string>> hidden,
                       ScalarOrList<std::variant<int64_t, std::string>> internal,
                       std::variant<int64_t, std::string> workspace,
                       ScalarOrList<double> forward,
                       ScalarOrList<double> backward) {
             Chain c;
             c.steps = steps;
             c.hiddenBytes.clear();
             for (auto &v : toVector(hidden))
               c.hiddenBytes.push_back(toBytes(v));
             c.internalBytes.clear();
             for (auto &v : toVector(internal))
               c.internalBytes.push_back(toBytes(v));
             c.workspaceBytes = toBytes(workspace);
             c.forwardCost = toVector(forward);
             c.backwardCost = toVector(backward);
             if (llvm::Error err = c.validate())
               raise(std::move(err));
             return c;
           }),
           py::arg("steps"), py::arg("hidden_bytes"), py::arg("internal_bytes"),
           py::arg("workspace_bytes") = int64_t(0),
           py::arg("forward_cost") = 1.0, py::arg("backward_cost") = 1.0)
      .def_readonly("steps", &Chain::steps)
      .def_property_readonly("working_set_bytes", &Chain::workingSetBytes)
      .def_property_readonly("store_all_bytes", &Chain::storeAllBytes)
      .def_property_readonly("is_uniform", &Chain::isUniform);

  py::class_<Plan>(m, "Plan", "A schedule and what it costs.")
      .def_property_readonly(
          "strategy", [](const Plan &p) { return stringify(p.strategy).str(); })
      .def_property_readonly(
          "actions", [](const Plan &p) { return actionsToList(p.actions); },
          "[(kind, step, slot byte offset or -1, count), ...]; count is the "
          "number of steps a 'forward' run covers, 1 for every other kind")
      .def_property_readonly("forward_steps",
                             [](const Plan &p) { return p.predicted.forwardSteps; })
      .def_property_readonly("forward_cost",
                             [](const Plan &p) { return p.predicted.forwardCost; })
      .def_property_readonly("backward_cost",
                             [](const Plan &p) { return p.predicted.backwardCost; })
      .def_property_readonly("cost",
                             [](const Plan &p) {
                               return p.predicted.forwardCost +
                                      p.predicted.backwardCost;
                             })
      .def_property_readonly("peak_bytes",
                             [](const Plan &p) { return p.predicted.peakBytes; })
      .def_property_readonly("pool_bytes",
                             [](const Plan &p) { return p.predicted.poolBytes; })
      .def_property_readonly("max_live_slots",
                             [](const Plan &p) { return p.predicted.maxLiveSlots; })
      .def_readonly("exact", &Plan::exact)
      .def_readonly("memory_unit", &Plan::memoryUnit)
      .def("__repr__", [](const Plan &p) {
        return "<bptt.Plan " + stringify(p.strategy).str() + ": " +
               std::to_string(p.predicted.forwardSteps) + " forward steps, peak " +
               std::to_string(p.predicted.peakBytes) + " bytes, " +
               std::to_string(p.actions.size()) + " actions>";
      });

  m.def(
      "plan",
      [](const Chain &chain, std::variant<int64_t, std::string> budget,
         const std::string &strategy) {
        llvm::Expected<Plan> p =
            plan(chain, toBytes(budget), toStrategy(strategy));
        if (!p)
          raise(p.takeError());
        return std::move(*p);
      },
      py::arg("chain"), py::arg("budget"), py::arg("strategy") = "msm",
      "The least-cost schedule of `strategy` within `budget` bytes. Raises "
      "ValueError naming the smallest feasible budget when it is too small.");
  m.def(
      "minimum_budget",
      [](const Chain &chain, const std::string &strategy) {
        return minimumBudget(chain, toStrategy(strategy));
      },
      py::arg("chain"), py::arg("strategy") = "msm");
  m.def(
      "simulate",
      [](const Chain &chain, const py::list &actions) {
        llvm::Expected<Execution> e = simulate(chain, actionsFromList(actions));
        if (!e)
          raise(e.takeError());
        py::dict d;
        d["forward_steps"] = e->forwardSteps;
        d["forward_cost"] = e->forwardCost;
        d["backward_cost"] = e->backwardCost;
        d["peak_bytes"] = e->peakBytes;
        d["pool_bytes"] = e->poolBytes;
        return d;
      },
      py::arg("chain"), py::arg("actions"),
      "Runs a schedule on the abstract machine; raises ValueError naming the "
      "first invalid action.");
  m.def(
      "parse_byte_size",
      [](const std::string &text) {
        llvm::Expected<int64_t> v = parseByteSize(text);
        if (!v)
          raise(v.takeError());
        return *v;
      },
      py::arg("text"));
}
