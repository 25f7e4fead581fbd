/* test-quota.c: each token's share of the server's pools */
#include "config.h"

#include <string.h>

#include "zlayer-tunnel.h"
#include "zlt-util.h"

static void
test_quota_limits (void)
{
  g_autoptr (ZltQuota) quota = zlt_quota_new ();
  g_autoptr (GError) error = NULL;

  zlt_quota_set_limit (quota, ZLT_QUOTA_TUNNELS, 2);
  g_assert_cmpuint (zlt_quota_get_limit (quota, ZLT_QUOTA_TUNNELS), ==, 2);
  g_assert_true (zlt_quota_acquire (quota, "alice", ZLT_QUOTA_TUNNELS, &error));
  g_assert_true (zlt_quota_acquire (quota, "alice", ZLT_QUOTA_TUNNELS, &error));
  g_assert_no_error (error);
  /* the third is over alice's share, with the config key named */
  g_assert_false (zlt_quota_acquire (quota, "alice", ZLT_QUOTA_TUNNELS, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_LIMIT);
  g_assert_nonnull (strstr (error->message, "token-max-tunnels"));
  g_assert_nonnull (strstr (error->message, "alice"));
  g_clear_error (&error);
  /* bob's share is his own */
  g_assert_true (zlt_quota_acquire (quota, "bob", ZLT_QUOTA_TUNNELS, NULL));
  g_assert_cmpuint (zlt_quota_get_usage (quota, "alice", ZLT_QUOTA_TUNNELS), ==, 2);
  g_assert_cmpuint (zlt_quota_get_usage (quota, "bob", ZLT_QUOTA_TUNNELS), ==, 1);
  /* kinds are apart, and one without a limit is counted but never refused */
  for (guint i = 0; i < 100; i++)
    g_assert_true (zlt_quota_acquire (quota, "alice", ZLT_QUOTA_CONNECTIONS, NULL));
  g_assert_cmpuint (zlt_quota_get_usage (quota, "alice", ZLT_QUOTA_CONNECTIONS), ==, 100);

  /* a release makes room again */
  zlt_quota_release (quota, "alice", ZLT_QUOTA_TUNNELS);
  g_assert_true (zlt_quota_acquire (quota, "alice", ZLT_QUOTA_TUNNELS, NULL));

  /* no principal: neither limited nor counted */
  for (guint i = 0; i < 5; i++)
    g_assert_true (zlt_quota_acquire (quota, NULL, ZLT_QUOTA_TUNNELS, NULL));
  zlt_quota_release (quota, NULL, ZLT_QUOTA_TUNNELS);
  g_assert_cmpuint (zlt_quota_get_n_principals (quota), ==, 2);
}

/* Settled accounts leave no trace: the table holds only who holds something. */
static void
test_quota_settles (void)
{
  g_autoptr (ZltQuota) quota = zlt_quota_new ();

  for (guint i = 0; i < 1000; i++)
    {
      g_autofree char *who = g_strdup_printf ("token-%u", i);

      g_assert_true (zlt_quota_acquire (quota, who, ZLT_QUOTA_PENDING, NULL));
      g_assert_true (zlt_quota_acquire (quota, who, ZLT_QUOTA_SERVICES, NULL));
      zlt_quota_release (quota, who, ZLT_QUOTA_PENDING);
      zlt_quota_release (quota, who, ZLT_QUOTA_SERVICES);
    }
  g_assert_cmpuint (zlt_quota_get_n_principals (quota), ==, 0);
  g_assert_cmpuint (zlt_quota_get_usage (quota, "token-1", ZLT_QUOTA_PENDING), ==, 0);

  /* releasing what was never taken is the caller's bug, and says so */
  g_test_expect_message ("zlt", G_LOG_LEVEL_CRITICAL, "*usage != NULL*");
  zlt_quota_release (quota, "nobody", ZLT_QUOTA_PENDING);
  g_test_assert_expected_messages ();
}

/* The log bound the server uses for failed logins: so many per window, then quiet,
 * then the next line says how many were left out. */
static void
test_log_limit (void)
{
  ZltLogLimit limit = ZLT_LOG_LIMIT_INIT (3, 1);
  guint suppressed = 99;
  gint64 deadline;
  guint n = 0;

  for (guint i = 0; i < 10; i++)
    if (zlt_log_limit_allow (&limit, &suppressed))
      n++;
  g_assert_cmpuint (n, ==, 3);
  g_assert_cmpuint (suppressed, ==, 0);
  /* the window is wall-clock time: nothing to wait on but the clock */
  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (!zlt_log_limit_allow (&limit, &suppressed) && g_get_monotonic_time () < deadline)
    g_usleep (50 * 1000);
  g_assert_cmpuint (suppressed, >=, 7);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/quota/limits", test_quota_limits);
  g_test_add_func ("/quota/settles", test_quota_settles);
  g_test_add_func ("/quota/log-limit", test_log_limit);
  return g_test_run ();
}
