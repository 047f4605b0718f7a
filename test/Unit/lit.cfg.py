# -*- Python -*-
# Runs every GoogleTest binary under build/unittests as a lit suite.
import os

import lit.formats

config.name = "BPTT-Unit"
config.suffixes = []
config.test_source_root = config.unittests_dir
config.test_exec_root = config.unittests_dir
config.test_format = lit.formats.GoogleTest(".", "Tests")
