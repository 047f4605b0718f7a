//===- bptt-plan.cpp - show the optimal checkpointing schedule ------------===//
//
// Plans BPTT for a chain given on the command line (uniform) or in a costs
// file (heterogeneous) and prints the predicted cost, the peak bytes and a
// compact view of the policy; --sweep prints the compute/memory trade-off of
// every strategy and writes it as an SVG plot; --json is machine-readable.
//
//===----------------------------------------------------------------------===//

#include "Sweep.h"

#include "bptt/Planner/ByteSize.h"
#include "bptt/Planner/Planner.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Timer.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <map>

using namespace llvm;
using namespace bptt::planner;

static cl::OptionCategory category("bptt-plan options");

static cl::opt<int64_t> steps("steps", cl::desc("Sequence length T"),
                              cl::init(-1), cl::cat(category));
static cl::opt<std::string>
    budgetText("budget",
               cl::desc("Memory budget: bytes (64MiB, 1.5GB, 1048576) or a "
                        "percentage of store-all (5%)"),
               cl::cat(category));
static cl::opt<std::string>
    hiddenText("hidden-bytes", cl::desc("Bytes of one hidden state h_t"),
               cl::cat(category));
static cl::opt<std::string>
    internalText("internal-bytes",
                 cl::desc("Bytes of one internal state s_t"), cl::cat(category));
static cl::opt<std::string>
    workspaceText("workspace-bytes",
                  cl::desc("Scratch bytes of one step (default 0)"),
                  cl::init("0"), cl::cat(category));
static cl::opt<std::string>
    cell("cell",
         cl::desc("Derive the sizes from a cell: lstm, gru or elman (with "
                  "--batch, --hidden-size, --dtype-bytes)"),
         cl::cat(category));
static cl::opt<int64_t> batch("batch", cl::desc("Batch size for --cell"),
                              cl::init(64), cl::cat(category));
static cl::opt<int64_t> hiddenSize("hidden-size",
                                   cl::desc("Hidden size H for --cell"),
                                   cl::init(512), cl::cat(category));
static cl::opt<int64_t> dtypeBytes("dtype-bytes",
                                   cl::desc("Bytes per element for --cell"),
                                   cl::init(4), cl::cat(category));
static cl::opt<std::string>
    strategyName("strategy",
                 cl::desc("all, chen, revolve, hsm, ism or msm (default)"),
                 cl::init("msm"), cl::cat(category));
static cl::opt<std::string> costsFile(
    "costs-file",
    cl::desc("Heterogeneous chain: one line per step, 'forward backward "
             "hidden_bytes internal_bytes' ('#' starts a comment)"),
    cl::cat(category));
static cl::opt<bool> jsonOutput("json", cl::desc("Machine-readable output"),
                          cl::cat(category));
static cl::opt<bool> listActions("actions",
                                 cl::desc("Include every action (JSON: [kind, "
                                          "step, slot offset or -1, steps "
                                          "run]) or print them all (text)"),
                                 cl::cat(category));
static cl::opt<bool> doSweep(
    "sweep",
    cl::desc("Trade-off of every strategy over budgets from 1% to 100% of "
             "store-all"),
    cl::cat(category));
static cl::opt<std::string> methodName(
    "method",
    cl::desc("Uniform chains, msm and ism: auto (default), levels, hulls or "
             "dp (the plain dynamic program); all exact, see docs/planner.md"),
    cl::init("auto"), cl::cat(category));
static cl::opt<std::string> svgPath("svg",
                                    cl::desc("With --sweep: the SVG plot path"),
                                    cl::init("bptt-sweep.svg"),
                                    cl::cat(category));

[[noreturn]] static void fail(const Twine &message) {
  WithColor::error(errs(), "bptt-plan") << message << '\n';
  std::exit(1);
}

static int64_t bytesOption(const cl::opt<std::string> &opt) {
  Expected<int64_t> v = parseByteSize(opt);
  if (!v)
    fail("--" + opt.ArgStr + ": " + toString(v.takeError()));
  return *v;
}

/// Hidden and internal bytes of the cells the examples use, per element of
/// B x H: what the state holds, and what one backward step reads (the
/// previous state, the gate activations, the new state).
static void sizesFromCell(int64_t &hidden, int64_t &internal) {
  int64_t bh = batch * hiddenSize * dtypeBytes;
  if (cell == "lstm") {
    hidden = 2 * bh;   // h, c
    internal = 8 * bh; // h_{t-1}, c_{t-1}, i, f, g, o, c_t, h_t
  } else if (cell == "gru") {
    hidden = bh;       // h
    internal = 6 * bh; // h_{t-1}, r, z, n, W_hn h + b_hn, h_t
  } else if (cell == "elman") {
    hidden = bh;       // h
    internal = 2 * bh; // h_{t-1}, h_t (tanh' from h_t)
  } else {
    fail("--cell must be lstm, gru or elman, got '" + cell + "'");
  }
}

static Chain readCostsFile(StringRef path) {
  ErrorOr<std::unique_ptr<MemoryBuffer>> buf = MemoryBuffer::getFile(path);
  if (!buf)
    fail("cannot read --costs-file '" + path + "': " +
         buf.getError().message());
  Chain c;
  c.forwardCost.clear();
  c.backwardCost.clear();
  c.hiddenBytes.clear();
  c.internalBytes.clear();
  SmallVector<StringRef> lines;
  (*buf)->getBuffer().split(lines, '\n');
  for (auto [lineNo, rawLine] : llvm::enumerate(lines)) {
    StringRef line = rawLine.split('#').first.trim();
    if (line.empty())
      continue;
    SmallVector<StringRef> fields;
    SplitString(line, fields, " \t,");
    double f, b;
    auto where = [&] {
      return path.str() + ":" + std::to_string(lineNo + 1) + ": ";
    };
    if (fields.size() != 4)
      fail(where() + "expected 4 fields 'forward backward hidden_bytes "
                     "internal_bytes', got " +
           Twine(fields.size()));
    if (fields[0].getAsDouble(f) || fields[1].getAsDouble(b))
      fail(where() + "forward and backward costs must be numbers");
    Expected<int64_t> h = parseByteSize(fields[2]);
    Expected<int64_t> s = parseByteSize(fields[3]);
    if (!h)
      fail(where() + toString(h.takeError()));
    if (!s)
      fail(where() + toString(s.takeError()));
    c.forwardCost.push_back(f);
    c.backwardCost.push_back(b);
    c.hiddenBytes.push_back(*h);
    c.internalBytes.push_back(*s);
  }
  c.steps = c.forwardCost.size();
  if (c.steps == 0)
    fail("--costs-file '" + path + "' lists no steps");
  if (steps >= 0 && steps != c.steps)
    fail("--steps " + Twine(steps) + " disagrees with the " +
         Twine(c.steps) + " steps of --costs-file");
  return c;
}

static Chain buildChain() {
  Chain c;
  if (!costsFile.empty()) {
    c = readCostsFile(costsFile);
  } else {
    if (steps < 0)
      fail("--steps is required (or give a --costs-file)");
    int64_t hidden = 0, internal = 0;
    if (!cell.empty())
      sizesFromCell(hidden, internal);
    if (!hiddenText.empty())
      hidden = bytesOption(hiddenText);
    if (!internalText.empty())
      internal = bytesOption(internalText);
    if (hidden == 0 || internal == 0)
      fail("give --hidden-bytes and --internal-bytes, or --cell with "
           "--batch/--hidden-size");
    c = Chain::uniform(steps, hidden, internal);
  }
  c.workspaceBytes = workspaceText == "0" ? 0 : bytesOption(workspaceText);
  if (Error err = c.validate())
    fail(toString(std::move(err)));
  return c;
}

static int64_t budgetBytes(const Chain &chain) {
  if (budgetText.empty())
    fail("--budget is required");
  StringRef text = StringRef(budgetText).trim();
  if (text.consume_back("%")) {
    double pct;
    if (text.getAsDouble(pct) || !(pct > 0))
      fail("--budget " + budgetText + ": expected a positive percentage");
    return static_cast<int64_t>(chain.storeAllBytes() * pct / 100.0);
  }
  Expected<int64_t> v = parseByteSize(text);
  if (!v)
    fail("--budget: " + toString(v.takeError()));
  return *v;
}

/// "R0 F1-4 H4 F5-7 ..." : R restore, F forward run, K keep s_t, H store
/// h_t, W run into the working set, B backward, x free.
static std::string compactPolicy(ArrayRef<Action> actions, size_t limit) {
  std::string out;
  raw_string_ostream os(out);
  size_t tokens = 0;
  for (size_t i = 0; i < actions.size() && tokens < limit; ++i, ++tokens) {
    const Action &a = actions[i];
    if (tokens)
      os << ' ';
    switch (a.kind) {
    case ActionKind::Restore:
      os << 'R' << a.step;
      break;
    case ActionKind::Forward:
      os << 'F' << a.step;
      if (a.count > 1)
        os << '-' << a.lastStep();
      break;
    case ActionKind::ForwardKeep:
      os << 'K' << a.step;
      break;
    case ActionKind::ForwardToWork:
      os << 'W' << a.step;
      break;
    case ActionKind::StoreHidden:
      os << 'H' << a.step;
      break;
    case ActionKind::Backward:
      os << 'B' << a.step;
      break;
    case ActionKind::Free:
      os << 'x';
      break;
    }
  }
  if (tokens == limit && limit < actions.size())
    os << " ...";
  return out;
}

/// How many times each step's forward runs: count -> number of steps.
static std::map<int64_t, int64_t> forwardRuns(const Chain &chain,
                                              ArrayRef<Action> actions) {
  // Differences: a run of forward steps adds one from its first step on and
  // takes it back after its last.
  std::vector<int64_t> starts(chain.steps + 2, 0);
  for (const Action &a : actions)
    if (a.kind == ActionKind::Forward || a.kind == ActionKind::ForwardKeep ||
        a.kind == ActionKind::ForwardToWork) {
      ++starts[a.step];
      --starts[a.lastStep() + 1];
    }
  std::map<int64_t, int64_t> histogram;
  int64_t runs = 0;
  for (int64_t t = 1; t <= chain.steps; ++t)
    ++histogram[runs += starts[t]];
  return histogram;
}

static void printPlanJson(const Chain &chain, int64_t budget, const Plan &p,
                          double seconds) {
  json::OStream j(outs(), 2);
  j.object([&] {
    j.attribute("strategy", stringify(p.strategy));
    j.attribute("steps", chain.steps);
    j.attribute("budget_bytes", budget);
    j.attribute("peak_bytes", p.predicted.peakBytes);
    j.attribute("pool_bytes", p.predicted.poolBytes);
    j.attribute("working_set_bytes", chain.workingSetBytes());
    j.attribute("store_all_bytes", chain.storeAllBytes());
    j.attribute("forward_steps", p.predicted.forwardSteps);
    j.attribute("forward_cost", p.predicted.forwardCost);
    j.attribute("backward_cost", p.predicted.backwardCost);
    j.attribute("forward_steps_per_step",
                chain.steps ? double(p.predicted.forwardSteps) / chain.steps
                            : 0.0);
    j.attribute("max_live_slots", p.predicted.maxLiveSlots);
    j.attribute("exact", p.exact);
    j.attribute("memory_unit_bytes", p.memoryUnit);
    j.attribute("method", p.method);
    j.attribute("planning_seconds", seconds);
    j.attributeObject("forward_runs_histogram", [&] {
      for (auto [runs, count] : forwardRuns(chain, p.actions))
        j.attribute(std::to_string(runs), count);
    });
    j.attribute("policy", compactPolicy(p.actions, listActions ? SIZE_MAX : 80));
    if (listActions)
      j.attributeArray("actions", [&] {
        for (const Action &a : p.actions)
          j.array([&] {
            j.value(stringify(a.kind));
            j.value(a.step);
            j.value(a.offset);
            j.value(a.count);
          });
      });
  });
  outs() << '\n';
}

static void printPlanText(const Chain &chain, int64_t budget, const Plan &p,
                          double seconds) {
  raw_ostream &os = outs();
  os << "strategy:        " << stringify(p.strategy) << '\n';
  os << "steps:           " << chain.steps << '\n';
  os << "budget:          " << formatBytes(budget) << '\n';
  os << "peak:            " << formatBytes(p.predicted.peakBytes) << " = "
     << "working set " << formatBytes(chain.workingSetBytes()) << " + slots "
     << formatBytes(p.predicted.poolBytes) << '\n';
  os << "store-all needs: " << formatBytes(chain.storeAllBytes()) << '\n';
  os << "forward steps:   " << p.predicted.forwardSteps << " ("
     << format("%.3f",
               chain.steps ? double(p.predicted.forwardSteps) / chain.steps
                           : 0.0)
     << " per step; store-all runs 1)\n";
  if (!chain.isUniform())
    os << "forward cost:    " << format("%g", p.predicted.forwardCost)
       << " (backward cost " << format("%g", p.predicted.backwardCost)
       << ")\n";
  os << "forward runs:   ";
  std::map<int64_t, int64_t> runs = forwardRuns(chain, p.actions);
  // Tiny budgets run steps up to T times: show the ends of the histogram.
  size_t shown = 0;
  for (auto [times, count] : runs) {
    if (runs.size() > 12 && shown == 6)
      os << " ... (" << runs.size() - 12 << " more)";
    if (runs.size() <= 12 || shown < 6 || shown >= runs.size() - 6)
      os << ' ' << count << " step(s) x" << times;
    ++shown;
  }
  os << '\n';
  os << "slots at once:   " << p.predicted.maxLiveSlots << '\n';
  os << "optimality:      "
     << (p.exact ? "exact" : "at a coarser memory unit of " +
                                 formatBytes(p.memoryUnit))
     << '\n';
  os << "planned in:      " << format("%.3f s", seconds) << " (" << p.method
     << ")\n";
  os << "policy:          "
     << compactPolicy(p.actions, listActions ? SIZE_MAX : 60) << '\n';
  os << "                 (R restore, F forward, K keep s_t, H store h_t, W "
        "into the working set, B backward, x free)\n";
}

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "bptt-plan: optimal checkpointing for backpropagation through time\n");

  Chain chain = buildChain();
  if (doSweep) {
    std::vector<double> fractions = {0.01, 0.02, 0.03, 0.05, 0.075, 0.1,
                                     0.15, 0.2,  0.25, 0.3,  0.4,   0.5,
                                     0.6,  0.7,  0.8,  0.9,  1.0};
    std::vector<SweepRow> rows = sweep(chain, fractions);
    if (jsonOutput) {
      json::OStream j(outs(), 2);
      j.array([&] {
        for (const SweepRow &r : rows)
          j.object([&] {
            j.attribute("fraction_of_store_all", r.fraction);
            j.attribute("budget_bytes", r.budget);
            for (auto [i, s] : llvm::enumerate(allStrategies()))
              j.attribute(stringify(s), r.forwardPerStep[i]
                                            ? json::Value(*r.forwardPerStep[i])
                                            : json::Value(nullptr));
          });
      });
      outs() << '\n';
    } else {
      printSweep(outs(), chain, rows);
    }
    std::error_code ec;
    raw_fd_ostream svg(svgPath, ec);
    if (ec)
      fail("cannot write '" + svgPath + "': " + ec.message());
    writeSweepSvg(svg, chain, rows);
    if (!jsonOutput)
      outs() << "plot written to " << svgPath << '\n';
    return 0;
  }

  std::optional<Strategy> strategy = parseStrategy(strategyName);
  if (!strategy)
    fail("--strategy must be one of all, chen, revolve, hsm, ism, msm; got '" +
         strategyName + "'");
  int64_t budget = budgetBytes(chain);
  auto start = std::chrono::steady_clock::now();
  PlannerOptions options;
  if (methodName == "levels")
    options.uniformMethod = PlannerOptions::UniformMethod::Levels;
  else if (methodName == "hulls")
    options.uniformMethod = PlannerOptions::UniformMethod::Hulls;
  else if (methodName == "dp")
    options.uniformFastPath = false;
  else if (methodName != "auto")
    fail("--method must be one of auto, levels, hulls, dp; got '" +
         methodName + "'");
  Expected<Plan> p = plan(chain, budget, *strategy, options);
  double seconds = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - start)
                       .count();
  if (!p)
    fail(toString(p.takeError()));
  if (jsonOutput)
    printPlanJson(chain, budget, *p, seconds);
  else
    printPlanText(chain, budget, *p, seconds);
  return 0;
}
