/* test-net.c: socket helpers */
#include "config.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/net/nodelay-client-socket", test_nodelay_client_socket);
  g_test_add_func ("/net/parse-host-port", test_parse_host_port);
  g_test_add_func ("/net/dial", test_dial);
  return g_test_run ();
}
