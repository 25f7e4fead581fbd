/* zlt-udp-util.c: peer keys, socket buffers and the per-thread receive buffer */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "zlt-udp-util.h"

gboolean
zlt_udp_peer_key_init (ZltUdpPeerKey *key, const struct sockaddr *sa, socklen_t len)
{
  memset (key, 0, sizeof *key);
  if (sa->sa_family == AF_INET && len >= (socklen_t) sizeof (struct sockaddr_in))
    {
      const struct sockaddr_in *sin = (const struct sockaddr_in *) sa;

      key->family = AF_INET;
      key->port = sin->sin_port;
      memcpy (key->addr, &sin->sin_addr, sizeof sin->sin_addr);
      return TRUE;
    }
  if (sa->sa_family == AF_INET6 && len >= (socklen_t) sizeof (struct sockaddr_in6))
    {
      const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) sa;

      key->family = AF_INET6;
      key->port = sin6->sin6_port;
      key->scope_id = sin6->sin6_scope_id;
      memcpy (key->addr, &sin6->sin6_addr, sizeof sin6->sin6_addr);
      return TRUE;
    }
  return FALSE;
}

guint
zlt_udp_peer_key_hash (gconstpointer key)
{
  const guint8 *p = key;
  guint32 h = 2166136261u; /* FNV-1a */

  for (gsize i = 0; i < sizeof (ZltUdpPeerKey); i++)
    h = (h ^ p[i]) * 16777619u;
  return h;
}

gboolean
zlt_udp_peer_key_equal (gconstpointer a, gconstpointer b)
{
  return memcmp (a, b, sizeof (ZltUdpPeerKey)) == 0;
}

void
zlt_udp_socket_set_buffers (GSocket *socket)
{
  g_socket_set_option (socket, SOL_SOCKET, SO_RCVBUF, ZLT_UDP_SOCKET_BUFFER, NULL);
  g_socket_set_option (socket, SOL_SOCKET, SO_SNDBUF, ZLT_UDP_SOCKET_BUFFER, NULL);
}

static GPrivate scratch_key = G_PRIVATE_INIT (g_free);

guint8 *
zlt_udp_scratch_get (void)
{
  guint8 *scratch = g_private_get (&scratch_key);

  if (scratch == NULL)
    {
      scratch = g_malloc ((gsize) ZLT_UDP_RECV_MMSG * ZLT_UDP_RECV_BUFFER);
      g_private_set (&scratch_key, scratch);
    }
  return scratch;
}

gboolean
zlt_udp_errno_is_drop (int errsv)
{
  switch (errsv)
    {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case ENOBUFS:
    case ENOMEM:
    case EMSGSIZE:
    case ECONNREFUSED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:
    case EPERM: /* a firewall rule */
      return TRUE;
    default:
      return FALSE;
    }
}
