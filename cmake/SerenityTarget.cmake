# Helpers for CMakeLists.txt: compile a model for a serenity-mlir target, and
# (for Cortex-M static libraries) link it into a tiny bare-metal program to
# prove that the library's query symbol resolves.

# serenity_target_info(<target> <prefix>)
# Reads the target file through the package (so it is validated exactly as
# the compiler reads it) and sets <prefix>_NAME, _OUTPUT, _TRIPLE, _CPU,
# _FLOAT_ABI, _SOURCE in the caller's scope.
function(serenity_target_info target prefix)
  execute_process(
    COMMAND "${Python3_EXECUTABLE}" -c
      "import sys\nfrom serenity_mlir.errors import SerenityError\nfrom serenity_mlir.targets import get_target\ntry:\n    t = get_target(sys.argv[1])\nexcept SerenityError as e:\n    sys.exit(f'error: {e}')\nprint(';'.join([t.name, t.output, t.triple, t.cpu, t.float_abi, t.source]))"
      "${target}"
    WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}"
    OUTPUT_VARIABLE info
    ERROR_VARIABLE err
    RESULT_VARIABLE rc
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "SERENITY_TARGET=${target}: ${err}")
  endif()
  list(GET info 0 name)
  list(GET info 1 output)
  list(GET info 2 triple)
  list(GET info 3 cpu)
  list(GET info 4 float_abi)
  list(GET info 5 source)
  set(${prefix}_NAME "${name}" PARENT_SCOPE)
  set(${prefix}_OUTPUT "${output}" PARENT_SCOPE)
  set(${prefix}_TRIPLE "${triple}" PARENT_SCOPE)
  set(${prefix}_CPU "${cpu}" PARENT_SCOPE)
  set(${prefix}_FLOAT_ABI "${float_abi}" PARENT_SCOPE)
  set(${prefix}_SOURCE "${source}" PARENT_SCOPE)
endfunction()

# serenity_add_model(<name> <model file> <out dir> <outputs var>)
# One custom command: `python -m serenity_mlir.tools.deploy build` writes
# <out dir>/<name>.{vmfb|c} (+ .o, .h for static libraries) and <name>.json,
# rebuilt when the model, a Python source of the package or a target file
# changes.
function(serenity_add_model name model outdir outputs_var)
  if(SERENITY_TGT_OUTPUT STREQUAL "vm-c")
    set(main "${outdir}/${name}.c")
  else()
    set(main "${outdir}/${name}.vmfb")
  endif()
  set(outs "${main}" "${outdir}/${name}.json")
  if(NOT SERENITY_TGT_OUTPUT STREQUAL "vmfb")
    list(APPEND outs "${outdir}/${name}.o" "${outdir}/${name}.h")
  endif()
  set(budget_args)
  if(SERENITY_MEMORY_BUDGET)
    set(budget_args --memory-budget "${SERENITY_MEMORY_BUDGET}")
  endif()
  add_custom_command(
    OUTPUT ${outs}
    COMMAND "${Python3_EXECUTABLE}" -m serenity_mlir.tools.deploy build "${model}"
            -o "${outdir}/${name}.vmfb" --target "${SERENITY_TARGET}"
            --scheduler "${SERENITY_SCHEDULER}" --report "${outdir}/${name}.json" --quiet
            ${budget_args}
    DEPENDS "${model}" ${SERENITY_PACKAGE_FILES}
    WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}"
    COMMENT "serenity-mlir: ${name} for ${SERENITY_TGT_NAME} (${SERENITY_TGT_OUTPUT})"
    VERBATIM)
  set(${outputs_var} ${outs} PARENT_SCOPE)
endfunction()

# serenity_add_link_check(<name> <out dir> <outputs var>)
# Links <name>.o with a minimal C entry point that calls
# <name>_linked_library_query, using arm-none-eabi-gcc without any C library
# but libgcc (the object may call compiler builtins such as __floatdisf):
# an unresolved or mis-named symbol, or an
# object built for an incompatible float ABI, fails the build.
function(serenity_add_link_check name outdir outputs_var)
  set(src "${outdir}/${name}_link.c")
  set(SERENITY_QUERY "${name}_linked_library_query")
  configure_file("${CMAKE_SOURCE_DIR}/cmake/link_check.c.in" "${src}" @ONLY)
  set(flags -mcpu=${SERENITY_TGT_CPU} -mthumb)
  if(SERENITY_TGT_FLOAT_ABI STREQUAL "hard")
    list(APPEND flags -mfloat-abi=hard -mfpu=auto)
  endif()
  add_custom_command(
    OUTPUT "${outdir}/${name}_link.elf"
    COMMAND "${ARM_NONE_EABI_GCC}" ${flags} -O1 -nostdlib -Wl,-e,serenity_entry
            -Wl,--no-warn-rwx-segments -Wl,--no-warn-execstack "${src}" "${outdir}/${name}.o" -lgcc -o "${outdir}/${name}_link.elf"
    DEPENDS "${src}" "${outdir}/${name}.o"
    COMMENT "arm-none-eabi-gcc: linking ${name}.o (${SERENITY_QUERY})"
    VERBATIM)
  set(${outputs_var} "${outdir}/${name}_link.elf" PARENT_SCOPE)
endfunction()
