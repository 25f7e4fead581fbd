/* zlt-udp-util.h: what the UDP flows, listener and transport share */
#pragma once

#include <sys/socket.h>

#include "zlt-plugin.h"

G_BEGIN_DECLS

/* Largest payload of one datagram (IPv4: 65535 - 20 - 8), PROTOCOL-v2.md §5. */
#define ZLT_UDP_MAX_DATAGRAM 65507
/* One receive buffer: a datagram never exceeds it, so nothing is truncated unseen. */
#define ZLT_UDP_RECV_BUFFER 65536
/* Datagrams taken from a socket per main-loop dispatch before letting others run. */
#define ZLT_UDP_RECV_BATCH 64
/* Datagrams taken per recvmmsg() where there is one: as many receive buffers (the
 * listener's and each thread's scratch hold that many; only the pages datagrams land
 * on are touched). */
#define ZLT_UDP_RECV_MMSG 8
/* A flow's inbound queue: whichever bound is reached first, later datagrams are dropped. */
#define ZLT_UDP_QUEUE_MAX_DATAGRAMS 256
#define ZLT_UDP_QUEUE_MAX_BYTES (1024 * 1024)
#define ZLT_UDP_DEFAULT_IDLE_TIMEOUT_MS 60000
#define ZLT_UDP_DEFAULT_MAX_FLOWS 1024
/* What all of a listener's flows may queue together: many peers filling their queues
 * while no data connection drains them must not take max-flows × 1 MiB. */
#define ZLT_UDP_DEFAULT_LISTENER_MAX_QUEUED (64 * 1024 * 1024)
/* Asked for on every socket; the kernel caps it at net.core.[rw]mem_max. */
#define ZLT_UDP_SOCKET_BUFFER (4 * 1024 * 1024)

/* A peer's address reduced to what identifies it, for hashing: all bytes are set
 * (unused ones zero), so keys compare with memcmp. */
typedef struct
{
  guint16 family;
  guint16 port; /* network order */
  guint32 scope_id;
  guint8 addr[16];
} ZltUdpPeerKey;

gboolean zlt_udp_peer_key_init (ZltUdpPeerKey *key, const struct sockaddr *sa, socklen_t len);
guint zlt_udp_peer_key_hash (gconstpointer key);
gboolean zlt_udp_peer_key_equal (gconstpointer a, gconstpointer b);

/* Enlarges the socket's kernel buffers as far as allowed; failure is not an error. */
void zlt_udp_socket_set_buffers (GSocket *socket);

/* A receive buffer of ZLT_UDP_RECV_BUFFER bytes per thread, for dialed flows. */
guint8 *zlt_udp_scratch_get (void);

/* Whether a send error is a lost datagram (full buffer, unreachable peer) rather than a
 * broken socket: UDP drops and goes on. */
gboolean zlt_udp_errno_is_drop (int errsv);

G_END_DECLS
