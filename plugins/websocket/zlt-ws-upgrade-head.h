/* zlt-ws-upgrade-head.h: the request head of a data or standby connection, read
 * without libsoup */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  ZLT_WS_HEAD_INCOMPLETE, /* could still become one of ours: more bytes are needed */
  ZLT_WS_HEAD_OURS,       /* a complete data or standby upgrade, in the form our agents send */
  ZLT_WS_HEAD_OTHER,      /* anything else (control upgrades, other paths, anything odd) */
} ZltWsHeadKind;

/* What a data or standby upgrade carries (PROTOCOL-v2.md §3, §6, §8); the strings are
 * the header values as given, NULL when absent. */
typedef struct
{
  gsize head_len; /* the request line and header lines, the empty line included */
  char *tunnel_id;
  char *connection_id;
  char *standby_id;
  char *mac;
  char *service;
} ZltWsUpgradeHead;

/* Looks at the first @len bytes a connection sent. OURS only for a head that libsoup
 * would parse the same way and that the listener's data path would take as far as the
 * server's verdict: "GET /tunnel/v1/data HTTP/1.1", CRLF line ends, one Host, Connection
 * naming "upgrade" and Upgrade naming "zlt-data/2", X-Zlt-Tunnel and X-Zlt-Mac, then
 * X-Zlt-Standby (without X-Zlt-Connection or X-Zlt-Service) or X-Zlt-Connection; no
 * X-Zlt-Probe, no body, no repeated header of these. Everything else is OTHER, and
 * INCOMPLETE stops once @max_head bytes are in (OTHER: libsoup refuses it). @head is
 * filled on OURS only. */
ZltWsHeadKind zlt_ws_upgrade_head_parse (const guint8 *data, gsize len, gsize max_head,
                                         ZltWsUpgradeHead *head);
void zlt_ws_upgrade_head_clear (ZltWsUpgradeHead *head);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (ZltWsUpgradeHead, zlt_ws_upgrade_head_clear)

G_END_DECLS
