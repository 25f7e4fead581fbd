/* test-net.c: socket helpers */
#include "config.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/net/nodelay-client-socket", test_nodelay_client_socket);
  g_test_add_func ("/net/parse-host-port", test_parse_host_port);
  return g_test_run ();
}
