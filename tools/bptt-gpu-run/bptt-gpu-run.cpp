//===- bptt-gpu-run.cpp - run a compiled BPTT program on the GPU ----------===//
//
// Loads a compiled program (prog.so, docs/gpu-abi.md), allocates and fills
// its arguments, runs it (warm-up calls uncaptured, then timed iterations:
// replays of one captured CUDA graph, or direct calls), and reports the
// time per iteration, the memory pool's peak above the runner's own
// arguments, the loss, the program's statistics and checksums of every
// output. Links the bptt CUDA runtime, libcuda and libdl only: it runs on a
// machine without LLVM.
//
//===----------------------------------------------------------------------===//

#include "bptt/Runtime/CudaRuntime.h"
#include "bptt/Runtime/ProgramManifest.h"

#include <cuda.h>
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace bptt::runtime;

namespace {

//===--- Errors -----------------------------------------------------------===//

[[noreturn]] void die(const std::string &message) {
  std::fflush(stdout);
  std::fprintf(stderr, "bptt-gpu-run: error: %s\n", message.c_str());
  std::exit(1);
}

void warn(const std::string &message) {
  std::fflush(stdout);
  std::fprintf(stderr, "bptt-gpu-run: warning: %s\n", message.c_str());
}

void checkCu(CUresult result, const char *call) {
  if (result == CUDA_SUCCESS)
    return;
  const char *name = nullptr, *description = nullptr;
  if (cuGetErrorName(result, &name) != CUDA_SUCCESS || !name)
    name = "CUDA_ERROR_UNKNOWN_CODE";
  if (cuGetErrorString(result, &description) != CUDA_SUCCESS || !description)
    description = "unrecognised error code";
  die(std::string(call) + " failed: " + name + ": " + description);
}
#define CHECK_CU(call) checkCu((call), #call)

std::string format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  va_list copy;
  va_copy(copy, args);
  int n = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  std::string s(n > 0 ? size_t(n) : 0, '\0');
  if (n > 0)
    std::vsnprintf(&s[0], size_t(n) + 1, fmt, args);
  va_end(args);
  return s;
}

/// The runtime reports every CUDA, cuBLAS or API error on stderr and calls
/// abort() (docs/gpu-abi.md); the runner turns that into a plain exit with
/// status 3 instead of a core-dumping crash.
extern "C" void onAbort(int) {
  static const char note[] =
      "bptt-gpu-run: error: aborted by the bptt CUDA runtime or the program "
      "(the reason is printed above)\n";
  ssize_t ignored = ::write(2, note, sizeof(note) - 1);
  (void)ignored; // nothing more can be done about a failing stderr here
  ::_exit(3);
}

//===--- Options ----------------------------------------------------------===//

const char *kUsage =
    "usage: bptt-gpu-run prog.so [options]\n"
    "\n"
    "Runs a compiled BPTT program (docs/gpu-abi.md) on the GPU and reports\n"
    "its time per iteration, memory, loss, statistics and output checksums.\n"
    "\n"
    "options:\n"
    "  --warmup N        uncaptured calls before timing (default 1, >= 1; the\n"
    "                    first one sizes the memory pool)\n"
    "  --iters N         timed iterations (default 10, >= 1)\n"
    "  --graph           capture one call as a CUDA graph and replay it for\n"
    "                    the timed iterations (default)\n"
    "  --no-graph        call the program directly in the timed iterations\n"
    "  --seed S          seed of the input fill (default 0)\n"
    "  --scale A         inputs uniform in [-A, A] (default 0.1)\n"
    "  --inputs-from DIR read state, input and param arguments from raw\n"
    "                    little-endian files DIR/<name>.bin\n"
    "  --dump DIR        write every argument to DIR/<name>.bin and\n"
    "                    DIR/index.txt (name role dtype shape per line)\n"
    "  --json FILE       also write the report as JSON to FILE\n"
    "  --manifest        print the program's manifest and exit\n"
    "  -h, --help        print this help\n";

[[noreturn]] void usageError(const std::string &message) {
  std::fprintf(stderr, "bptt-gpu-run: error: %s\n%s", message.c_str(),
               kUsage);
  std::exit(2);
}

struct Options {
  std::string program;
  int64_t warmup = 1;
  int64_t iters = 10;
  bool graph = true;
  uint64_t seed = 0;
  double scale = 0.1;
  std::string inputsFrom, dump, json;
  bool manifestOnly = false;
};

uint64_t parseCount(const std::string &option, const std::string &text,
                    uint64_t min, uint64_t max) {
  errno = 0;
  char *end = nullptr;
  unsigned long long v =
      text.empty() || text[0] == '-' || text[0] == '+'
          ? 0
          : std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || !end || *end || errno || v < min || v > max)
    usageError(option + " expects an integer in [" + std::to_string(min) +
               ", " + std::to_string(max) + "], got '" + text + "'");
  return v;
}

Options parseOptions(int argc, char **argv) {
  Options o;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i], value;
    bool hasValue = false;
    if (arg.rfind("--", 0) == 0) {
      if (size_t eq = arg.find('='); eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        hasValue = true;
      }
    }
    auto takeValue = [&]() -> std::string {
      if (hasValue)
        return value;
      if (i + 1 >= args.size())
        usageError(arg + " expects a value");
      return args[++i];
    };
    auto noValue = [&] {
      if (hasValue)
        usageError(arg + " takes no value");
    };
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (arg == "--warmup") {
      o.warmup = int64_t(parseCount(arg, takeValue(), 1, 1000000));
    } else if (arg == "--iters") {
      o.iters = int64_t(parseCount(arg, takeValue(), 1, 1000000));
    } else if (arg == "--graph") {
      noValue();
      o.graph = true;
    } else if (arg == "--no-graph") {
      noValue();
      o.graph = false;
    } else if (arg == "--seed") {
      o.seed = parseCount(arg, takeValue(), 0, UINT64_MAX);
    } else if (arg == "--scale") {
      std::string text = takeValue();
      errno = 0;
      char *end = nullptr;
      double v = std::strtod(text.c_str(), &end);
      if (text.empty() || *end || errno || !std::isfinite(v) || v < 0)
        usageError("--scale expects a finite number >= 0, got '" + text +
                   "'");
      o.scale = v;
    } else if (arg == "--inputs-from") {
      o.inputsFrom = takeValue();
    } else if (arg == "--dump") {
      o.dump = takeValue();
    } else if (arg == "--json") {
      o.json = takeValue();
    } else if (arg == "--manifest") {
      noValue();
      o.manifestOnly = true;
    } else if (!arg.empty() && arg[0] == '-') {
      usageError("unknown option '" + arg + "'");
    } else if (o.program.empty()) {
      o.program = arg;
    } else {
      usageError("more than one program given ('" + o.program + "' and '" +
                 arg + "')");
    }
  }
  if (o.program.empty())
    usageError("no program given");
  for (std::string *dir : {&o.inputsFrom, &o.dump})
    while (dir->size() > 1 && dir->back() == '/')
      dir->pop_back();
  return o;
}

//===--- Deterministic inputs ---------------------------------------------===//

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// Element i of argument `arg`: uniform in [-scale, scale] (docs/gpu-abi.md).
float fillValue(uint64_t argSeed, uint64_t i, double scale) {
  uint64_t h = splitmix64(argSeed + i);
  double u = double(h >> 40) * (1.0 / 16777216.0); // [0, 1), 24 bits
  return float(scale * (2.0 * u - 1.0));
}

//===--- Files ------------------------------------------------------------===//

void makeDirectory(const std::string &dir) {
  if (::mkdir(dir.c_str(), 0777) == 0)
    return;
  int error = errno;
  struct stat st;
  if (error == EEXIST && ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return;
  die("cannot create the directory '" + dir + "': " + std::strerror(error));
}

void readExactly(const std::string &path, void *data, uint64_t bytes,
                 const std::string &what) {
  FILE *f = std::fopen(path.c_str(), "rb");
  if (!f)
    die("cannot open '" + path + "' (" + what + ", " + std::to_string(bytes) +
        " bytes expected): " + std::strerror(errno));
  struct stat st;
  if (::fstat(fileno(f), &st) != 0) {
    int error = errno;
    std::fclose(f);
    die("cannot stat '" + path + "': " + std::strerror(error));
  }
  if (!S_ISREG(st.st_mode) || uint64_t(st.st_size) != bytes) {
    std::fclose(f);
    die("'" + path + "' has " + std::to_string(st.st_size) +
        " bytes, expected " + std::to_string(bytes) + " (" + what +
        ", raw little-endian)");
  }
  size_t got = bytes ? std::fread(data, 1, size_t(bytes), f) : 0;
  bool failed = got != bytes || std::ferror(f);
  std::fclose(f);
  if (failed)
    die("cannot read " + std::to_string(bytes) + " bytes from '" + path +
        "'");
}

void writeFile(const std::string &path, const void *data, uint64_t bytes) {
  FILE *f = std::fopen(path.c_str(), "wb");
  if (!f)
    die("cannot create '" + path + "': " + std::strerror(errno));
  size_t put = bytes ? std::fwrite(data, 1, size_t(bytes), f) : 0;
  bool failed = put != bytes || std::ferror(f);
  if (std::fclose(f) != 0 || failed)
    die("cannot write " + std::to_string(bytes) + " bytes to '" + path + "'");
}

//===--- Arguments --------------------------------------------------------===//

struct Argument {
  const ManifestArg *meta = nullptr;
  void *device = nullptr;          // f32 arguments
  std::vector<int64_t> hostStats;  // the stats argument
  std::vector<int64_t> descriptor; // MLIR memref descriptor, 8-byte fields

  void *data() { return meta->onDevice() ? device : hostStats.data(); }
};

/// MLIR's C-interface descriptor of a dense row-major memref: allocated,
/// aligned, offset, sizes[rank], strides[rank], every field 8 bytes.
std::vector<int64_t> makeDescriptor(void *data,
                                    const std::vector<int64_t> &shape) {
  static_assert(sizeof(void *) == sizeof(int64_t), "64-bit pointers");
  size_t rank = shape.size();
  std::vector<int64_t> d(3 + 2 * rank, 0);
  std::memcpy(&d[0], &data, sizeof(void *));
  std::memcpy(&d[1], &data, sizeof(void *));
  d[2] = 0;
  int64_t stride = 1;
  for (size_t i = rank; i-- > 0;) {
    d[3 + i] = shape[i];
    d[3 + rank + i] = stride;
    stride *= shape[i];
  }
  return d;
}

/// Copies a device argument to the host.
std::vector<unsigned char> download(const Argument &a) {
  std::vector<unsigned char> bytes(size_t(a.meta->byteSize()));
  if (!a.meta->onDevice()) {
    std::memcpy(bytes.data(), a.hostStats.data(), bytes.size());
    return bytes;
  }
  mgpuMemcpy(bytes.data(), a.device, bytes.size(), bpttProgramStream());
  bpttSynchronize();
  return bytes;
}

struct Checksum {
  double sum = 0, absSum = 0;
  uint64_t fnv = 0xcbf29ce484222325ull;
  uint64_t nans = 0;
};

Checksum checksum(const std::vector<unsigned char> &bytes) {
  Checksum c;
  for (unsigned char b : bytes) {
    c.fnv ^= b;
    c.fnv *= 0x100000001b3ull;
  }
  size_t n = bytes.size() / sizeof(float);
  for (size_t i = 0; i < n; ++i) {
    float x;
    std::memcpy(&x, bytes.data() + i * sizeof(float), sizeof(float));
    if (std::isnan(x))
      ++c.nans;
    c.sum += double(x);
    c.absSum += std::fabs(double(x));
  }
  return c;
}

//===--- JSON -------------------------------------------------------------===//

std::string jsonString(const std::string &s) {
  std::string out = "\"";
  for (char ch : s) {
    unsigned char u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\')
      out += std::string("\\") + ch;
    else if (u < 0x20)
      out += format("\\u%04x", u);
    else
      out += ch;
  }
  return out + "\"";
}

std::string jsonNumber(double v) {
  return std::isfinite(v) ? format("%.17g", v) : "null";
}

//===--- Statistics -------------------------------------------------------===//

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string chipOf(CUdevice device) {
  int major = 0, minor = 0;
  CHECK_CU(cuDeviceGetAttribute(
      &major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device));
  CHECK_CU(cuDeviceGetAttribute(
      &minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device));
  return format("sm_%d%d", major, minor);
}

} // namespace

int main(int argc, char **argv) {
  Options opt = parseOptions(argc, argv);
  std::signal(SIGABRT, onAbort);

  // Load the program. dlopen searches the library path for a name without
  // a slash; a program is a file.
  std::string path = opt.program;
  if (path.find('/') == std::string::npos)
    path = "./" + path;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    die("cannot open the program '" + opt.program +
        "': " + std::strerror(errno));
  void *handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *why = ::dlerror();
    die("cannot load the program '" + opt.program +
        "': " + (why ? why : "unknown dlopen error"));
  }
  using ManifestFn = const char *(*)(void);
  using EntryFn = void (*)(void **);
  void *manifestSym = ::dlsym(handle, "bptt_program_manifest");
  void *entrySym = ::dlsym(handle, "bptt_program_entry");
  if (!manifestSym || !entrySym)
    die("'" + opt.program + "' is not a bptt GPU program: it does not export " +
        (!manifestSym ? "bptt_program_manifest" : "bptt_program_entry") +
        " (docs/gpu-abi.md)");
  auto manifestFn = reinterpret_cast<ManifestFn>(manifestSym);
  auto entry = reinterpret_cast<EntryFn>(entrySym);

  const char *manifestText = manifestFn();
  if (!manifestText)
    die("bptt_program_manifest() of '" + opt.program + "' returned NULL");
  ProgramManifest m;
  std::string error;
  bool parsed = parseManifest(manifestText, m, error);
  if (opt.manifestOnly) {
    std::fputs(manifestText, stdout);
    if (!parsed)
      die(opt.program + ": " + error);
    return 0;
  }
  if (!parsed)
    die(opt.program + ": " + error);

  // The device (initialising the runtime makes its context current here).
  CUstream stream = static_cast<CUstream>(bpttProgramStream());
  CUdevice device = 0;
  CHECK_CU(cuCtxGetDevice(&device));
  char nameBuffer[256] = {};
  CHECK_CU(cuDeviceGetName(nameBuffer, sizeof(nameBuffer) - 1, device));
  std::string deviceName = nameBuffer, deviceChip = chipOf(device);
  // Only a binary for one SM is tied to a device; PTX (compute_XX) is not.
  if (m.chip.rfind("sm_", 0) == 0 && m.chip.rfind(deviceChip, 0) != 0)
    warn("the program was compiled for " + m.chip + " but the device is " +
         deviceName + " (" + deviceChip + ")");

  // Arguments: device memory from the pool for f32, host for stats; states,
  // inputs and params filled, outputs poisoned with NaN (the program must
  // write all of them), stats with -1.
  std::vector<Argument> args(m.args.size());
  std::vector<void *> descriptors(m.args.size());
  for (size_t i = 0; i < m.args.size(); ++i) {
    Argument &a = args[i];
    a.meta = &m.args[i];
    const ManifestArg &meta = *a.meta;
    if (meta.onDevice()) {
      a.device = bpttDeviceAlloc(meta.byteSize());
    } else {
      a.hostStats.assign(size_t(meta.numElements()), -1);
    }
    a.descriptor = makeDescriptor(a.data(), meta.shape);
    descriptors[i] = a.descriptor.data();

    if (meta.isInput()) {
      std::vector<float> host(size_t(meta.numElements()));
      if (!opt.inputsFrom.empty()) {
        readExactly(opt.inputsFrom + "/" + meta.name + ".bin", host.data(),
                    meta.byteSize(),
                    std::string(roleName(meta.role)) + " " + meta.name +
                        ", f32 " + shapeString(meta.shape));
      } else {
        uint64_t argSeed = splitmix64(splitmix64(opt.seed) + i);
        for (size_t e = 0; e < host.size(); ++e)
          host[e] = fillValue(argSeed, e, opt.scale);
      }
      mgpuMemcpy(a.device, host.data(), size_t(meta.byteSize()), stream);
      bpttSynchronize();
    } else if (meta.onDevice()) {
      mgpuMemset32(a.device, 0x7FC00000u, size_t(meta.numElements()), stream);
    }
  }
  bpttSynchronize();

  // Warm-up: uncaptured; the first call sizes the pool.
  BpttPoolStats before{};
  bpttPoolGetStats(&before);
  bpttPoolResetPeak();
  for (int64_t w = 0; w < opt.warmup; ++w)
    entry(descriptors.data());
  bpttSynchronize();
  BpttPoolStats afterWarmup{};
  bpttPoolGetStats(&afterWarmup);
  if (afterWarmup.inUseBytes < before.inUseBytes)
    die(format("the program freed %" PRIu64
               " bytes it did not allocate (the runner's arguments?)",
               before.inUseBytes - afterWarmup.inUseBytes));
  uint64_t retained = afterWarmup.inUseBytes - before.inUseBytes;
  if (retained)
    warn(format("the program keeps %" PRIu64
                " bytes of pool memory allocated between calls; they count "
                "in its activation peak",
                retained));

  // Timed iterations, each between two events on the program stream.
  bpttPoolResetPeak();
  std::vector<CUevent> starts(size_t(opt.iters)), stops(size_t(opt.iters));
  for (size_t i = 0; i < starts.size(); ++i) {
    CHECK_CU(cuEventCreate(&starts[i], CU_EVENT_DEFAULT));
    CHECK_CU(cuEventCreate(&stops[i], CU_EVENT_DEFAULT));
  }
  void *graph = nullptr;
  uint64_t graphPieces = 0;
  double captureMs = 0;
  if (opt.graph) {
    auto captureStart = std::chrono::steady_clock::now();
    bpttGraphBeginCapture();
    entry(descriptors.data());
    graph = bpttGraphEndCapture();
    graphPieces = bpttGraphPieces(graph);
    captureMs = std::chrono::duration<double, std::milli>(
                    std::chrono::steady_clock::now() - captureStart)
                    .count();
  }
  auto wallStart = std::chrono::steady_clock::now();
  for (size_t i = 0; i < starts.size(); ++i) {
    CHECK_CU(cuEventRecord(starts[i], stream));
    if (opt.graph)
      bpttGraphLaunch(graph);
    else
      entry(descriptors.data());
    CHECK_CU(cuEventRecord(stops[i], stream));
  }
  bpttSynchronize();
  double wallMs = std::chrono::duration<double, std::milli>(
                      std::chrono::steady_clock::now() - wallStart)
                      .count();
  std::vector<double> ms(starts.size());
  for (size_t i = 0; i < starts.size(); ++i) {
    float t = 0;
    CHECK_CU(cuEventElapsedTime(&t, starts[i], stops[i]));
    ms[i] = double(t);
  }
  BpttPoolStats after{};
  bpttPoolGetStats(&after);
  if (after.inUseBytes != afterWarmup.inUseBytes)
    warn(format("pool memory in use changed from %" PRIu64 " to %" PRIu64
                " bytes over the timed iterations (the program does not free "
                "what it allocates)",
                afterWarmup.inUseBytes, after.inUseBytes));
  uint64_t activationPeak = after.peakInUseBytes - before.inUseBytes;

  // Results.
  float loss = std::nanf("");
  int lossIndex = m.find(ArgRole::Loss), statsIndex = m.find(ArgRole::Stats);
  {
    std::vector<unsigned char> bytes = download(args[size_t(lossIndex)]);
    std::memcpy(&loss, bytes.data(), sizeof(float));
  }
  const std::vector<int64_t> &stats = args[size_t(statsIndex)].hostStats;

  struct OutputSum {
    const ManifestArg *meta;
    Checksum sum;
  };
  std::vector<OutputSum> outputs;
  if (!opt.dump.empty())
    makeDirectory(opt.dump);
  std::string index;
  for (const Argument &a : args) {
    const ManifestArg &meta = *a.meta;
    bool wanted = meta.isOutput() && meta.role != ArgRole::Stats;
    if (!wanted && opt.dump.empty())
      continue;
    std::vector<unsigned char> bytes = download(a);
    if (wanted) {
      outputs.push_back({&meta, checksum(bytes)});
      if (outputs.back().sum.nans)
        warn(format("output '%s' has %" PRIu64
                    " NaN values (the runner fills outputs with NaN before "
                    "the first call, so an element the program never writes "
                    "reads as NaN)",
                    meta.name.c_str(), outputs.back().sum.nans));
    }
    if (!opt.dump.empty()) {
      writeFile(opt.dump + "/" + meta.name + ".bin", bytes.data(),
                bytes.size());
      index += meta.name + " " + roleName(meta.role) + " " +
               dtypeName(meta.dtype) + " " + shapeString(meta.shape) + "\n";
    }
  }
  if (!opt.dump.empty())
    writeFile(opt.dump + "/index.txt", index.data(), index.size());

  double med = median(ms), lo = *std::min_element(ms.begin(), ms.end()),
         hi = *std::max_element(ms.begin(), ms.end());

  // Text report.
  std::printf("program        %s\n", opt.program.c_str());
  std::printf("device         %s (%s)\n", deviceName.c_str(),
              deviceChip.c_str());
  std::printf("entry          %s (cell %s, chip %s, precision %s)\n",
              m.entry.c_str(), m.cell.c_str(), m.chip.c_str(),
              m.precision.c_str());
  std::printf("plan           %s, T = %" PRId64 ", budget %" PRIu64
              " B, planned peak %" PRIu64 " B, planned forward steps %" PRIu64
              "\n",
              m.strategy.c_str(), m.steps, m.budget, m.plannedPeak,
              m.forwardSteps);
  std::string how = "direct calls";
  if (opt.graph) {
    char captured[96];
    std::snprintf(captured, sizeof(captured), " (captured in %.1f ms%s)",
                  captureMs,
                  graphPieces > 1
                      ? (", " + std::to_string(graphPieces) + " graphs").c_str()
                      : "");
    how = std::string("CUDA graph replays") + captured;
  }
  std::printf("run            %" PRId64 " warm-up, %" PRId64
              " iterations, %s\n",
              opt.warmup, opt.iters, how.c_str());
  std::printf("time           median %.4f ms, min %.4f ms, max %.4f ms per "
              "iteration (%.4f ms wall)\n",
              med, lo, hi, wallMs / double(opt.iters));
  std::printf("memory         activation peak %" PRIu64 " B, total peak %" PRIu64
              " B (runner arguments and cuBLAS workspace %" PRIu64
              " B), pool reserved %" PRIu64 " B\n",
              activationPeak, after.peakInUseBytes, before.inUseBytes,
              after.reservedBytes);
  std::printf("loss           %.9e\n", double(loss));
  std::printf("stats          forward steps %" PRId64 ", planned peak %" PRId64
              " B\n",
              stats[0], stats[1]);
  for (const OutputSum &o : outputs)
    std::printf("%-14s sum %.9e, abs %.9e, fnv1a 0x%016" PRIx64 "\n",
                o.meta->name.c_str(), o.sum.sum, o.sum.absSum, o.sum.fnv);
  std::fflush(stdout);

  if (!opt.json.empty()) {
    std::string j = "{\n";
    auto field = [&](const std::string &key, const std::string &value,
                     bool last = false) {
      j += "  " + jsonString(key) + ": " + value + (last ? "\n" : ",\n");
    };
    auto u64 = [](uint64_t v) { return std::to_string(v); };
    field("program", jsonString(opt.program));
    field("device", jsonString(deviceName));
    field("device_chip", jsonString(deviceChip));
    field("entry", jsonString(m.entry));
    field("cell", jsonString(m.cell));
    field("steps", std::to_string(m.steps));
    field("strategy", jsonString(m.strategy));
    field("budget", u64(m.budget));
    field("planned_peak", u64(m.plannedPeak));
    field("workspace", u64(m.workspace));
    field("forward_steps", u64(m.forwardSteps));
    field("precision", jsonString(m.precision));
    field("chip", jsonString(m.chip));
    field("warmup", std::to_string(opt.warmup));
    field("iterations", std::to_string(opt.iters));
    field("graph", opt.graph ? "true" : "false");
    field("graph_pieces", u64(graphPieces));
    field("capture_ms", opt.graph ? jsonNumber(captureMs) : "null");
    field("seed", u64(opt.seed));
    field("scale", jsonNumber(opt.scale));
    field("inputs_from",
          opt.inputsFrom.empty() ? "null" : jsonString(opt.inputsFrom));
    field("ms_median", jsonNumber(med));
    field("ms_min", jsonNumber(lo));
    field("ms_max", jsonNumber(hi));
    std::string list = "[";
    for (size_t i = 0; i < ms.size(); ++i)
      list += (i ? ", " : "") + jsonNumber(ms[i]);
    field("ms", list + "]");
    field("wall_ms_per_iteration", jsonNumber(wallMs / double(opt.iters)));
    field("activation_peak_bytes", u64(activationPeak));
    field("total_peak_bytes", u64(after.peakInUseBytes));
    field("runner_bytes", u64(before.inUseBytes));
    field("retained_bytes", u64(retained));
    field("warmup_activation_peak_bytes",
          u64(afterWarmup.peakInUseBytes - before.inUseBytes));
    field("pool_reserved_bytes", u64(after.reservedBytes));
    field("loss", jsonNumber(double(loss)));
    field("stats", "[" + std::to_string(stats[0]) + ", " +
                       std::to_string(stats[1]) + "]");
    std::string outs = "[";
    for (size_t i = 0; i < outputs.size(); ++i) {
      const OutputSum &o = outputs[i];
      outs += std::string(i ? "," : "") + "\n    {\"name\": " +
              jsonString(o.meta->name) +
              ", \"role\": " + jsonString(roleName(o.meta->role)) +
              ", \"shape\": " + jsonString(shapeString(o.meta->shape)) +
              ", \"sum\": " + jsonNumber(o.sum.sum) +
              ", \"abs_sum\": " + jsonNumber(o.sum.absSum) +
              ", \"fnv1a\": " + jsonString(format("0x%016" PRIx64, o.sum.fnv)) +
              ", \"nans\": " + u64(o.sum.nans) + "}";
    }
    field("outputs", outs + "\n  ]", /*last=*/true);
    j += "}\n";
    writeFile(opt.json, j.data(), j.size());
  }

  // Tear down in order: the graph, the events, the arguments, then the
  // program (its global destructors unload its modules while the driver is
  // still up).
  if (graph)
    bpttGraphDestroy(graph);
  for (size_t i = 0; i < starts.size(); ++i) {
    CHECK_CU(cuEventDestroy(starts[i]));
    CHECK_CU(cuEventDestroy(stops[i]));
  }
  for (Argument &a : args)
    if (a.device)
      bpttDeviceFree(a.device);
  bpttSynchronize();
  if (::dlclose(handle) != 0) {
    const char *why = ::dlerror();
    die(std::string("cannot unload the program: ") +
        (why ? why : "unknown dlclose error"));
  }
  return 0;
}
