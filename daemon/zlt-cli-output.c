/* zlt-cli-output.c: how zlayer-tunnel prints: aligned tables, compact figures, JSON */
#include "config.h"

#include <glib/gi18n.h>

#include "zlt-cli-output.h"

char *
zlt_cli_prop_string (GDBusProxy *proxy, const char *name)
{
  g_autoptr (GVariant) value = g_dbus_proxy_get_cached_property (proxy, name);

  if (value != NULL
      && (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING)
          || g_variant_is_of_type (value, G_VARIANT_TYPE_OBJECT_PATH)))
    return g_variant_dup_string (value, NULL);
  return g_strdup ("");
}

gint64
zlt_cli_prop_int (GDBusProxy *proxy, const char *name)
{
  g_autoptr (GVariant) value = g_dbus_proxy_get_cached_property (proxy, name);

  if (value == NULL)
    return 0;
  switch (g_variant_classify (value))
    {
    case G_VARIANT_CLASS_BYTE:
      return g_variant_get_byte (value);
    case G_VARIANT_CLASS_UINT16:
      return g_variant_get_uint16 (value);
    case G_VARIANT_CLASS_INT16:
      return g_variant_get_int16 (value);
    case G_VARIANT_CLASS_UINT32:
      return g_variant_get_uint32 (value);
    case G_VARIANT_CLASS_INT32:
      return g_variant_get_int32 (value);
    case G_VARIANT_CLASS_UINT64:
      return (gint64) MIN (g_variant_get_uint64 (value), (guint64) G_MAXINT64);
    case G_VARIANT_CLASS_INT64:
      return g_variant_get_int64 (value);
    default:
      return 0;
    }
}

void
zlt_cli_json_add_properties (JsonBuilder *builder, GDBusProxy *proxy, const ZltCliJsonKey *keys,
                             gsize n_keys)
{
  json_builder_set_member_name (builder, "path");
  json_builder_add_string_value (builder, g_dbus_proxy_get_object_path (proxy));
  for (gsize i = 0; i < n_keys; i++)
    {
      g_autoptr (GVariant) value = g_dbus_proxy_get_cached_property (proxy, keys[i].property);

      json_builder_set_member_name (builder, keys[i].key);
      if (value == NULL)
        json_builder_add_null_value (builder);
      else if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING)
               || g_variant_is_of_type (value, G_VARIANT_TYPE_OBJECT_PATH))
        json_builder_add_string_value (builder, g_variant_get_string (value, NULL));
      else if (g_variant_is_of_type (value, G_VARIANT_TYPE_BOOLEAN))
        json_builder_add_boolean_value (builder, g_variant_get_boolean (value));
      else
        json_builder_add_int_value (builder, zlt_cli_prop_int (proxy, keys[i].property));
    }
}

void
zlt_cli_json_print (JsonBuilder *builder)
{
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (builder);
  g_autofree char *text = NULL;

  json_generator_set_pretty (generator, TRUE);
  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, NULL);
  g_print ("%s\n", text);
}

/* ---- human output: aligned tables ---- */

struct _ZltCliTable
{
  guint n_columns;
  guint32 right_aligned; /* bit i: column i is a number */
  GPtrArray *cells;      /* char*, row by row, the header first */
};

void
zlt_cli_table_free (ZltCliTable *table)
{
  g_ptr_array_unref (table->cells);
  g_free (table);
}

/* @headers: translated column titles, NULL-terminated; @right_aligned: bit i set for a
 * column of numbers */
ZltCliTable *
zlt_cli_table_new (const char *const *headers, guint32 right_aligned)
{
  ZltCliTable *table = g_new0 (ZltCliTable, 1);

  table->cells = g_ptr_array_new_with_free_func (g_free);
  table->right_aligned = right_aligned;
  for (; headers[table->n_columns] != NULL; table->n_columns++)
    g_ptr_array_add (table->cells, g_strdup (headers[table->n_columns]));
  return table;
}

/* takes @cell */
void
zlt_cli_table_add (ZltCliTable *table, char *cell)
{
  if (cell == NULL || cell[0] == '\0')
    {
      g_free (cell);
      cell = g_strdup ("-");
    }
  g_ptr_array_add (table->cells, cell);
}

void
zlt_cli_table_print (ZltCliTable *table)
{
  g_autofree glong *widths = g_new0 (glong, table->n_columns);
  guint n_cells = table->cells->len;

  for (guint i = 0; i < n_cells; i++)
    widths[i % table->n_columns] = MAX (widths[i % table->n_columns],
                                        g_utf8_strlen (g_ptr_array_index (table->cells, i), -1));
  for (guint i = 0; i < n_cells; i++)
    {
      guint column = i % table->n_columns;
      const char *cell = g_ptr_array_index (table->cells, i);
      glong pad = widths[column] - g_utf8_strlen (cell, -1);
      gboolean last = column == table->n_columns - 1;

      if (table->right_aligned & (1u << column))
        g_print ("%*s%s%s", (int) pad, "", cell, last ? "\n" : "  ");
      else if (last)
        g_print ("%s\n", cell);
      else
        g_print ("%s%*s  ", cell, (int) pad, "");
    }
}

char *
zlt_cli_format_bytes (gint64 bytes)
{
  return g_format_size ((guint64) MAX (bytes, 0));
}

/* a compact duration: 42s, 5m07s, 3h05m, 2d04h */
char *
zlt_cli_format_duration (gint64 seconds)
{
  if (seconds < 0)
    seconds = 0;
  /* TRANSLATORS: compact durations: seconds; minutes and seconds; hours and minutes; days
   * and hours */
  if (seconds < 60)
    return g_strdup_printf (_ ("%us"), (guint) seconds);
  if (seconds < 3600)
    return g_strdup_printf (_ ("%um%02us"), (guint) (seconds / 60), (guint) (seconds % 60));
  if (seconds < 86400)
    return g_strdup_printf (_ ("%uh%02um"), (guint) (seconds / 3600),
                            (guint) (seconds % 3600 / 60));
  return g_strdup_printf (_ ("%ud%02uh"), (guint) (seconds / 86400),
                          (guint) (seconds % 86400 / 3600));
}

char *
zlt_cli_format_since (gint64 unix_us)
{
  if (unix_us <= 0)
    return g_strdup ("-");
  return zlt_cli_format_duration ((g_get_real_time () - unix_us) / G_USEC_PER_SEC);
}

char *
zlt_cli_format_port (gint64 port)
{
  return port > 0 ? g_strdup_printf ("%u", (guint) port) : g_strdup ("-");
}
