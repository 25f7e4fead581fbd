/* test-util.c: the small helpers of core/zlt-util.h: escaping what peers send before it
 * is logged, and bounding how often a line is logged */
#include "config.h"

#include <string.h>

#include "zlayer-tunnel.h"
#include "zlt-util.h"

/* the fields of the last structured log call */
static GHashTable *last_fields;
static GLogLevelFlags last_level;

static GLogWriterOutput
capture_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  g_hash_table_remove_all (last_fields);
  last_level = level;
  for (gsize i = 0; i < n_fields; i++)
    g_hash_table_insert (last_fields, g_strdup (fields[i].key),
                         fields[i].length < 0 ? g_strdup (fields[i].value)
                                              : g_strndup (fields[i].value, fields[i].length));
  return G_LOG_WRITER_HANDLED;
}

static void
assert_escaped (const char *in, gsize max_len, const char *want)
{
  g_autofree char *got = zlt_log_escape (in, max_len);

  g_assert_cmpstr (got, ==, want);
}

static void
test_log_escape (void)
{
  /* a forged line, an escape sequence, a tab: shown, never obeyed */
  assert_escaped ("web\nzlt-Message: forged", 200, "web\\x0azlt-Message: forged");
  assert_escaped ("\x1b[2Jwiped", 200, "\\x1b[2Jwiped");
  assert_escaped ("a\tb\r", 200, "a\\x09b\\x0d");
  assert_escaped ("back\\slash", 200, "back\\\\slash");
  /* printable text in any script stays readable (our own messages quote with “”) */
  assert_escaped ("service “ctl”", 200, "service “ctl”");
  assert_escaped ("名前 ñ", 200, "名前 ñ");
  /* not UTF-8, a C1 control, a bidi override: escaped byte by byte */
  assert_escaped ("bad\xff\xfe", 200, "bad\\xff\\xfe");
  assert_escaped ("c1\xc2\x85", 200, "c1\\xc2\\x85");
  assert_escaped ("evil\xe2\x80\xaetxt.exe", 200, "evil\\xe2\\x80\\xaetxt.exe");
  /* cut at the bound, also in the middle of a character */
  assert_escaped ("abcdef", 3, "abc…");
  assert_escaped ("ab“", 3, "ab\\xe2…");
  assert_escaped ("abc", 3, "abc");
  assert_escaped (NULL, 10, "(null)");
}

static void
test_log_limit (void)
{
  ZltLogLimit limit = ZLT_LOG_LIMIT_INIT (3, 3600);
  guint suppressed = 99;
  guint allowed = 0;

  for (guint i = 0; i < 10; i++)
    allowed += zlt_log_limit_allow (&limit, &suppressed);
  g_assert_cmpuint (allowed, ==, 3);
  /* the first lines of a window had nothing held back before them */
  g_assert_cmpuint (suppressed, ==, 0);
}

/* Events carry a fixed MESSAGE_ID and the fields given, for `journalctl MESSAGE_ID=…
 * TUNNEL_ID=…`; the journal writer receives them as they are. */
static void
test_log_event (void)
{
  g_autoptr (GHashTable) ids = g_hash_table_new (g_str_hash, g_str_equal);

  for (ZltLogEvent e = 0; e < ZLT_LOG_EVENT_N; e++)
    {
      const char *id = zlt_log_event_id (e);

      g_assert_cmpuint (strlen (id), ==, 32);
      for (const char *p = id; *p != '\0'; p++)
        g_assert_true (g_ascii_isxdigit (*p) && !g_ascii_isupper (*p));
      g_assert_true (g_hash_table_add (ids, (gpointer) id));
    }

  g_log_set_writer_func (capture_writer, NULL, NULL);
  zlt_log_event ("zlt", G_LOG_LEVEL_MESSAGE, ZLT_LOG_EVENT_TUNNEL_UP, "6f92", NULL, "[::1]:5",
                 "tunnel %s opened for %s", "6f92", "[::1]:5");
  g_assert_cmpint (last_level, ==, G_LOG_LEVEL_MESSAGE);
  g_assert_cmpstr (g_hash_table_lookup (last_fields, "MESSAGE"), ==,
                   "tunnel 6f92 opened for [::1]:5");
  g_assert_cmpstr (g_hash_table_lookup (last_fields, "MESSAGE_ID"), ==,
                   zlt_log_event_id (ZLT_LOG_EVENT_TUNNEL_UP));
  g_assert_cmpstr (g_hash_table_lookup (last_fields, "TUNNEL_ID"), ==, "6f92");
  g_assert_cmpstr (g_hash_table_lookup (last_fields, "PEER"), ==, "[::1]:5");
  g_assert_cmpstr (g_hash_table_lookup (last_fields, "GLIB_DOMAIN"), ==, "zlt");
  g_assert_false (g_hash_table_contains (last_fields, "SERVICE"));

  g_assert_false (g_hash_table_contains (last_fields, "ZLT_PRIORITY"));

  /* a run-time failure: a GLib message (not a GLib warning, which aborts under
   * fatal-warnings) that asks the journal for warning priority */
  zlt_log_event ("zlt", G_LOG_LEVEL_WARNING, ZLT_LOG_EVENT_SERVICE_REFUSED, NULL, "db", NULL,
                 "refused");
  g_assert_cmpint (last_level, ==, G_LOG_LEVEL_MESSAGE);
  g_assert_cmpstr (g_hash_table_lookup (last_fields, "ZLT_PRIORITY"), ==, "4");
  g_assert_cmpstr (g_hash_table_lookup (last_fields, "SERVICE"), ==, "db");
  g_assert_false (g_hash_table_contains (last_fields, "TUNNEL_ID"));
}

/* The priority the daemon's writer gives the journal: the event's own, else GLib's */
static void
test_log_priority (void)
{
  const GLogField failure[] = { { "MESSAGE", "x", -1 }, { "ZLT_PRIORITY", "4", -1 } };
  const GLogField plain[] = { { "MESSAGE", "x", -1 } };

  g_assert_cmpint (zlt_log_record_priority (G_LOG_LEVEL_MESSAGE, failure, 2), ==, 4);
  g_assert_cmpint (zlt_log_record_priority (G_LOG_LEVEL_MESSAGE, plain, 1), ==, 5);
  g_assert_cmpint (zlt_log_record_priority (G_LOG_LEVEL_WARNING, plain, 1), ==, 4);
  g_assert_cmpint (zlt_log_record_priority (G_LOG_LEVEL_CRITICAL, plain, 1), ==, 3);
  g_assert_cmpint (zlt_log_record_priority (G_LOG_LEVEL_INFO, plain, 1), ==, 6);
  g_assert_cmpint (zlt_log_record_priority (G_LOG_LEVEL_DEBUG, plain, 1), ==, 7);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  zlt_init ();
  last_fields = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_test_add_func ("/util/log-escape", test_log_escape);
  g_test_add_func ("/util/log-limit", test_log_limit);
  g_test_add_func ("/util/log-event", test_log_event);
  g_test_add_func ("/util/log-priority", test_log_priority);
  return g_test_run ();
}
