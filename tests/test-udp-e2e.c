/* test-udp-e2e.c: UDP services through a real server and agent on loopback */
#include "config.h"

#include <string.h>

#include "zlt-test-util.h"

#define N_PEERS 4

/* A UDP echo service on 127.0.0.1, served from the main context. */
typedef struct
{
  GSocket *socket;
  GSource *source;
  guint16 port;
  guint datagrams;
} UdpEcho;

static gboolean
udp_echo_ready (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  UdpEcho *echo = user_data;
  static guint8 buf[65536];

  while (TRUE)
    {
      g_autoptr (GSocketAddress) from = NULL;
      gssize n = g_socket_receive_from (socket, &from, (char *) buf, sizeof buf, NULL, NULL);
      if (n < 0)
        break;
      echo->datagrams++;
      g_socket_send_to (socket, from, (const char *) buf, (gsize) n, NULL, NULL);
    }
  return G_SOURCE_CONTINUE;
}

static UdpEcho *
udp_echo_new (void)
{
  UdpEcho *echo = g_new0 (UdpEcho, 1);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;

  echo->socket
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, &error);
  g_assert_no_error (error);
  g_socket_set_blocking (echo->socket, FALSE);
  g_socket_bind (echo->socket, address, FALSE, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (echo->socket, &error);
  echo->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  echo->source = g_socket_create_source (echo->socket, G_IO_IN, NULL);
  g_source_set_callback (echo->source, (GSourceFunc) (void (*) (void)) udp_echo_ready, echo, NULL);
  g_source_attach (echo->source, NULL);
  return echo;
}

static void
udp_echo_free (UdpEcho *echo)
{
  g_source_destroy (echo->source);
  g_source_unref (echo->source);
  g_socket_close (echo->socket, NULL);
  g_object_unref (echo->socket);
  g_free (echo);
}

/* One public peer in its own thread: sends datagrams of the sizes the issue names,
 * each with a recognisable pattern, and checks every echo is its own, whole. */
typedef struct
{
  guint16 port;
  guint index;
  gboolean ipv6; /* the public port is on ::1 */
  gboolean ok;
  char *error;
  gint done;
} Peer;

static const gsize sizes[] = { 1, 1400, 8000, 65507 };

static gpointer
peer_thread (gpointer user_data)
{
  Peer *p = user_data;
  g_autoptr (GError) error = NULL;
  GSocketFamily family = p->ipv6 ? G_SOCKET_FAMILY_IPV6 : G_SOCKET_FAMILY_IPV4;
  g_autoptr (GSocket) socket
      = g_socket_new (family, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, &error);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (family);
  g_autoptr (GSocketAddress) server = g_inet_socket_address_new (lo, p->port);
  g_autofree guint8 *out = g_malloc (65507);
  g_autofree guint8 *in = g_malloc (65536);

  g_socket_set_timeout (socket, 1);
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      gboolean echoed = FALSE;

      for (gsize k = 0; k < sizes[i]; k++)
        out[k] = (guint8) (p->index * 31 + k * 7 + i);
      /* UDP may lose a datagram even on loopback: a bounded number of tries */
      for (guint attempt = 0; attempt < 10 && !echoed; attempt++)
        {
          gssize n;
          if (g_socket_send_to (socket, server, (const char *) out, sizes[i], NULL, &error) < 0)
            goto fail;
          n = g_socket_receive (socket, (char *) in, 65536, NULL, &error);
          if (n < 0)
            {
              if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
                goto fail;
              g_clear_error (&error);
              continue;
            }
          if ((gsize) n != sizes[i] || memcmp (in, out, sizes[i]) != 0)
            {
              p->error = g_strdup_printf ("peer %u: echo of %" G_GSIZE_FORMAT " bytes came back "
                                          "as %" G_GSSIZE_FORMAT " different bytes",
                                          p->index, sizes[i], n);
              goto out;
            }
          echoed = TRUE;
        }
      if (!echoed)
        {
          p->error = g_strdup_printf ("peer %u: no echo of %" G_GSIZE_FORMAT " bytes", p->index,
                                      sizes[i]);
          goto out;
        }
    }
  p->ok = TRUE;
  goto out;
fail:
  p->error = g_strdup (error->message);
out:
  g_atomic_int_set (&p->done, 1);
  return NULL;
}

/* @data: TRUE for IPv6 (server, agent and public peers on ::1) */
static void
test_udp_datagrams (gconstpointer data)
{
  gboolean ipv6 = GPOINTER_TO_INT (data);
  ZltTestHarness h;
  UdpEcho *echo = udp_echo_new ();
  Peer peers[N_PEERS] = { 0 };
  GThread *threads[N_PEERS];
  guint16 port;
  ZltService *service;

  zlt_test_use_ipv6 (ipv6);
  zlt_test_harness_init (&h, "32500-32599");
  g_key_file_set_integer (h.server_keyfile, "server", "udp-idle-timeout", 1);
  zlt_test_harness_start_server (&h);
  zlt_test_harness_add_service (&h, "game", echo->port, 0);
  g_key_file_set_string (h.agent_keyfile, "service:game", "protocol", "udp");
  zlt_test_harness_start_agent (&h);
  port = zlt_test_harness_wait_registered (&h, "game");
  service = zlt_registry_lookup_service_by_port (zlt_server_get_registry (h.server),
                                                 ZLT_PROTOCOL_UDP, port);
  g_assert_nonnull (service);
  g_assert_cmpint (zlt_service_get_protocol (service), ==, ZLT_PROTOCOL_UDP);

  for (guint i = 0; i < N_PEERS; i++)
    {
      peers[i].port = port;
      peers[i].index = i;
      peers[i].ipv6 = ipv6;
      threads[i] = g_thread_new ("udp-peer", peer_thread, &peers[i]);
    }
  for (guint i = 0; i < N_PEERS; i++)
    {
      ZLT_TEST_WAIT_FOR (g_atomic_int_get (&peers[i].done), 60000);
      g_thread_join (threads[i]);
      g_assert_null (peers[i].error);
      g_assert_true (peers[i].ok);
    }
  /* one flow per public peer, each its own connection through the tunnel */
  g_assert_cmpuint (zlt_service_get_total_connections (service), >=, N_PEERS);
  zlt_service_flush_notify (service);
  g_assert_cmpuint (zlt_service_get_bytes_in (service), >=, 1 + 1400 + 8000 + 65507);

  /* idle flows end by themselves (udp-idle-timeout=1 s), both sides of the tunnel */
  ZLT_TEST_WAIT_FOR (zlt_service_get_active_connections (service) == 0
                         && zlt_server_get_n_relays (h.server) == 0
                         && zlt_agent_get_n_relays (h.agent) == 0,
                     10000);

  zlt_test_harness_clear (&h);
  zlt_test_use_ipv6 (FALSE);
  udp_echo_free (echo);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  zlt_init ();
  g_test_add_data_func ("/udp-e2e/datagrams-several-peers", GINT_TO_POINTER (FALSE),
                        test_udp_datagrams);
  g_test_add_data_func ("/udp-e2e/datagrams-several-peers/ipv6", GINT_TO_POINTER (TRUE),
                        test_udp_datagrams);
  return g_test_run ();
}
