# -*- Python -*-
import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "BPTT"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test", ".py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.bptt_obj_root, "test")
# Unit/ is its own suite (GoogleTest format); lit.site.cfg.py.in files are not tests.
config.excludes = ["Unit", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py.in"]

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
llvm_config.add_tool_substitutions(tools, [config.bptt_tools_dir])

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
