/* zlt-accept-loop.h: a listening TCP socket whose accept loop never spins */
#pragma once

#include <gio/gio.h>

#include "zlt-version.h"

G_BEGIN_DECLS

#define ZLT_TYPE_ACCEPT_LOOP (zlt_accept_loop_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ZltAcceptLoop, zlt_accept_loop, ZLT, ACCEPT_LOOP, GObject)

/* the pause after the process ran out of file descriptors (or the kernel of memory),
 * doubled while the condition lasts, up to the maximum */
#define ZLT_ACCEPT_LOOP_PAUSE_MIN_MS 250
#define ZLT_ACCEPT_LOOP_PAUSE_MAX_MS 1000
/* how often the condition is logged while it lasts */
#define ZLT_ACCEPT_LOOP_LOG_INTERVAL_S 10

/**
 * ZltAcceptFunc:
 * @loop: the loop
 * @connection: (transfer none): a new connection, TCP_NODELAY set; take a reference
 *   to keep it
 * @user_data: as given to zlt_accept_loop_start()
 */
typedef void (*ZltAcceptFunc) (ZltAcceptLoop *loop, GSocketConnection *connection,
                               gpointer user_data);

ZLT_AVAILABLE_IN_ALL
ZltAcceptLoop *zlt_accept_loop_new (GSocketAddress *address, GError **error);
/* the port actually bound (the one asked for, or the kernel's pick for port 0) */
ZLT_AVAILABLE_IN_ALL
guint16 zlt_accept_loop_get_port (ZltAcceptLoop *self);
/* Starts accepting in the thread-default main context; @func is called for each
 * connection until zlt_accept_loop_close(). */
ZLT_AVAILABLE_IN_ALL
void zlt_accept_loop_start (ZltAcceptLoop *self, ZltAcceptFunc func, gpointer user_data);
/* Stops accepting and closes the socket; idempotent. */
ZLT_AVAILABLE_IN_ALL
void zlt_accept_loop_close (ZltAcceptLoop *self);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_accept_loop_is_paused (ZltAcceptLoop *self);
/* wakeups of the loop: readiness of the socket and ends of pauses */
ZLT_AVAILABLE_IN_ALL
guint64 zlt_accept_loop_get_n_wakeups (ZltAcceptLoop *self);
ZLT_AVAILABLE_IN_ALL
guint64 zlt_accept_loop_get_n_accepted (ZltAcceptLoop *self);
/* accept() calls that failed for want of file descriptors or memory */
ZLT_AVAILABLE_IN_ALL
guint64 zlt_accept_loop_get_n_failed (ZltAcceptLoop *self);

/* Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force. */
ZLT_AVAILABLE_IN_ALL
guint64 zlt_raise_fd_limit (void);

G_END_DECLS
