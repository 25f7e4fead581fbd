/* zlt-access-manager.c: on-demand access sessions.
 *
 * The manager owns one access client: an ordinary ZltAgent with no services, whose
 * control session authenticates (and keeps reconnecting) like any agent's. Each
 * session listens on loopback; every local connection opens one access stream
 * through the server (PROTOCOL-v2.md §6) and a ZltRelay joins the two, counting
 * into the session. A session ends by itself at its expiry (ZltSession::expired) or
 * when stopped: its listener closes and every relay of it is torn down. */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-access-manager.h"
#include "zlt-error.h"
#include "zlt-net.h"
#include "zlt-relay-counted.h"
#include "zlt-util.h"

struct _ZltAccessManager
{
  GObject parent_instance;

  ZltAgent *agent;
  char *endpoint;
  GPtrArray *sessions; /* SessionState* (a reference each), oldest first */
};

/**
 * ZltAccessManager:
 * On-demand access: each session binds a local port (127.0.0.1 and ::1) that leads to
 * a service registered on the server, by any agent, for a limited time
 * (PROTOCOL-v2.md §6). Every local connection becomes one access stream through the
 * server, which checks that the client's token may reach the service
 * ([method@Zlt.Grant.may_reach]). An internal service (no public port) is reachable only
 * this way.
 *
 * The manager runs its own control session (an agent without services,
 * zlt_access_manager_get_agent()) while there are sessions. Start one with
 * zlt_access_manager_start_session(), giving the session's time to live;
 */

G_DEFINE_FINAL_TYPE (ZltAccessManager, zlt_access_manager, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_AGENT,
  PROP_ENDPOINT,
  PROP_N_SESSIONS,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

enum
{
  SIGNAL_SESSION_ADDED,
  SIGNAL_SESSION_READY,
  SIGNAL_SESSION_REFUSED,
  SIGNAL_SESSION_REMOVED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

/* One session: its listener, its relays and the local connections whose access
 * stream is still being opened. Reference-counted: those connections hold it. */
typedef struct
{
  ZltAccessManager *manager; /* unowned; cleared when the session is stopped */
  ZltSession *session;
  GSocketService *listener;
  guint16 port;
  GCancellable *cancellable;
  GHashTable *relays;  /* ZltRelay* (owned) */
  GHashTable *opening; /* LocalConn* (unowned: each frees itself in its callback) */
  gboolean stopped;
  char *end_message; /* the log's words for the end, when it is not a plain stop */
} SessionState;

typedef struct
{
  SessionState *state; /* a reference */
  GIOStream *local;
} LocalConn;

static void
session_state_clear (SessionState *state)
{
  GHashTableIter iter;
  gpointer relay;

  g_hash_table_iter_init (&iter, state->relays);
  while (g_hash_table_iter_next (&iter, &relay, NULL))
    g_signal_handlers_disconnect_by_data (relay, state);
  g_clear_pointer (&state->relays, g_hash_table_unref);
  g_clear_pointer (&state->opening, g_hash_table_unref);
  g_clear_pointer (&state->end_message, g_free);
  g_clear_object (&state->listener);
  g_clear_object (&state->cancellable);
  g_clear_object (&state->session);
}

static SessionState *
session_state_ref (SessionState *state)
{
  return g_rc_box_acquire (state);
}

static void
session_state_unref (SessionState *state)
{
  g_rc_box_release_full (state, (GDestroyNotify) session_state_clear);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SessionState, session_state_unref)

static void
local_conn_free (LocalConn *conn)
{
  if (conn->local != NULL)
    g_io_stream_close (conn->local, NULL, NULL);
  g_clear_object (&conn->local);
  session_state_unref (conn->state);
  g_free (conn);
}

static SessionState *
find_state (ZltAccessManager *self, ZltSession *session, guint *index)
{
  for (guint i = 0; i < self->sessions->len; i++)
    {
      SessionState *state = g_ptr_array_index (self->sessions, i);
      if (state->session == session)
        {
          if (index != NULL)
            *index = i;
          return state;
        }
    }
  return NULL;
}

/* The control session lasts as long as the longest access session; the server is
 * told so when it authenticates us, and ends the session then. */
static void
update_expires (ZltAccessManager *self)
{
  gint64 last = 0;

  for (guint i = 0; i < self->sessions->len; i++)
    {
      SessionState *state = g_ptr_array_index (self->sessions, i);
      gint64 expires = zlt_session_get_expires (state->session);

      if (expires == 0)
        {
          last = 0; /* one without an end: ask for none */
          break;
        }
      last = MAX (last, expires);
    }
  zlt_agent_set_access_expires (self->agent, last);
}

/* ---- ending a session ---- */

static void
session_stop (ZltAccessManager *self, SessionState *state)
{
  g_autoptr (SessionState) hold = NULL;
  g_autoptr (ZltSession) session = NULL;
  g_autoptr (GPtrArray) relays = NULL;
  GHashTableIter iter;
  gpointer conn;
  guint index;

  if (state->stopped)
    return;
  state->stopped = TRUE;
  hold = session_state_ref (state);
  session = g_object_ref (state->session);
  g_signal_handlers_disconnect_by_data (session, state);

  g_socket_service_stop (state->listener);
  g_socket_listener_close (G_SOCKET_LISTENER (state->listener));
  g_signal_handlers_disconnect_by_data (state->listener, state);
  /* streams still being opened: closing the local side is enough, the callbacks drop
   * whatever the server gives them later */
  g_cancellable_cancel (state->cancellable);
  g_hash_table_iter_init (&iter, state->opening);
  while (g_hash_table_iter_next (&iter, &conn, NULL))
    g_io_stream_close (((LocalConn *) conn)->local, NULL, NULL);
  relays = zlt_hash_table_ref_keys (state->relays);
  for (guint i = 0; i < relays->len; i++)
    zlt_relay_close (g_ptr_array_index (relays, i));
  zlt_session_flush_notify (session);

  if (state->end_message != NULL)
    zlt_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, ZLT_LOG_EVENT_ACCESS_ENDED, NULL,
                   zlt_session_get_remote_service (session), zlt_session_get_endpoint (session),
                   "%s", state->end_message);
  else
    zlt_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, ZLT_LOG_EVENT_ACCESS_ENDED, NULL,
                   zlt_session_get_remote_service (session), zlt_session_get_endpoint (session),
                   "access session to %s on port %u ended",
                   zlt_session_get_remote_service (session), state->port);
  if (find_state (self, session, &index) != NULL)
    g_ptr_array_remove_index (self->sessions, index);
  state->manager = NULL;
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_N_SESSIONS]);
  g_signal_emit (self, signals[SIGNAL_SESSION_REMOVED], 0, session);
  /* no session, no reason to keep a control session open */
  if (self->sessions->len == 0)
    zlt_agent_stop (self->agent);
}

static void
on_session_expired (ZltSession *session, gpointer user_data)
{
  SessionState *state = user_data;

  if (state->end_message == NULL)
    state->end_message = g_strdup_printf ("access session to %s on port %u expired",
                                          zlt_session_get_remote_service (session), state->port);
  if (state->manager != NULL)
    session_stop (state->manager, state);
}

/* ---- local connections ---- */

static void
on_relay_finished (ZltRelay *relay, const GError *error, gpointer user_data)
{
  SessionState *state = user_data;

  g_signal_handlers_disconnect_by_data (relay, state);
  /* the session counts the connection closed after this (zlt-relay-counted.c) */
  g_hash_table_remove (state->relays, relay);
}

static char *
describe_refusal (const char *service, const GError *error)
{
  if (g_error_matches (error, ZLT_ERROR, ZLT_ERROR_NOT_ALLOWED))
    return g_strdup_printf (_ ("the server refused access to “%s”: the token does not reach it "
                               "(reach= in the server's token file), or it expired"),
                            service);
  if (g_error_matches (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND))
    return g_strdup_printf (
        _ ("the server has no service “%s”: no agent has registered it, or it went away"), service);
  if (g_error_matches (error, ZLT_ERROR, ZLT_ERROR_DUPLICATE_NAME))
    return g_strdup_printf (_ ("the server cannot tell which service “%s” to reach: several "
                               "tunnels have a service of that name"),
                            service);
  return g_strdup_printf (_ ("cannot reach “%s”: %s"), service, error->message);
}

static void
access_opened (GObject *source, GAsyncResult *result, gpointer user_data)
{
  LocalConn *conn = user_data;
  SessionState *state = conn->state;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) prefix = NULL;
  g_autoptr (GIOStream) data = NULL;
  g_autoptr (ZltRelay) relay = NULL;

  data = zlt_agent_open_access_finish (ZLT_AGENT (source), result, &prefix, &error);
  g_hash_table_remove (state->opening, conn);
  if (state->stopped)
    {
      if (data != NULL)
        g_io_stream_close (data, NULL, NULL);
      local_conn_free (conn);
      return;
    }
  if (data == NULL)
    {
      g_autofree char *why
          = describe_refusal (zlt_session_get_remote_service (state->session), error);
      g_message ("%s", why);
      zlt_session_set_last_error (state->session, why);
      local_conn_free (conn); /* closes the local connection */
      return;
    }

  /* a = local client, b = access stream: b→a comes in from the service */
  relay = zlt_relay_counted_new (conn->local, data, ZLT_RELAY_B_TO_A, prefix, state->session);
  g_signal_connect (relay, "finished", G_CALLBACK (on_relay_finished), state);
  g_hash_table_add (state->relays, g_object_ref (relay));
  g_clear_object (&conn->local); /* the relay has it now */
  local_conn_free (conn);
  zlt_relay_counted_start (relay);
}

static gboolean
on_local_incoming (GSocketService *listener, GSocketConnection *connection, GObject *source,
                   gpointer user_data)
{
  SessionState *state = user_data;
  LocalConn *conn;

  if (state->stopped || state->manager == NULL)
    return TRUE;
  zlt_net_set_nodelay (connection);
  g_debug ("local connection to the access session on port %u", state->port);
  conn = g_new0 (LocalConn, 1);
  conn->state = session_state_ref (state);
  conn->local = g_object_ref (G_IO_STREAM (connection));
  g_hash_table_add (state->opening, conn);
  zlt_agent_open_access_async (state->manager->agent,
                               zlt_session_get_remote_service (state->session), state->cancellable,
                               access_opened, conn);
  return TRUE;
}

/* The server's answer to "would you serve this session?": ready, or the session ends
 * here, with the refusal as its last error, before anyone relies on its port. */
static void
probed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (SessionState) state = user_data;
  g_autoptr (GError) error = NULL;
  g_autofree char *why = NULL;

  if (zlt_agent_probe_access_finish (ZLT_AGENT (source), result, &error))
    {
      if (state->manager != NULL)
        g_signal_emit (state->manager, signals[SIGNAL_SESSION_READY], 0, state->session);
      return;
    }
  if (state->manager == NULL || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  why = describe_refusal (zlt_session_get_remote_service (state->session), error);
  /* logged as the session's end, whoever ends it */
  if (state->end_message == NULL)
    state->end_message = g_strdup (why);
  zlt_session_set_last_error (state->session, why);
  g_prefix_error (&error, "%s: ", zlt_session_get_remote_service (state->session));
  g_signal_emit (state->manager, signals[SIGNAL_SESSION_REFUSED], 0, state->session, error);
  if (state->manager != NULL)
    session_stop (state->manager, state);
}

/* ---- public API ---- */

/**
 * zlt_access_manager_start_session:
 * @self: an access manager
 * @service: the name of the remote service
 * @local_port: the local port, on 127.0.0.1 and ::1; 0 = any free port (the same on both)
 * @ttl_seconds: how long the session lasts; 0 = until stopped (the server may cap it)
 * @error: return location for a #GError
 *
 * Binds the local port and starts the session: each local connection becomes one
 * access stream to @service. The session ends by itself after @ttl_seconds
 * (#ZltSession::expired). Fails when the port cannot be bound.
 *
 * Returns: (transfer full): the new session, or %NULL on error
 */
ZltSession *
zlt_access_manager_start_session (ZltAccessManager *self, const char *service, guint16 local_port,
                                  guint ttl_seconds, GError **error)
{
  g_autoptr (GSocketService) listener = NULL;
  g_autoptr (GInetAddress) loopback4 = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GInetAddress) loopback6 = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV6);
  g_autoptr (GSocketAddress) address4 = NULL;
  g_autoptr (GSocketAddress) address6 = NULL;
  g_autoptr (GSocketAddress) effective = NULL;
  g_autoptr (GError) error6 = NULL;
  g_autofree char *local_address = NULL;
  SessionState *state;
  guint16 port;

  g_return_val_if_fail (ZLT_IS_ACCESS_MANAGER (self), NULL);
  g_return_val_if_fail (service != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!zlt_service_name_is_valid (service))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("“%s” is not a valid service name"), service);
      return NULL;
    }
  /* inactive until both addresses are in: adding an address to an active service
   * cancels and restarts its pending accept, and a connection arriving meanwhile is
   * accepted by the cancelled one and dropped (GLib 2.74) */
  listener = g_socket_service_new ();
  g_socket_service_stop (listener);
  address4 = g_inet_socket_address_new (loopback4, local_port);
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (listener), address4, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_TCP, NULL, &effective, error))
    {
      g_prefix_error (error, _ ("failed to listen on 127.0.0.1:%u: "), local_port);
      return NULL;
    }
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  /* the same port on ::1 where there is IPv6; without it IPv4 is enough */
  address6 = g_inet_socket_address_new (loopback6, port);
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (listener), address6, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_TCP, NULL, NULL, &error6))
    g_debug ("access session on 127.0.0.1 only: [::1]:%u: %s", port, error6->message);

  local_address = g_strdup_printf ("127.0.0.1:%u", port);
  state = g_rc_box_new0 (SessionState);
  state->manager = self;
  state->session = zlt_session_new (self->endpoint, local_address, service, ttl_seconds);
  state->listener = g_steal_pointer (&listener);
  state->port = port;
  state->cancellable = g_cancellable_new ();
  state->relays = g_hash_table_new_full (NULL, NULL, g_object_unref, NULL);
  state->opening = g_hash_table_new (NULL, NULL);
  g_signal_connect (state->listener, "incoming", G_CALLBACK (on_local_incoming), state);
  g_signal_connect (state->session, "expired", G_CALLBACK (on_session_expired), state);
  g_ptr_array_add (self->sessions, state);
  g_socket_service_start (state->listener);

  zlt_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, ZLT_LOG_EVENT_ACCESS_STARTED, NULL, service,
                 self->endpoint, "access session to %s on %s", service, local_address);
  update_expires (self);
  zlt_agent_start (self->agent);
  zlt_agent_probe_access_async (self->agent, service, state->cancellable, probed,
                                session_state_ref (state));
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_N_SESSIONS]);
  g_signal_emit (self, signals[SIGNAL_SESSION_ADDED], 0, state->session);
  return g_object_ref (state->session);
}

/**
 * zlt_access_manager_stop_session:
 * @self: an access manager
 * @session: one of the manager's sessions
 * @error: return location for a #GError
 *
 * Closes the listener and every connection of @session, and forgets it.
 * %ZLT_ERROR_NOT_FOUND when @session is not one of the manager's.
 *
 * Returns: %TRUE when the session was stopped
 */
gboolean
zlt_access_manager_stop_session (ZltAccessManager *self, ZltSession *session, GError **error)
{
  SessionState *state;

  g_return_val_if_fail (ZLT_IS_ACCESS_MANAGER (self), FALSE);
  g_return_val_if_fail (ZLT_IS_SESSION (session), FALSE);

  state = find_state (self, session, NULL);
  if (state == NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND, _ ("no such access session"));
      return FALSE;
    }
  session_stop (self, state);
  return TRUE;
}

/**
 * zlt_access_manager_lookup_session:
 * @self: an access manager
 * @id: the session's UUID string
 *
 * Returns: (transfer none) (nullable): the live session with @id
 */
ZltSession *
zlt_access_manager_lookup_session (ZltAccessManager *self, const char *id)
{
  ZltUuid uuid;

  g_return_val_if_fail (ZLT_IS_ACCESS_MANAGER (self), NULL);
  g_return_val_if_fail (id != NULL, NULL);

  if (!zlt_uuid_parse (id, &uuid))
    return NULL;
  for (guint i = 0; i < self->sessions->len; i++)
    {
      SessionState *state = g_ptr_array_index (self->sessions, i);
      if (zlt_uuid_equal (zlt_session_get_id (state->session), &uuid))
        return state->session;
    }
  return NULL;
}

/**
 * zlt_access_manager_get_sessions:
 * @self: an access manager
 *
 * Returns: (transfer container) (element-type ZltSession): the live sessions, oldest
 *   first, a reference each
 */
GPtrArray *
zlt_access_manager_get_sessions (ZltAccessManager *self)
{
  GPtrArray *sessions;

  g_return_val_if_fail (ZLT_IS_ACCESS_MANAGER (self), NULL);

  sessions = g_ptr_array_new_full (self->sessions->len, g_object_unref);
  for (guint i = 0; i < self->sessions->len; i++)
    {
      SessionState *state = g_ptr_array_index (self->sessions, i);
      g_ptr_array_add (sessions, g_object_ref (state->session));
    }
  return sessions;
}

/**
 * zlt_access_manager_get_local_port:
 * @self: an access manager
 * @session: one of the manager's sessions
 *
 * Returns: the local port @session listens on; 0 when it is not one of the manager's
 */
guint16
zlt_access_manager_get_local_port (ZltAccessManager *self, ZltSession *session)
{
  SessionState *state;

  g_return_val_if_fail (ZLT_IS_ACCESS_MANAGER (self), 0);
  state = find_state (self, session, NULL);
  return state ? state->port : 0;
}

/**
 * zlt_access_manager_get_n_relays:
 * @self: an access manager
 *
 * Returns: the relays running for all sessions together
 */
guint
zlt_access_manager_get_n_relays (ZltAccessManager *self)
{
  guint n = 0;

  g_return_val_if_fail (ZLT_IS_ACCESS_MANAGER (self), 0);
  for (guint i = 0; i < self->sessions->len; i++)
    n += g_hash_table_size (((SessionState *) g_ptr_array_index (self->sessions, i))->relays);
  return n;
}

/**
 * zlt_access_manager_get_agent:
 * @self: an access manager
 *
 * Returns: (transfer none): the access client's own control session; it runs while there
 *   are sessions
 */
ZltAgent *
zlt_access_manager_get_agent (ZltAccessManager *self)
{
  g_return_val_if_fail (ZLT_IS_ACCESS_MANAGER (self), NULL);
  return self->agent;
}

/**
 * zlt_access_manager_get_endpoint:
 * @self: an access manager
 *
 * Returns: the server URL the sessions go through
 */
const char *
zlt_access_manager_get_endpoint (ZltAccessManager *self)
{
  g_return_val_if_fail (ZLT_IS_ACCESS_MANAGER (self), NULL);
  return self->endpoint;
}

/* the access client's failures (token refused or expired, server away) are every
 * session's problem; a fatal one (the token was revoked or expired, the server is an
 * impostor) ends them all: nothing they hold will work again */
static void
on_agent_last_error (ZltAgent *agent, GParamSpec *pspec, gpointer user_data)
{
  ZltAccessManager *self = user_data;
  const char *error = zlt_agent_get_last_error (agent);
  g_autoptr (GPtrArray) doomed = NULL;

  if (error == NULL)
    return;
  for (guint i = 0; i < self->sessions->len; i++)
    zlt_session_set_last_error (((SessionState *) g_ptr_array_index (self->sessions, i))->session,
                                error);
  if (!zlt_agent_get_fatal (agent))
    return;
  doomed = g_ptr_array_new_with_free_func ((GDestroyNotify) session_state_unref);
  for (guint i = 0; i < self->sessions->len; i++)
    g_ptr_array_add (doomed, session_state_ref (g_ptr_array_index (self->sessions, i)));
  for (guint i = 0; i < doomed->len; i++)
    {
      SessionState *state = g_ptr_array_index (doomed, i);

      if (state->end_message == NULL)
        state->end_message
            = g_strdup_printf ("access session to %s ended: %s",
                               zlt_session_get_remote_service (state->session), error);
      session_stop (self, state);
    }
}

static void
zlt_access_manager_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltAccessManager *self = ZLT_ACCESS_MANAGER (object);

  switch (prop_id)
    {
    case PROP_AGENT:
      g_value_set_object (value, self->agent);
      break;
    case PROP_ENDPOINT:
      g_value_set_string (value, self->endpoint);
      break;
    case PROP_N_SESSIONS:
      g_value_set_uint (value, self->sessions->len);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_access_manager_dispose (GObject *object)
{
  ZltAccessManager *self = ZLT_ACCESS_MANAGER (object);

  while (self->sessions->len > 0)
    session_stop (self, g_ptr_array_index (self->sessions, self->sessions->len - 1));
  if (self->agent != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->agent, self);
      zlt_agent_stop (self->agent);
    }
  g_clear_object (&self->agent);
  G_OBJECT_CLASS (zlt_access_manager_parent_class)->dispose (object);
}

static void
zlt_access_manager_finalize (GObject *object)
{
  ZltAccessManager *self = ZLT_ACCESS_MANAGER (object);

  g_ptr_array_unref (self->sessions);
  g_free (self->endpoint);
  G_OBJECT_CLASS (zlt_access_manager_parent_class)->finalize (object);
}

static void
zlt_access_manager_class_init (ZltAccessManagerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags ro = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->get_property = zlt_access_manager_get_property;
  object_class->dispose = zlt_access_manager_dispose;
  object_class->finalize = zlt_access_manager_finalize;

  /**
   * ZltAccessManager:agent:
   * The access client's control session (an agent without services).
   */
  props[PROP_AGENT] = g_param_spec_object ("agent", NULL, NULL, ZLT_TYPE_AGENT, ro);
  /**
   * ZltAccessManager:endpoint:
   * The server URL the sessions go through.
   */
  props[PROP_ENDPOINT] = g_param_spec_string ("endpoint", NULL, NULL, NULL, ro);
  /**
   * ZltAccessManager:n-sessions:
   * How many sessions are live.
   */
  props[PROP_N_SESSIONS] = g_param_spec_uint ("n-sessions", NULL, NULL, 0, G_MAXUINT, 0, ro);
  g_object_class_install_properties (object_class, N_PROPS, props);

  /**
   * ZltAccessManager::session-added:
   * @self: the access manager
   * @session: a session that just started listening
   */
  signals[SIGNAL_SESSION_ADDED]
      = g_signal_new ("session-added", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 1, ZLT_TYPE_SESSION);
  /**
   * ZltAccessManager::session-removed:
   * @self: the access manager
   * @session: a session that ended (expired or stopped); its listener and connections
   *   are closed
   */
  signals[SIGNAL_SESSION_REMOVED]
      = g_signal_new ("session-removed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, NULL, G_TYPE_NONE, 1, ZLT_TYPE_SESSION);
  /**
   * ZltAccessManager::session-ready:
   * @self: the access manager
   * @session: a session the server confirmed it would serve (the token reaches the
   *   service, which exists and has its agent connected); a session it refuses is
   *   removed instead, its last error saying why
   */
  signals[SIGNAL_SESSION_READY]
      = g_signal_new ("session-ready", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 1, ZLT_TYPE_SESSION);
  /**
   * ZltAccessManager::session-refused:
   * @self: the access manager
   * @session: a session the server would not serve; ::session-removed follows
   * @error: the server's refusal (%ZLT_ERROR_NOT_ALLOWED, %ZLT_ERROR_NOT_FOUND, ...)
   */
  signals[SIGNAL_SESSION_REFUSED]
      = g_signal_new ("session-refused", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, NULL, G_TYPE_NONE, 2, ZLT_TYPE_SESSION, G_TYPE_ERROR);
}

static void
zlt_access_manager_init (ZltAccessManager *self)
{
  self->sessions = g_ptr_array_new_with_free_func ((GDestroyNotify) session_state_unref);
}

/* An access client registers nothing: the config without its services. */
static ZltClientConfig *
config_without_services (ZltClientConfig *config, GError **error)
{
  g_autoptr (GKeyFile) keyfile = zlt_client_config_to_keyfile (config);
  g_auto (GStrv) groups = g_key_file_get_groups (keyfile, NULL);

  for (guint i = 0; groups[i] != NULL; i++)
    if (g_str_has_prefix (groups[i], ZLT_CLIENT_CONFIG_SERVICE_PREFIX))
      g_key_file_remove_group (keyfile, groups[i], NULL);
  return zlt_client_config_new_from_keyfile (keyfile, error);
}

static ZltAccessManager *
access_manager_new (ZltAgent *agent, ZltClientConfig *config)
{
  ZltAccessManager *self = g_object_new (ZLT_TYPE_ACCESS_MANAGER, NULL);

  self->agent = agent;
  self->endpoint = g_strdup (zlt_client_config_get_server_url (config));
  g_signal_connect (self->agent, "notify::last-error", G_CALLBACK (on_agent_last_error), self);
  /* the flag changes after the error: look again then */
  g_signal_connect (self->agent, "notify::fatal", G_CALLBACK (on_agent_last_error), self);
  return self;
}

/**
 * zlt_access_manager_new:
 * @config: the client's config: the server and token of its [agent] group ([service:*]
 *   groups are ignored: an access client registers nothing)
 * @loader: a plugin loader that has loaded its plugins
 * @error: return location for a #GError
 *
 * Returns: (transfer full): a new access manager, or %NULL when the token cannot be read
 *   or a transport is missing
 */
ZltAccessManager *
zlt_access_manager_new (ZltClientConfig *config, ZltPluginLoader *loader, GError **error)
{
  g_autoptr (ZltClientConfig) own = NULL;
  ZltAgent *agent;

  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (config), NULL);
  g_return_val_if_fail (ZLT_IS_PLUGIN_LOADER (loader), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  own = config_without_services (config, error);
  if (own == NULL)
    return NULL;
  agent = zlt_agent_new (own, loader, error);
  if (agent == NULL)
    return NULL;
  return access_manager_new (agent, own);
}

/**
 * zlt_access_manager_new_full:
 * @config: the client's config; its services and token source are not used
 * @token: the token
 * @control: the control channel's transport ("websocket")
 * @tcp: the transport for the local listeners
 *
 * The same as zlt_access_manager_new() with every part given.
 *
 * Returns: (transfer full): a new access manager
 */
ZltAccessManager *
zlt_access_manager_new_full (ZltClientConfig *config, const char *token,
                             ZltControlTransport *control, ZltTransport *tcp)
{
  g_autoptr (ZltClientConfig) own = NULL;
  g_autoptr (GError) error = NULL;

  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (config), NULL);
  g_return_val_if_fail (token != NULL, NULL);
  g_return_val_if_fail (ZLT_IS_CONTROL_TRANSPORT (control), NULL);
  g_return_val_if_fail (ZLT_IS_TRANSPORT (tcp), NULL);

  /* a config that validated once validates again */
  own = config_without_services (config, &error);
  g_return_val_if_fail (own != NULL, NULL);
  return access_manager_new (zlt_agent_new_full (own, token, control, tcp, NULL), own);
}
