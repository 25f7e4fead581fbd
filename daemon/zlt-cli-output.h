/* zlt-cli-output.h: how zlayer-tunnel prints: aligned tables, compact figures, JSON */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* A D-Bus property, whatever its integer or string type ("" or 0 when absent). */
char *zlt_cli_prop_string (GDBusProxy *proxy, const char *name);
gint64 zlt_cli_prop_int (GDBusProxy *proxy, const char *name);

/* JSON output: each D-Bus property under a stable key. */
typedef struct
{
  const char *property;
  const char *key;
} ZltCliJsonKey;

void zlt_cli_json_add_properties (JsonBuilder *builder, GDBusProxy *proxy,
                                  const ZltCliJsonKey *keys, gsize n_keys);
void zlt_cli_json_print (JsonBuilder *builder);

/* Human output: a table with aligned columns ("-" for an empty cell). */
typedef struct _ZltCliTable ZltCliTable;

ZltCliTable *zlt_cli_table_new (const char *const *headers, guint32 right_aligned);
void zlt_cli_table_add (ZltCliTable *table, char *cell);
void zlt_cli_table_print (ZltCliTable *table);
void zlt_cli_table_free (ZltCliTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ZltCliTable, zlt_cli_table_free)

char *zlt_cli_format_bytes (gint64 bytes);
/* a compact duration: 42s, 5m07s, 3h05m, 2d04h */
char *zlt_cli_format_duration (gint64 seconds);
/* the time since @unix_us, compact; "-" for none */
char *zlt_cli_format_since (gint64 unix_us);
/* "-" for port 0 */
char *zlt_cli_format_port (gint64 port);

G_END_DECLS
