/* zlt-control-listener.c */
#include "config.h"

#include "zlt-control-listener.h"

G_DEFINE_ABSTRACT_TYPE (ZltControlListener, zlt_control_listener, ZLT_TYPE_LISTENER)

enum
{
  SIGNAL_CHANNEL,
  SIGNAL_DATA_REQUEST,
  SIGNAL_DATA_STREAM,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

void
zlt_control_listener_emit_channel (ZltControlListener *self, ZltChannel *channel)
{
  g_return_if_fail (ZLT_IS_CONTROL_LISTENER (self));
  g_signal_emit (self, signals[SIGNAL_CHANNEL], 0, channel);
}

guint
zlt_control_listener_emit_data_request (ZltControlListener *self, const char *tunnel_id,
                                        const char *connection_id, const char *mac,
                                        const char *service)
{
  guint status = 404;

  g_return_val_if_fail (ZLT_IS_CONTROL_LISTENER (self), 500);
  g_signal_emit (self, signals[SIGNAL_DATA_REQUEST], 0, tunnel_id, connection_id, mac, service,
                 &status);
  return status;
}

void
zlt_control_listener_emit_data_stream (ZltControlListener *self, const char *connection_id,
                                       GIOStream *stream)
{
  g_return_if_fail (ZLT_IS_CONTROL_LISTENER (self));
  g_signal_emit (self, signals[SIGNAL_DATA_STREAM], 0, connection_id, stream);
}

static void
zlt_control_listener_class_init (ZltControlListenerClass *klass)
{
  /**
   * ZltControlListener::channel:
   * @channel: a new control channel, before any frame
   */
  signals[SIGNAL_CHANNEL] = g_signal_new ("channel", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 1, ZLT_TYPE_CHANNEL);
  /**
   * ZltControlListener::data-request:
   * @tunnel_id: X-Zlt-Tunnel
   * @connection_id: X-Zlt-Connection
   * @mac: X-Zlt-Mac
   * @service: (nullable): X-Zlt-Service, present on access streams only
   * Returns: the HTTP status to answer with, 101 to accept; the first handler decides
   */
  signals[SIGNAL_DATA_REQUEST]
      = g_signal_new ("data-request", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                      g_signal_accumulator_first_wins, NULL, NULL, G_TYPE_UINT, 4, G_TYPE_STRING,
                      G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING);
  /**
   * ZltControlListener::data-stream:
   * An accepted data connection, its 101 already sent.
   */
  signals[SIGNAL_DATA_STREAM]
      = g_signal_new ("data-stream", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_IO_STREAM);
}

static void
zlt_control_listener_init (ZltControlListener *self)
{
}
