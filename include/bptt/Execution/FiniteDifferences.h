//===- FiniteDifferences.h - gradients against finite differences -*- C++ -*-===//
//
// The oracle bptt-gradcheck and bptt-run share: a gradient compared with the
// fourth-order central stencil
//   (8 (J(u+h) - J(u-h)) - (J(u+2h) - J(u-2h))) / 12h
// and the relative error max|g - r| / max(max|r|, max|g|, 1e-12).
//
//===----------------------------------------------------------------------===//

#ifndef BPTT_EXECUTION_FINITEDIFFERENCES_H
#define BPTT_EXECUTION_FINITEDIFFERENCES_H

#include "bptt/Execution/HostTensor.h"

#include "llvm/ADT/STLFunctionalExtras.h"

namespace bptt {

struct GradientCheck {
  int64_t checked = 0;       // elements compared
  double maxReference = 0;   // max |difference quotient|
  double relativeError = 0;  // as defined above
};

/// Compares `gradient`, dJ/du, with central differences of `objective` (J at
/// the current contents of `u`) at up to `samples` elements of `u` spread
/// evenly (0: all). `u` is perturbed in place and restored.
llvm::Expected<GradientCheck>
checkGradient(HostTensor &u, const HostTensor &gradient, double step,
              int64_t samples, llvm::function_ref<llvm::Expected<double>()> objective);

} // namespace bptt

#endif // BPTT_EXECUTION_FINITEDIFFERENCES_H
