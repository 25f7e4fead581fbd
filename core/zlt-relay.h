/* zlt-relay.h: the one bidirectional byte relay the server, the agent and access
 * sessions share */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Largest pipe a zero-copy direction grows to, and the userspace chunk size. */
#define ZLT_RELAY_PIPE_SIZE (1024 * 1024)
#define ZLT_RELAY_CHUNK_SIZE (256 * 1024)

typedef enum
{
  ZLT_RELAY_A_TO_B, /*< nick=a-to-b >*/
  ZLT_RELAY_B_TO_A, /*< nick=b-to-a >*/
} ZltRelayDirection;

GType zlt_relay_direction_get_type (void) G_GNUC_CONST;
#define ZLT_TYPE_RELAY_DIRECTION (zlt_relay_direction_get_type ())

/**
 * ZltRelayCounterFunc:
 * @a_to_b: bytes delivered to b since the last call
 * @b_to_a: bytes delivered to a since the last call
 * @user_data: the data given to zlt_relay_set_counter_func()
 *
 * Called from the relay's main context after each batch of relayed bytes (one call per
 * main-loop dispatch, not per syscall), and once more just before #ZltRelay::finished
 * when bytes are still unreported; never after it.
 */
typedef void (*ZltRelayCounterFunc) (guint64 a_to_b, guint64 b_to_a, gpointer user_data);

/**
 * ZltRelay:
 *
 * How a relay ends, as ::finished tells it (its error argument) and as the peers see it:
 *
 * - clean (error %NULL): both sources reached EOF and every byte was handed to its
 *   destination. Each peer got its FIN (a TLS stream its close_notify) when its source
 *   side ended (half-close), and the sockets are closed in order, so bytes the kernel
 *   still queues are delivered.
 * - failure (error set): anything else. Both peers get a TCP reset (the sockets under
 *   both streams, a TLS stream's base socket, close with SO_LINGER {on, 0}; no FIN, no
 *   close_notify), so neither takes a cut transfer for a complete one. The error says
 *   why: %G_IO_ERROR_CANCELLED after zlt_relay_close() (an administrative cut),
 *   %G_IO_ERROR_TIMED_OUT after the idle timeout, or the read, write or shutdown error
 *   of either side (a peer's reset is %G_IO_ERROR_CONNECTION_CLOSED).
 *
 * While a relay runs its sockets carry SO_LINGER {on, 0}, so a process killed mid-relay
 * resets its peers too; the relay gives linger back before an orderly close. A stream
 * that does not own its socket (a socket's streams inside a GSimpleIOStream) gets the
 * linger but not the close: its owner's close sends the reset.
 */
#define ZLT_TYPE_RELAY (zlt_relay_get_type ())
G_DECLARE_FINAL_TYPE (ZltRelay, zlt_relay, ZLT, RELAY, GObject)

ZltRelay *zlt_relay_new (GIOStream *a, GIOStream *b);
void zlt_relay_set_prefix (ZltRelay *self, ZltRelayDirection direction, GBytes *bytes);
void zlt_relay_set_counter_func (ZltRelay *self, ZltRelayCounterFunc func, gpointer user_data,
                                 GDestroyNotify destroy);
void zlt_relay_set_idle_timeout (ZltRelay *self, guint timeout_ms);
guint zlt_relay_get_idle_timeout (ZltRelay *self);
void zlt_relay_start (ZltRelay *self);
void zlt_relay_close (ZltRelay *self);

GIOStream *zlt_relay_get_stream_b (ZltRelay *self);
gboolean zlt_relay_is_zero_copy (ZltRelay *self);
gboolean zlt_relay_is_running (ZltRelay *self);
guint64 zlt_relay_get_bytes_a_to_b (ZltRelay *self);
guint64 zlt_relay_get_bytes_b_to_a (ZltRelay *self);
gsize zlt_relay_get_buffered_bytes (ZltRelay *self);

/* Whether a ::finished @error is a failure worth counting: not %NULL (both ends closed
 * in order) nor %G_IO_ERROR_CANCELLED (closed on purpose) */
static inline gboolean
zlt_relay_error_is_failure (const GError *error)
{
  return error != NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

G_END_DECLS
