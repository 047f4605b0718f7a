# -*- Python -*-
import os

import lit.formats
import lit.util
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "BPTT"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test", ".py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.bptt_obj_root, "test")
# Unit/ is its own suite (GoogleTest format); lit.site.cfg.py.in files are not tests.
# Inputs/ holds helpers of tests, not tests.
config.excludes = ["Unit", "Inputs", "CMakeLists.txt", "lit.cfg.py",
                   "lit.site.cfg.py.in"]

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%bptt_src_root", config.bptt_src_root))
config.substitutions.append(("%bptt_obj_root", config.bptt_obj_root))

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.bptt_tools_dir, append_path=True)

# The Python package is built into build/python; lit itself runs on Debian's
# /usr/bin/python3, the interpreter the module is built for.
config.environment["PYTHONPATH"] = os.path.join(config.bptt_obj_root, "python")
config.substitutions.append(("%python", "/usr/bin/python3"))

tools = ["bptt-opt", "bptt-plan", "bptt-gradcheck", "bptt-run"]

# The CUDA runtime and bptt-gpu-run (BPTT_ENABLE_CUDA): test/Runtime runs
# them on the mock driver in build/test/mock-cuda, so no GPU is needed.
if lit.util.pythonize_bool(config.bptt_enable_cuda):
    config.available_features.add("bptt-cuda")
    tools.append("bptt-gpu-run")
    config.substitutions.append(
        ("%mock_cuda", "env LD_LIBRARY_PATH=" +
         os.path.join(config.bptt_obj_root, "test", "mock-cuda")))
    config.substitutions.append(
        ("%bptt_lib", os.path.join(config.bptt_obj_root, "lib")))
llvm_config.add_tool_substitutions(tools, [config.bptt_tools_dir])

# The GPU pipeline needs no GPU up to PTX; cubins need CUDA's ptxas, found on
# PATH or in CUDA_ROOT/bin (default /usr/local/cuda). Running programs needs
# a GPU ('cuda').
import shutil

cuda_root = os.environ.get("CUDA_ROOT", "/usr/local/cuda")
ptxas = shutil.which("ptxas") or shutil.which(
    "ptxas", path=os.path.join(cuda_root, "bin"))
if ptxas:
    config.available_features.add("ptxas")
    llvm_config.with_environment("PATH", os.path.dirname(ptxas),
                                 append_path=True)
if os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/nvidia0"):
    config.available_features.add("cuda")
tools.append("bptt-compile")
llvm_config.add_tool_substitutions(["bptt-compile"], [config.bptt_tools_dir])

# The PyTorch oracle (benchmarks/gpu/check_pytorch.py) needs a Python with
# torch and numpy: $BPTT_TORCH_PYTHON, Debian's python3 or the checkout's
# .venv. Tests that use it say `REQUIRES: torch` and are skipped without one.
import subprocess

def _torch_python():
    candidates = [os.environ.get("BPTT_TORCH_PYTHON"), "/usr/bin/python3",
                  os.path.join(config.bptt_src_root, ".venv", "bin", "python")]
    for python in candidates:
        if not python or not os.path.exists(python):
            continue
        try:
            probe = subprocess.run([python, "-c", "import torch, numpy"],
                                   stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return python
    return None

_python_with_torch = _torch_python()
if _python_with_torch:
    config.available_features.add("torch")
    config.substitutions.append(("%torch_python", _python_with_torch))
