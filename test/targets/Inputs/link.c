/* Links a Cortex-M static library built by serenity-mlir: QUERY is the
 * library's query function (NAME_linked_library_query, see NAME.h). The real
 * declaration needs IREE's runtime headers; opaque pointers suffice to link. */
extern const void **QUERY(unsigned max_version, const void *environment);

const void **volatile serenity_library;

void serenity_entry(void) {
  serenity_library = QUERY(0u, (const void *)0);
  for (;;) {
  }
}
