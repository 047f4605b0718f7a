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
