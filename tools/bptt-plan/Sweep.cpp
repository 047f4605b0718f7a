//===- Sweep.cpp - compute/memory trade-off of every strategy -------------===//

#include "Sweep.h"

#include "llvm/Support/Format.h"

#include <algorithm>
#include <cmath>

using namespace bptt::planner;

std::vector<SweepRow>
bptt::planner::sweep(const Chain &chain, const std::vector<double> &fractions) {
  std::vector<SweepRow> rows;
  int64_t storeAll = chain.storeAllBytes();
  for (double f : fractions) {
    SweepRow row{f, static_cast<int64_t>(std::llround(f * storeAll)), {}};
    for (Strategy s : allStrategies()) {
      llvm::Expected<Plan> p = plan(chain, row.budget, s);
      if (!p) {
        llvm::consumeError(p.takeError());
        row.forwardPerStep.push_back(std::nullopt);
        continue;
      }
      row.forwardPerStep.push_back(p->predicted.forwardCost /
                                   std::max<int64_t>(1, chain.steps) /
                                   chain.forward(1));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

void bptt::planner::printSweep(llvm::raw_ostream &os, const Chain &chain,
                               const std::vector<SweepRow> &rows) {
  os << "forward steps per step (T = " << chain.steps
     << "; '-' = budget too small for the strategy)\n";
  os << llvm::format("%9s %14s", "budget", "bytes");
  for (Strategy s : allStrategies())
    os << llvm::format(" %8s", stringify(s).str().c_str());
  os << '\n';
  for (const SweepRow &r : rows) {
    os << llvm::format("%8.1f%% %14lld", 100 * r.fraction,
                       static_cast<long long>(r.budget));
    for (const auto &v : r.forwardPerStep) {
      if (v)
        os << llvm::format(" %8.3f", *v);
      else
        os << llvm::format(" %8s", "-");
    }
    os << '\n';
  }
}

void bptt::planner::writeSweepSvg(llvm::raw_ostream &os, const Chain &chain,
                                  const std::vector<SweepRow> &rows) {
  const double W = 720, H = 460, left = 70, right = 150, top = 40,
               bottom = 60;
  double maxY = 1;
  for (const SweepRow &r : rows)
    for (const auto &v : r.forwardPerStep)
      if (v)
        maxY = std::max(maxY, *v);
  maxY = std::min(maxY, 8.0); // the interesting region; clip the tail
  double minX = std::log10(std::max(1e-3, rows.empty() ? 0.01
                                                        : rows.front().fraction));
  double maxX = std::log10(1.0);
  auto px = [&](double f) {
    return left + (std::log10(f) - minX) / (maxX - minX) * (W - left - right);
  };
  auto py = [&](double y) {
    return top + (1 - (std::min(y, maxY) - 1) / (maxY - 1)) *
                     (H - top - bottom);
  };
  static const char *colors[] = {"#444444", "#1f77b4", "#ff7f0e",
                                 "#2ca02c", "#9467bd", "#d62728"};
  os << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W
     << "' height='" << H << "' font-family='sans-serif' font-size='12'>\n";
  os << "<rect width='100%' height='100%' fill='white'/>\n";
  os << "<text x='" << W / 2 << "' y='20' text-anchor='middle' "
     << "font-size='14'>Forward cost vs memory, T = " << chain.steps
     << "</text>\n";
  // Axes and grid.
  os << "<line x1='" << left << "' y1='" << H - bottom << "' x2='"
     << W - right << "' y2='" << H - bottom << "' stroke='black'/>\n";
  os << "<line x1='" << left << "' y1='" << top << "' x2='" << left
     << "' y2='" << H - bottom << "' stroke='black'/>\n";
  for (double f : {0.001, 0.01, 0.1, 1.0}) {
    if (std::log10(f) < minX - 1e-9)
      continue;
    os << "<line x1='" << px(f) << "' y1='" << top << "' x2='" << px(f)
       << "' y2='" << H - bottom << "' stroke='#ddd'/>\n";
    os << "<text x='" << px(f) << "' y='" << H - bottom + 18
       << "' text-anchor='middle'>" << llvm::format("%g", 100 * f)
       << "%</text>\n";
  }
  for (int y = 1; y <= static_cast<int>(maxY); ++y) {
    os << "<line x1='" << left << "' y1='" << py(y) << "' x2='" << W - right
       << "' y2='" << py(y) << "' stroke='#ddd'/>\n";
    os << "<text x='" << left - 8 << "' y='" << py(y) + 4
       << "' text-anchor='end'>" << y << "</text>\n";
  }
  os << "<text x='" << (left + W - right) / 2 << "' y='" << H - 15
     << "' text-anchor='middle'>budget (% of store-all bytes, log "
        "scale)</text>\n";
  os << "<text transform='translate(18," << (top + H - bottom) / 2
     << ") rotate(-90)' text-anchor='middle'>forward steps per step</text>\n";
  // One series per strategy.
  auto strategies = allStrategies();
  for (size_t i = 0; i < strategies.size(); ++i) {
    std::string points;
    llvm::raw_string_ostream pts(points);
    for (const SweepRow &r : rows)
      if (r.forwardPerStep[i])
        pts << px(r.fraction) << ',' << py(*r.forwardPerStep[i]) << ' ';
    os << "<polyline fill='none' stroke='" << colors[i]
       << "' stroke-width='2' points='" << points << "'/>\n";
    for (const SweepRow &r : rows)
      if (r.forwardPerStep[i])
        // Later series are drawn on top; earlier ones get larger markers so
        // that coinciding points (all = msm at 100%) stay visible.
        os << "<circle cx='" << px(r.fraction) << "' cy='"
           << py(*r.forwardPerStep[i]) << "' r='" << 2.5 + 0.6 * (double(strategies.size()) - 1 - double(i))
           << "' fill='" << colors[i] << "'/>\n";
    os << "<rect x='" << W - right + 15 << "' y='" << top + 20 * i
       << "' width='12' height='12' fill='" << colors[i] << "'/>\n";
    os << "<text x='" << W - right + 32 << "' y='" << top + 20 * i + 11
       << "'>" << stringify(strategies[i]) << "</text>\n";
  }
  os << "</svg>\n";
}
