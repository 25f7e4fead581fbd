/* zlt-test-util.h: what the end-to-end tests share: waiting on conditions, loopback
 * echo servers, blocking clients in threads, and a server + agent harness */
#pragma once

#include <libsoup/soup.h>

#include "zlayer-tunnel.h"

G_BEGIN_DECLS

/* Spins the thread-default main context until @expr holds, failing the test after
 * @timeout_ms. A 20 ms tick keeps re-checking conditions that no event announces
 * (a thread finishing); otherwise the context wakes on the events themselves. */
#define ZLT_TEST_WAIT_FOR(expr, timeout_ms)                                                        \
  G_STMT_START                                                                                     \
  {                                                                                                \
    gint64 _deadline = g_get_monotonic_time () + (gint64) (timeout_ms) *1000;                      \
    GSource *_tick = g_timeout_source_new (20);                                                    \
    g_source_set_callback (_tick, zlt_test_tick, NULL, NULL);                                      \
    g_source_attach (_tick, g_main_context_get_thread_default ());                                 \
    while (!(expr) && g_get_monotonic_time () < _deadline)                                         \
      g_main_context_iteration (g_main_context_get_thread_default (), TRUE);                       \
    g_source_destroy (_tick);                                                                      \
    g_source_unref (_tick);                                                                        \
    if (!(expr))                                                                                   \
      g_error ("timed out after %u ms waiting for: %s", (guint) (timeout_ms), #expr);              \
  }                                                                                                \
  G_STMT_END
gboolean zlt_test_tick (gpointer data);

/* A TCP echo service on 127.0.0.1: echoes every byte, and when the client half-closes,
 * finishes echoing and half-closes too. */
typedef struct _ZltTestEcho ZltTestEcho;
ZltTestEcho *zlt_test_echo_new (void);
guint16 zlt_test_echo_get_port (ZltTestEcho *echo);
guint zlt_test_echo_get_n_accepted (ZltTestEcho *echo);
void zlt_test_echo_free (ZltTestEcho *echo);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ZltTestEcho, zlt_test_echo_free)

/* Whether the harness (server, agent URL, public ports) and the test clients use ::1
 * instead of 127.0.0.1; the local services stay on 127.0.0.1. */
void zlt_test_use_ipv6 (gboolean ipv6);
const char *zlt_test_loopback (void);

/* A port on 127.0.0.1 that nothing listens on (bound, then closed). */
guint16 zlt_test_closed_port (void);

/* Blocking client work run in a thread while the main thread spins the loop. */
typedef struct
{
  guint16 port;
  gsize n_bytes; /* random bytes to send before half-closing */
  guint n_connections;
  /* results */
  gboolean ok;
  gsize received;
  char *error;
  gint done;
} ZltTestTransfer;

/* Sends n_bytes of random data on each of n_connections connections opened at once,
 * half-closes, reads until EOF and checks the echo byte for byte (SHA-256). */
GThread *zlt_test_transfer_start (ZltTestTransfer *transfer);
/* Joins the thread, spinning the main context meanwhile. */
void zlt_test_transfer_finish (GThread *thread, ZltTestTransfer *transfer, guint timeout_ms);

/* Connects to 127.0.0.1:@port and reports whether the peer closes the connection
 * (EOF or reset) before any byte arrives, in a thread. */
gboolean zlt_test_expect_closed (guint16 port, guint timeout_ms);
/* Whether a TCP connect to 127.0.0.1:@port is refused. */
gboolean zlt_test_connect_refused (guint16 port);

/* A server and an agent on loopback with a token file, built from real plugins. */
typedef struct
{
  char *tmpdir;
  char *token;
  char *token_file;       /* the server's file of hashes */
  char *agent_token_file; /* the agent's token */
  GKeyFile *server_keyfile;
  GKeyFile *agent_keyfile;
  ZltPluginLoader *loader;
  ZltServer *server;
  ZltAgent *agent;
  ZltTestEcho *echo;
} ZltTestHarness;

/* Fills the keyfiles with loopback defaults; tests may edit them before starting. */
void zlt_test_harness_init (ZltTestHarness *h, const char *port_range);
/* Writes a token-file line (hash plus optional fields) for a new token; returns it. */
char *zlt_test_harness_add_token (ZltTestHarness *h, const char *fields);
void zlt_test_harness_start_server (ZltTestHarness *h);
void zlt_test_harness_stop_server (ZltTestHarness *h);
/* Adds [service:NAME] pointing at @local_port. */
void zlt_test_harness_add_service (ZltTestHarness *h, const char *name, guint16 local_port,
                                   guint16 remote_port);
void zlt_test_harness_start_agent (ZltTestHarness *h);
/* Replaces the token the agent presents (its token file) before start_agent. */
void zlt_test_harness_set_agent_token (ZltTestHarness *h, const char *token);
/* Points the agent at @url ([agent] server) instead of the harness's server. */
void zlt_test_harness_set_agent_url (ZltTestHarness *h, const char *url);
/* Waits until the agent registered @name and returns its public port. */
guint16 zlt_test_harness_wait_registered (ZltTestHarness *h, const char *name);
ZltTunnel *zlt_test_harness_server_tunnel_of (ZltTestHarness *h, const char *name);
void zlt_test_harness_clear (ZltTestHarness *h);

/* A self-signed certificate for 127.0.0.1/localhost made with certtool, in @dir. */
gboolean zlt_test_make_certificate (const char *dir, char **cert_file, char **key_file);

/* ---- raw clients: what a peer we do not control sends ---- */

/* A raw WebSocket client of the control channel (libsoup 3), for crafted frames.
 * Received messages queue up; Heartbeats from the server are answered at once (and
 * left out of the queue) unless auto-ack is turned off. */
typedef struct _ZltTestWs ZltTestWs;
/* Connects to ws://127.0.0.1:@port@path and waits for the upgrade. */
ZltTestWs *zlt_test_ws_connect (guint16 port, const char *path);
/* The same, returning NULL and the error when the upgrade fails, with the HTTP
 * status in @status (optional). */
ZltTestWs *zlt_test_ws_try_connect (guint16 port, const char *path, guint *status, GError **error);
void zlt_test_ws_set_auto_ack (ZltTestWs *ws, gboolean auto_ack);
/* The 32 raw bytes of the upgrade's X-Zlt-Nonce header, NULL when there was none. */
GBytes *zlt_test_ws_get_nonce (ZltTestWs *ws);
void zlt_test_ws_send (ZltTestWs *ws, const void *data, gsize len);
void zlt_test_ws_send_bytes (ZltTestWs *ws, GBytes *bytes);
void zlt_test_ws_send_text (ZltTestWs *ws, const char *text);
/* Encodes @msg (asserting it encodes) and sends it as one binary message. */
void zlt_test_ws_send_message (ZltTestWs *ws, const ZltMessage *msg);
/* The next binary message, waiting up to @timeout_ms; NULL once the connection is
 * closed and the queue is empty (fails the test on timeout). */
GBytes *zlt_test_ws_next (ZltTestWs *ws, guint timeout_ms);
/* The next message, which must be exactly one frame of @type; returns it decoded and,
 * in @raw (optional), its bytes. Fails the test otherwise. */
ZltMessage *zlt_test_ws_expect (ZltTestWs *ws, ZltMessageType type, GBytes **raw, guint timeout_ms);
/* Waits until the connection is closed; returns the close code the server sent. */
gushort zlt_test_ws_wait_closed (ZltTestWs *ws, guint timeout_ms);
gboolean zlt_test_ws_is_closed (ZltTestWs *ws);
guint zlt_test_ws_get_n_queued (ZltTestWs *ws);
/* Closes (if open) and frees. */
void zlt_test_ws_free (ZltTestWs *ws);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ZltTestWs, zlt_test_ws_free)

/* Sends a v2 Auth for @token (challenge proof, @caps, and ACCESS_TTL when @access_ttl
 * is not negative) and returns the reply, AuthOk or AuthFail (fails the test on
 * anything else). An AuthOk's server proof is checked, and @session_key (optional)
 * gets the session's key. */
ZltMessage *zlt_test_ws_v2_auth (ZltTestWs *ws, const char *token, guint32 caps, gint64 access_ttl,
                                 guint8 *session_key);

/* A peer that signs in and then never reads its socket again, in a thread (blocking
 * I/O, ws:// or wss:// with any certificate accepted): it logs in as a v2 client of
 * @token, optionally registers @register_name (whatever bytes it holds), then sends
 * messages of @n_heartbeats Heartbeat frames each until the server drops it, until
 * @max_messages were sent, or (for the caller) until it is asked to stop. */
typedef struct
{
  guint16 port;
  gboolean tls;
  const char *token;
  const char *register_name;
  guint n_heartbeats;
  guint max_messages;
  /* results */
  gboolean logged_in;
  gboolean register_refused; /* RegisterFail came for register_name */
  gboolean dropped;          /* a write failed: the server closed on us */
  guint n_messages;
  char *error;
  gint stop;
  gint done;
} ZltTestFlooder;
GThread *zlt_test_flooder_start (ZltTestFlooder *flooder);
/* Joins the thread, spinning the main context meanwhile. */
void zlt_test_flooder_finish (GThread *thread, ZltTestFlooder *flooder, guint timeout_ms);

/* Runs the build tree's `zlayer-tunnel MODE -c CONFIG [ARGS...]` (@config written to a
 * file in @dir; tokens stay in their own files), its stdout silenced, its stderr kept
 * for zlt_test_process_stderr() when @capture_stderr; it dies with the test. */
GSubprocess *zlt_test_spawn_cli (const char *mode, GKeyFile *config, const char *dir,
                                 gboolean capture_stderr, ...) G_GNUC_NULL_TERMINATED;
/* Waits, spinning the main context, until @process has exited; FALSE on timeout. */
gboolean zlt_test_process_wait (GSubprocess *process, guint timeout_ms);
/* SIGTERM to the process we started, then waits for it. */
void zlt_test_process_stop (GSubprocess *process, guint timeout_ms);
/* All it wrote to stderr (after it exited). */
char *zlt_test_process_stderr (GSubprocess *process);

/* This process's resident memory, from /proc/self/status, in KiB. */
guint64 zlt_test_rss_kib (void);

/* Parses "01 0a ff" (spaces and newlines ignored) into bytes; asserts it is hex. */
GBytes *zlt_test_bytes_from_hex (const char *hex);

/* A raw TCP client in a thread (GSocketClient, blocking): connects to 127.0.0.1:port,
 * writes request (NULL: nothing), then reads until the peer closes or, with
 * stop_at_line, until the first CRLF-terminated line arrived. */
typedef struct
{
  guint16 port;
  const char *request;
  gboolean stop_at_line;
  /* results */
  gboolean connected;
  gboolean closed;   /* EOF or reset from the peer */
  gboolean reset;    /* it was a reset (ECONNRESET), not a clean EOF */
  GString *reply;    /* what was read */
  gint64 elapsed_ms; /* from connected to closed / first line */
  char *error;
  gint done;
} ZltTestRaw;
GThread *zlt_test_raw_start (ZltTestRaw *raw);
/* Joins the thread, spinning the main context meanwhile. */
void zlt_test_raw_finish (GThread *thread, ZltTestRaw *raw, guint timeout_ms);
void zlt_test_raw_clear (ZltTestRaw *raw);
/* Sends an HTTP request written by hand; returns the status code of the reply's
 * status line, 0 when the peer closed without one. */
guint zlt_test_http_status (guint16 port, const char *request, guint timeout_ms);

/* A second agent of the harness's agent config, but with @token (written to a file of
 * its own) and, when @services is not NULL, only the services in that NULL-terminated
 * list of "name:local-port" entries. Not started. */
ZltAgent *zlt_test_harness_new_agent (ZltTestHarness *h, const char *token,
                                      const char *const *services);

G_END_DECLS
