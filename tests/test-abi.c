/* test-abi.c: the plugin ABI is what ZLT_PLUGIN_ABI_VERSION says it is
 *
 * A plugin subclasses the SDK's classes, so the size of every class struct and the
 * offset of every vfunc are part of the ABI the loader checks with
 * ZLT_PLUGIN_ABI_VERSION (zlt-plugin-loader.h). The layouts of each ABI version are
 * recorded below (LP64); a change to a class struct, or to a struct plugins get from
 * the core, fails this test until ZLT_PLUGIN_ABI_VERSION is bumped and the new
 * version's layout recorded. Adding a vfunc in place of padding keeps the size but
 * moves no offset: record the new member in the table of the same version. */
#include "config.h"

#include "zlayer-tunnel.h"

typedef struct
{
  const char *type;
  const char *member; /* NULL: the size of @type */
  gsize actual;
  gsize recorded;
} AbiEntry;

#define SIZE(t, n)                                                                                 \
  {                                                                                                \
#t, NULL, sizeof(t), n                                                                         \
  }
#define OFFSET(t, m, n)                                                                            \
  {                                                                                                \
#t, #m, G_STRUCT_OFFSET(t, m), n                                                               \
  }

/* ABI 1 */
static const AbiEntry abi_1[] = {
  SIZE (ZltTransportClass, 240),
  OFFSET (ZltTransportClass, name, 136),
  OFFSET (ZltTransportClass, protocol, 144),
  OFFSET (ZltTransportClass, listen, 152),
  OFFSET (ZltTransportClass, dial_async, 160),
  OFFSET (ZltTransportClass, dial_finish, 168),
  SIZE (ZltListenerClass, 216),
  OFFSET (ZltListenerClass, incoming, 136),
  OFFSET (ZltListenerClass, close, 144),
  OFFSET (ZltListenerClass, set_idle_timeout, 152), /* in place of padding */
  SIZE (ZltControlTransportClass, 344),
  OFFSET (ZltControlTransportClass, listen_control, 240),
  OFFSET (ZltControlTransportClass, connect_control_async, 248),
  OFFSET (ZltControlTransportClass, connect_control_finish, 256),
  OFFSET (ZltControlTransportClass, open_data_async, 264),
  OFFSET (ZltControlTransportClass, open_data_finish, 272),
  OFFSET (ZltControlTransportClass, open_access_async, 280),
  OFFSET (ZltControlTransportClass, probe_access_async, 288),
  OFFSET (ZltControlTransportClass, probe_access_finish, 296),
  OFFSET (ZltControlTransportClass, open_standby_async, 304),
  SIZE (ZltControlListenerClass, 280),
  SIZE (ZltChannelClass, 224),
  OFFSET (ZltChannelClass, send, 136),
  OFFSET (ZltChannelClass, close, 144),
  OFFSET (ZltChannelClass, get_pending, 152),
  SIZE (ZltValidatorClass, 264),
  OFFSET (ZltValidatorClass, name, 136),
  OFFSET (ZltValidatorClass, insecure, 144),
  OFFSET (ZltValidatorClass, configure, 152),
  OFFSET (ZltValidatorClass, validate, 160),
  OFFSET (ZltValidatorClass, validate_async, 168),
  OFFSET (ZltValidatorClass, validate_finish, 176),
  OFFSET (ZltValidatorClass, add_token, 184),
  OFFSET (ZltValidatorClass, remove_token, 192),
  OFFSET (ZltValidatorClass, lookup_owner, 200),
  /* what plugins are handed */
  SIZE (ZltUuid, 16),
  SIZE (ZltTlsOptions, 24),
  OFFSET (ZltTlsOptions, ca_file, 0),
  OFFSET (ZltTlsOptions, pinned_sha256, 8),
  OFFSET (ZltTlsOptions, insecure, 16),
};

static const struct
{
  guint version;
  const AbiEntry *entries;
  gsize n_entries;
} abi_versions[] = {
  { 1, abi_1, G_N_ELEMENTS (abi_1) },
};

static void
test_abi_layout (void)
{
  const AbiEntry *entries = NULL;
  gsize n_entries = 0;
  GString *changes = g_string_new (NULL);

  if (GLIB_SIZEOF_VOID_P != 8 || GLIB_SIZEOF_LONG != 8)
    {
      g_test_skip ("the layouts are recorded for LP64");
      g_string_free (changes, TRUE);
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (abi_versions); i++)
    {
      if (abi_versions[i].version == ZLT_PLUGIN_ABI_VERSION)
        {
          entries = abi_versions[i].entries;
          n_entries = abi_versions[i].n_entries;
        }
    }
  if (entries == NULL)
    g_error ("ZLT_PLUGIN_ABI_VERSION %u has no recorded layout: add its table to %s",
             (guint) ZLT_PLUGIN_ABI_VERSION, __FILE__);
  for (gsize i = 0; i < n_entries; i++)
    {
      const AbiEntry *e = &entries[i];

      if (e->actual == e->recorded)
        continue;
      if (e->member == NULL)
        g_string_append_printf (changes,
                                "\n  sizeof (%s) is %" G_GSIZE_FORMAT ", was %" G_GSIZE_FORMAT,
                                e->type, e->actual, e->recorded);
      else
        g_string_append_printf (changes,
                                "\n  %s.%s is at %" G_GSIZE_FORMAT ", was at %" G_GSIZE_FORMAT,
                                e->type, e->member, e->actual, e->recorded);
    }
  if (changes->len > 0)
    g_error ("the plugin ABI changed without a new ZLT_PLUGIN_ABI_VERSION (now %u):%s\n"
             "bump ZLT_PLUGIN_ABI_VERSION in zlt-plugin-loader.h and record the new layout here",
             (guint) ZLT_PLUGIN_ABI_VERSION, changes->str);
  g_string_free (changes, TRUE);
}

/* the version plugins are stamped with is the one the loader wants */
static void
test_abi_plugin_stamp (void)
{
  g_autoptr (ZltPluginLoader) loader = zlt_plugin_loader_new (NULL);
  g_autoptr (GError) error = NULL;
  GHashTable *skipped;
  GHashTableIter iter;
  gpointer path, reason;

  g_assert_true (zlt_plugin_loader_load_all (loader, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (zlt_plugin_loader_get_loaded (loader)->len, >, 0);
  skipped = zlt_plugin_loader_get_skipped (loader);
  g_hash_table_iter_init (&iter, skipped);
  while (g_hash_table_iter_next (&iter, &path, &reason))
    g_error ("plugin %s skipped: %s", (const char *) path, (const char *) reason);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/abi/layout", test_abi_layout);
  g_test_add_func ("/abi/plugin-stamp", test_abi_plugin_stamp);
  return g_test_run ();
}
