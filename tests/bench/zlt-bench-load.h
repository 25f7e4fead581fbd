/* zlt-bench-load.h: what both benchmark modes share: small helpers, the local services
 * (sink, echo, HTTP responder, UDP echo) and the load generators. Plain POSIX sockets on
 * 127.0.0.1; every generator bounds itself in count and in time, so a job returns. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define BENCH_SOCKET_TIMEOUT_S 10
#define BENCH_THROUGHPUT_CHUNK (256 * 1024)
/* below the listen backlog of 10 that GSocketListener uses by default: bigger bursts
 * measure SYN retransmission timers instead of memory (see the burst metric) */
#define BENCH_IDLE_BATCH 8
/* the idle metric stops opening connections past this much RSS growth */
#define BENCH_IDLE_RSS_GUARD_KIB (1024 * 1024)
/* the body of a GET /bulk answer */
#define BENCH_BULK_BODY (1024 * 1024)
#define BENCH_UDP_PAYLOAD 1400

/* ---- small helpers ---- */

extern gboolean bench_verbose;

/* Starts the clock of bench_note() (else its first line does). */
void bench_clock_start (void);
/* A line on stderr with the time since the start, with --verbose only. */
void bench_note (const char *format, ...) G_GNUC_PRINTF (1, 2);
double bench_now_s (void);
/* Nearest-rank percentile of @n values (sorted in place); NAN when empty. */
double bench_percentile (double *values, guint n, double p);
/* Median of an array of doubles; NAN when empty. */
double bench_median (GArray *values);
/* This process's VmRSS in KiB, -1 when unreadable. */
gint64 bench_read_rss_kib (void);
char *bench_read_loadavg (void);
char *bench_read_cpu_model (void);
/* "-" for NAN, else @v with @decimals and @suffix. */
char *bench_fmt (double v, int decimals, const char *suffix);

/* ---- sockets ---- */

void bench_set_timeouts (int fd, int seconds);
void bench_set_nodelay (int fd);
/* A listening TCP socket on 127.0.0.1 (any port, written to @port); aborts on failure. */
int bench_listen_loopback (guint16 *port);
/* A blocking client socket with bounded waits; -1 with errno on failure. */
int bench_connect_loopback (guint16 port, gboolean nodelay);
gboolean bench_send_all (int fd, const void *data, gsize len);
gboolean bench_recv_all (int fd, void *data, gsize len);

/* ---- local services, each in threads of its own ---- */

typedef struct
{
  int sink_fd, echo_fd, http_fd, epoll_fd, udp_fd;
  guint16 sink_port, echo_port, http_port, udp_port;
  GThread *sink_thread, *echo_thread, *http_thread, *udp_thread;
  gint stop;
} BenchServices;

/* sink: reads to EOF, then answers with the byte count (8 bytes); echo: echoes (one
 * epoll thread, so idle connections cost it nothing); http: HTTP/1.1 keep-alive, a
 * 13-byte answer, or a BENCH_BULK_BODY one to GET /bulk; with @udp a UDP echo too. */
void bench_services_start (BenchServices *s, gboolean udp);
void bench_services_stop (BenchServices *s);

/* ---- load generators: each is a GThreadFunc taking its struct ---- */

/* One stream of @bytes (at most @cap_s) into the sink; checks the sink's count. */
typedef struct
{
  guint16 port;
  guint64 bytes;
  double cap_s;
  /* results */
  double gbps;
  guint64 sent;
  char *error;
} BenchThroughput;
gpointer bench_throughput_job (gpointer data);

/* @count sequential connections to the echo (at most @cap_s): connect, one byte, its
 * echo; the times in ms. */
typedef struct
{
  guint16 port;
  guint count;
  double cap_s;
  /* results */
  GArray *ms;
  char *error;
} BenchTtfb;
gpointer bench_ttfb_job (gpointer data);

/* Opens @count connections at once, sends a byte on each, waits for every echo. */
typedef struct
{
  guint16 port;
  guint count;
  /* results */
  double ms;
  char *error;
} BenchBurst;
gpointer bench_burst_job (gpointer data);

/* Keep-alive requests on @connections connections (threads), @requests in all or
 * @cap_s; with @bulk each asks GET /bulk and reads its BENCH_BULK_BODY bytes. */
typedef struct BenchHttp BenchHttp;
struct BenchHttp
{
  guint16 port;
  guint connections;
  guint requests;
  double cap_s;
  gboolean bulk;
  /* shared */
  GMutex lock;
  GCond cond;
  guint ready;
  gboolean go;
  gint remaining;
  double deadline;
  /* results */
  double rps;
  guint completed;
  char *error;
};
gpointer bench_http_job (gpointer data);

/* Opens @count connections to the echo, in batches, each exchanging one byte, and keeps
 * them in @fds (which the caller makes and closes); stops early at @cap_s or when this
 * process grew by BENCH_IDLE_RSS_GUARD_KIB. */
typedef struct
{
  guint16 port;
  guint count;
  double cap_s;
  /* results */
  GArray *fds;
  char *error;
  guint lost; /* set by bench_idle_check_job() */
} BenchIdle;
gpointer bench_idle_open_job (gpointer data);
/* How many of the connections in @fds no longer echo a byte (a path that dropped them
 * must not be measured as holding them): all are written first, then each is read. */
gpointer bench_idle_check_job (gpointer data);

/* The highest rate of BENCH_UDP_PAYLOAD-byte datagrams to a UDP echo at @port that comes
 * back with less than @max_loss lost: rates from @start_mbps doubling (or halving) until
 * the loss crosses the line, then bisected to 10 %; each step offers datagrams for
 * @step_s, at most @max_steps steps. */
typedef struct
{
  guint16 port;
  double start_mbps;
  double step_s;
  double max_loss;
  guint max_steps;
  /* results */
  double best_mbps;        /* 0 when even the lowest rate lost too much */
  gboolean sender_limited; /* the sender could not offer a higher rate */
  GString *steps;          /* "rate:loss%" per step, for --verbose and JSON */
  char *error;
} BenchUdp;
gpointer bench_udp_job (gpointer data);

G_END_DECLS
