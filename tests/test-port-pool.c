/* test-port-pool.c: public port ranges, allocation and release */
#include "config.h"

#include <string.h>

#include "zlayer-tunnel.h"

static void
test_port_pool_default (void)
{
  g_autoptr (ZltPortPool) pool = zlt_port_pool_new ();
  g_autofree char *str = zlt_port_pool_to_string (pool);

  g_assert_cmpstr (str, ==, ZLT_PORT_POOL_DEFAULT_RANGES);
  g_assert_cmpuint (zlt_port_pool_get_n_total (pool), ==, 1001);
  g_assert_cmpuint (zlt_port_pool_get_n_free (pool), ==, 1001);
  g_assert_true (zlt_port_pool_contains (pool, 30000));
  g_assert_true (zlt_port_pool_contains (pool, 31000));
  g_assert_false (zlt_port_pool_contains (pool, 29999));
  g_assert_false (zlt_port_pool_contains (pool, 31001));
}

static void
test_port_pool_parse (void)
{
  g_autoptr (ZltPortPool) pool = NULL;
  g_autoptr (ZltPortPool) merged = NULL;
  g_autofree char *str = NULL;
  g_autofree char *ranges = NULL;
  g_autofree char *merged_str = NULL;

  pool = zlt_port_pool_new_from_string (" 30000-31000, 40000 ,41000-41010", NULL);
  g_assert_nonnull (pool);
  g_assert_cmpuint (zlt_port_pool_get_n_total (pool), ==, 1001 + 1 + 11);
  str = zlt_port_pool_to_string (pool);
  g_assert_cmpstr (str, ==, "30000-31000,40000,41000-41010");
  g_object_get (pool, "ranges", &ranges, NULL);
  g_assert_cmpstr (ranges, ==, str);
  g_assert_true (zlt_port_pool_contains (pool, 40000));
  g_assert_false (zlt_port_pool_contains (pool, 39999));
  g_assert_false (zlt_port_pool_contains (pool, 40001));
  g_assert_true (zlt_port_pool_contains (pool, 41010));

  /* overlapping and adjacent ranges merge, unordered input is fine */
  merged = zlt_port_pool_new_from_string ("20-30,10-25,31,5", NULL);
  g_assert_nonnull (merged);
  g_assert_cmpuint (zlt_port_pool_get_n_total (merged), ==, 1 + 22);
  merged_str = zlt_port_pool_to_string (merged);
  g_assert_cmpstr (merged_str, ==, "5,10-31");
}

static void
test_port_pool_parse_errors (void)
{
  static const char *bad[] = {
    "",
    " ",
    "abc",
    "30000-",
    "-30000",
    "0",
    "0-10",
    "65536",
    "30000-70000",
    "31000-30000",
    "30000,,40000",
    "30000,",
    "30000-31000-32000",
    "30000 31000",
    "1e3",
    "+80",
    "-1",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (ZltPortPool) pool = zlt_port_pool_new_from_string (bad[i], &error);

      g_test_message ("ranges “%s”", bad[i]);
      g_assert_null (pool);
      g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
    }
}

static void
test_port_pool_lowest_first (void)
{
  g_autoptr (ZltPortPool) pool = zlt_port_pool_new_from_string ("40000,30000-30002", NULL);

  g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, NULL), ==, 30000);
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, NULL), ==, 30001);
  g_assert_true (zlt_port_pool_is_allocated (pool, 30000));
  g_assert_true (zlt_port_pool_is_allocated (pool, 30001));
  g_assert_false (zlt_port_pool_is_allocated (pool, 30002));

  /* a released port below the others comes first again */
  g_assert_true (zlt_port_pool_release (pool, 30000));
  g_assert_false (zlt_port_pool_is_allocated (pool, 30000));
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, NULL), ==, 30000);
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, NULL), ==, 30002);
  /* then the next range */
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, NULL), ==, 40000);
  g_assert_cmpuint (zlt_port_pool_get_n_free (pool), ==, 0);
}

static void
test_port_pool_exhaustion (void)
{
  g_autoptr (ZltPortPool) pool = zlt_port_pool_new_range (5000, 5002);
  g_autoptr (GError) error = NULL;

  for (guint16 p = 5000; p <= 5002; p++)
    g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, NULL), ==, p);
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, &error), ==, 0);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PORTS_EXHAUSTED);
  g_clear_error (&error);

  g_assert_true (zlt_port_pool_release (pool, 5001));
  g_assert_false (zlt_port_pool_release (pool, 5001)); /* not twice */
  g_assert_false (zlt_port_pool_release (pool, 6000)); /* not ours */
  g_assert_cmpuint (zlt_port_pool_get_n_free (pool), ==, 1);
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, &error), ==, 5001);
  g_assert_no_error (error);
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, &error), ==, 0);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PORTS_EXHAUSTED);
}

static void
test_port_pool_requested (void)
{
  g_autoptr (ZltPortPool) pool = zlt_port_pool_new_from_string ("30000-30010,40000", NULL);
  g_autoptr (GError) error = NULL;

  g_assert_cmpuint (zlt_port_pool_allocate (pool, 30005, &error), ==, 30005);
  g_assert_no_error (error);
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 40000, &error), ==, 40000);
  g_assert_no_error (error);

  g_assert_cmpuint (zlt_port_pool_allocate (pool, 30005, &error), ==, 0);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PORT_IN_USE);
  g_clear_error (&error);

  /* in the span between the ranges, but not in the pool */
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 35000, &error), ==, 0);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PORT_OUT_OF_RANGE);
  g_clear_error (&error);
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 80, &error), ==, 0);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PORT_OUT_OF_RANGE);
  g_clear_error (&error);
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 65535, &error), ==, 0);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PORT_OUT_OF_RANGE);
  g_clear_error (&error);

  /* "any" skips the port taken on request */
  for (guint16 p = 30000; p <= 30004; p++)
    g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, NULL), ==, p);
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, NULL), ==, 30006);
  g_assert_cmpuint (zlt_port_pool_get_n_free (pool), ==, 4);

  g_assert_true (zlt_port_pool_release (pool, 30005));
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 30005, &error), ==, 30005);
  g_assert_no_error (error);
}

static void
test_port_pool_unusable (void)
{
  g_autoptr (ZltPortPool) pool = zlt_port_pool_new_range (7000, 7003);
  g_autoptr (GError) error = NULL;
  guint16 port;

  /* the OS refused the port we were given: mark it and take the next */
  port = zlt_port_pool_allocate (pool, 0, NULL);
  g_assert_cmpuint (port, ==, 7000);
  zlt_port_pool_mark_unusable (pool, port);
  g_assert_false (zlt_port_pool_is_allocated (pool, 7000));
  g_assert_true (zlt_port_pool_is_unusable (pool, 7000));
  g_assert_cmpuint (zlt_port_pool_get_n_free (pool), ==, 3);
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, NULL), ==, 7001);

  /* a free port can be marked too; marking twice changes nothing */
  zlt_port_pool_mark_unusable (pool, 7002);
  zlt_port_pool_mark_unusable (pool, 7002);
  zlt_port_pool_mark_unusable (pool, 9999); /* outside: ignored */
  g_assert_cmpuint (zlt_port_pool_get_n_free (pool), ==, 1);
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, NULL), ==, 7003);
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, &error), ==, 0);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PORTS_EXHAUSTED);
  g_clear_error (&error);
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 7002, &error), ==, 0);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PORT_IN_USE);
  g_clear_error (&error);
  g_assert_false (zlt_port_pool_release (pool, 7002));

  g_assert_cmpuint (zlt_port_pool_clear_unusable (pool), ==, 2);
  g_assert_cmpuint (zlt_port_pool_get_n_free (pool), ==, 2);
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, NULL), ==, 7000);
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, NULL), ==, 7002);
}

static void
count_notify (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  (*(guint *) user_data)++;
}

static void
test_port_pool_notify (void)
{
  g_autoptr (ZltPortPool) pool = zlt_port_pool_new_range (100, 101);
  guint n_free_notified = 0;
  guint n_free = 0;

  g_signal_connect (pool, "notify::n-free", G_CALLBACK (count_notify), &n_free_notified);
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, NULL), ==, 100);
  g_assert_cmpuint (n_free_notified, ==, 1);
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 100, NULL), ==, 0); /* in use: no change */
  g_assert_cmpuint (n_free_notified, ==, 1);
  g_assert_false (zlt_port_pool_release (pool, 101)); /* not allocated: no change */
  g_assert_cmpuint (n_free_notified, ==, 1);
  g_assert_cmpuint (zlt_port_pool_clear_unusable (pool), ==, 0);
  g_assert_cmpuint (n_free_notified, ==, 1);
  g_assert_true (zlt_port_pool_release (pool, 100));
  g_assert_cmpuint (n_free_notified, ==, 2);
  g_object_get (pool, "n-free", &n_free, NULL);
  g_assert_cmpuint (n_free, ==, 2);
}

static void
test_port_pool_large (void)
{
  g_autoptr (ZltPortPool) pool = zlt_port_pool_new_range (1, 65535);
  g_autoptr (GError) error = NULL;

  /* all of them, in order, then release every other one and get them back in order */
  for (guint p = 1; p <= 65535; p++)
    g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, NULL), ==, p);
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, &error), ==, 0);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PORTS_EXHAUSTED);
  for (guint p = 2; p <= 65535; p += 2)
    g_assert_true (zlt_port_pool_release (pool, (guint16) p));
  g_assert_cmpuint (zlt_port_pool_get_n_free (pool), ==, 32767);
  for (guint p = 2; p <= 65535; p += 2)
    g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, NULL), ==, p);
  g_assert_cmpuint (zlt_port_pool_get_n_free (pool), ==, 0);
}

/* A released port is kept for its previous holder for a while: nobody else gets it,
 * neither by asking for it nor as "any port", until the hold ends. */
static void
test_port_pool_hold (void)
{
  g_autoptr (ZltPortPool) pool = zlt_port_pool_new_range (30000, 30002);
  g_autoptr (GError) error = NULL;
  gint64 deadline;

  g_assert_cmpuint (zlt_port_pool_allocate_for (pool, 0, "alice", NULL), ==, 30000);
  g_assert_cmpuint (zlt_port_pool_allocate_for (pool, 0, "alice", NULL), ==, 30001);
  g_assert_true (zlt_port_pool_release_for (pool, 30000, "alice", 60 * 1000));
  g_assert_cmpstr (zlt_port_pool_get_holder (pool, 30000), ==, "alice");
  /* held ports count as free: they come back */
  g_assert_cmpuint (zlt_port_pool_get_n_free (pool), ==, 2);

  /* bob asks for it: refused, with why */
  g_assert_cmpuint (zlt_port_pool_allocate_for (pool, 30000, "bob", &error), ==, 0);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PORT_IN_USE);
  g_assert_nonnull (strstr (error->message, "kept for its previous holder"));
  g_clear_error (&error);
  /* nor is it anyone's "any port", not even with no owner */
  g_assert_cmpuint (zlt_port_pool_allocate_for (pool, 0, "bob", NULL), ==, 30002);
  g_assert_cmpuint (zlt_port_pool_allocate_for (pool, 0, "bob", &error), ==, 0);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PORTS_EXHAUSTED);
  g_assert_nonnull (strstr (error->message, "kept for their previous holders"));
  g_clear_error (&error);
  g_assert_cmpuint (zlt_port_pool_allocate (pool, 0, &error), ==, 0);
  g_clear_error (&error);

  /* alice gets it back, asked for or not */
  g_assert_cmpuint (zlt_port_pool_allocate_for (pool, 0, "alice", NULL), ==, 30000);
  g_assert_null (zlt_port_pool_get_holder (pool, 30000));
  g_assert_true (zlt_port_pool_release_for (pool, 30000, "alice", 60 * 1000));
  g_assert_cmpuint (zlt_port_pool_allocate_for (pool, 30000, "alice", NULL), ==, 30000);

  /* a short hold ends by itself, and then the port is anyone's */
  g_assert_true (zlt_port_pool_release_for (pool, 30000, "alice", 20));
  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (zlt_port_pool_get_holder (pool, 30000) != NULL && g_get_monotonic_time () < deadline)
    g_usleep (5000); /* the hold is wall-clock time; nothing to wait on but the clock */
  g_assert_null (zlt_port_pool_get_holder (pool, 30000));
  g_assert_cmpuint (zlt_port_pool_allocate_for (pool, 30000, "bob", NULL), ==, 30000);

  /* a release without an owner keeps nothing */
  g_assert_true (zlt_port_pool_release (pool, 30000));
  g_assert_null (zlt_port_pool_get_holder (pool, 30000));
  g_assert_cmpuint (zlt_port_pool_allocate_for (pool, 0, "carol", NULL), ==, 30000);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/port-pool/default", test_port_pool_default);
  g_test_add_func ("/port-pool/parse", test_port_pool_parse);
  g_test_add_func ("/port-pool/parse-errors", test_port_pool_parse_errors);
  g_test_add_func ("/port-pool/lowest-first", test_port_pool_lowest_first);
  g_test_add_func ("/port-pool/exhaustion", test_port_pool_exhaustion);
  g_test_add_func ("/port-pool/requested", test_port_pool_requested);
  g_test_add_func ("/port-pool/unusable", test_port_pool_unusable);
  g_test_add_func ("/port-pool/notify", test_port_pool_notify);
  g_test_add_func ("/port-pool/large", test_port_pool_large);
  g_test_add_func ("/port-pool/hold", test_port_pool_hold);
  return g_test_run ();
}
