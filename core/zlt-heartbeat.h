/* zlt-heartbeat.h: heartbeats and dead-peer detection for one control channel */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define ZLT_TYPE_HEARTBEAT (zlt_heartbeat_get_type ())
G_DECLARE_FINAL_TYPE (ZltHeartbeat, zlt_heartbeat, ZLT, HEARTBEAT, GObject)

ZltHeartbeat *zlt_heartbeat_new (guint interval_ms, guint timeout_ms);
void zlt_heartbeat_start (ZltHeartbeat *self);
void zlt_heartbeat_stop (ZltHeartbeat *self);
/* Any frame from the peer proves it is alive. */
void zlt_heartbeat_received (ZltHeartbeat *self);
/* A HeartbeatAck echoing @timestamp (Unix ms) gives the round-trip time. */
void zlt_heartbeat_acked (ZltHeartbeat *self, guint64 timestamp);
/* The same to the µs, for a v2 peer's HeartbeatAck echoing TIMESTAMP_US. */
void zlt_heartbeat_acked_us (ZltHeartbeat *self, guint64 timestamp_us);
/* Round-trip time of the last acknowledged heartbeat in µs, -1 before the first. */
gint64 zlt_heartbeat_get_latency_us (ZltHeartbeat *self);
/* Whether the peer is late: a heartbeat we sent got no frame back within a margin (a
 * quarter of the interval, 1 to 5 s); :late notifies when it changes. */
gboolean zlt_heartbeat_is_late (ZltHeartbeat *self);
guint zlt_heartbeat_get_interval_ms (ZltHeartbeat *self);
guint zlt_heartbeat_get_timeout_ms (ZltHeartbeat *self);

G_END_DECLS
