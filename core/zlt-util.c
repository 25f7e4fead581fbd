/* zlt-util.c */
#include "config.h"

#include "zlt-util.h"

GPtrArray *
zlt_hash_table_ref_keys (GHashTable *table)
{
  GPtrArray *keys = g_ptr_array_new_full (g_hash_table_size (table), g_object_unref);
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (keys, g_object_ref (key));
  return keys;
}
