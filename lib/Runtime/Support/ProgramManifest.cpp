//===- ProgramManifest.cpp - the manifest of a compiled GPU program -------===//

#include "bptt/Runtime/ProgramManifest.h"

#include <cstdio>
#include <limits>

using namespace bptt::runtime;

namespace {

constexpr int kVersion = 1;
// Byte sizes stay far below 2^63 so that sums and products of them in the
// runner cannot overflow.
constexpr uint64_t kMaxBytes = uint64_t(1) << 56;

const ArgRole kRoles[] = {ArgRole::State,  ArgRole::Input, ArgRole::Param,
                          ArgRole::DState, ArgRole::DInput, ArgRole::DParam,
                          ArgRole::Loss,   ArgRole::Stats};

std::vector<std::string_view> tokenize(std::string_view line) {
  std::vector<std::string_view> tokens;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
      ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t')
      ++i;
    if (i > start)
      tokens.push_back(line.substr(start, i - start));
  }
  return tokens;
}

/// A non-negative decimal integer without sign, spaces or leading '+'.
bool parseUnsigned(std::string_view s, uint64_t &value) {
  if (s.empty() || s.size() > 20)
    return false;
  uint64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9')
      return false;
    uint64_t digit = uint64_t(ch - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - digit) / 10)
      return false;
    v = v * 10 + digit;
  }
  value = v;
  return true;
}

bool parseShape(std::string_view s, std::vector<int64_t> &shape) {
  shape.clear();
  if (s == "scalar")
    return true;
  uint64_t elements = 1;
  size_t start = 0;
  while (true) {
    size_t x = s.find('x', start);
    std::string_view dim =
        s.substr(start, x == std::string_view::npos ? s.npos : x - start);
    uint64_t d;
    if (!parseUnsigned(dim, d) || d == 0 || d > kMaxBytes)
      return false;
    if (elements > kMaxBytes / d)
      return false;
    elements *= d;
    shape.push_back(int64_t(d));
    if (x == std::string_view::npos)
      break;
    start = x + 1;
  }
  // Elements of 8 bytes at most must stay below kMaxBytes.
  return elements <= kMaxBytes / 8;
}

bool validName(std::string_view s) {
  if (s.empty() || s == "." || s == ".." || s.size() > 200)
    return false;
  for (char ch : s)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.'))
      return false;
  return true;
}

bool parseRole(std::string_view s, ArgRole &role) {
  for (ArgRole r : kRoles)
    if (s == roleName(r)) {
      role = r;
      return true;
    }
  return false;
}

std::string quoted(std::string_view s) {
  return "'" + std::string(s) + "'";
}

std::string lineError(int line, const std::string &message) {
  return "manifest line " + std::to_string(line) + ": " + message;
}

} // namespace

const char *bptt::runtime::roleName(ArgRole role) {
  switch (role) {
  case ArgRole::State:
    return "state";
  case ArgRole::Input:
    return "input";
  case ArgRole::Param:
    return "param";
  case ArgRole::DState:
    return "dstate";
  case ArgRole::DInput:
    return "dinput";
  case ArgRole::DParam:
    return "dparam";
  case ArgRole::Loss:
    return "loss";
  case ArgRole::Stats:
    return "stats";
  }
  return "?";
}

const char *bptt::runtime::dtypeName(DType type) {
  return type == DType::F32 ? "f32" : "i64";
}

uint64_t ManifestArg::numElements() const {
  uint64_t n = 1;
  for (int64_t d : shape)
    n *= uint64_t(d);
  return n;
}

int ProgramManifest::find(ArgRole role) const {
  for (size_t i = 0; i < args.size(); ++i)
    if (args[i].role == role)
      return int(i);
  return -1;
}

std::string bptt::runtime::shapeString(const std::vector<int64_t> &shape) {
  if (shape.empty())
    return "scalar";
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += 'x';
    s += std::to_string(shape[i]);
  }
  return s;
}

bool bptt::runtime::parseManifest(std::string_view text, ProgramManifest &out,
                                  std::string &error) {
  ProgramManifest m;
  struct Key {
    const char *name;
    const char *expected;
    int line = 0;
  };
  Key keys[] = {
      {"entry", "'entry <function name>'"},
      {"cell", "'cell <cell symbol>'"},
      {"steps", "'steps <T>' with T a positive integer"},
      {"strategy", "'strategy <name>' (store-all, msm, hsm, ism, chen, ...)"},
      {"budget", "'budget <bytes or 0>'"},
      {"planned_peak", "'planned_peak <bytes>'"},
      {"workspace", "'workspace <bytes>'"},
      {"forward_steps", "'forward_steps <count>'"},
      {"precision", "'precision f32' or 'precision tf32'"},
      {"chip", "'chip <target, e.g. sm_90>'"},
  };
  const char *argExpected =
      "'arg <name> <role> <dtype> <shape>' (role: state, input, param, "
      "dstate, dinput, dparam, loss or stats; dtype: f32 or i64; shape: "
      "'scalar' or positive dims joined by 'x')";

  bool sawHeader = false;
  int lineNo = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t eol = text.find('\n', pos);
    std::string_view raw = text.substr(
        pos, eol == std::string_view::npos ? text.npos : eol - pos);
    pos = eol == std::string_view::npos ? text.size() + 1 : eol + 1;
    ++lineNo;
    if (size_t hash = raw.find('#'); hash != std::string_view::npos)
      raw = raw.substr(0, hash);
    if (!raw.empty() && raw.back() == '\r')
      raw.remove_suffix(1);
    std::vector<std::string_view> tok = tokenize(raw);
    if (tok.empty())
      continue;

    if (!sawHeader) {
      uint64_t version;
      if (tok[0] != "bptt-program" || tok.size() != 2 ||
          !parseUnsigned(tok[1], version)) {
        error = lineError(lineNo, "expected the header 'bptt-program " +
                                      std::to_string(kVersion) + "', got " +
                                      quoted(raw));
        return false;
      }
      if (version != kVersion) {
        error = lineError(lineNo, "manifest version " + std::string(tok[1]) +
                                      " is not supported (this reader knows "
                                      "version " +
                                      std::to_string(kVersion) + ")");
        return false;
      }
      m.version = kVersion;
      sawHeader = true;
      continue;
    }

    if (tok[0] == "arg") {
      ManifestArg arg;
      arg.line = lineNo;
      if (tok.size() != 5) {
        error = lineError(lineNo, std::string("expected ") + argExpected +
                                      ", got " + quoted(raw));
        return false;
      }
      if (!validName(tok[1])) {
        error = lineError(
            lineNo, "argument name " + quoted(tok[1]) +
                        " is not usable as a file name (expected letters, "
                        "digits, '_', '-' or '.')");
        return false;
      }
      arg.name = std::string(tok[1]);
      if (!parseRole(tok[2], arg.role)) {
        error = lineError(lineNo, "unknown role " + quoted(tok[2]) +
                                      " (expected state, input, param, "
                                      "dstate, dinput, dparam, loss or stats)");
        return false;
      }
      if (tok[3] == "f32")
        arg.dtype = DType::F32;
      else if (tok[3] == "i64")
        arg.dtype = DType::I64;
      else {
        error = lineError(lineNo, "unknown dtype " + quoted(tok[3]) +
                                      " (expected f32 or i64)");
        return false;
      }
      if (!parseShape(tok[4], arg.shape)) {
        error = lineError(lineNo,
                          "invalid shape " + quoted(tok[4]) +
                              " (expected 'scalar' or positive dims joined "
                              "by 'x', e.g. 1000x64x256, below 2^56 bytes)");
        return false;
      }
      for (const ManifestArg &other : m.args)
        if (other.name == arg.name) {
          error = lineError(lineNo, "argument name " + quoted(arg.name) +
                                        " is already used on line " +
                                        std::to_string(other.line));
          return false;
        }
      m.args.push_back(std::move(arg));
      continue;
    }

    Key *key = nullptr;
    for (Key &k : keys)
      if (tok[0] == k.name)
        key = &k;
    if (!key) {
      error = lineError(
          lineNo, "unknown key " + quoted(tok[0]) +
                      " (expected entry, cell, steps, strategy, budget, "
                      "planned_peak, workspace, forward_steps, precision, chip "
                      "or arg)");
      return false;
    }
    if (key->line) {
      error = lineError(lineNo, quoted(key->name) +
                                    " is given twice (first on line " +
                                    std::to_string(key->line) + ")");
      return false;
    }
    key->line = lineNo;
    std::string_view k = tok[0];
    auto bad = [&] {
      error = lineError(lineNo, std::string("expected ") + key->expected +
                                    ", got " + quoted(raw));
      return false;
    };
    if (tok.size() != 2)
      return bad();
    std::string_view v = tok[1];
    uint64_t number = 0;
    bool isNumber = parseUnsigned(v, number);
    if (k == "entry")
      m.entry = v;
    else if (k == "cell")
      m.cell = v;
    else if (k == "strategy")
      m.strategy = v;
    else if (k == "chip")
      m.chip = v;
    else if (k == "precision") {
      if (v != "f32" && v != "tf32")
        return bad();
      m.precision = v;
    } else if (k == "steps") {
      if (!isNumber || number == 0 || number > kMaxBytes)
        return bad();
      m.steps = int64_t(number);
    } else {
      if (!isNumber)
        return bad();
      if (k == "budget")
        m.budget = number;
      else if (k == "planned_peak")
        m.plannedPeak = number;
      else if (k == "workspace")
        m.workspace = number;
      else
        m.forwardSteps = number;
    }
  }

  if (!sawHeader) {
    error = "manifest: empty (expected the header 'bptt-program " +
            std::to_string(kVersion) + "' and the program's facts)";
    return false;
  }
  for (const Key &k : keys)
    if (!k.line && std::string_view(k.name) != "workspace") { // optional
      error = std::string("manifest: no '") + k.name + "' line (expected " +
              k.expected + ")";
      return false;
    }

  // Roles in order, with the counts and shapes the ABI requires.
  for (size_t i = 1; i < m.args.size(); ++i)
    if (m.args[i].role < m.args[i - 1].role) {
      error = lineError(m.args[i].line,
                        std::string("a '") + roleName(m.args[i].role) +
                            "' argument comes after a '" +
                            roleName(m.args[i - 1].role) +
                            "' one (expected the order state, input, param, "
                            "dstate, dinput, dparam, loss, stats)");
      return false;
    }
  auto all = [&](ArgRole r) {
    std::vector<const ManifestArg *> v;
    for (const ManifestArg &a : m.args)
      if (a.role == r)
        v.push_back(&a);
    return v;
  };
  auto states = all(ArgRole::State), inputs = all(ArgRole::Input),
       params = all(ArgRole::Param), dstates = all(ArgRole::DState),
       dinputs = all(ArgRole::DInput), dparams = all(ArgRole::DParam),
       losses = all(ArgRole::Loss), stats = all(ArgRole::Stats);
  auto count = [&](const std::vector<const ManifestArg *> &v, ArgRole r,
                   size_t want, const char *why) {
    if (v.size() == want)
      return true;
    error = "manifest: " + std::to_string(v.size()) + " '" + roleName(r) +
            "' argument(s), expected " + std::to_string(want) + " (" + why +
            ")";
    return false;
  };
  if (states.empty()) {
    error = "manifest: no 'state' argument (expected one per cell state)";
    return false;
  }
  if (!count(inputs, ArgRole::Input, 1, "the sequence xs") ||
      !count(dstates, ArgRole::DState, states.size(), "one per state") ||
      (dinputs.size() > 1 &&
       !count(dinputs, ArgRole::DInput, 1,
              "the gradient of xs, or none in a program compiled "
              "without it")) ||
      !count(dparams, ArgRole::DParam, params.size(), "one per param") ||
      !count(losses, ArgRole::Loss, 1, "the summed loss") ||
      !count(stats, ArgRole::Stats, 1, "the step statistics"))
    return false;
  for (const ManifestArg &a : m.args) {
    DType want = a.role == ArgRole::Stats ? DType::I64 : DType::F32;
    if (a.dtype != want) {
      error = lineError(a.line, std::string("a '") + roleName(a.role) +
                                    "' argument must be " + dtypeName(want) +
                                    ", not " + dtypeName(a.dtype));
      return false;
    }
  }
  const ManifestArg &xs = *inputs[0];
  if (xs.shape.empty() || xs.shape[0] != m.steps) {
    error = lineError(xs.line, "the input " + quoted(xs.name) + " has shape " +
                                   shapeString(xs.shape) +
                                   ", expected its first dimension to be the " +
                                   std::to_string(m.steps) + " steps");
    return false;
  }
  auto sameShape = [&](const ManifestArg &grad, const ManifestArg &primal) {
    if (grad.shape == primal.shape)
      return true;
    error = lineError(grad.line, "the gradient " + quoted(grad.name) +
                                     " has shape " + shapeString(grad.shape) +
                                     ", expected the shape " +
                                     shapeString(primal.shape) + " of " +
                                     quoted(primal.name) + " (line " +
                                     std::to_string(primal.line) + ")");
    return false;
  };
  for (size_t i = 0; i < states.size(); ++i)
    if (!sameShape(*dstates[i], *states[i]))
      return false;
  if (!dinputs.empty() && !sameShape(*dinputs[0], xs))
    return false;
  for (size_t i = 0; i < params.size(); ++i)
    if (!sameShape(*dparams[i], *params[i]))
      return false;
  if (!losses[0]->shape.empty()) {
    error = lineError(losses[0]->line, "the loss has shape " +
                                           shapeString(losses[0]->shape) +
                                           ", expected 'scalar'");
    return false;
  }
  if (stats[0]->shape != std::vector<int64_t>{2}) {
    error = lineError(stats[0]->line, "the stats argument has shape " +
                                          shapeString(stats[0]->shape) +
                                          ", expected '2'");
    return false;
  }
  out = std::move(m);
  return true;
}
