/* test-util.c: the small helpers of core/zlt-util.h: escaping what peers send before it
 * is logged, and bounding how often a line is logged */
#include "config.h"

#include "zlayer-tunnel.h"
#include "zlt-util.h"

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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  zlt_init ();
  g_test_add_func ("/util/log-escape", test_log_escape);
  g_test_add_func ("/util/log-limit", test_log_limit);
  return g_test_run ();
}
