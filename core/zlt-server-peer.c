/* zlt-server-peer.c: one agent's control channel on the server, from the first byte
 * to the last: authentication, registrations, heartbeats, and the defined answer to
 * every malformed or unexpected frame. */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-host-sniff.h"
#include "zlt-server-private.h"
#include "zlt-source.h"
#include "zlt-util.h"

typedef enum
{
  PEER_AWAIT_AUTH,
  PEER_AUTHENTICATING,
  PEER_READY,
  PEER_CLOSED,
} PeerState;

struct _ZltServerPeer
{
  GObject parent_instance;

  ZltServer *server; /* unowned: the server owns its peers */
  ZltChannel *channel;
  PeerState state;
  GSource *auth_deadline;
  ZltHeartbeat *heartbeat;
  GCancellable *cancellable;

  ZltTunnel *tunnel;
  ZltGrant *grant;
  ZltCredential *credential; /* kept to check again when the tokens change */
  gboolean v2;
  gboolean bearer; /* authenticated with the raw token (PROTOCOL-v2.md §2a) */
  guint32 caps;
  guint standby_max; /* granted in AuthOk; 0 = no standby connections */
  guint8 session_key[ZLT_HASH_SIZE];
  char id[ZLT_UUID_STRING_LEN + 1]; /* of the tunnel, for logs */

  /* what the peer may send: a bucket of frames refilled at max-frame-rate, and the
   * answers it owes (one per Connect we sent), which are always welcome */
  gdouble frame_tokens;
  gint64 frame_refilled; /* monotonic µs */
  guint owed_answers;
  gboolean dropping;       /* inside the drop for a full queue: no second one */
  ZltLogLimit refusal_log; /* refused registrations */

  GSource *expiry_timer;  /* the grant's expiry */
  GSource *access_timer;  /* the access session's end */
  gint64 access_deadline; /* monotonic µs; 0 = none */
  gboolean access_asked;  /* the client asked for a TTL: an access session */
};

G_DEFINE_FINAL_TYPE (ZltServerPeer, zlt_server_peer, G_TYPE_OBJECT)

static void peer_finish (ZltServerPeer *self, gboolean hold, const char *why);
static void peer_end (ZltServerPeer *self, ZltReasonCode code, const char *reason, gboolean hold);
static void arm_grant_timers (ZltServerPeer *self);

/* ACCESS is the grant's to give, whatever the client's caps claimed */
static guint32
server_caps (ZltGrant *grant)
{
  return ZLT_CAP_DATA_RAW | ZLT_CAP_RESUME | ZLT_CAP_UDP
         | (zlt_grant_may_reach_any (grant) ? ZLT_CAP_ACCESS : 0);
}

static const ZltServerLimits *
limits_of (ZltServerPeer *self)
{
  return zlt_server_config_get_limits (zlt_server_get_config (self->server));
}

/* ---- the grant's clock ---- */

/* Timers of more than G_MAXUINT ms (49 days) wake up early and re-arm. */
static guint
ms_until (gint64 when_us)
{
  gint64 ms = (when_us - g_get_monotonic_time ()) / 1000 + 1;

  return (guint) CLAMP (ms, 0, (gint64) G_MAXUINT);
}

static gboolean
on_expiry (gpointer user_data)
{
  ZltServerPeer *self = user_data;

  zlt_source_clear (&self->expiry_timer);
  if (!zlt_grant_is_expired (self->grant, g_get_real_time () / G_USEC_PER_SEC))
    {
      arm_grant_timers (self);
      return G_SOURCE_REMOVE;
    }
  g_message ("tunnel %s: token %s expired, ending the tunnel", self->id,
             zlt_grant_get_name (self->grant));
  /* expiry ends what the token holds at once: no resume, services and relays go */
  peer_end (self, ZLT_REASON_EXPIRED_TOKEN, _ ("token expired"), FALSE);
  return G_SOURCE_REMOVE;
}

static gboolean
on_access_deadline (gpointer user_data)
{
  ZltServerPeer *self = user_data;

  zlt_source_clear (&self->access_timer);
  if (g_get_monotonic_time () < self->access_deadline)
    {
      self->access_timer
          = zlt_timeout_source_attach (ms_until (self->access_deadline), on_access_deadline, self);
      return G_SOURCE_REMOVE;
    }
  if (self->access_asked)
    {
      g_message ("tunnel %s: access session reached its time to live, ending it", self->id);
      peer_end (self, ZLT_REASON_TIMEOUT, _ ("access session ended: its time to live ran out"),
                FALSE);
    }
  else
    zlt_server_end_access (self->server, self->tunnel);
  return G_SOURCE_REMOVE;
}

/* The grant may expire while its tunnel lives; so may an access session's time. */
static void
arm_grant_timers (ZltServerPeer *self)
{
  gint64 expiry = zlt_grant_get_expiry (self->grant);

  zlt_source_clear (&self->expiry_timer);
  if (expiry != 0)
    {
      gint64 left_us = (expiry - g_get_real_time () / G_USEC_PER_SEC) * G_USEC_PER_SEC;
      self->expiry_timer = zlt_timeout_source_attach (
          ms_until (g_get_monotonic_time () + MAX (left_us, 0)), on_expiry, self);
    }
  zlt_source_clear (&self->access_timer);
  if (self->access_deadline != 0)
    self->access_timer
        = zlt_timeout_source_attach (ms_until (self->access_deadline), on_access_deadline, self);
}

/* The access session's end: what the client asked for, within the server's cap and the
 * token's expiry. Without a request an access stream still ends at the server's cap. */
static gint64
access_deadline_for (ZltServerPeer *self, guint32 asked_s)
{
  guint cap_s = limits_of (self)->max_access_ttl;
  guint64 ttl_s = asked_s != 0 ? asked_s : cap_s;

  if (cap_s != 0)
    ttl_s = MIN (ttl_s, cap_s);
  if (ttl_s == 0)
    return 0;
  return g_get_monotonic_time () + (gint64) ttl_s * G_USEC_PER_SEC;
}

gint64
zlt_server_peer_get_access_deadline (ZltServerPeer *self)
{
  return self->access_deadline;
}

const char *
zlt_server_peer_get_principal (ZltServerPeer *self)
{
  return self->grant != NULL ? zlt_grant_get_name (self->grant) : NULL;
}

/* ---- what a peer may send ---- */

/* Every frame costs a token of a bucket refilled at max-frame-rate per second and
 * holding ten seconds' worth; answers we asked for (ConnectAck/ConnectFail for our
 * Connects) are free, so a busy agent is never cut for answering. */
static gboolean
may_send_frame (ZltServerPeer *self, const ZltMessage *msg)
{
  gdouble rate = limits_of (self)->max_frame_rate;
  gdouble burst = rate * 10;
  gint64 now = g_get_monotonic_time ();

  if ((msg->type == ZLT_MESSAGE_CONNECT_ACK || msg->type == ZLT_MESSAGE_CONNECT_FAIL)
      && self->owed_answers > 0)
    {
      self->owed_answers--;
      return TRUE;
    }
  self->frame_tokens
      = MIN (burst, self->frame_tokens + rate * (gdouble) (now - self->frame_refilled) / 1e6);
  self->frame_refilled = now;
  if (self->frame_tokens < 1.0)
    return FALSE;
  self->frame_tokens -= 1.0;
  return TRUE;
}

void
zlt_server_peer_owe_answer (ZltServerPeer *self)
{
  if (self->owed_answers < G_MAXUINT)
    self->owed_answers++;
}

guint
zlt_server_peer_get_standby_max (ZltServerPeer *self)
{
  return self->state == PEER_READY ? self->standby_max : 0;
}

gboolean
zlt_server_peer_send (ZltServerPeer *self, ZltMessage *msg)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) bytes = zlt_message_encode_bytes (msg, &error);

  if (bytes == NULL)
    {
      /* our own message: a bug or an oversized reason; never send half of it */
      g_warning ("cannot encode %s: %s", zlt_message_type_to_string (msg->type), error->message);
      return FALSE;
    }
  if (!zlt_channel_send (self->channel, bytes, &error))
    {
      g_debug ("send to %s failed: %s", zlt_channel_get_peer_address (self->channel),
               error->message);
      return FALSE;
    }
  if (msg->type == ZLT_MESSAGE_CONNECT && self->owed_answers < G_MAXUINT)
    self->owed_answers++;
  /* a peer that does not read must not make us queue without end */
  if (!self->dropping
      && zlt_channel_get_pending (self->channel)
             > zlt_server_config_get_limits (zlt_server_get_config (self->server))->max_peer_queue)
    {
      self->dropping = TRUE;
      g_message ("tunnel %s: %s does not read its control channel (%" G_GSIZE_FORMAT
                 " bytes queued), dropping it",
                 self->id, zlt_channel_get_peer_address (self->channel),
                 zlt_channel_get_pending (self->channel));
      peer_end (self, ZLT_REASON_LIMIT, _ ("not reading the control channel"), FALSE);
      return FALSE;
    }
  return TRUE;
}

/* Refuses before authentication (AuthFail) or ends a session (Disconnect), then
 * closes the channel; what was queued before is still delivered. @hold keeps the
 * tunnel for a resume (a v2 agent that may come back), otherwise it goes now. */
static void
peer_end (ZltServerPeer *self, ZltReasonCode code, const char *reason, gboolean hold)
{
  g_autoptr (ZltMessage) msg = NULL;

  if (self->state == PEER_CLOSED)
    return;
  if (self->state == PEER_READY)
    msg = zlt_message_new_disconnect (reason);
  else
    msg = zlt_message_new_auth_fail (reason);
  /* only a peer that showed it speaks v2 gets the extension block */
  if (self->v2 && code != ZLT_REASON_NONE)
    zlt_message_set_code (msg, code);
  g_debug ("closing %s: %s", zlt_channel_get_peer_address (self->channel), reason);
  zlt_server_peer_send (self, msg);
  zlt_channel_close (self->channel, 1000, NULL);
  /* a peer that never answers our close must not keep anything alive */
  peer_finish (self, hold && self->state == PEER_READY, reason);
}

/* Only a peer that went silent (heartbeat timeout) may come back to its tunnel. */
void
zlt_server_peer_disconnect (ZltServerPeer *self, ZltReasonCode code, const char *reason)
{
  peer_end (self, code, reason, code == ZLT_REASON_TIMEOUT);
}

static void
protocol_error (ZltServerPeer *self, const char *what)
{
  g_autofree char *reason = g_strdup_printf ("protocol error: %s", what);
  zlt_server_peer_disconnect (self, ZLT_REASON_PROTOCOL, reason);
}

/* ---- authentication ---- */

/* What the session key, the server proof and resumes derive from: the token's SHA-256,
 * which a challenge validator holds and a bearer credential brings (PROTOCOL-v2.md §2a) */
static const guint8 *
key_hash (ZltServerPeer *self)
{
  if (self->bearer)
    return zlt_credential_get_token_hash (self->credential);
  return zlt_grant_get_token_hash (self->grant);
}

static void
send_auth_ok (ZltServerPeer *self, gboolean resumed, const ZltUuid *client_id)
{
  g_autoptr (ZltMessage) ok = zlt_message_new_auth_ok (zlt_tunnel_get_id (self->tunnel));
  ZltServerConfig *config = zlt_server_get_config (self->server);

  if (self->v2)
    {
      guint8 secret[ZLT_HASH_SIZE], proof[ZLT_HASH_SIZE];
      GBytes *nonce = zlt_channel_get_nonce (self->channel);
      guint32 caps = server_caps (self->grant) | (self->bearer ? ZLT_CAP_BEARER : 0);

      /* client addresses (PROTOCOL-v2.md §9) go to an agent that understands them */
      caps |= self->caps & ZLT_CAP_ADDRESSES;

      zlt_message_set_version (ok, ZLT_PROTOCOL_VERSION);
      /* standby connections only for an agent that asked (PROTOCOL-v2.md §8): the
       * others get the AuthOk they always had */
      self->standby_max = MIN (limits_of (self)->standby_connections, G_MAXUINT16);
      if ((self->caps & ZLT_CAP_STANDBY) && self->standby_max > 0)
        {
          caps |= ZLT_CAP_STANDBY;
          zlt_message_set_standby_max (ok, (guint16) self->standby_max);
        }
      else
        self->standby_max = 0;
      zlt_message_set_caps (ok, caps);
      if (self->access_asked && self->access_deadline != 0)
        zlt_message_set_access_ttl (
            ok, (guint32) ((self->access_deadline - g_get_monotonic_time ()) / G_USEC_PER_SEC));
      zlt_message_set_heartbeat_ms (ok, zlt_server_config_get_heartbeat_interval (config) * 1000);
      if (resumed)
        zlt_message_set_resumed (ok, TRUE);
      zlt_session_key (key_hash (self), g_bytes_get_data (nonce, NULL),
                       zlt_tunnel_get_id (self->tunnel), self->session_key);
      /* the agent checks that we hold its token's hash (PROTOCOL-v2.md §2) */
      zlt_server_proof (key_hash (self), g_bytes_get_data (nonce, NULL), client_id,
                        zlt_tunnel_get_id (self->tunnel), proof);
      zlt_message_set_server_proof (ok, proof);
      if (self->caps & ZLT_CAP_RESUME)
        {
          zlt_resume_book_issue (zlt_server_get_resume_book (self->server), self->tunnel,
                                 key_hash (self), self->credential, self->access_deadline, secret);
          zlt_message_set_resume_secret (ok, secret);
          explicit_bzero (secret, sizeof secret);
        }
    }
  zlt_server_peer_send (self, ok);
}

typedef struct
{
  ZltServerPeer *peer;
  gboolean want_resume;
  ZltUuid resume_id;
  guint8 resume_mac[ZLT_HASH_SIZE];
  ZltUuid client_uuid;
  char *client_id;
  gboolean access_asked;
  guint32 access_ttl;
} AuthData;

static void
auth_data_free (AuthData *d)
{
  g_object_unref (d->peer);
  g_free (d->client_id);
  g_free (d);
}

/* A login refused: logged (rate-limited) and counted by @code, then the peer hears
 * @message */
static void
auth_refused (ZltServerPeer *self, ZltReasonCode code, const char *logged, const char *message)
{
  zlt_server_log_auth_failure (self->server, zlt_channel_get_peer_address (self->channel), code,
                               logged);
  zlt_server_peer_disconnect (self, code, message);
}

static void
validated (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AuthData *d = user_data;
  ZltServerPeer *self = d->peer;
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant = NULL;
  ZltRegistry *registry;
  gboolean resumed = FALSE;

  grant = zlt_validator_validate_finish (ZLT_VALIDATOR (source), result, &error);
  if (self->state != PEER_AUTHENTICATING)
    goto out; /* closed meanwhile */
  if (grant == NULL)
    {
      auth_refused (self, zlt_reason_code_from_error (error), error->message, error->message);
      goto out;
    }
  if (zlt_grant_is_expired (grant, g_get_real_time () / G_USEC_PER_SEC))
    {
      auth_refused (self, ZLT_REASON_EXPIRED_TOKEN, "token expired", _ ("token expired"));
      goto out;
    }
  if (self->v2 && !self->bearer && zlt_grant_get_token_hash (grant) == NULL)
    {
      /* no hash, no session key: such a validator can only serve v1 agents */
      auth_refused (self, ZLT_REASON_BAD_TOKEN, "validator cannot check v2 proofs",
                    _ ("this server's validator cannot check v2 proofs"));
      goto out;
    }
  self->grant = g_steal_pointer (&grant);
  registry = zlt_server_get_registry (self->server);

  if (d->want_resume && self->v2)
    {
      GBytes *nonce = zlt_channel_get_nonce (self->channel);
      gint64 access_deadline = 0;
      ZltTunnel *held = zlt_resume_book_redeem (zlt_server_get_resume_book (self->server),
                                                &d->resume_id, g_bytes_get_data (nonce, NULL),
                                                d->resume_mac, key_hash (self), &access_deadline);
      if (held != NULL)
        {
          self->tunnel = g_object_ref (held);
          /* a resumed access session keeps the end it had */
          self->access_deadline = access_deadline;
          self->access_asked = d->access_asked;
          resumed = TRUE;
        }
    }
  if (self->tunnel == NULL)
    {
      g_autoptr (ZltTunnel) tunnel = zlt_tunnel_new (ZLT_ROLE_SERVER);
      ZltQuota *quota = zlt_server_get_quota (self->server);
      const char *principal = zlt_grant_get_name (self->grant);

      /* one token does not take every tunnel of the server */
      if (!zlt_quota_acquire (quota, principal, ZLT_QUOTA_TUNNELS, &error))
        {
          zlt_server_peer_disconnect (self, ZLT_REASON_LIMIT, error->message);
          goto out;
        }
      zlt_tunnel_set_token_name (tunnel, principal);
      if (!zlt_registry_add_tunnel (registry, tunnel, &error))
        {
          zlt_quota_release (quota, principal, ZLT_QUOTA_TUNNELS);
          zlt_server_peer_disconnect (self, zlt_reason_code_from_error (error), error->message);
          goto out;
        }
      self->tunnel = g_steal_pointer (&tunnel);
      self->access_asked = d->access_asked;
      self->access_deadline = access_deadline_for (self, d->access_ttl);
    }
  zlt_tunnel_set_peer_address (self->tunnel, zlt_channel_get_peer_address (self->channel));
  zlt_tunnel_set_client_id (self->tunnel, d->client_id);
  zlt_tunnel_set_token_name (self->tunnel, zlt_grant_get_name (self->grant));
  zlt_tunnel_set_rate_limits (self->tunnel, zlt_grant_get_rate_limit_in (self->grant),
                              zlt_grant_get_rate_limit_out (self->grant));
  zlt_tunnel_set_state (self->tunnel, ZLT_TUNNEL_STATE_CONNECTED);

  zlt_source_clear (&self->auth_deadline);
  self->state = PEER_READY;
  zlt_channel_end_admission (self->channel);
  self->frame_tokens = limits_of (self)->max_frame_rate * 10.0;
  self->frame_refilled = g_get_monotonic_time ();
  send_auth_ok (self, resumed, &d->client_uuid);
  arm_grant_timers (self);
  zlt_heartbeat_start (self->heartbeat);
  zlt_uuid_format (zlt_tunnel_get_id (self->tunnel), self->id);
  zlt_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, ZLT_LOG_EVENT_TUNNEL_UP, self->id, NULL,
                 zlt_channel_get_peer_address (self->channel), "tunnel %s %s for %s (%s)", self->id,
                 resumed ? "resumed" : "opened", zlt_channel_get_peer_address (self->channel),
                 zlt_grant_get_name (self->grant) ? zlt_grant_get_name (self->grant)
                                                  : "unnamed token");
  zlt_server_peer_ready (self->server, self);
out:
  auth_data_free (d);
}

static gboolean
key_id_is_valid (const char *key_id)
{
  gsize len = 0;

  for (const char *p = key_id; *p != '\0'; p++, len++)
    if (!g_ascii_isdigit (*p) && !(*p >= 'a' && *p <= 'f'))
      return FALSE;
  return len == ZLT_KEY_ID_LEN;
}

static void
handle_auth (ZltServerPeer *self, const ZltMessage *msg)
{
  ZltServerConfig *config = zlt_server_get_config (self->server);
  g_autoptr (ZltCredential) credential = NULL;
  gboolean bearer_wanted
      = zlt_validator_get_credential_mode (zlt_server_get_validator (self->server))
        == ZLT_CREDENTIAL_MODE_BEARER;
  AuthData *d;

  if (self->state != PEER_AWAIT_AUTH)
    {
      protocol_error (self, "Auth sent twice");
      return;
    }
  if (zlt_message_has_ext_fields (msg, ZLT_EXT_PROOF))
    {
      GBytes *nonce = zlt_channel_get_nonce (self->channel);
      self->v2 = TRUE;
      if (nonce == NULL || g_bytes_get_size (nonce) != ZLT_NONCE_SIZE)
        {
          zlt_server_peer_disconnect (self, ZLT_REASON_PROTOCOL, _ ("no challenge was issued"));
          return;
        }
      /* an agent that does not know §2a: it cannot be let in, and should not retry */
      if (bearer_wanted)
        {
          auth_refused (self, ZLT_REASON_BAD_TOKEN, "challenge proof to a bearer validator",
                        _ ("this server's validator needs the token itself (bearer credential, "
                           "over verified TLS); this agent sent a challenge proof: update it"));
          return;
        }
      /* a key id is 16 lowercase hex digits: anything else names no token, and is not
       * worth a validator's (or a plugin's database's) time */
      if (!key_id_is_valid (msg->token))
        {
          auth_refused (self, ZLT_REASON_BAD_TOKEN, "malformed key id", _ ("unknown token"));
          return;
        }
      credential = zlt_credential_new_proof (msg->token, g_bytes_get_data (nonce, NULL),
                                             &msg->client_id, msg->ext.proof);
      if (zlt_message_has_ext_fields (msg, ZLT_EXT_CAPS))
        self->caps = msg->ext.caps;
    }
  else if (zlt_message_has_ext_fields (msg, ZLT_EXT_CAPS) && (msg->ext.caps & ZLT_CAP_BEARER))
    {
      /* the raw token, sent because we asked (PROTOCOL-v2.md §2a); never logged */
      GBytes *nonce = zlt_channel_get_nonce (self->channel);
      self->v2 = TRUE;
      if (nonce == NULL || g_bytes_get_size (nonce) != ZLT_NONCE_SIZE)
        {
          zlt_server_peer_disconnect (self, ZLT_REASON_PROTOCOL, _ ("no challenge was issued"));
          return;
        }
      if (!bearer_wanted)
        {
          auth_refused (self, ZLT_REASON_PROTOCOL, "bearer credential not asked for",
                        _ ("this server did not ask for a bearer credential"));
          return;
        }
      if (msg->token == NULL || *msg->token == '\0')
        {
          auth_refused (self, ZLT_REASON_BAD_TOKEN, "empty bearer token", _ ("unknown token"));
          return;
        }
      self->bearer = TRUE;
      self->caps = msg->ext.caps;
      credential
          = zlt_credential_new_bearer (msg->token, g_bytes_get_data (nonce, NULL), &msg->client_id);
    }
  else
    {
      if (msg->has_ext)
        self->v2 = TRUE;
      if (!zlt_server_config_get_allow_legacy_auth (config))
        {
          auth_refused (self, ZLT_REASON_LEGACY_REFUSED, "raw-token authentication disabled",
                        _ ("raw-token authentication is disabled on this server"));
          return;
        }
      credential = zlt_credential_new_token (msg->token);
    }
  zlt_credential_set_peer_address (credential, zlt_channel_get_peer_address (self->channel));
  self->state = PEER_AUTHENTICATING;
  self->credential = zlt_credential_copy (credential);
  d = g_new0 (AuthData, 1);
  d->peer = g_object_ref (self);
  d->client_uuid = msg->client_id;
  d->client_id = zlt_uuid_to_string (&msg->client_id);
  if (zlt_message_has_ext_fields (msg, ZLT_EXT_ACCESS_TTL))
    {
      d->access_asked = TRUE;
      d->access_ttl = msg->ext.access_ttl;
    }
  if (zlt_message_has_ext_fields (msg, ZLT_EXT_RESUME))
    {
      d->want_resume = TRUE;
      d->resume_id = msg->ext.resume_tunnel_id;
      memcpy (d->resume_mac, msg->ext.resume_mac, ZLT_HASH_SIZE);
    }
  zlt_validator_validate_async (zlt_server_get_validator (self->server), credential,
                                self->cancellable, validated, d);
}

static gboolean
on_auth_deadline (gpointer user_data)
{
  ZltServerPeer *self = user_data;

  zlt_source_clear (&self->auth_deadline);
  zlt_server_peer_disconnect (self, ZLT_REASON_TIMEOUT, _ ("authentication timeout"));
  return G_SOURCE_REMOVE;
}

/* ---- registrations ---- */

static void
register_fail (ZltServerPeer *self, const char *name, ZltReasonCode code, const char *reason)
{
  g_autoptr (ZltMessage) fail = zlt_message_new_register_fail (reason);
  guint suppressed = 0;

  /* an agent asking in a loop must not fill the log */
  if (zlt_log_limit_allow (&self->refusal_log, &suppressed))
    {
      g_autofree char *shown_name = zlt_log_escape (name, 80);
      g_autofree char *shown = zlt_log_escape (reason, 200);
      g_autofree char *more
          = suppressed > 0 ? g_strdup_printf (" (%u more refusals not logged)", suppressed) : NULL;

      zlt_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, ZLT_LOG_EVENT_SERVICE_REFUSED, self->id,
                     shown_name, zlt_channel_get_peer_address (self->channel),
                     "tunnel %s: service %s refused: %s%s", self->id, shown_name, shown,
                     more != NULL ? more : "");
    }

  if (self->v2)
    zlt_message_set_code (fail, code);
  zlt_server_peer_send (self, fail);
}

/* A v1 peer gets the text only, so the text names what the code would say. */
static void
register_fail_error (ZltServerPeer *self, const char *name, const GError *error)
{
  g_autofree char *reason = NULL;

  if (error == NULL)
    {
      /* a failure path that forgot its GError is our bug: refuse, never crash */
      g_critical ("tunnel %s: registration failed without a reason", self->id);
      register_fail (self, name, ZLT_REASON_INTERNAL, _ ("internal error"));
      return;
    }
  if (g_error_matches (error, ZLT_ERROR, ZLT_ERROR_PORTS_EXHAUSTED))
    reason = g_strdup_printf (_ ("port range exhausted: %s"), error->message);
  register_fail (self, name, zlt_reason_code_from_error (error), reason ? reason : error->message);
}

static void
register_ok (ZltServerPeer *self, ZltService *service)
{
  g_autoptr (ZltMessage) ok = zlt_message_new_register_ok (zlt_service_get_id (service));

  if (self->v2)
    zlt_message_set_assigned_port (ok, zlt_service_get_assigned_port (service));
  zlt_server_peer_send (self, ok);
}

/* Whether @hostname is one this server routes and this peer's token may claim, and
 * free or already @name's on this tunnel (a resumed service); refuses otherwise. */
static gboolean
may_claim_hostname (ZltServerPeer *self, const char *name, const char *hostname)
{
  ZltServerConfig *config = zlt_server_get_config (self->server);
  ZltService *holder;

  if (zlt_server_config_get_http_listen (config, NULL) == NULL
      && zlt_server_config_get_tls_listen (config, NULL) == NULL)
    {
      register_fail (self, name, ZLT_REASON_NOT_ALLOWED,
                     _ ("this server has no shared HTTP or TLS port for hostnames"));
      return FALSE;
    }
  if (!zlt_hostname_patterns_match (zlt_server_config_get_hostname_domains (config), hostname))
    {
      g_autofree char *reason = g_strdup_printf (
          _ ("hostname “%s” is not under a domain this server serves"), hostname);
      register_fail (self, name, ZLT_REASON_NOT_ALLOWED, reason);
      return FALSE;
    }
  if (!zlt_grant_may_claim_hostname (self->grant, hostname))
    {
      g_autofree char *reason
          = g_strdup_printf (_ ("token is not allowed to claim hostname “%s”"), hostname);
      register_fail (self, name, ZLT_REASON_NOT_ALLOWED, reason);
      return FALSE;
    }
  /* a replica of the holder (same name, owned) shares it: zlt_server_add_hostname()
   * checks they are one group once it is registered */
  holder = zlt_server_lookup_hostname (self->server, hostname);
  if (holder != NULL
      && (g_strcmp0 (zlt_service_get_name (holder), name) != 0
          || (zlt_service_get_tunnel (holder) != self->tunnel
              && !zlt_grant_owns (self->grant, name))))
    {
      g_autofree char *reason
          = g_strdup_printf (_ ("hostname “%s” is taken by another service"), hostname);
      register_fail (self, name, ZLT_REASON_DUPLICATE_NAME, reason);
      return FALSE;
    }
  return TRUE;
}

static void
handle_register (ZltServerPeer *self, const ZltMessage *msg)
{
  ZltRegistry *registry = zlt_server_get_registry (self->server);
  g_autoptr (GError) error = NULL;
  g_autofree char *owner = NULL;
  ZltExpose expose = ZLT_EXPOSE_PUBLIC;
  g_autofree char *hostname = NULL;
  ZltService *service;

  if (zlt_message_has_ext_fields (msg, ZLT_EXT_EXPOSE))
    expose = msg->ext.expose == ZLT_EXPOSE_INTERNAL ? ZLT_EXPOSE_INTERNAL : ZLT_EXPOSE_PUBLIC;
  if (zlt_message_has_ext_fields (msg, ZLT_EXT_HOSTNAME) && msg->hostname != NULL)
    {
      /* a hostname instead of a port: routed from the shared ports (PROTOCOL-v2.md §10) */
      hostname = zlt_hostname_normalize (msg->hostname, -1);
      if (hostname == NULL || msg->protocol != ZLT_PROTOCOL_TCP)
        {
          register_fail (self, msg->name, ZLT_REASON_INVALID,
                         hostname == NULL
                             ? _ ("invalid hostname: use letters, digits and '-' in dot-separated "
                                  "labels")
                             : _ ("a hostname is for TCP services only"));
          return;
        }
      expose = ZLT_EXPOSE_INTERNAL;
    }
  /* the config's rules, applied where the name enters: it reaches logs, the D-Bus view
   * and access requests */
  if (!zlt_service_name_is_valid (msg->name))
    {
      g_autofree char *shown = zlt_log_escape (msg->name, 80);
      g_debug ("tunnel %s: refusing service name “%s”", self->id, shown);
      register_fail (self, msg->name, ZLT_REASON_INVALID,
                     _ ("invalid service name: use 1 to 64 letters, digits, '-' or '_'"));
      return;
    }
  if (msg->local_port == 0)
    {
      register_fail (self, msg->name, ZLT_REASON_INVALID, _ ("invalid local port 0"));
      return;
    }
  if (zlt_grant_is_expired (self->grant, g_get_real_time () / G_USEC_PER_SEC))
    {
      zlt_server_peer_disconnect (self, ZLT_REASON_EXPIRED_TOKEN, _ ("token expired"));
      return;
    }
  if (!zlt_grant_may_register (self->grant, msg->name))
    {
      g_autofree char *reason
          = g_strdup_printf (_ ("token is not allowed to register service “%s”"), msg->name);
      register_fail (self, msg->name, ZLT_REASON_NOT_ALLOWED, reason);
      return;
    }
  /* a name the token file reserves to another token is not ours to take, even while
   * its owner is away (the registry keeps the names of owners it has seen) */
  owner = zlt_validator_lookup_owner (zlt_server_get_validator (self->server), msg->name);
  if (owner != NULL && g_strcmp0 (owner, zlt_grant_get_name (self->grant)) != 0)
    {
      g_autofree char *reason
          = g_strdup_printf (_ ("service name “%s” is reserved to another token"), msg->name);
      register_fail (self, msg->name, ZLT_REASON_NOT_ALLOWED, reason);
      return;
    }
  if (hostname != NULL && !may_claim_hostname (self, msg->name, hostname))
    return;
  /* a new service (not one held over a resume) counts toward the token's share */
  if (zlt_tunnel_lookup_service (self->tunnel, msg->name) == NULL
      && !zlt_quota_check (zlt_server_get_quota (self->server), zlt_grant_get_name (self->grant),
                           ZLT_QUOTA_SERVICES, &error))
    {
      register_fail_error (self, msg->name, error);
      return;
    }
  if (!zlt_server_supports_protocol (self->server, msg->protocol))
    {
      register_fail (self, msg->name, ZLT_REASON_NOT_ALLOWED,
                     _ ("this server has no udp transport plugin: UDP services are not available"));
      return;
    }

  /* on a resumed tunnel the registry hands back the held service, port and all; a name
   * the token owns may run behind several agents, as replicas sharing one public port */
  if (zlt_grant_owns (self->grant, msg->name))
    service = zlt_registry_register_replica (registry, self->tunnel, msg->name, msg->protocol,
                                             msg->local_port, msg->remote_port, expose, &error);
  else
    service = zlt_registry_register_service (registry, self->tunnel, msg->name, msg->protocol,
                                             msg->local_port, msg->remote_port, expose, &error);
  if (service == NULL)
    {
      register_fail_error (self, msg->name, error);
      return;
    }
  if (!zlt_server_open_service (self->server, service, &error))
    {
      zlt_registry_unregister_service (registry, service, NULL);
      register_fail_error (self, msg->name, error);
      return;
    }
  if (hostname != NULL && !zlt_server_add_hostname (self->server, hostname, service))
    {
      g_autofree char *reason
          = g_strdup_printf (_ ("hostname “%s” is taken by another service"), hostname);
      zlt_registry_unregister_service (registry, service, NULL);
      register_fail (self, msg->name, ZLT_REASON_DUPLICATE_NAME, reason);
      return;
    }
  /* the owner's own limits for its service, within the server's */
  zlt_server_set_service_limits (
      self->server, service,
      zlt_message_has_ext_fields (msg, ZLT_EXT_MAX_CONNECTIONS) ? msg->ext.max_connections : 0,
      zlt_message_has_ext_fields (msg, ZLT_EXT_IDLE_TIMEOUT) ? msg->ext.idle_timeout : 0);
  zlt_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, ZLT_LOG_EVENT_SERVICE_REGISTERED, self->id,
                 msg->name, zlt_channel_get_peer_address (self->channel),
                 "tunnel %s: service %s on port %u%s%s", self->id, msg->name,
                 zlt_service_get_assigned_port (service), hostname ? " as " : "",
                 hostname ? hostname : "");
  register_ok (self, service);
}

static void
handle_unregister (ZltServerPeer *self, const ZltMessage *msg)
{
  ZltService *service = zlt_tunnel_lookup_service_by_id (self->tunnel, &msg->service_id);

  /* unknown ids are ignored: the agent may race a server-side removal */
  if (service == NULL)
    return;
  zlt_server_close_service (self->server, service);
  zlt_registry_unregister_service (zlt_server_get_registry (self->server), service, NULL);
}

/* ---- dispatch ---- */

static void
handle_message (ZltServerPeer *self, const ZltMessage *msg)
{
  if (self->state == PEER_READY && !may_send_frame (self, msg))
    {
      g_message ("tunnel %s: %s sends more than %u frames per second, dropping it", self->id,
                 zlt_channel_get_peer_address (self->channel), limits_of (self)->max_frame_rate);
      peer_end (self, ZLT_REASON_LIMIT, _ ("too many frames"), FALSE);
      return;
    }
  if (self->state == PEER_AWAIT_AUTH && msg->type != ZLT_MESSAGE_AUTH)
    {
      zlt_server_peer_disconnect (self, ZLT_REASON_PROTOCOL, _ ("expected Auth"));
      return;
    }
  if (self->state == PEER_AUTHENTICATING)
    {
      /* nothing may overtake the validator's answer */
      protocol_error (self, "frame before AuthOk");
      return;
    }
  switch (msg->type)
    {
    case ZLT_MESSAGE_AUTH:
      handle_auth (self, msg);
      break;
    case ZLT_MESSAGE_REGISTER:
      handle_register (self, msg);
      break;
    case ZLT_MESSAGE_UNREGISTER:
      handle_unregister (self, msg);
      break;
    case ZLT_MESSAGE_HEARTBEAT:
      {
        g_autoptr (ZltMessage) ack = zlt_message_new_heartbeat_ack (msg->timestamp);
        if (zlt_message_has_ext_fields (msg, ZLT_EXT_TIMESTAMP_US))
          zlt_message_set_timestamp_us (ack, msg->ext.timestamp_us);
        zlt_server_peer_send (self, ack);
      }
      break;
    case ZLT_MESSAGE_HEARTBEAT_ACK:
      if (zlt_message_has_ext_fields (msg, ZLT_EXT_TIMESTAMP_US))
        zlt_heartbeat_acked_us (self->heartbeat, msg->ext.timestamp_us);
      else
        zlt_heartbeat_acked (self->heartbeat, msg->timestamp);
      break;
    case ZLT_MESSAGE_CONNECT_ACK:
      break; /* v2 agents confirm with the data connection itself */
    case ZLT_MESSAGE_CONNECT_FAIL:
      zlt_server_connect_failed (self->server, self, &msg->connection_id, msg->reason);
      break;
    case ZLT_MESSAGE_DISCONNECT:
      {
        /* an agent that stops on purpose says goodbye: nothing is held for it */
        g_autofree char *reason = zlt_log_escape (msg->reason, 200);
        g_autofree char *why = g_strdup_printf ("the agent is leaving: %s", reason);

        /* logged as the tunnel's end */
        peer_finish (self, FALSE, why);
      }
      break;
    case ZLT_MESSAGE_AUTH_OK:
    case ZLT_MESSAGE_AUTH_FAIL:
    case ZLT_MESSAGE_REGISTER_OK:
    case ZLT_MESSAGE_REGISTER_FAIL:
    case ZLT_MESSAGE_CONNECT:
    default:
      {
        g_autofree char *what
            = g_strdup_printf ("%s is not sent by agents", zlt_message_type_to_string (msg->type));
        protocol_error (self, what);
      }
      break;
    }
}

static void
on_channel_message (ZltChannel *channel, GBytes *bytes, gpointer user_data)
{
  ZltServerPeer *self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) frames = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);

  g_object_ref (self);
  zlt_heartbeat_received (self->heartbeat);
  if (self->tunnel != NULL)
    zlt_tunnel_touch (self->tunnel);
  if (self->state == PEER_AWAIT_AUTH)
    {
      /* before it has a name, a peer gets one frame's worth of our attention: Auth */
      gsize consumed = 0;
      g_autoptr (ZltMessage) auth = zlt_message_decode (data, len, &consumed, &error);

      if (auth == NULL)
        protocol_error (self, error->message);
      else if (consumed != len)
        protocol_error (self, "more than one frame before authentication");
      else
        handle_message (self, auth);
    }
  else if (self->state == PEER_AUTHENTICATING)
    protocol_error (self, "frame before AuthOk");
  else
    {
      frames = zlt_message_decode_all (data, len, &error);
      if (frames == NULL)
        protocol_error (self, error->message);
      else
        for (guint i = 0; i < frames->len && self->state == PEER_READY; i++)
          handle_message (self, g_ptr_array_index (frames, i));
    }
  g_object_unref (self);
}

static void
on_channel_closed (ZltChannel *channel, const GError *error, gpointer user_data)
{
  ZltServerPeer *self = user_data;

  if (error != NULL)
    g_debug ("control channel of %s closed: %s", zlt_channel_get_peer_address (channel),
             error->message);
  /* a vanished v2 agent gets its tunnel held for a resume */
  peer_finish (self, self->state == PEER_READY,
               error != NULL ? error->message : "the control channel closed");
}

static void
on_heartbeat_send (ZltHeartbeat *heartbeat, guint64 timestamp_us, gpointer user_data)
{
  ZltServerPeer *self = user_data;
  g_autoptr (ZltMessage) hb = zlt_message_new_heartbeat (timestamp_us / 1000);

  /* a v1 peer gets exactly the v1 frame; a v2 one the µs as well */
  if (self->v2)
    zlt_message_set_timestamp_us (hb, timestamp_us);
  zlt_server_peer_send (self, hb);
}

/* a late agent's replicas get no new connections while another one is ready */
static void
on_heartbeat_late (ZltHeartbeat *heartbeat, GParamSpec *pspec, gpointer user_data)
{
  ZltServerPeer *self = user_data;

  if (self->state != PEER_READY)
    return;
  if (zlt_heartbeat_is_late (heartbeat))
    g_debug ("tunnel %s: heartbeat late", self->id);
  else
    g_debug ("tunnel %s: heartbeat on time again", self->id);
  zlt_server_peer_late_changed (self->server, self);
}

gboolean
zlt_server_peer_is_late (ZltServerPeer *self)
{
  return self->state == PEER_READY && zlt_heartbeat_is_late (self->heartbeat);
}

static void
on_heartbeat_timeout (ZltHeartbeat *heartbeat, gpointer user_data)
{
  ZltServerPeer *self = user_data;

  /* logged as the tunnel's end */
  zlt_server_peer_disconnect (self, ZLT_REASON_TIMEOUT, _ ("heartbeat timeout"));
}

/* Ends the peer once; the server decides what happens to its tunnel. @why: what ended
 * it, for the log. */
static void
peer_finish (ZltServerPeer *self, gboolean hold, const char *why)
{
  gboolean was_ready = self->state == PEER_READY;

  if (self->state == PEER_CLOSED)
    return;
  self->state = PEER_CLOSED;
  g_cancellable_cancel (self->cancellable);
  zlt_heartbeat_stop (self->heartbeat);
  zlt_source_clear (&self->auth_deadline);
  zlt_source_clear (&self->expiry_timer);
  zlt_source_clear (&self->access_timer);
  g_signal_handlers_disconnect_by_data (self->channel, self);
  if (!zlt_channel_is_closed (self->channel))
    zlt_channel_close (self->channel, 1000, NULL);
  hold = hold && was_ready && self->v2 && (self->caps & ZLT_CAP_RESUME);
  if (self->tunnel != NULL && was_ready)
    {
      g_autofree char *shown = zlt_log_escape (why, 200);
      const char *peer = zlt_channel_get_peer_address (self->channel);

      /* held: the agent went without a goodbye (a failure); closed: a goodbye or a cut */
      if (hold)
        zlt_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, ZLT_LOG_EVENT_TUNNEL_DOWN, self->id, NULL,
                       peer, "tunnel %s of %s held for a resume: %s", self->id, peer, shown);
      else
        zlt_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, ZLT_LOG_EVENT_TUNNEL_DOWN, self->id, NULL,
                       peer, "tunnel %s closed for %s: %s", self->id, peer, shown);
      zlt_tunnel_set_state (self->tunnel, ZLT_TUNNEL_STATE_DISCONNECTED);
    }
  /* may drop the server's last reference to us */
  zlt_server_peer_gone (self->server, self, hold);
}

/* After the grant changed: what it no longer covers ends now, not at the next
 * registration or connection. */
static void
apply_rights (ZltServerPeer *self)
{
  g_autoptr (GPtrArray) services = zlt_tunnel_get_services (self->tunnel);
  ZltRegistry *registry = zlt_server_get_registry (self->server);

  for (guint i = 0; i < services->len; i++)
    {
      ZltService *service = g_ptr_array_index (services, i);
      const char *hostname = zlt_service_get_hostname (service);

      if (zlt_grant_may_register (self->grant, zlt_service_get_name (service))
          && (hostname == NULL || zlt_grant_may_claim_hostname (self->grant, hostname)))
        continue;
      g_message ("tunnel %s: token no longer covers service %s, removing it", self->id,
                 zlt_service_get_name (service));
      zlt_registry_unregister_service (registry, service, NULL);
    }
  zlt_server_rights_changed (self->server, self);
  arm_grant_timers (self);
}

static void
rechecked (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (ZltServerPeer) self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltGrant) grant
      = zlt_validator_validate_finish (ZLT_VALIDATOR (source), result, &error);

  if (self->state != PEER_READY)
    return;
  if (grant == NULL)
    {
      g_message ("tunnel %s: token no longer valid: %s", self->id, error->message);
      zlt_server_peer_disconnect (self, zlt_reason_code_from_error (error), error->message);
      return;
    }
  g_set_object (&self->grant, grant);
  zlt_tunnel_set_rate_limits (self->tunnel, zlt_grant_get_rate_limit_in (grant),
                              zlt_grant_get_rate_limit_out (grant));
  apply_rights (self);
}

/* The validator's tokens changed (file edited, token revoked): ask again. */
void
zlt_server_peer_recheck (ZltServerPeer *self)
{
  if (self->state != PEER_READY || self->credential == NULL)
    return;
  zlt_validator_validate_async (zlt_server_get_validator (self->server), self->credential,
                                self->cancellable, rechecked, g_object_ref (self));
}

ZltTunnel *
zlt_server_peer_get_tunnel (ZltServerPeer *self)
{
  return self->tunnel;
}

ZltGrant *
zlt_server_peer_get_grant (ZltServerPeer *self)
{
  return self->grant;
}

/* what the peer said it can do in its Auth (0 for v1) */
guint32
zlt_server_peer_get_caps (ZltServerPeer *self)
{
  return self->caps;
}

const guint8 *
zlt_server_peer_get_session_key (ZltServerPeer *self)
{
  return self->v2 && self->state == PEER_READY ? self->session_key : NULL;
}

static void
zlt_server_peer_dispose (GObject *object)
{
  ZltServerPeer *self = ZLT_SERVER_PEER (object);

  zlt_source_clear (&self->auth_deadline);
  zlt_source_clear (&self->expiry_timer);
  zlt_source_clear (&self->access_timer);
  if (self->channel != NULL)
    g_signal_handlers_disconnect_by_data (self->channel, self);
  if (self->heartbeat != NULL)
    g_signal_handlers_disconnect_by_data (self->heartbeat, self);
  g_clear_object (&self->heartbeat);
  g_clear_object (&self->channel);
  g_clear_object (&self->tunnel);
  g_clear_object (&self->grant);
  g_clear_pointer (&self->credential, zlt_credential_free);
  g_clear_object (&self->cancellable);
  G_OBJECT_CLASS (zlt_server_peer_parent_class)->dispose (object);
}

static void
zlt_server_peer_class_init (ZltServerPeerClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = zlt_server_peer_dispose;
}

static void
zlt_server_peer_init (ZltServerPeer *self)
{
  self->cancellable = g_cancellable_new ();
  g_strlcpy (self->id, "-", sizeof self->id);
  self->refusal_log = (ZltLogLimit) ZLT_LOG_LIMIT_INIT (10, 60);
}

ZltServerPeer *
zlt_server_peer_new (ZltServer *server, ZltChannel *channel)
{
  ZltServerConfig *config = zlt_server_get_config (server);
  ZltServerPeer *self = g_object_new (ZLT_TYPE_SERVER_PEER, NULL);
  guint interval = zlt_server_config_get_heartbeat_interval (config);
  guint timeout = zlt_server_config_get_heartbeat_timeout (config);

  self->server = server;
  self->channel = g_object_ref (channel);
  self->heartbeat = zlt_heartbeat_new (interval * 1000, timeout * 1000);
  g_signal_connect (self->heartbeat, "send", G_CALLBACK (on_heartbeat_send), self);
  g_signal_connect (self->heartbeat, "timeout", G_CALLBACK (on_heartbeat_timeout), self);
  g_signal_connect (self->heartbeat, "notify::late", G_CALLBACK (on_heartbeat_late), self);
  g_signal_connect (channel, "message", G_CALLBACK (on_channel_message), self);
  g_signal_connect (channel, "closed", G_CALLBACK (on_channel_closed), self);

  self->auth_deadline = zlt_timeout_source_attach (
      zlt_server_config_get_auth_timeout (config) * 1000, on_auth_deadline, self);
  return self;
}
