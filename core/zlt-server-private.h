/* zlt-server-private.h: what ZltServer and its per-connection peers share */
#pragma once

#include "zlt-channel.h"
#include "zlt-heartbeat.h"
#include "zlt-message.h"
#include "zlt-quota.h"
#include "zlt-resume-book.h"
#include "zlt-server.h"

G_BEGIN_DECLS

#define ZLT_TYPE_SERVER_PEER (zlt_server_peer_get_type ())
G_DECLARE_FINAL_TYPE (ZltServerPeer, zlt_server_peer, ZLT, SERVER_PEER, GObject)

ZltServerPeer *zlt_server_peer_new (ZltServer *server, ZltChannel *channel);
ZltTunnel *zlt_server_peer_get_tunnel (ZltServerPeer *self);
ZltGrant *zlt_server_peer_get_grant (ZltServerPeer *self);
/* NULL for a v1 peer: it has no data plane */
const guint8 *zlt_server_peer_get_session_key (ZltServerPeer *self);
guint32 zlt_server_peer_get_caps (ZltServerPeer *self);
/* the grant's name: whose quotas and names the peer's tunnel uses */
const char *zlt_server_peer_get_principal (ZltServerPeer *self);
/* monotonic µs after which the peer's access streams end; 0 for never */
gint64 zlt_server_peer_get_access_deadline (ZltServerPeer *self);
gboolean zlt_server_peer_send (ZltServerPeer *self, ZltMessage *msg);
/* The peer owes one more ConnectAck or ConnectFail (a standby connection was bound
 * without a Connect); such answers are never rate-limited. */
void zlt_server_peer_owe_answer (ZltServerPeer *self);
/* The STANDBY_MAX granted in AuthOk; 0 when the session has no standby connections. */
guint zlt_server_peer_get_standby_max (ZltServerPeer *self);
void zlt_server_peer_disconnect (ZltServerPeer *self, ZltReasonCode code, const char *reason);
void zlt_server_peer_recheck (ZltServerPeer *self);
/* Whether the agent's heartbeat is overdue (zlt_heartbeat_is_late()): its replicas rest. */
gboolean zlt_server_peer_is_late (ZltServerPeer *self);

/* server side services the peer calls */
void zlt_server_peer_ready (ZltServer *self, ZltServerPeer *peer);
void zlt_server_peer_gone (ZltServer *self, ZltServerPeer *peer, gboolean hold);
/* the peer turned late or on time again (zlt_server_peer_is_late()) */
void zlt_server_peer_late_changed (ZltServer *self, ZltServerPeer *peer);
gboolean zlt_server_open_service (ZltServer *self, ZltService *service, GError **error);
void zlt_server_close_service (ZltServer *self, ZltService *service);
/* routes a shared port's connections for @hostname to @service until it is closed;
 * FALSE when another service has it */
gboolean zlt_server_add_hostname (ZltServer *self, const char *hostname, ZltService *service);
void zlt_server_connect_failed (ZltServer *self, ZltServerPeer *peer, const ZltUuid *connection_id,
                                const char *reason);
ZltQuota *zlt_server_get_quota (ZltServer *self);
/* logs a failed login, a bounded number of times per minute whatever peers do */
void zlt_server_log_auth_failure (ZltServer *self, const char *peer, ZltReasonCode code,
                                  const char *reason);
/* the owner's limits for one service (from its Register), within the server's */
void zlt_server_set_service_limits (ZltServer *self, ZltService *service, guint max_connections,
                                    guint idle_timeout_s);
/* the peer's grant changed: what it no longer reaches ends */
void zlt_server_rights_changed (ZltServer *self, ZltServerPeer *peer);
/* closes every access stream a tunnel's client holds (its time to live ran out) */
void zlt_server_end_access (ZltServer *self, ZltTunnel *access_tunnel);

/* Tests: whether client addresses (PROTOCOL-v2.md §9) go to the agents that understand
 * them (the default), or to none, as from a server older than them. */
void zlt_server_set_send_addresses (ZltServer *self, gboolean send);
/* Tests: how many live relays splice (zero copy), and how many a token's bandwidth
 * limits hold (their public side is throttled). */
void zlt_server_count_relays (ZltServer *self, guint *n_zero_copy, guint *n_limited);
/* Tests: how long the shared ports wait for a connection to name its host. */
void zlt_server_set_host_sniff_timeout (ZltServer *self, guint timeout_ms);

/* v2 sessions that may come back (zlt-resume-book.h) */
ZltResumeBook *zlt_server_get_resume_book (ZltServer *self);

G_END_DECLS
