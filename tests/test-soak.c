/* test-soak.c: many connections, one after the other, through one server and one agent;
 * nothing may pile up per connection. What piles up shows in the bytes the allocator
 * has handed out and not got back (mallinfo2) long before it shows in the resident
 * size, which moves in pages and keeps freed memory: that is what is checked, with the
 * resident size reported beside it.
 *
 * ZLT_SOAK_CONNECTIONS=N (default 3000) sets how many go through after the warm-up;
 * run it by hand with tens of thousands for a longer soak. */
#include "config.h"

#include <malloc.h>

#include "zlt-test-util.h"

/* Bytes allocated and not freed, whatever the allocator keeps cached. */
static gsize
heap_in_use (void)
{
  struct mallinfo2 info = mallinfo2 ();

  return info.uordblks + info.hblkhd;
}

typedef struct
{
  guint16 port;
  guint n;
  /* results */
  guint done_n;
  char *error;
  gint done;
} Sequential;

/* n connections, one at a time: connect, send a byte, read the echo, close */
static gpointer
sequential_thread (gpointer user_data)
{
  Sequential *s = user_data;
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (lo, s->port);
  g_autoptr (GError) error = NULL;

  for (guint i = 0; i < s->n; i++)
    {
      g_autoptr (GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                                 G_SOCKET_PROTOCOL_TCP, &error);
      char byte = 'x';

      if (socket == NULL)
        break;
      g_socket_set_timeout (socket, 30);
      if (!g_socket_connect (socket, address, NULL, &error)
          || g_socket_send (socket, &byte, 1, NULL, &error) != 1
          || g_socket_receive (socket, &byte, 1, NULL, &error) != 1)
        break;
      g_socket_close (socket, NULL);
      s->done_n++;
    }
  if (error != NULL)
    s->error = g_strdup (error->message);
  g_atomic_int_set (&s->done, 1);
  return NULL;
}

static void
run_connections (guint16 port, guint n)
{
  Sequential s = { port, n, 0, NULL, 0 };
  GThread *thread = g_thread_new ("sequential", sequential_thread, &s);

  ZLT_TEST_WAIT_FOR (g_atomic_int_get (&s.done), 600000);
  g_thread_join (thread);
  g_assert_null (s.error);
  g_assert_cmpuint (s.done_n, ==, n);
}

static void
test_soak (void)
{
  ZltTestHarness h;
  const char *env = g_getenv ("ZLT_SOAK_CONNECTIONS");
  guint n = env != NULL ? (guint) g_ascii_strtoull (env, NULL, 10) : 3000;
  gsize heap_before, heap_after;
  guint64 rss_before, rss_after;
  gdouble per_connection;
  guint16 port;
  gint64 started;

  zlt_test_harness_init (&h, "31300-31399");
  /* a pool of standby connections that cannot grow: when a connection finds it empty
   * under load it grows by design (PROTOCOL-v2.md §8), which is not what is measured */
  g_key_file_set_integer (h.server_keyfile, "server", "standby-connections",
                          ZLT_CLIENT_CONFIG_DEFAULT_STANDBY);
  zlt_test_harness_start_server (&h);
  zlt_test_harness_add_service (&h, "echo", zlt_test_echo_get_port (h.echo), 0);
  zlt_test_harness_start_agent (&h);
  port = zlt_test_harness_wait_registered (&h, "echo");

  /* warm-up: caches, pools and the allocator reach their working size */
  run_connections (port, 500);
  ZLT_TEST_WAIT_FOR (
      zlt_server_get_n_relays (h.server) == 0 && zlt_agent_get_n_relays (h.agent) == 0
          && zlt_server_get_n_standby (h.server) == ZLT_CLIENT_CONFIG_DEFAULT_STANDBY,
      10000);
  heap_before = heap_in_use ();
  rss_before = zlt_test_rss_kib ();

  started = g_get_monotonic_time ();
  run_connections (port, n);
  ZLT_TEST_WAIT_FOR (
      zlt_server_get_n_relays (h.server) == 0 && zlt_agent_get_n_relays (h.agent) == 0
          && zlt_server_get_n_standby (h.server) == ZLT_CLIENT_CONFIG_DEFAULT_STANDBY,
      10000);
  heap_after = heap_in_use ();
  rss_after = zlt_test_rss_kib ();
  per_connection = ((gdouble) heap_after - (gdouble) heap_before) / n;
  g_test_message ("%u connections in %.1f s; heap in use %" G_GSIZE_FORMAT " → %" G_GSIZE_FORMAT
                  " bytes (%.1f per connection); RSS %" G_GUINT64_FORMAT " → %" G_GUINT64_FORMAT
                  " KiB",
                  n, (g_get_monotonic_time () - started) / 1e6, heap_before, heap_after,
                  per_connection, rss_before, rss_after);
  /* 370 bytes per connection stayed behind before this test existed (a handler left on
   * the agent's cancellable by every data connection); what is in flight at either end
   * may take a few KiB */
  g_assert_cmpfloat (per_connection, <, 16.0 + 64.0 * 1024 / n);
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (h.echo), ==, 500 + n);
  zlt_test_harness_clear (&h);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  zlt_init ();
  g_test_add_func ("/soak/sequential-connections", test_soak);
  return g_test_run ();
}
