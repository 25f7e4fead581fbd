/* test-net.c: socket helpers */
#include "config.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>

#include "zlayer-tunnel.h"

/* GSocketClient's sockets report the "default" protocol: Nagle must still go off */
static void
test_nodelay_client_socket (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketListener) listener = g_socket_listener_new ();
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) connection = NULL;
  guint16 port;
  gint value = 0;

  port = g_socket_listener_add_any_inet_port (listener, NULL, &error);
  g_assert_no_error (error);
  g_socket_client_set_enable_proxy (client, FALSE);
  connection = g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, &error);
  g_assert_no_error (error);
  g_socket_get_option (g_socket_connection_get_socket (connection), IPPROTO_TCP, TCP_NODELAY,
                       &value, &error);
  g_assert_no_error (error);
  g_assert_cmpint (value, ==, 0);
  zlt_net_set_nodelay (connection);
  g_socket_get_option (g_socket_connection_get_socket (connection), IPPROTO_TCP, TCP_NODELAY,
                       &value, &error);
  g_assert_no_error (error);
  g_assert_cmpint (value, !=, 0);
}

static void
test_parse_host_port (void)
{
  g_autofree char *host = NULL;
  guint16 port = 0;
  g_autoptr (GError) error = NULL;

  g_assert_true (zlt_net_parse_host_port ("[::1]:3679", "0.0.0.0", &host, &port, NULL));
  g_assert_cmpstr (host, ==, "::1");
  g_assert_cmpuint (port, ==, 3679);
  g_clear_pointer (&host, g_free);
  g_assert_true (zlt_net_parse_host_port (":80", "0.0.0.0", &host, &port, NULL));
  g_assert_cmpstr (host, ==, "0.0.0.0");
  g_assert_false (zlt_net_parse_host_port ("::1:80", "0.0.0.0", NULL, NULL, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
}

static void
on_dialed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

/* Dials @address (waiting up to 10 s) and returns the result. */
static GSocketConnection *
dial (GSocketAddress *address, GCancellable *cancellable, GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  zlt_net_dial_async (address, 5, cancellable, on_dialed, &result);
  while (result == NULL && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_nonnull (result);
  return zlt_net_dial_finish (result, error);
}

/* An address is dialed with one connect(): connected (Nagle off, a blocking socket as
 * GSocketClient leaves it), refused with the address in the message, or cancelled. */
static void
test_dial (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketListener) listener = g_socket_listener_new ();
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) open = NULL;
  g_autoptr (GSocketAddress) closed = NULL;
  g_autoptr (GSocketConnection) connection = NULL;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GSocket) probe = NULL;
  g_autoptr (GSocketAddress) bound = NULL;
  guint16 port;
  gint value = 0;

  port = g_socket_listener_add_any_inet_port (listener, NULL, &error);
  g_assert_no_error (error);
  open = g_inet_socket_address_new (lo, port);
  connection = dial (open, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_connection_is_connected (connection));
  g_assert_true (g_socket_get_blocking (g_socket_connection_get_socket (connection)));
  g_socket_get_option (g_socket_connection_get_socket (connection), IPPROTO_TCP, TCP_NODELAY,
                       &value, &error);
  g_assert_no_error (error);
  g_assert_cmpint (value, !=, 0);

  /* a port nothing listens on: bound, then closed */
  probe = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  closed = g_inet_socket_address_new (lo, 0);
  g_socket_bind (probe, closed, FALSE, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (probe, &error);
  g_assert_no_error (error);
  g_socket_close (probe, NULL);
  g_assert_null (dial (bound, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
  g_assert_nonnull (strstr (error->message, "127.0.0.1:"));
  g_clear_error (&error);

  g_cancellable_cancel (cancellable);
  g_assert_null (dial (open, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static guint
next_source_id (void)
{
  GSource *source = g_idle_source_new ();
  guint id = g_source_attach (source, NULL);

  g_source_destroy (source);
  g_source_unref (source);
  return id;
}

/* On loopback the handshake is done when connect() returns: the dial completes at
 * the next iteration, never inside the call, and attaches no watch of its own (only
 * its task's completion). */
static void
test_dial_loopback_at_once (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketListener) listener = g_socket_listener_new ();
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) open = NULL;
  g_autoptr (GAsyncResult) result = NULL;
  g_autoptr (GSocketConnection) connection = NULL;
  guint16 port;
  guint first;
  guint made;

  port = g_socket_listener_add_any_inet_port (listener, NULL, &error);
  g_assert_no_error (error);
  open = g_inet_socket_address_new (lo, port);
  first = next_source_id ();
  zlt_net_dial_async (open, 5, NULL, on_dialed, &result);
  made = next_source_id () - first - 1;
  g_assert_null (result);
  g_assert_cmpuint (made, <=, 1);
  g_main_context_iteration (NULL, FALSE);
  g_assert_nonnull (result);
  connection = zlt_net_dial_finish (result, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_connection_is_connected (connection));
}

/* A connect that stays pending (the listener's queue is full, so its SYNs are
 * dropped) is waited for, and gives up after the timeout. */
static void
test_dial_timeout (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) address = NULL;
  g_autoptr (GSocket) listener = NULL;
  g_autoptr (GPtrArray) fillers = g_ptr_array_new_with_free_func (g_object_unref);
  gint64 start;

  listener
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_bind (listener, any, FALSE, &error);
  g_assert_no_error (error);
  g_socket_set_listen_backlog (listener, 0);
  g_socket_listen (listener, &error);
  g_assert_no_error (error);
  address = g_socket_get_local_address (listener, &error);
  g_assert_no_error (error);
  /* fill the accept queue (never accepted) until a connect stays pending */
  for (guint i = 0; i < 8; i++)
    {
      g_autoptr (GSocket) filler = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                                 G_SOCKET_PROTOCOL_TCP, &error);
      struct pollfd pfd;

      g_assert_no_error (error);
      g_socket_set_blocking (filler, FALSE);
      if (!g_socket_connect (filler, address, NULL, &error))
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PENDING);
          g_clear_error (&error);
        }
      pfd = (struct pollfd){ .fd = g_socket_get_fd (filler), .events = POLLOUT };
      g_ptr_array_add (fillers, g_steal_pointer (&filler));
      if (poll (&pfd, 1, 0) == 0)
        break;
    }
  start = g_get_monotonic_time ();
  {
    g_autoptr (GAsyncResult) result = NULL;
    gint64 deadline = start + 10 * G_USEC_PER_SEC;

    zlt_net_dial_async (address, 1, NULL, on_dialed, &result);
    while (result == NULL && g_get_monotonic_time () < deadline)
      g_main_context_iteration (NULL, TRUE);
    g_assert_nonnull (result);
    g_assert_null (zlt_net_dial_finish (result, &error));
  }
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, G_USEC_PER_SEC / 2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/net/nodelay-client-socket", test_nodelay_client_socket);
  g_test_add_func ("/net/parse-host-port", test_parse_host_port);
  g_test_add_func ("/net/dial", test_dial);
  g_test_add_func ("/net/dial-loopback-at-once", test_dial_loopback_at_once);
  g_test_add_func ("/net/dial-timeout", test_dial_timeout);
  return g_test_run ();
}
