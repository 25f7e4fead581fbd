/* zlt-proxy-header.h: a public connection's addresses (the ADDRESSES tag) and the PROXY
 * protocol header an agent writes to a service from them (PROTOCOL-v2.md §9) */
#pragma once

#include <gio/gio.h>

#include "zlt-message.h"
#include "zlt-types.h"

G_BEGIN_DECLS

/* The longest header: v1 allows 107 bytes (TCP6 with the longest addresses and ports);
 * v2 with IPv6 addresses takes 16 + 36 = 52. */
#define ZLT_PROXY_HEADER_V1_MAX 107
#define ZLT_PROXY_HEADER_V2_SIGNATURE "\r\n\r\n\0\r\nQUIT\n"
#define ZLT_PROXY_HEADER_V2_SIGNATURE_SIZE 12

/* The ADDRESSES value, as on the wire: family, source, destination, source port,
 * destination port (ports big-endian). */
void zlt_addresses_encode (const ZltAddresses *addresses, guint8 out[ZLT_ADDRESSES_SIZE]);
void zlt_addresses_decode (const guint8 in[ZLT_ADDRESSES_SIZE], ZltAddresses *addresses);
/* Field by field (the struct has padding). */
gboolean zlt_addresses_equal (const ZltAddresses *a, const ZltAddresses *b);
/* A known family, and for IPv4 the unused 12 bytes of each address zero. */
gboolean zlt_addresses_is_valid (const ZltAddresses *addresses);
/* "203.0.113.7:51234 > 198.51.100.1:8080", "[::1]:51234 > [::1]:8080", for logs */
char *zlt_addresses_to_string (const ZltAddresses *addresses);

/* The two ends of a TCP connection; IPv4-mapped IPv6 addresses (a dual-stack listener)
 * become IPv4. FALSE when either is not an internet address, or their families differ. */
gboolean zlt_addresses_from_socket_addresses (GSocketAddress *source, GSocketAddress *destination,
                                              ZltAddresses *out);
/* The same for a connection accepted by the server: @stream is a GSocketConnection, or
 * a GTlsConnection over one; source = its peer, destination = its local end. */
gboolean zlt_addresses_from_stream (GIOStream *stream, ZltAddresses *out);

/* The PROXY protocol header for a connection of @protocol between @addresses (NULL, or
 * not valid: the address is unknown): v1 "PROXY TCP4 ...\r\n" or "PROXY UNKNOWN\r\n", v2
 * the binary header with PROXY, or LOCAL and no address. NULL for ZLT_PROXY_PROTOCOL_NONE.
 * v1 has no UDP form: it says UNKNOWN. */
GBytes *zlt_proxy_header_new (ZltProxyProtocol version, ZltProtocol protocol,
                              const ZltAddresses *addresses);

G_END_DECLS
