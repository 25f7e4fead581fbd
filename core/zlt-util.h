/* zlt-util.h: small helpers GLib 2.74 lacks */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* The keys of @table (GObjects), each with a reference held, so the caller can act on
 * them while handlers remove entries (g_hash_table_get_keys_as_ptr_array is 2.76). */
GPtrArray *zlt_hash_table_ref_keys (GHashTable *table);

/* "90", "90s", "30m", "2h", "1d", "1h30m": whole seconds (at most G_MAXUINT). */
gboolean zlt_parse_duration (const char *text, guint *seconds, GError **error);

/* A string a peer sent, made safe for a log line: control characters, backslashes and
 * non-ASCII bytes escaped (so a newline cannot forge a line, nor an escape sequence
 * repaint a terminal), cut at @max_len bytes of input with "…" appended. */
char *zlt_log_escape (const char *text, gsize max_len);

G_END_DECLS
