/* zlt-host-sniff.h: the hostname a public connection asks for, read from its first
 * bytes (an HTTP request's Host header, a TLS ClientHello's server_name), and the
 * hostname patterns a server and a token allow */
#pragma once

#include <glib.h>

#include "zlt-grant.h"

G_BEGIN_DECLS

/* the longest request head the shared HTTP port reads before it gives up */
#define ZLT_SNIFF_HTTP_MAX (16 * 1024)
/* the longest ClientHello (its handshake header included) the shared TLS port
 * reassembles from the records it came in */
#define ZLT_SNIFF_TLS_HELLO_MAX (16 * 1024)
/* the most bytes the shared TLS port reads for it, record headers included (a hello
 * cut into records of under 5 bytes each can be refused) */
#define ZLT_SNIFF_TLS_MAX (32 * 1024)
/* a DNS name, without the trailing dot */
#define ZLT_HOSTNAME_MAX 253

typedef enum
{
  ZLT_SNIFF_NEED_MORE, /* no verdict yet: read more */
  ZLT_SNIFF_FOUND,     /* *host is set */
  ZLT_SNIFF_NO_HOST,   /* complete, but it names no (valid) host */
  ZLT_SNIFF_TOO_LARGE, /* past the bound without a verdict */
  ZLT_SNIFF_BAD,       /* not HTTP / not a TLS ClientHello */
} ZltSniffResult;

/* The Host header of the request head in @data (up to its empty line), port stripped,
 * lowercased. */
ZltSniffResult zlt_sniff_http_host (const guint8 *data, gsize len, char **host);
/* The host_name of the server_name extension of the ClientHello that the TLS records
 * at the start of @data carry (one record or several), lowercased. */
ZltSniffResult zlt_sniff_tls_sni (const guint8 *data, gsize len, char **host);

/* @len bytes of @name as a hostname: letters, digits, '-' in labels of 1 to 63 bytes
 * (also '_', seen in practice), at most 253 bytes, one trailing dot dropped;
 * lowercased. NULL when it is not one. */
char *zlt_hostname_normalize (const char *name, gssize len);
/* zlt_hostname_pattern_is_valid(), zlt_hostname_pattern_matches(): zlt-grant.h */
gboolean zlt_hostname_patterns_match (const char *const *patterns, const char *host);

G_END_DECLS
