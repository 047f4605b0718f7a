# Thin project-prefixed helpers. Everything MLIR/LLVM is linked through the
# shared libMLIR.so / libLLVM.so that Debian ships: linking ~400 static MLIR
# archives would take minutes per tool, and mixing static and shared copies
# would register command-line options twice.

# bptt_add_library(name SOURCES... [DEPENDS tgt...] [LINK libs...]
#                  [MLIR | STANDALONE])
# STANDALONE: no LLVM/MLIR at all (code that runs on machines without LLVM,
# such as the GPU runtime's support code).
function(bptt_add_library name)
  cmake_parse_arguments(ARG "MLIR;STANDALONE" "" "DEPENDS;LINK" ${ARGN})
  add_library(${name} STATIC ${ARG_UNPARSED_ARGUMENTS})
  target_compile_options(${name} PRIVATE ${BPTT_WARNING_FLAGS})
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  if(ARG_DEPENDS)
    add_dependencies(${name} ${ARG_DEPENDS})
  endif()
  if(ARG_MLIR)
    target_link_libraries(${name} PUBLIC MLIR LLVM)
  elseif(NOT ARG_STANDALONE)
    target_link_libraries(${name} PUBLIC LLVM)
  endif()
  if(ARG_LINK)
    target_link_libraries(${name} PUBLIC ${ARG_LINK})
  endif()
endfunction()

# bptt_add_tool(name SOURCES... [LINK libs...])
function(bptt_add_tool name)
  cmake_parse_arguments(ARG "" "" "LINK" ${ARGN})
  add_executable(${name} ${ARG_UNPARSED_ARGUMENTS})
  target_compile_options(${name} PRIVATE ${BPTT_WARNING_FLAGS})
  set_target_properties(${name} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
  target_link_libraries(${name} PRIVATE ${ARG_LINK})
endfunction()

# bptt_add_unittest(name SOURCES... [LINK libs...])
# A GoogleTest binary in build/unittests/; test/Unit/lit.cfg.py runs every
# binary there whose name ends in "Tests".
function(bptt_add_unittest name)
  cmake_parse_arguments(ARG "" "" "LINK" ${ARGN})
  add_executable(${name} ${ARG_UNPARSED_ARGUMENTS})
  target_compile_options(${name} PRIVATE ${BPTT_WARNING_FLAGS})
  set_target_properties(${name} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/unittests)
  target_link_libraries(${name} PRIVATE GTest::gtest GTest::gtest_main
                        ${ARG_LINK})
  set_property(GLOBAL APPEND PROPERTY BPTT_UNITTESTS ${name})
endfunction()
