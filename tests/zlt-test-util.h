/* zlt-test-util.h: what the end-to-end tests share: waiting on conditions, loopback
 * echo servers, blocking clients in threads, and a server + agent harness */
#pragma once

#include "zlayer-tunnel.h"

G_BEGIN_DECLS

/* Spins the thread-default main context until @expr holds, failing the test after
 * @timeout_ms. A 20 ms tick keeps re-checking conditions that no event announces
 * (a thread finishing); otherwise the context wakes on the events themselves. */
#define ZLT_TEST_WAIT_FOR(expr, timeout_ms)                                                       \
  G_STMT_START                                                                                    \
  {                                                                                               \
    gint64 _deadline = g_get_monotonic_time () + (gint64) (timeout_ms) * 1000;                    \
    GSource *_tick = g_timeout_source_new (20);                                                   \
    g_source_set_callback (_tick, zlt_test_tick, NULL, NULL);                                     \
    g_source_attach (_tick, g_main_context_get_thread_default ());                                \
    while (!(expr) && g_get_monotonic_time () < _deadline)                                        \
      g_main_context_iteration (g_main_context_get_thread_default (), TRUE);                      \
    g_source_destroy (_tick);                                                                     \
    g_source_unref (_tick);                                                                       \
    if (!(expr))                                                                                  \
      g_error ("timed out after %u ms waiting for: %s", (guint) (timeout_ms), #expr);             \
  }                                                                                               \
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

/* A port on 127.0.0.1 that nothing listens on (bound, then closed). */
guint16 zlt_test_closed_port (void);

/* Blocking client work run in a thread while the main thread spins the loop. */
typedef struct
{
  guint16 port;
  gsize n_bytes;      /* random bytes to send before half-closing */
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
  char *token_file;        /* the server's file of hashes */
  char *agent_token_file;  /* the agent's token */
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
/* Waits until the agent registered @name and returns its public port. */
guint16 zlt_test_harness_wait_registered (ZltTestHarness *h, const char *name);
void zlt_test_harness_clear (ZltTestHarness *h);

/* A self-signed certificate for 127.0.0.1/localhost made with certtool, in @dir. */
gboolean zlt_test_make_certificate (const char *dir, char **cert_file, char **key_file);

G_END_DECLS
