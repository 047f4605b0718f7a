//===- FiniteDifferences.cpp - gradients against finite differences -------===//

#include "bptt/Execution/FiniteDifferences.h"

#include <algorithm>
#include <cmath>

using namespace bptt;

llvm::Expected<GradientCheck>
bptt::checkGradient(HostTensor &u, const HostTensor &gradient, double step,
                    int64_t samples,
                    llvm::function_ref<llvm::Expected<double>()> objective) {
  int64_t n = u.size();
  int64_t count = samples > 0 ? std::min<int64_t>(samples, n) : n;
  double maxDiff = 0, maxRef = 0, maxAd = 0;
  const double offsets[4] = {step, -step, 2 * step, -2 * step};
  for (int64_t k = 0; k < count; ++k) {
    int64_t i = count == n ? k : k * n / count;
    double saved = u.get(i), j[4];
    for (int q = 0; q < 4; ++q) {
      u.set(i, saved + offsets[q]);
      llvm::Expected<double> value = objective();
      if (!value) {
        u.set(i, saved);
        return value.takeError();
      }
      j[q] = *value;
    }
    u.set(i, saved);
    double fd = (8 * (j[0] - j[1]) - (j[2] - j[3])) / (12 * step);
    double g = gradient.get(i);
    maxDiff = std::max(maxDiff, std::fabs(g - fd));
    maxRef = std::max(maxRef, std::fabs(fd));
    maxAd = std::max(maxAd, std::fabs(g));
  }
  return GradientCheck{count, maxRef,
                       maxDiff / std::max({maxRef, maxAd, 1e-12})};
}
