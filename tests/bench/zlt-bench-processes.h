/* zlt-bench-processes.h: zlt-bench --processes, the tunnel as it is deployed (the build
 * tree's `zlayer-tunnel server` and `zlayer-tunnel agent` as processes of their own),
 * measured beside a direct connection in the same run */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  gboolean quick;
  gboolean json;
  gboolean no_tls;
  const char *only;  /* metrics, comma-separated; NULL for all */
  const char *modes; /* direct, ws, wss (tunnel and tls mean ws and wss); NULL for all */
  const char *cli;   /* the zlayer-tunnel binary; NULL: the build tree's */
  gint runs;
  gint throughput_mib;
  gint ttfb_count;
  gint http_requests;
  gint http_connections;
  gint bulk_requests;
  gint idle;
  gint burst;
  double udp_step_s;
} BenchProcessOptions;

/* Checks @only and @modes; FALSE with @error naming the unknown item. */
gboolean bench_processes_check_options (const BenchProcessOptions *options, GError **error);
/* Runs the benchmark and prints its table (or JSON); the exit status: 0 when every
 * measurement succeeded, 1 when one failed. */
int bench_processes_run (const BenchProcessOptions *options);

G_END_DECLS
