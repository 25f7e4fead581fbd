/* zlt-proxy-header.c: the ADDRESSES tag and the PROXY protocol header
 *
 * The ADDRESSES value (PROTOCOL-v2.md §9), 37 bytes:
 *
 *     u8  family               4 = IPv4, 6 = IPv6
 *     16  source address       the public client; IPv4 in the first 4 bytes, then zeros
 *     16  destination address  the server's end of the public connection
 *     u16 source port          big-endian
 *     u16 destination port
 *
 * The PROXY protocol (HAProxy's specification, versions 1 and 2): v1 is one line of
 * text, "PROXY TCP4 <src> <dst> <sport> <dport>\r\n" (TCP6 with IPv6 addresses, or
 * "PROXY UNKNOWN\r\n"); v2 is a 12-byte signature, version and command (0x21 PROXY,
 * 0x20 LOCAL), family and transport (0x11 TCP4, 0x21 TCP6, 0x12 UDP4, 0x22 UDP6, 0x00
 * with LOCAL), the length of what follows (u16), then source and destination addresses
 * and ports. */
#include "config.h"

#include <string.h>

#include "zlt-proxy-header.h"

static void
put_be16 (guint8 *out, guint16 v)
{
  out[0] = (guint8) (v >> 8);
  out[1] = (guint8) v;
}

static guint16
get_be16 (const guint8 *in)
{
  return (guint16) (in[0] << 8 | in[1]);
}

void
zlt_addresses_encode (const ZltAddresses *addresses, guint8 out[ZLT_ADDRESSES_SIZE])
{
  g_return_if_fail (addresses != NULL && out != NULL);

  out[0] = addresses->family;
  memcpy (out + 1, addresses->source, 16);
  memcpy (out + 17, addresses->destination, 16);
  put_be16 (out + 33, addresses->source_port);
  put_be16 (out + 35, addresses->destination_port);
}

void
zlt_addresses_decode (const guint8 in[ZLT_ADDRESSES_SIZE], ZltAddresses *addresses)
{
  g_return_if_fail (in != NULL && addresses != NULL);

  addresses->family = in[0];
  memcpy (addresses->source, in + 1, 16);
  memcpy (addresses->destination, in + 17, 16);
  addresses->source_port = get_be16 (in + 33);
  addresses->destination_port = get_be16 (in + 35);
}

gboolean
zlt_addresses_equal (const ZltAddresses *a, const ZltAddresses *b)
{
  g_return_val_if_fail (a != NULL && b != NULL, FALSE);

  return a->family == b->family && memcmp (a->source, b->source, 16) == 0
         && memcmp (a->destination, b->destination, 16) == 0 && a->source_port == b->source_port
         && a->destination_port == b->destination_port;
}

static gboolean
all_zero (const guint8 *data, gsize len)
{
  for (gsize i = 0; i < len; i++)
    if (data[i] != 0)
      return FALSE;
  return TRUE;
}

gboolean
zlt_addresses_is_valid (const ZltAddresses *addresses)
{
  g_return_val_if_fail (addresses != NULL, FALSE);

  switch (addresses->family)
    {
    case ZLT_ADDRESS_FAMILY_IPV4:
      return all_zero (addresses->source + 4, 12) && all_zero (addresses->destination + 4, 12);
    case ZLT_ADDRESS_FAMILY_IPV6:
      return TRUE;
    default:
      return FALSE;
    }
}

static GInetAddress *
inet_address (const ZltAddresses *addresses, const guint8 *bytes)
{
  return g_inet_address_new_from_bytes (bytes, addresses->family == ZLT_ADDRESS_FAMILY_IPV4
                                                   ? G_SOCKET_FAMILY_IPV4
                                                   : G_SOCKET_FAMILY_IPV6);
}

char *
zlt_addresses_to_string (const ZltAddresses *addresses)
{
  g_autoptr (GInetAddress) source = NULL;
  g_autoptr (GInetAddress) destination = NULL;
  g_autofree char *src = NULL;
  g_autofree char *dst = NULL;
  gboolean v6;

  g_return_val_if_fail (addresses != NULL, NULL);

  if (!zlt_addresses_is_valid (addresses))
    return g_strdup_printf ("(family %u)", addresses->family);
  v6 = addresses->family == ZLT_ADDRESS_FAMILY_IPV6;
  source = inet_address (addresses, addresses->source);
  destination = inet_address (addresses, addresses->destination);
  src = g_inet_address_to_string (source);
  dst = g_inet_address_to_string (destination);
  return g_strdup_printf ("%s%s%s:%u > %s%s%s:%u", v6 ? "[" : "", src, v6 ? "]" : "",
                          addresses->source_port, v6 ? "[" : "", dst, v6 ? "]" : "",
                          addresses->destination_port);
}

/* The 16 bytes of @address and its family; IPv4-mapped IPv6 as IPv4. */
static gboolean
address_bytes (GInetSocketAddress *address, guint8 out[16], ZltAddressFamily *family)
{
  GInetAddress *inet = g_inet_socket_address_get_address (address);
  const guint8 *bytes = g_inet_address_to_bytes (inet);
  static const guint8 v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

  memset (out, 0, 16);
  switch (g_inet_address_get_family (inet))
    {
    case G_SOCKET_FAMILY_IPV4:
      memcpy (out, bytes, 4);
      *family = ZLT_ADDRESS_FAMILY_IPV4;
      return TRUE;
    case G_SOCKET_FAMILY_IPV6:
      if (memcmp (bytes, v4_mapped, sizeof v4_mapped) == 0)
        {
          memcpy (out, bytes + 12, 4);
          *family = ZLT_ADDRESS_FAMILY_IPV4;
        }
      else
        {
          memcpy (out, bytes, 16);
          *family = ZLT_ADDRESS_FAMILY_IPV6;
        }
      return TRUE;
    default:
      return FALSE;
    }
}

gboolean
zlt_addresses_from_socket_addresses (GSocketAddress *source, GSocketAddress *destination,
                                     ZltAddresses *out)
{
  ZltAddressFamily source_family, destination_family;

  g_return_val_if_fail (out != NULL, FALSE);

  memset (out, 0, sizeof *out);
  if (!G_IS_INET_SOCKET_ADDRESS (source) || !G_IS_INET_SOCKET_ADDRESS (destination)
      || !address_bytes (G_INET_SOCKET_ADDRESS (source), out->source, &source_family)
      || !address_bytes (G_INET_SOCKET_ADDRESS (destination), out->destination, &destination_family)
      || source_family != destination_family)
    {
      memset (out, 0, sizeof *out);
      return FALSE;
    }
  out->family = (guint8) source_family;
  out->source_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (source));
  out->destination_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (destination));
  return TRUE;
}

gboolean
zlt_addresses_from_stream (GIOStream *stream, ZltAddresses *out)
{
  g_autoptr (GIOStream) base = NULL;
  g_autoptr (GSocketAddress) source = NULL;
  g_autoptr (GSocketAddress) destination = NULL;
  GSocketConnection *connection;

  g_return_val_if_fail (out != NULL, FALSE);

  memset (out, 0, sizeof *out);
  if (G_IS_TLS_CONNECTION (stream))
    g_object_get (stream, "base-io-stream", &base, NULL);
  else if (stream != NULL)
    base = g_object_ref (stream);
  if (!G_IS_SOCKET_CONNECTION (base))
    return FALSE;
  connection = G_SOCKET_CONNECTION (base);
  source = g_socket_connection_get_remote_address (connection, NULL);
  destination = g_socket_connection_get_local_address (connection, NULL);
  return zlt_addresses_from_socket_addresses (source, destination, out);
}

static GBytes *
header_v1 (ZltProtocol protocol, const ZltAddresses *addresses)
{
  g_autoptr (GInetAddress) source = NULL;
  g_autoptr (GInetAddress) destination = NULL;
  g_autofree char *src = NULL;
  g_autofree char *dst = NULL;
  char *line;

  if (addresses == NULL || protocol != ZLT_PROTOCOL_TCP)
    {
      line = g_strdup ("PROXY UNKNOWN\r\n");
      return g_bytes_new_take (line, strlen (line));
    }
  source = inet_address (addresses, addresses->source);
  destination = inet_address (addresses, addresses->destination);
  src = g_inet_address_to_string (source);
  dst = g_inet_address_to_string (destination);
  line = g_strdup_printf ("PROXY %s %s %s %u %u\r\n",
                          addresses->family == ZLT_ADDRESS_FAMILY_IPV4 ? "TCP4" : "TCP6", src, dst,
                          addresses->source_port, addresses->destination_port);
  return g_bytes_new_take (line, strlen (line));
}

static GBytes *
header_v2 (ZltProtocol protocol, const ZltAddresses *addresses)
{
  GByteArray *out = g_byte_array_sized_new (16 + 36);
  guint8 head[4];
  guint8 ports[4];
  guint size;

  g_byte_array_append (out, (const guint8 *) ZLT_PROXY_HEADER_V2_SIGNATURE,
                       ZLT_PROXY_HEADER_V2_SIGNATURE_SIZE);
  if (addresses == NULL)
    {
      /* LOCAL: the receiver uses the connection's own addresses */
      head[0] = 0x20;
      head[1] = 0x00;
      put_be16 (head + 2, 0);
      g_byte_array_append (out, head, sizeof head);
      return g_byte_array_free_to_bytes (out);
    }
  size = addresses->family == ZLT_ADDRESS_FAMILY_IPV4 ? 4 : 16;
  head[0] = 0x21; /* version 2, PROXY */
  head[1] = (guint8) ((addresses->family == ZLT_ADDRESS_FAMILY_IPV4 ? 0x10 : 0x20)
                      | (protocol == ZLT_PROTOCOL_UDP ? 0x02 : 0x01));
  put_be16 (head + 2, (guint16) (2 * size + 4));
  g_byte_array_append (out, head, sizeof head);
  g_byte_array_append (out, addresses->source, size);
  g_byte_array_append (out, addresses->destination, size);
  put_be16 (ports, addresses->source_port);
  put_be16 (ports + 2, addresses->destination_port);
  g_byte_array_append (out, ports, sizeof ports);
  return g_byte_array_free_to_bytes (out);
}

GBytes *
zlt_proxy_header_new (ZltProxyProtocol version, ZltProtocol protocol, const ZltAddresses *addresses)
{
  if (addresses != NULL && !zlt_addresses_is_valid (addresses))
    addresses = NULL;
  switch (version)
    {
    case ZLT_PROXY_PROTOCOL_V1:
      return header_v1 (protocol, addresses);
    case ZLT_PROXY_PROTOCOL_V2:
      return header_v2 (protocol, addresses);
    case ZLT_PROXY_PROTOCOL_NONE:
    default:
      return NULL;
    }
}
