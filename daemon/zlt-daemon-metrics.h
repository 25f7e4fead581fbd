/* zlt-daemon-metrics.h: the daemon's numbers for Prometheus, on a loopback HTTP port */
#pragma once

#include "zlt-daemon.h"

G_BEGIN_DECLS

#define ZLT_TYPE_DAEMON_METRICS (zlt_daemon_metrics_get_type ())
G_DECLARE_FINAL_TYPE (ZltDaemonMetrics, zlt_daemon_metrics, ZLT, DAEMON_METRICS, GObject)

/* Serves GET /metrics (Prometheus text format 0.0.4) on @listen ("HOST:PORT", host
 * 127.0.0.1 when omitted; port 0 picks one). Off unless [daemon] metrics-listen says. */
ZltDaemonMetrics *zlt_daemon_metrics_new (ZltDaemon *daemon, const char *listen, GError **error);
/* "HOST:PORT" actually bound */
const char *zlt_daemon_metrics_get_address (ZltDaemonMetrics *self);
/* The exposition itself, as GET /metrics answers it. */
char *zlt_daemon_metrics_render (ZltDaemonMetrics *self);

G_END_DECLS
