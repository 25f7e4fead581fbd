/* test-relay-counted.c: the one place a connection's relay is made and counted, over
 * real loopback sockets */
#include "config.h"

#include <dirent.h>
#include <string.h>

#include "zlt-relay-counted.h"
#include "zlt-test-util.h"
#include "zlayer-tunnel.h"

#define WAIT_MS 10000

static GSocketListener *listener;
static GSocketAddress *listen_address;

/* Two connected TCP sockets on 127.0.0.1, port 0. */
static void
make_pair (GSocketConnection **client, GSocketConnection **server)
{
  g_autoptr (GSocketClient) sc = g_socket_client_new ();
  g_autoptr (GError) error = NULL;

  if (listener == NULL)
    {
      g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
      g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, 0);

      listener = g_socket_listener_new ();
      g_socket_listener_add_address (listener, addr, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                     NULL, &listen_address, &error);
      g_assert_no_error (error);
    }
  *client = g_socket_client_connect (sc, G_SOCKET_CONNECTABLE (listen_address), NULL, &error);
  g_assert_no_error (error);
  *server = g_socket_listener_accept (listener, NULL, NULL, &error);
  g_assert_no_error (error);
}

/* a_peer — [a relay b] — b_peer */
typedef struct
{
  GSocketConnection *a_peer, *a, *b, *b_peer;
  gboolean finished;
  gboolean error_set;
  guint active_in_handler; /* the books' count while the caller's handler ran */
  GObject *books;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  make_pair (&f->a_peer, &f->a);
  make_pair (&f->b, &f->b_peer);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->a_peer);
  g_clear_object (&f->a);
  g_clear_object (&f->b);
  g_clear_object (&f->b_peer);
}

static guint
books_active (GObject *books)
{
  if (ZLT_IS_SERVICE (books))
    return zlt_service_get_active_connections (ZLT_SERVICE (books));
  return zlt_session_get_active_connections (ZLT_SESSION (books));
}

static void
on_finished (ZltRelay *relay, const GError *error, gpointer user_data)
{
  Fixture *f = user_data;

  f->finished = TRUE;
  f->error_set = error != NULL;
  f->active_in_handler = books_active (f->books);
}

static void
send_all (GSocketConnection *conn, const char *text)
{
  g_autoptr (GError) error = NULL;
  gsize written = 0;

  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)), text,
                             strlen (text), &written, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (written, ==, strlen (text));
}

static gboolean
readable (GSocketConnection *conn)
{
  return g_socket_condition_check (g_socket_connection_get_socket (conn), G_IO_IN) != 0;
}

/* Reads until @expected came in (or EOF, or the deadline), spinning the main context
 * while nothing is there: the relay runs in it. */
static char *
receive (GSocketConnection *conn, gsize expected, gboolean *eof)
{
  GString *got = g_string_new (NULL);
  gint64 deadline = g_get_monotonic_time () + (gint64) WAIT_MS * 1000;

  *eof = FALSE;
  while (got->len < expected || expected == G_MAXSIZE)
    {
      char buf[256];
      gssize n;

      ZLT_TEST_WAIT_FOR (readable (conn) || g_get_monotonic_time () > deadline, WAIT_MS);
      g_assert_cmpint (g_get_monotonic_time (), <=, deadline);
      n = g_socket_receive (g_socket_connection_get_socket (conn), buf, sizeof buf, NULL, NULL);
      g_assert_cmpint (n, >=, 0);
      if (n == 0)
        {
          *eof = TRUE;
          break;
        }
      g_string_append_len (got, buf, n);
    }
  return g_string_free (got, FALSE);
}

static void
half_close (GSocketConnection *conn)
{
  g_autoptr (GError) error = NULL;

  g_socket_shutdown (g_socket_connection_get_socket (conn), FALSE, TRUE, &error);
  g_assert_no_error (error);
}

/* A service's connection: the prefix goes first toward b, a→b counts in, b→a out; the
 * service counts it open from the start until the caller's ::finished handler ran. */
static void
test_service (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltService) service = zlt_service_new ("web", ZLT_PROTOCOL_TCP, 80, ZLT_EXPOSE_PUBLIC);
  g_autoptr (GBytes) prefix = g_bytes_new_static ("early:", 6);
  g_autoptr (ZltRelay) relay = NULL;
  g_autofree char *at_b = NULL;
  g_autofree char *at_a = NULL;
  g_autofree char *tail_b = NULL;
  g_autofree char *tail_a = NULL;
  gboolean eof;

  f->books = G_OBJECT (service);
  relay = zlt_relay_counted_new (G_IO_STREAM (f->a), G_IO_STREAM (f->b), ZLT_RELAY_A_TO_B, prefix,
                                 service);
  g_assert_true (zlt_relay_counted_get_books (relay) == (gpointer) service);
  g_signal_connect (relay, "finished", G_CALLBACK (on_finished), f);
  g_assert_cmpuint (zlt_service_get_active_connections (service), ==, 0);
  zlt_relay_counted_start (relay);
  g_assert_cmpuint (zlt_service_get_active_connections (service), ==, 1);
  g_assert_cmpuint (zlt_service_get_total_connections (service), ==, 1);

  send_all (f->a_peer, "hello");
  at_b = receive (f->b_peer, 11, &eof);
  g_assert_cmpstr (at_b, ==, "early:hello");
  send_all (f->b_peer, "world!!");
  at_a = receive (f->a_peer, 7, &eof);
  g_assert_cmpstr (at_a, ==, "world!!");
  ZLT_TEST_WAIT_FOR (zlt_service_get_bytes_out (service) == 7, WAIT_MS);
  /* the prefix is delivered to b, so it counts in too */
  ZLT_TEST_WAIT_FOR (zlt_service_get_bytes_in (service) == 11, WAIT_MS);

  /* an orderly end both ways: clean, and the count drops after the handler */
  half_close (f->a_peer);
  tail_b = receive (f->b_peer, G_MAXSIZE, &eof);
  g_assert_true (eof);
  g_assert_cmpstr (tail_b, ==, "");
  g_assert_cmpuint (zlt_service_get_active_connections (service), ==, 1);
  half_close (f->b_peer);
  tail_a = receive (f->a_peer, G_MAXSIZE, &eof);
  g_assert_true (eof);
  ZLT_TEST_WAIT_FOR (f->finished, WAIT_MS);
  g_assert_false (f->error_set);
  g_assert_cmpuint (f->active_in_handler, ==, 1);
  g_assert_cmpuint (zlt_service_get_active_connections (service), ==, 0);
  g_assert_cmpuint (zlt_service_get_total_connections (service), ==, 1);
}

/* An access session's connection (a = local client, b = access stream): b→a is "in",
 * and the prefix (read after the access stream's upgrade) goes to a first; closing
 * the relay counts the connection closed once. */
static void
test_session (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltSession) session
      = zlt_session_new ("wss://example.invalid", "127.0.0.1:0", "db", 0);
  g_autoptr (GBytes) prefix = g_bytes_new_static ("ab", 2);
  g_autoptr (ZltRelay) relay = NULL;
  g_autofree char *at_a = NULL;
  g_autofree char *at_b = NULL;
  gboolean eof;

  f->books = G_OBJECT (session);
  relay = zlt_relay_counted_new (G_IO_STREAM (f->a), G_IO_STREAM (f->b), ZLT_RELAY_B_TO_A, prefix,
                                 session);
  g_signal_connect (relay, "finished", G_CALLBACK (on_finished), f);
  zlt_relay_counted_start (relay);
  g_assert_cmpuint (zlt_session_get_active_connections (session), ==, 1);

  send_all (f->b_peer, "cd");
  at_a = receive (f->a_peer, 4, &eof);
  g_assert_cmpstr (at_a, ==, "abcd");
  send_all (f->a_peer, "x");
  at_b = receive (f->b_peer, 1, &eof);
  g_assert_cmpstr (at_b, ==, "x");
  ZLT_TEST_WAIT_FOR (zlt_session_get_bytes_in (session) == 4, WAIT_MS);
  ZLT_TEST_WAIT_FOR (zlt_session_get_bytes_out (session) == 1, WAIT_MS);

  zlt_relay_close (relay);
  g_assert_true (f->finished);
  g_assert_true (f->error_set);
  g_assert_cmpuint (f->active_in_handler, ==, 1);
  g_assert_cmpuint (zlt_session_get_active_connections (session), ==, 0);
  zlt_relay_close (relay); /* a second close counts nothing */
  g_assert_cmpuint (zlt_session_get_active_connections (session), ==, 0);
  g_assert_cmpuint (zlt_session_get_total_connections (session), ==, 1);
}

/* A relay closed before it started was never a connection: nothing is counted. */
static void
test_close_before_start (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltService) service = zlt_service_new ("web", ZLT_PROTOCOL_TCP, 80, ZLT_EXPOSE_PUBLIC);
  g_autoptr (ZltRelay) relay = NULL;

  f->books = G_OBJECT (service);
  relay = zlt_relay_counted_new (G_IO_STREAM (f->a), G_IO_STREAM (f->b), ZLT_RELAY_A_TO_B, NULL,
                                 service);
  g_signal_connect (relay, "finished", G_CALLBACK (on_finished), f);
  zlt_relay_close (relay);
  g_assert_true (f->finished);
  zlt_relay_counted_start (relay);
  g_assert_cmpuint (zlt_service_get_active_connections (service), ==, 0);
  g_assert_cmpuint (zlt_service_get_total_connections (service), ==, 0);
}

static guint
count_fds (void)
{
  DIR *dir = opendir ("/proc/self/fd");
  struct dirent *entry;
  guint n = 0;

  g_assert_nonnull (dir);
  while ((entry = readdir (dir)) != NULL)
    if (entry->d_name[0] != '.')
      n++;
  closedir (dir);
  return n;
}

static guint
parked (ZltTestHarness *h)
{
  return zlt_agent_get_n_standby (h->agent) + zlt_server_get_n_standby (h->server);
}

/* Through a real server and agent, on standby connections (@data TRUE) or on the
 * Connect path: once the connections ended, every relay is gone on both ends and so
 * are its sockets (a parked standby connection is one socket on each end). */
static void
test_tunnel_releases (gconstpointer data)
{
  gboolean standby = GPOINTER_TO_INT (data);
  ZltTestHarness h;
  ZltTestTransfer t = { 0 };
  ZltService *service;
  GThread *thread;
  guint16 port;
  guint baseline, parked_before;

  zlt_test_harness_init (&h, "29150-29199");
  if (!standby)
    g_key_file_set_integer (h.agent_keyfile, "agent", "standby-connections", 0);
  zlt_test_harness_start_server (&h);
  zlt_test_harness_add_service (&h, "echo", zlt_test_echo_get_port (h.echo), 0);
  zlt_test_harness_start_agent (&h);
  port = zlt_test_harness_wait_registered (&h, "echo");
  service = zlt_tunnel_lookup_service (zlt_agent_get_tunnel (h.agent), "echo");
  if (standby)
    ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (h.server) > 0, 10000);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  baseline = count_fds ();
  parked_before = parked (&h);

  t.port = port;
  t.n_bytes = 4096;
  t.n_connections = 32;
  thread = zlt_test_transfer_start (&t);
  zlt_test_transfer_finish (thread, &t, 30000);
  g_assert_null (t.error);
  g_assert_true (t.ok);
  ZLT_TEST_WAIT_FOR (zlt_server_get_n_relays (h.server) == 0
                         && zlt_agent_get_n_relays (h.agent) == 0
                         && zlt_service_get_active_connections (service) == 0,
                     10000);
  g_assert_cmpuint (zlt_service_get_total_connections (service), ==, 32);
  if (standby)
    g_assert_cmpuint (zlt_server_get_n_standby_joins (h.server), >, 0);
  else
    g_assert_cmpuint (zlt_server_get_n_standby_joins (h.server), ==, 0);
  /* the data and public connections are closed, not held by relays nobody owns */
  ZLT_TEST_WAIT_FOR (count_fds () <= baseline + MAX (parked (&h), parked_before) - parked_before,
                     10000);
  zlt_test_harness_clear (&h);
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  zlt_init ();
  g_test_add ("/relay-counted/service", Fixture, NULL, fixture_setup, test_service,
              fixture_teardown);
  g_test_add ("/relay-counted/session", Fixture, NULL, fixture_setup, test_session,
              fixture_teardown);
  g_test_add ("/relay-counted/close-before-start", Fixture, NULL, fixture_setup,
              test_close_before_start, fixture_teardown);
  g_test_add_data_func ("/relay-counted/tunnel-releases/standby", GINT_TO_POINTER (TRUE),
                        test_tunnel_releases);
  g_test_add_data_func ("/relay-counted/tunnel-releases/connect", GINT_TO_POINTER (FALSE),
                        test_tunnel_releases);
  ret = g_test_run ();
  g_clear_object (&listener);
  g_clear_object (&listen_address);
  return ret;
}
