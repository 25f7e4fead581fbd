/* test-rate-limit.c: per-service bandwidth limits (issue 13 item 4): the token bucket's
 * arithmetic on a clock of the test's own, the rate syntax and the config keys, the
 * throttled stream over a real socket pair, and end to end a limited and an unlimited
 * service side by side through a real server and agent on loopback */
#include "config.h"

#include <string.h>
#include <sys/socket.h>

#include <gio/gfiledescriptorbased.h>

#include "zlt-rate-bucket.h"
#include "zlt-util.h" /* zlt_parse_rate */
#include "zlt-throttled-stream.h"
#include "zlt-test-util.h"

#define PORT_RANGE "29400-29429"
#define T0 1000000 /* any start on the test's clock */

/* ---- the bucket ---- */

static void
increment (guint *count)
{
  (*count)++;
}

static void
test_bucket_burst (void)
{
  g_autoptr (ZltRateBucket) slow = zlt_rate_bucket_new (1000);
  g_autoptr (ZltRateBucket) fast = zlt_rate_bucket_new (10 * 1000 * 1000);

  /* 100 ms of the rate, at least 64 KiB */
  g_assert_cmpuint (zlt_rate_bucket_get_burst (slow), ==, ZLT_RATE_BUCKET_MIN_BURST);
  g_assert_cmpuint (zlt_rate_bucket_get_burst (fast), ==, 1000 * 1000);
  g_assert_cmpuint (zlt_rate_bucket_get_rate (fast), ==, 10 * 1000 * 1000);
  /* a new bucket is full, and gives no more than its burst */
  g_assert_cmpuint (zlt_rate_bucket_take_at (fast, 5 * 1000 * 1000, T0), ==, 1000 * 1000);
  g_assert_cmpuint (zlt_rate_bucket_take_at (fast, 1, T0), ==, 0);
  /* a long pause fills it to the burst, not beyond */
  g_assert_cmpuint (
      zlt_rate_bucket_take_at (fast, 5 * 1000 * 1000, T0 + (gint64) 3600 * G_USEC_PER_SEC), ==,
      1000 * 1000);
}

static void
test_bucket_refill (void)
{
  g_autoptr (ZltRateBucket) bucket = zlt_rate_bucket_new (1000 * 1000); /* 1 byte/µs */
  gint64 now = T0;

  g_assert_cmpuint (zlt_rate_bucket_get_burst (bucket), ==, 100 * 1000);
  g_assert_cmpuint (zlt_rate_bucket_take_at (bucket, G_MAXSIZE, now), ==, 100 * 1000);
  /* empty: 50000 bytes come in 50 ms */
  g_assert_cmpint (zlt_rate_bucket_delay_at (bucket, 50 * 1000, now), ==, 50 * 1000);
  g_assert_cmpint (zlt_rate_bucket_delay_at (bucket, 0, now), ==, 1);
  /* what is waited for is capped at the burst */
  g_assert_cmpint (zlt_rate_bucket_delay_at (bucket, G_MAXSIZE, now), ==, 100 * 1000);
  now += 10 * 1000;
  g_assert_cmpint (zlt_rate_bucket_delay_at (bucket, 10 * 1000, now), ==, 0);
  g_assert_cmpuint (zlt_rate_bucket_take_at (bucket, G_MAXSIZE, now), ==, 10 * 1000);
  /* a clock that does not move (or goes back) adds nothing */
  g_assert_cmpuint (zlt_rate_bucket_take_at (bucket, G_MAXSIZE, now), ==, 0);
  g_assert_cmpuint (zlt_rate_bucket_take_at (bucket, G_MAXSIZE, now - 5000), ==, 0);
  /* bytes taken but not moved come back, up to the burst */
  zlt_rate_bucket_give_back (bucket, 700);
  g_assert_cmpuint (zlt_rate_bucket_take_at (bucket, G_MAXSIZE, now), ==, 700);
  zlt_rate_bucket_give_back (bucket, 10 * 1000 * 1000);
  g_assert_cmpuint (zlt_rate_bucket_take_at (bucket, G_MAXSIZE, now), ==, 100 * 1000);
  /* over a long run, taking in small steps gives exactly the rate */
  {
    guint64 total = 0;

    for (guint i = 0; i < 1000; i++)
      {
        now += 997; /* µs: not a multiple of anything the bucket rounds by */
        total += zlt_rate_bucket_take_at (bucket, G_MAXSIZE, now);
      }
    g_assert_cmpuint (total, ==, 997 * 1000);
  }
}

/* a rate below a byte per µs keeps its fractions: 3 bytes/s, a byte every 333334 µs */
static void
test_bucket_fraction (void)
{
  g_autoptr (ZltRateBucket) bucket = zlt_rate_bucket_new (3);
  gint64 now = T0;
  guint64 total = 0;

  g_assert_cmpuint (zlt_rate_bucket_take_at (bucket, G_MAXSIZE, now), ==,
                    ZLT_RATE_BUCKET_MIN_BURST);
  g_assert_cmpint (zlt_rate_bucket_delay_at (bucket, 1, now), ==, 333334);
  now += 333333;
  g_assert_cmpuint (zlt_rate_bucket_take_at (bucket, 1, now), ==, 0);
  now += 1;
  g_assert_cmpuint (zlt_rate_bucket_take_at (bucket, 1, now), ==, 1);
  for (guint i = 0; i < 100; i++)
    {
      now += 100 * 1000;
      total += zlt_rate_bucket_take_at (bucket, G_MAXSIZE, now);
    }
  /* 10 s more at 3 bytes/s */
  g_assert_cmpuint (total, ==, 30);
}

/* a new rate holds at once for everything sharing the bucket; what it holds is kept, up
 * to the new burst */
static void
test_bucket_set_rate (void)
{
  g_autoptr (ZltRateBucket) bucket = zlt_rate_bucket_new (10 * 1000 * 1000); /* burst 1 MB */
  guint notified = 0;

  g_signal_connect_swapped (bucket, "notify::rate", G_CALLBACK (increment), &notified);
  g_assert_cmpuint (zlt_rate_bucket_take (bucket, 400 * 1000), ==, 400 * 1000);
  zlt_rate_bucket_set_rate (bucket, 1000 * 1000); /* burst 100 kB */
  g_assert_cmpuint (notified, ==, 1);
  g_assert_cmpuint (zlt_rate_bucket_get_rate (bucket), ==, 1000 * 1000);
  g_assert_cmpuint (zlt_rate_bucket_get_burst (bucket), ==, 100 * 1000);
  g_assert_cmpuint (zlt_rate_bucket_take (bucket, G_MAXSIZE), <=, 100 * 1000);
  /* the same rate again changes nothing */
  zlt_rate_bucket_set_rate (bucket, 1000 * 1000);
  g_assert_cmpuint (notified, ==, 1);
  /* a larger rate: the burst grows, the bucket fills from what it held */
  zlt_rate_bucket_set_rate (bucket, 20 * 1000 * 1000);
  g_assert_cmpuint (zlt_rate_bucket_get_burst (bucket), ==, 2 * 1000 * 1000);
  g_assert_cmpuint (zlt_rate_bucket_take (bucket, G_MAXSIZE), <, 2 * 1000 * 1000);
  g_assert_cmpuint (notified, ==, 2);
}

static void
test_rate_parse (void)
{
  const struct
  {
    const char *text;
    gboolean ok;
    guint64 value;
  } cases[] = {
    { "0", TRUE, 0 },          { "4096", TRUE, 4096 },
    { "512k", TRUE, 512000 },  { "512K", TRUE, 512000 },
    { "4M", TRUE, 4000000 },   { "1G", TRUE, 1000000000 },
    { "", FALSE, 0 },          { "M", FALSE, 0 },
    { "-1", FALSE, 0 },        { "4 M", FALSE, 0 },
    { "4MB", FALSE, 0 },       { "4m", FALSE, 0 },
    { "1.5M", FALSE, 0 },      { "99999999999999999999999", FALSE, 0 },
    { "20000000G", FALSE, 0 }, /* beyond ZLT_RATE_BUCKET_MAX_RATE */
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      guint64 value = 12345;
      gboolean ok = zlt_parse_rate (cases[i].text, &value);

      g_assert_cmpint (ok, ==, cases[i].ok);
      g_assert_cmpuint (value, ==, cases[i].ok ? cases[i].value : 12345);
    }
  g_assert_false (zlt_parse_rate (NULL, &(guint64){ 0 }));
}

static GKeyFile *
service_keyfile (const char *in, const char *out)
{
  GKeyFile *kf = g_key_file_new ();

  g_key_file_set_string (kf, "agent", "server", "wss://127.0.0.1:1/tunnel/v1");
  g_key_file_set_string (kf, "agent", "token-env", "ZLT_TEST_TOKEN");
  g_key_file_set_string (kf, "service:web", "local-port", "8080");
  if (in != NULL)
    g_key_file_set_string (kf, "service:web", "rate-limit-in", in);
  if (out != NULL)
    g_key_file_set_string (kf, "service:web", "rate-limit-out", out);
  return kf;
}

static void
test_config_keys (void)
{
  g_autoptr (GKeyFile) kf = service_keyfile ("4M", "512k");
  g_autoptr (GKeyFile) none = service_keyfile (NULL, NULL);
  g_autoptr (GKeyFile) bad = service_keyfile ("fast", NULL);
  g_autoptr (GKeyFile) written = NULL;
  g_autoptr (ZltClientConfig) config = NULL;
  g_autoptr (ZltClientConfig) config_none = NULL;
  g_autoptr (ZltClientConfig) again = NULL;
  g_autoptr (ZltClientConfig) config_bad = NULL;
  g_autoptr (ZltServiceConfig) copy = NULL;
  g_autoptr (GError) error = NULL;
  const ZltServiceConfig *sc;

  config = zlt_client_config_new_from_keyfile (kf, &error);
  g_assert_no_error (error);
  sc = zlt_client_config_lookup_service (config, "web");
  g_assert_nonnull (sc);
  g_assert_cmpuint (sc->rate_limit_in, ==, 4000000);
  g_assert_cmpuint (sc->rate_limit_out, ==, 512000);
  copy = zlt_service_config_copy (sc);
  g_assert_cmpuint (copy->rate_limit_in, ==, 4000000);
  g_assert_cmpuint (copy->rate_limit_out, ==, 512000);

  /* written out and read back */
  written = zlt_client_config_to_keyfile (config);
  again = zlt_client_config_new_from_keyfile (written, &error);
  g_assert_no_error (error);
  sc = zlt_client_config_lookup_service (again, "web");
  g_assert_cmpuint (sc->rate_limit_in, ==, 4000000);
  g_assert_cmpuint (sc->rate_limit_out, ==, 512000);

  config_none = zlt_client_config_new_from_keyfile (none, &error);
  g_assert_no_error (error);
  sc = zlt_client_config_lookup_service (config_none, "web");
  g_assert_cmpuint (sc->rate_limit_in, ==, 0);
  g_assert_cmpuint (sc->rate_limit_out, ==, 0);

  /* a bad value names the key and what it should be */
  config_bad = zlt_client_config_new_from_keyfile (bad, &error);
  g_assert_null (config_bad);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_assert_nonnull (strstr (error->message, "rate-limit-in"));
  g_assert_nonnull (strstr (error->message, "fast"));
  g_clear_error (&error);

  /* a datagram service is not limited: refused, not silently unlimited */
  g_key_file_set_string (kf, "service:web", "protocol", "udp");
  g_clear_object (&config_bad);
  config_bad = zlt_client_config_new_from_keyfile (kf, &error);
  g_assert_null (config_bad);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_assert_nonnull (strstr (error->message, "only tcp"));
}

/* ---- the throttled stream over a socket pair ---- */

static GSocketConnection *
connection_from_fd (int fd)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) socket = g_socket_new_from_fd (fd, &error);

  g_assert_no_error (error);
  return g_socket_connection_factory_create_connection (socket);
}

static gboolean
on_ready (GObject *stream, gpointer user_data)
{
  *(gint64 *) user_data = g_get_monotonic_time ();
  return G_SOURCE_REMOVE;
}

static void
test_throttled_stream (void)
{
  int fds[2];
  g_autoptr (GSocketConnection) a = NULL;
  g_autoptr (GSocketConnection) b = NULL;
  gint64 created_us = g_get_monotonic_time (); /* before the bucket: it starts full */
  g_autoptr (ZltRateBucket) bucket = zlt_rate_bucket_new (1000 * 1000); /* burst 100000 */
  g_autoptr (GIOStream) limited = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSource) source = NULL;
  g_autofree guint8 *buf = g_malloc (300 * 1000);
  GPollableInputStream *in;
  GPollableOutputStream *out;
  gint64 waited_from, ready_at = 0;
  gssize n;
  gsize total = 0;

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
  a = connection_from_fd (fds[0]);
  b = connection_from_fd (fds[1]);
  limited = zlt_throttled_stream_new (G_IO_STREAM (a), bucket, NULL);
  in = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (limited));
  out = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (limited));
  g_assert_true (g_pollable_input_stream_can_poll (in));
  g_assert_false (G_IS_FILE_DESCRIPTOR_BASED (in)); /* never spliced */
  g_assert_true (zlt_throttled_stream_get_base_stream (ZLT_THROTTLED_STREAM (limited))
                 == G_IO_STREAM (a));

  /* nothing to read: would block, the bucket keeps its bytes */
  n = g_pollable_input_stream_read_nonblocking (in, buf, 1000, NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
  g_clear_error (&error);

  /* the peer sends more than the burst; the wrapper gives the burst at most */
  memset (buf, 'x', 300 * 1000);
  while (total < 200 * 1000)
    {
      n = g_output_stream_write (g_io_stream_get_output_stream (G_IO_STREAM (b)), buf + total,
                                 200 * 1000 - total, NULL, &error);
      g_assert_no_error (error);
      total += (gsize) n;
    }
  /* a read takes an eighth of the burst at most, and once until the next source is
   * made: connections that share a bucket take turns */
  n = g_pollable_input_stream_read_nonblocking (in, buf, 300 * 1000, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 100 * 1000 / 8);
  total = (gsize) n;
  g_assert_cmpint (g_pollable_input_stream_read_nonblocking (in, buf, 300 * 1000, NULL, &error), ==,
                   -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
  g_clear_error (&error);
  /* as a relay does it (a source after each "would block"): reads until the bucket holds
   * less than a sixteenth of the burst */
  for (;;)
    {
      g_source_unref (g_pollable_input_stream_create_source (in, NULL));
      n = g_pollable_input_stream_read_nonblocking (in, buf, 300 * 1000, NULL, &error);
      if (n <= 0)
        break;
      total += (gsize) n;
    }
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
  g_clear_error (&error);
  /* the burst but the last sixteenth, and no more than the burst and what the real clock
   * added meanwhile (1 byte/µs): on a slow machine (valgrind) the time between is long,
   * so measure it */
  g_assert_cmpuint (total, >=, 100 * 1000 - 100 * 1000 / 16);
  g_assert_cmpuint (total, <=, 100 * 1000 + (gsize) (g_get_monotonic_time () - created_us));

  /* a slow machine may have let everything through meanwhile: more for the next read */
  if (total == 200 * 1000)
    {
      g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (b)), buf, 100 * 1000,
                                 NULL, NULL, &error);
      g_assert_no_error (error);
    }

  /* the source is ready when a quarter of the burst is back: at 1 MB/s 25 ms from
   * empty, at least 18.75 ms from the sixteenth that may have been left */
  waited_from = g_get_monotonic_time ();
  source = g_pollable_input_stream_create_source (in, NULL);
  g_source_set_callback (source, G_SOURCE_FUNC (on_ready), &ready_at, NULL);
  g_source_attach (source, NULL);
  ZLT_TEST_WAIT_FOR (ready_at != 0, 5000);
  g_assert_cmpint (ready_at - waited_from, >=, 18 * 1000);
  g_test_message ("source ready after %" G_GINT64_FORMAT " µs", ready_at - waited_from);
  n = g_pollable_input_stream_read_nonblocking (in, buf, 300 * 1000, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, >, 0);
  g_assert_cmpint (n, <=, 100 * 1000 / 8);

  /* the output has no bucket: writes pass; closing it half-closes the socket */
  n = g_pollable_output_stream_write_nonblocking (out, "ping", 4, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 4);
  g_assert_true (g_output_stream_close (G_OUTPUT_STREAM (out), NULL, &error));
  g_assert_no_error (error);
  {
    char got[8] = { 0 };
    GInputStream *peer = g_io_stream_get_input_stream (G_IO_STREAM (b));

    g_assert_cmpint (g_input_stream_read (peer, got, sizeof got, NULL, &error), ==, 4);
    g_assert_cmpstr (got, ==, "ping");
    g_assert_cmpint (g_input_stream_read (peer, got, sizeof got, NULL, &error), ==, 0); /* FIN */
    g_assert_no_error (error);
  }
  g_assert_true (g_io_stream_close (limited, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (a)));
}

/* ---- end to end ---- */

#define LIMIT 4000000 /* bytes/s, "4M" */

/* One connection through an echo service, timed by the client: writes n_bytes (a
 * fixed pattern) and reads the echo, interleaved, and notes the time from connecting
 * to the last echoed byte. Bounded: 60 s at most. */
typedef struct
{
  guint16 port;
  gsize n_bytes;
  gsize received;
  gint64 elapsed_us;
  char *error;
  gint done;
} Timed;

static gpointer
timed_thread (gpointer user_data)
{
  Timed *t = user_data;
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) conn = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree guint8 *chunk = g_malloc (65536);
  guint8 buf[65536];
  GSocket *socket;
  gsize sent = 0;
  gint64 start = g_get_monotonic_time ();

  memset (chunk, 'z', 65536);
  conn = g_socket_client_connect_to_host (client, "127.0.0.1", t->port, NULL, &error);
  if (conn == NULL)
    goto out;
  socket = g_socket_connection_get_socket (conn);
  g_socket_set_blocking (socket, FALSE);
  while (g_get_monotonic_time () - start < 60 * G_USEC_PER_SEC)
    {
      GIOCondition want = G_IO_IN | (sent < t->n_bytes ? G_IO_OUT : 0);
      GIOCondition got;
      gssize n;

      if (!g_socket_condition_timed_wait (socket, want, 10 * G_USEC_PER_SEC, NULL, &error))
        goto out;
      got = g_socket_condition_check (socket, want | G_IO_HUP | G_IO_ERR);
      if (sent < t->n_bytes && (got & G_IO_OUT))
        {
          n = g_socket_send (socket, (const char *) chunk, MIN (t->n_bytes - sent, 65536), NULL,
                             NULL);
          if (n > 0)
            sent += (gsize) n;
          if (sent == t->n_bytes && !g_socket_shutdown (socket, FALSE, TRUE, &error))
            goto out;
        }
      if (got & (G_IO_IN | G_IO_HUP | G_IO_ERR))
        {
          n = g_socket_receive (socket, (char *) buf, sizeof buf, NULL, &error);
          if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            {
              g_clear_error (&error);
              continue;
            }
          if (n < 0)
            goto out;
          if (n == 0)
            break;
          for (gssize i = 0; i < n; i++)
            if (buf[i] != 'z')
              {
                t->error = g_strdup ("echo differs");
                goto out;
              }
          t->received += (gsize) n;
          if (t->received == t->n_bytes)
            t->elapsed_us = g_get_monotonic_time () - start;
        }
    }
out:
  if (error != NULL && t->error == NULL)
    t->error = g_strdup (error->message);
  g_atomic_int_set (&t->done, 1);
  return NULL;
}

static void
test_e2e_limited_beside_unlimited (void)
{
  ZltTestHarness h;
  Timed limited = { 0 };
  Timed unlimited = { 0 };
  GThread *limited_thread;
  GThread *unlimited_thread;
  double limited_rate, unlimited_rate;

  zlt_test_harness_init (&h, PORT_RANGE);
  zlt_test_harness_start_server (&h);
  zlt_test_harness_add_service (&h, "slow", zlt_test_echo_get_port (h.echo), 0);
  zlt_test_harness_add_service (&h, "fast", zlt_test_echo_get_port (h.echo), 0);
  g_key_file_set_string (h.agent_keyfile, "service:slow", "rate-limit-in", "4M");
  g_key_file_set_string (h.agent_keyfile, "service:slow", "rate-limit-out", "4M");
  zlt_test_harness_start_agent (&h);
  limited.port = zlt_test_harness_wait_registered (&h, "slow");
  unlimited.port = zlt_test_harness_wait_registered (&h, "fast");

  /* an echo: each byte crosses the limit twice (in, then out), pipelined */
  limited.n_bytes = 8 * 1000 * 1000;
  unlimited.n_bytes = 64 * 1000 * 1000;
  limited_thread = g_thread_new ("limited", timed_thread, &limited);
  unlimited_thread = g_thread_new ("unlimited", timed_thread, &unlimited);
  ZLT_TEST_WAIT_FOR (g_atomic_int_get (&limited.done) && g_atomic_int_get (&unlimited.done), 70000);
  g_thread_join (limited_thread);
  g_thread_join (unlimited_thread);
  g_assert_null (limited.error);
  g_assert_cmpuint (limited.received, ==, limited.n_bytes);
  g_assert_null (unlimited.error);
  g_assert_cmpuint (unlimited.received, ==, unlimited.n_bytes);

  limited_rate = (double) limited.n_bytes * G_USEC_PER_SEC / (double) limited.elapsed_us;
  unlimited_rate = (double) unlimited.n_bytes * G_USEC_PER_SEC / (double) unlimited.elapsed_us;
  g_test_message ("limited to %u B/s: %.0f B/s (%.1f %% of the limit) over %.2f s; "
                  "unlimited beside it: %.0f B/s over %.2f s",
                  LIMIT, limited_rate, 100.0 * limited_rate / LIMIT,
                  (double) limited.elapsed_us / G_USEC_PER_SEC, unlimited_rate,
                  (double) unlimited.elapsed_us / G_USEC_PER_SEC);
  /* the limit holds within 10 % (loosely bounded below on a loaded machine) */
  g_assert_cmpfloat (limited_rate, <=, LIMIT * 1.10);
  g_assert_cmpfloat (limited_rate, >=, LIMIT * 0.5);
  /* the unlimited service keeps its speed */
  g_assert_cmpfloat (unlimited_rate, >, LIMIT * 2.0);

  zlt_test_harness_clear (&h);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  zlt_init ();

  g_test_add_func ("/rate-limit/bucket/burst", test_bucket_burst);
  g_test_add_func ("/rate-limit/bucket/refill", test_bucket_refill);
  g_test_add_func ("/rate-limit/bucket/fraction", test_bucket_fraction);
  g_test_add_func ("/rate-limit/bucket/set-rate", test_bucket_set_rate);
  g_test_add_func ("/rate-limit/parse", test_rate_parse);
  g_test_add_func ("/rate-limit/config", test_config_keys);
  g_test_add_func ("/rate-limit/throttled-stream", test_throttled_stream);
  g_test_add_func ("/rate-limit/e2e", test_e2e_limited_beside_unlimited);
  return g_test_run ();
}
