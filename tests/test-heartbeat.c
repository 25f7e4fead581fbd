/* test-heartbeat.c: ZltHeartbeat (sending, dead-peer detection, latency) and ZltBackoff
 * (growth, cap, jitter, reset) */
#include "config.h"

#include "zlayer-tunnel.h"
#include "zlt-backoff.h"   /* private */
#include "zlt-heartbeat.h" /* private */

/* Spins the default main context until @expr holds, failing after @timeout_ms. */
#define WAIT_FOR(expr, timeout_ms)                                                                 \
  G_STMT_START                                                                                     \
  {                                                                                                \
    gint64 _deadline = g_get_monotonic_time () + (gint64) (timeout_ms) *1000;                      \
    while (!(expr) && g_get_monotonic_time () < _deadline)                                         \
      g_main_context_iteration (NULL, TRUE);                                                       \
    if (!(expr))                                                                                   \
      g_error ("timed out after %u ms waiting for: %s", (guint) (timeout_ms), #expr);              \
  }                                                                                                \
  G_STMT_END

typedef struct
{
  guint n_sends;
  guint n_timeouts;
  guint64 last_timestamp;
  gint64 first_send; /* monotonic µs */
  gint64 last_send;  /* monotonic µs */
  gint64 timed_out;  /* monotonic µs */
  gboolean feed;     /* call zlt_heartbeat_received() on every send */
  gboolean stop_on_send;
  gboolean unref_on_timeout;
} Counts;

static void
on_send (ZltHeartbeat *heartbeat, guint64 timestamp, gpointer user_data)
{
  Counts *c = user_data;
  gint64 now = g_get_monotonic_time ();

  if (c->n_sends == 0)
    c->first_send = now;
  c->last_send = now;
  c->n_sends++;
  /* Unix ms of now, and never going backwards by more than a clock step */
  g_assert_cmpuint (timestamp, >, (guint64) 1600000000000);
  g_assert_cmpuint (timestamp + 1000, >=, c->last_timestamp);
  c->last_timestamp = timestamp;
  if (c->feed)
    zlt_heartbeat_received (heartbeat);
  if (c->stop_on_send)
    zlt_heartbeat_stop (heartbeat);
}

static void
on_timeout (ZltHeartbeat *heartbeat, gpointer user_data)
{
  Counts *c = user_data;

  c->n_timeouts++;
  c->timed_out = g_get_monotonic_time ();
  if (c->unref_on_timeout)
    g_object_unref (heartbeat);
}

static ZltHeartbeat *
make_heartbeat (guint interval_ms, guint timeout_ms, Counts *c)
{
  ZltHeartbeat *hb = zlt_heartbeat_new (interval_ms, timeout_ms);

  g_signal_connect (hb, "send", G_CALLBACK (on_send), c);
  g_signal_connect (hb, "timeout", G_CALLBACK (on_timeout), c);
  return hb;
}

static gboolean
set_flag (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Lets @ms pass on the main context: for checking that something does NOT happen. */
static void
run_for (guint ms)
{
  gboolean done = FALSE;

  g_timeout_add (ms, set_flag, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
}

static void
test_sends_at_interval (void)
{
  Counts c = { 0 };
  g_autoptr (ZltHeartbeat) hb = make_heartbeat (20, 60 * 1000, &c);
  gint64 started;

  g_assert_cmpuint (zlt_heartbeat_get_interval_ms (hb), ==, 20);
  g_assert_cmpuint (zlt_heartbeat_get_timeout_ms (hb), ==, 60 * 1000);
  started = g_get_monotonic_time ();
  zlt_heartbeat_start (hb);
  WAIT_FOR (c.n_sends >= 10, 10000);
  g_test_message ("10 sends at 20 ms: first after %.1f ms, mean interval %.1f ms",
                  (c.first_send - started) / 1000.0, (c.last_send - started) / 1000.0 / c.n_sends);
  g_assert_cmpuint (c.n_timeouts, ==, 0);

  /* sends never come early: the count over a window is bounded by window / interval */
  {
    guint before = c.n_sends;
    gint64 t0 = g_get_monotonic_time ();
    run_for (200);
    g_test_message ("%u sends in %.0f ms", c.n_sends - before,
                    (g_get_monotonic_time () - t0) / 1000.0);
    g_assert_cmpuint (c.n_sends - before, <=, (g_get_monotonic_time () - t0) / 1000 / 20 + 1);
  }
  zlt_heartbeat_stop (hb);
}

static void
test_timeout_when_silent (void)
{
  Counts c = { 0 };
  g_autoptr (ZltHeartbeat) hb = make_heartbeat (50, 200, &c);
  gint64 started = g_get_monotonic_time ();
  guint sends;

  zlt_heartbeat_start (hb);
  WAIT_FOR (c.n_timeouts > 0, 10000);
  /* the deadline is checked against the clock, so it never fires early */
  g_assert_cmpint (c.timed_out - started, >=, 200 * 1000);
  g_test_message ("timeout after %.1f ms (timeout 200 ms)", (c.timed_out - started) / 1000.0);
  g_assert_cmpuint (c.n_timeouts, ==, 1);

  /* the heartbeat stopped itself: no more sends, no second timeout */
  sends = c.n_sends;
  run_for (300);
  g_assert_cmpuint (c.n_sends, ==, sends);
  g_assert_cmpuint (c.n_timeouts, ==, 1);
}

static void
on_stalled (ZltHeartbeat *heartbeat, guint64 away_us, gpointer user_data)
{
  guint64 *stalled_us = user_data;

  *stalled_us = away_us;
}

/* A process that did not run (SIGSTOP, a debugger, a machine asleep) finds its deadline
 * overdue; the peer's frames may be sitting unread in the socket. The heartbeat says
 * how long we were away and gives the peer a full timeout from the moment we are back,
 * rather than blaming it at once. */
static void
test_stalled_is_not_the_peers_fault (void)
{
  Counts c = { 0 };
  g_autoptr (ZltHeartbeat) hb = make_heartbeat (50, 200, &c);
  guint64 stalled_us = 0;
  gint64 back;

  g_signal_connect (hb, "stalled", G_CALLBACK (on_stalled), &stalled_us);
  zlt_heartbeat_start (hb);
  WAIT_FOR (c.n_sends >= 1, 10000);
  /* not a wait for anything: this is the stall itself, the main loop not running */
  g_usleep (1000 * 1000);
  back = g_get_monotonic_time ();
  WAIT_FOR (c.n_timeouts == 1, 10000);
  g_test_message ("away %.0f ms; timeout %.0f ms after coming back (timeout 200 ms)",
                  stalled_us / 1000.0, (c.timed_out - back) / 1000.0);
  g_assert_cmpuint (stalled_us, >=, 800 * 1000);
  /* the deadline was long past at the return; the timeout still waited a full 200 ms */
  g_assert_cmpint (c.timed_out - back, >=, 200 * 1000 - 60 * 1000);
}

static gboolean
feed_cb (gpointer user_data)
{
  zlt_heartbeat_received (user_data);
  return G_SOURCE_CONTINUE;
}

static void
test_received_keeps_alive (void)
{
  Counts c = { 0 };
  g_autoptr (ZltHeartbeat) hb = make_heartbeat (20, 400, &c);
  guint feeder;
  gint64 last_fed;

  /* frames arriving regularly (every send here, plus an independent timer) keep the
   * peer alive well past several timeouts: the lazy deadline keeps moving on */
  c.feed = TRUE;
  feeder = g_timeout_add (30, feed_cb, hb);
  zlt_heartbeat_start (hb);
  WAIT_FOR (c.n_sends >= 60, 20000);
  g_assert_cmpuint (c.n_timeouts, ==, 0);

  /* then silence: the timeout comes, counted from the last frame received */
  g_source_remove (feeder);
  c.feed = FALSE;
  last_fed = g_get_monotonic_time ();
  WAIT_FOR (c.n_timeouts == 1, 10000);
  g_assert_cmpint (c.timed_out - last_fed, >=, 400 * 1000 - 30 * 1000);
  g_test_message ("timeout %.1f ms after the feeding stopped (timeout 400 ms)",
                  (c.timed_out - last_fed) / 1000.0);
}

static void
test_stop_cancels (void)
{
  Counts c = { 0 };
  g_autoptr (ZltHeartbeat) hb = make_heartbeat (20, 60, &c);

  /* stopped at once: nothing fires */
  zlt_heartbeat_start (hb);
  zlt_heartbeat_stop (hb);
  zlt_heartbeat_stop (hb);
  run_for (200);
  g_assert_cmpuint (c.n_sends, ==, 0);
  g_assert_cmpuint (c.n_timeouts, ==, 0);

  /* stopped from within a send handler */
  c.stop_on_send = TRUE;
  zlt_heartbeat_start (hb);
  WAIT_FOR (c.n_sends == 1, 5000);
  run_for (200);
  g_assert_cmpuint (c.n_sends, ==, 1);
  g_assert_cmpuint (c.n_timeouts, ==, 0);

  /* a restart after a stop works again, and start() twice runs one timer */
  c.stop_on_send = FALSE;
  c.n_sends = 0;
  zlt_heartbeat_start (hb);
  zlt_heartbeat_start (hb);
  WAIT_FOR (c.n_timeouts == 1, 5000);
  g_assert_cmpuint (c.n_sends, <=, (c.timed_out - c.first_send) / 1000 / 20 + 2);
}

static void
test_dispose_while_running (void)
{
  Counts c = { 0 };
  ZltHeartbeat *hb = make_heartbeat (10, 30, &c);

  zlt_heartbeat_start (hb);
  g_object_unref (hb);
  run_for (150);
  g_assert_cmpuint (c.n_sends, ==, 0);
  g_assert_cmpuint (c.n_timeouts, ==, 0);

  /* the timeout handler may drop the last reference */
  hb = make_heartbeat (10, 30, &c);
  c.unref_on_timeout = TRUE;
  zlt_heartbeat_start (hb);
  WAIT_FOR (c.n_timeouts == 1, 5000);
  run_for (100);
  g_assert_cmpuint (c.n_timeouts, ==, 1);
}

static void
on_notify (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  (*(guint *) user_data)++;
}

static void
test_latency (void)
{
  g_autoptr (ZltHeartbeat) hb = zlt_heartbeat_new (1000, 2000);
  guint notified = 0;
  guint64 now_ms = (guint64) (g_get_real_time () / 1000);
  gint64 latency;

  g_signal_connect (hb, "notify::latency-us", G_CALLBACK (on_notify), &notified);
  g_assert_cmpint (zlt_heartbeat_get_latency_us (hb), ==, -1);

  /* an ack echoing a timestamp 25 ms old: at least 25 ms round trip */
  zlt_heartbeat_acked (hb, now_ms - 25);
  latency = zlt_heartbeat_get_latency_us (hb);
  g_assert_cmpint (latency, >=, 25000);
  g_assert_cmpint (latency, <, 25000 + 60 * G_USEC_PER_SEC);
  g_assert_cmpuint (notified, ==, 1);
  g_object_get (hb, "latency-us", &latency, NULL);
  g_assert_cmpint (latency, ==, zlt_heartbeat_get_latency_us (hb));

  /* nonsense from the peer is ignored: a timestamp in the future, one hours old, zero */
  latency = zlt_heartbeat_get_latency_us (hb);
  zlt_heartbeat_acked (hb, now_ms + 60 * 1000);
  zlt_heartbeat_acked (hb, now_ms - 2 * 3600 * 1000);
  zlt_heartbeat_acked (hb, 0);
  zlt_heartbeat_acked (hb, G_MAXUINT64);
  g_assert_cmpint (zlt_heartbeat_get_latency_us (hb), ==, latency);
  g_assert_cmpuint (notified, ==, 1);

  /* to the µs, from a v2 peer's TIMESTAMP_US: 250 µs is 250 µs, not 0 or 1000 */
  zlt_heartbeat_acked_us (hb, (guint64) g_get_real_time () - 250);
  g_assert_cmpint (zlt_heartbeat_get_latency_us (hb), >=, 250);
  g_assert_cmpint (zlt_heartbeat_get_latency_us (hb), <, 250 + 60 * G_USEC_PER_SEC);
  g_assert_cmpuint (notified, ==, 2);
  zlt_heartbeat_acked_us (hb, (guint64) g_get_real_time () + G_USEC_PER_SEC);
  zlt_heartbeat_acked_us (hb, G_MAXUINT64);
  g_assert_cmpuint (notified, ==, 2);
  notified = 1;

  /* a fresh ack replaces it */
  zlt_heartbeat_acked (hb, (guint64) (g_get_real_time () / 1000) - 1000);
  g_assert_cmpint (zlt_heartbeat_get_latency_us (hb), >=, 1000 * 1000);
  g_assert_cmpint (zlt_heartbeat_get_latency_us (hb), <, 1000 * 1000 + 60 * G_USEC_PER_SEC);
  g_assert_cmpuint (notified, ==, 2);
}

/* ---- backoff ---- */

static void
assert_jittered (guint value, guint64 nominal)
{
  /* "equal jitter": between half of the nominal delay and all of it */
  g_assert_cmpuint ((guint64) value * 2, >=, nominal);
  g_assert_cmpuint (value, <=, nominal);
  g_assert_cmpuint (value, >, 0);
}

static void
test_backoff_growth_and_cap (void)
{
  ZltBackoff b;
  guint64 nominal = 100;
  gboolean capped = FALSE;

  zlt_backoff_init (&b, 100, 10000);
  for (guint i = 0; i < 40; i++)
    {
      guint v = zlt_backoff_next (&b);
      assert_jittered (v, MIN (nominal, 10000));
      if (nominal >= 10000)
        capped = TRUE;
      nominal *= 2;
    }
  g_assert_true (capped);
}

static void
test_backoff_jitter (void)
{
  const guint n = 2000;
  guint lo = G_MAXUINT, hi = 0;

  for (guint i = 0; i < n; i++)
    {
      ZltBackoff b;
      guint v;

      zlt_backoff_init (&b, 1000, 60000);
      v = zlt_backoff_next (&b);
      assert_jittered (v, 1000);
      lo = MIN (lo, v);
      hi = MAX (hi, v);
    }
  /* spread over the range, not stuck on one value (2000 draws from 501 values) */
  g_test_message ("first delay of %u agents: %u..%u ms (nominal 1000)", n, lo, hi);
  g_assert_cmpuint (lo, <, 600);
  g_assert_cmpuint (hi, >, 900);

  /* the smallest delays are never 0 */
  for (guint i = 0; i < 200; i++)
    {
      ZltBackoff b;
      zlt_backoff_init (&b, 1, 3);
      assert_jittered (zlt_backoff_next (&b), 1);
      assert_jittered (zlt_backoff_next (&b), 2);
      assert_jittered (zlt_backoff_next (&b), 3);
      assert_jittered (zlt_backoff_next (&b), 3);
    }
}

static void
test_backoff_reset_and_max (void)
{
  ZltBackoff b;

  zlt_backoff_init (&b, 50, 800);
  for (guint i = 0; i < 10; i++)
    zlt_backoff_next (&b);
  assert_jittered (zlt_backoff_next (&b), 800);
  zlt_backoff_reset (&b);
  assert_jittered (zlt_backoff_next (&b), 50);
  assert_jittered (zlt_backoff_next (&b), 100);

  /* max jumps straight to the cap, and the next delays stay there */
  assert_jittered (zlt_backoff_max (&b), 800);
  assert_jittered (zlt_backoff_next (&b), 800);
  zlt_backoff_reset (&b);
  assert_jittered (zlt_backoff_next (&b), 50);
}

static void
test_backoff_bounds (void)
{
  ZltBackoff b;

  /* min 0 becomes 1; max below min becomes min */
  zlt_backoff_init (&b, 0, 0);
  g_assert_cmpuint (b.min_ms, ==, 1);
  g_assert_cmpuint (b.max_ms, ==, 1);
  assert_jittered (zlt_backoff_next (&b), 1);
  zlt_backoff_init (&b, 500, 100);
  g_assert_cmpuint (b.max_ms, ==, 500);
  assert_jittered (zlt_backoff_next (&b), 500);
  assert_jittered (zlt_backoff_next (&b), 500);

  /* huge caps neither overflow nor wrap */
  zlt_backoff_init (&b, 1, G_MAXUINT);
  for (guint i = 0; i < 100; i++)
    {
      guint64 nominal = i < 32 ? MIN ((guint64) 1 << i, (guint64) G_MAXUINT) : G_MAXUINT;
      assert_jittered (zlt_backoff_next (&b), nominal);
    }
  assert_jittered (zlt_backoff_max (&b), G_MAXUINT);
}

static void
on_late_notify (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  (*(guint *) user_data)++;
}

/* A heartbeat we send that gets no frame back within its margin (1 s at this interval)
 * makes the peer late, long before it is dead; the next frame makes it on time again. */
static void
test_late (void)
{
  Counts c = { .feed = TRUE };
  g_autoptr (ZltHeartbeat) hb = make_heartbeat (100, 60 * 1000, &c);
  guint n_notify = 0;
  gint64 unfed, late_at;

  g_signal_connect (hb, "notify::late", G_CALLBACK (on_late_notify), &n_notify);
  zlt_heartbeat_start (hb);
  /* answered at once: 25 sends (two and a half margins), never late */
  WAIT_FOR (c.n_sends >= 25, 10000);
  g_assert_false (zlt_heartbeat_is_late (hb));
  g_assert_cmpuint (n_notify, ==, 0);

  /* silent from now */
  c.feed = FALSE;
  unfed = g_get_monotonic_time ();
  WAIT_FOR (zlt_heartbeat_is_late (hb), 10000);
  late_at = g_get_monotonic_time ();
  g_test_message ("late %.0f ms after the peer fell silent", (late_at - unfed) / 1000.0);
  g_assert_cmpint (late_at - unfed, >=, G_USEC_PER_SEC);
  g_assert_cmpuint (n_notify, ==, 1);
  g_assert_cmpuint (c.n_timeouts, ==, 0);

  /* any frame: on time again at once */
  zlt_heartbeat_received (hb);
  g_assert_false (zlt_heartbeat_is_late (hb));
  g_assert_cmpuint (n_notify, ==, 2);
  /* and late again after the next unanswered heartbeat */
  WAIT_FOR (zlt_heartbeat_is_late (hb), 10000);
  g_assert_cmpuint (n_notify, ==, 3);
  /* a restart begins on time */
  zlt_heartbeat_start (hb);
  g_assert_false (zlt_heartbeat_is_late (hb));
  zlt_heartbeat_stop (hb);
  g_assert_cmpuint (c.n_timeouts, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/heartbeat/sends-at-interval", test_sends_at_interval);
  g_test_add_func ("/heartbeat/timeout-when-silent", test_timeout_when_silent);
  g_test_add_func ("/heartbeat/received-keeps-alive", test_received_keeps_alive);
  g_test_add_func ("/heartbeat/stalled", test_stalled_is_not_the_peers_fault);
  g_test_add_func ("/heartbeat/stop-cancels", test_stop_cancels);
  g_test_add_func ("/heartbeat/dispose-while-running", test_dispose_while_running);
  g_test_add_func ("/heartbeat/latency", test_latency);
  g_test_add_func ("/heartbeat/late", test_late);
  g_test_add_func ("/backoff/growth-and-cap", test_backoff_growth_and_cap);
  g_test_add_func ("/backoff/jitter", test_backoff_jitter);
  g_test_add_func ("/backoff/reset-and-max", test_backoff_reset_and_max);
  g_test_add_func ("/backoff/bounds", test_backoff_bounds);
  return g_test_run ();
}
