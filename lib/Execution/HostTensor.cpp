//===- HostTensor.cpp - a tensor or scalar in host memory -----------------===//

#include "bptt/Execution/HostTensor.h"

#include "mlir/IR/BuiltinTypes.h"

#include <cstring>
#include <functional>
#include <numeric>
#include <random>

using namespace bptt;

int64_t ValueShape::numElements() const {
  return std::accumulate(shape.begin(), shape.end(), int64_t(1),
                         std::multiplies<int64_t>());
}

llvm::Expected<ValueShape> ValueShape::of(mlir::Type type) {
  ValueShape v;
  mlir::Type element = type;
  // Tensors and identity-layout memrefs are passed alike: after
  // bufferization both are strided descriptors.
  if (auto shaped = llvm::dyn_cast<mlir::ShapedType>(type)) {
    auto memref = llvm::dyn_cast<mlir::MemRefType>(type);
    if (!llvm::isa<mlir::RankedTensorType>(type) &&
        !(memref && memref.getLayout().isIdentity()))
      return llvm::createStringError(
          "only ranked tensors and identity-layout memrefs can be passed");
    if (!shaped.hasStaticShape())
      return llvm::createStringError("a shape that is not static");
    v.isTensor = true;
    v.shape.assign(shaped.getShape().begin(), shaped.getShape().end());
    element = shaped.getElementType();
  }
  if (element.isF32())
    v.kind = ElementKind::F32;
  else if (element.isF64())
    v.kind = ElementKind::F64;
  else if (element.isInteger(64))
    v.kind = ElementKind::I64;
  else
    return llvm::createStringError(
        "only f32, f64 and i64 tensors and scalars can be passed");
  return v;
}

HostTensor::HostTensor(ValueShape shape)
    : desc(std::move(shape)),
      bytes(desc.numElements() * desc.elementBytes(), 0) {}

double HostTensor::get(int64_t i) const {
  if (desc.kind == ElementKind::I64)
    return static_cast<double>(getInt(i));
  if (desc.kind == ElementKind::F32) {
    float f;
    std::memcpy(&f, bytes.data() + 4 * i, 4);
    return f;
  }
  double d;
  std::memcpy(&d, bytes.data() + 8 * i, 8);
  return d;
}

int64_t HostTensor::getInt(int64_t i) const {
  int64_t v;
  std::memcpy(&v, bytes.data() + 8 * i, 8);
  return v;
}

void HostTensor::set(int64_t i, double v) {
  if (desc.kind == ElementKind::I64) {
    int64_t n = static_cast<int64_t>(v);
    std::memcpy(bytes.data() + 8 * i, &n, 8);
    return;
  }
  if (desc.kind == ElementKind::F32) {
    float f = static_cast<float>(v);
    std::memcpy(bytes.data() + 4 * i, &f, 4);
    return;
  }
  std::memcpy(bytes.data() + 8 * i, &v, 8);
}

void HostTensor::fillUniform(uint64_t seed, double lo, double hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  for (int64_t i = 0, e = size(); i < e; ++i)
    set(i, dist(rng));
}

bool HostTensor::bitwiseEqual(const HostTensor &other) const {
  return desc.kind == other.desc.kind && desc.shape == other.desc.shape &&
         bytes == other.bytes;
}

uint64_t HostTensor::fingerprint() const {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}
