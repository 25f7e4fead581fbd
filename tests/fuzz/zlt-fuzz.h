/* zlt-fuzz.h: what the fuzz targets share. Each target defines the two libFuzzer entry
 * points; fuzz-replay.c gives them a main() when libFuzzer is not linked. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "zlayer-tunnel.h"

G_BEGIN_DECLS

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* A broken invariant: says which and aborts (SIGABRT, which libFuzzer catches and turns
 * into a crash artifact; GLib's own fatal paths raise SIGTRAP, which it does not). */
#define ZLT_FUZZ_CHECK(cond, ...)                                                                  \
  G_STMT_START                                                                                     \
  {                                                                                                \
    if (G_UNLIKELY (!(cond)))                                                                      \
      zlt_fuzz_fail (G_STRLOC, #cond, __VA_ARGS__);                                                \
  }                                                                                                \
  G_STMT_END

G_NORETURN void zlt_fuzz_fail (const char *where, const char *cond, const char *format, ...)
    G_GNUC_PRINTF (3, 4);

/* Drops debug, info and message logs (ZLT_FUZZ_VERBOSE=1 keeps them) and turns every
 * warning and critical into an abort: a g_return_if_fail() that fires is a finding. */
void zlt_fuzz_setup_logging (void);

/* Field by field; NULL strings equal empty ones (they encode alike). */
gboolean zlt_fuzz_message_equal (const ZltMessage *a, const ZltMessage *b);

/* The codec's property for a frame that decoded from @wire_len bytes: it encodes, to at
 * most @wire_len bytes (unknown and unused extension entries are dropped, nothing is
 * added), the encoding decodes to an equal message, and encoding that again gives the
 * same bytes. */
void zlt_fuzz_check_roundtrip (const ZltMessage *msg, gsize wire_len);

/* Spins the thread-default context without blocking until nothing is ready to
 * dispatch (at most @max_iterations dispatches). */
void zlt_fuzz_settle (guint max_iterations);

G_END_DECLS
