/* fuzz-server-peer.c: the server's handling of an agent's messages, after login.
 *
 * One real ZltServer for the whole run (core/zlt-server.h), with the real token-file
 * validator (two tokens written to a private temporary file) and the real tcp and udp
 * transports for public ports on 127.0.0.1 in PORT_RANGE; its control transport is
 * ZltFuzzControlTransport, so frames go straight to the server peer.
 *
 * Input: byte 0 is flags (FLAG_*); the rest is a sequence of channel messages, each a
 * big-endian u16 length and that many bytes (the last one is cut to what is left). A
 * message may hold several frames, or half of one. With FLAG_BUILD each message is
 * instead a recipe (see build_frames()): the target encodes well-formed frames from it,
 * with lengths right and ids the server handed out, so that the fuzzer spends its time
 * on what the server does with valid frames rather than on getting lengths to agree;
 * a recipe can also dial a public port, so that the server sends Connect.
 *
 * Per input: a new channel; the target logs in (a v1 raw-token Auth, which the config
 * allows, or a v2 Auth with a proof for the nonce set on the channel, as flags say)
 * and checks the AuthOk; then delivers each message and runs the main context until
 * idle; then checks the server against the channel; hangs up; removes what is left
 * (a tunnel held for a resume); and checks that nothing is: no peer, tunnel, port
 * lease, pending connection, listening socket. */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "zlt-fuzz-channel.h"
#include "zlt-fuzz-control-listener.h"
#include "zlt-fuzz-control-transport.h"
#include "zlt-fuzz.h"

#define PORT_FIRST 28600
#define PORT_LAST 28631
#define PORT_RANGE "28600-28631"
#define CLIENT_ID "550e8400-e29b-41d4-a716-446655440000"
#define PEER_ADDRESS "127.0.0.1:9"
#define LOGIN_TIMEOUT_MS 5000
#define FD_SLACK 16

enum
{
  FLAG_V2 = 1 << 0,         /* v2 Auth with PROOF; else a v1 raw-token Auth */
  FLAG_CAP_RESUME = 1 << 1, /* v2: RESUME in CAPS (the tunnel is held on a hang-up) */
  FLAG_CAP_ACCESS = 1 << 2, /* v2: ACCESS in CAPS */
  FLAG_NO_LOGIN = 1 << 3,   /* the messages start before Auth: the input logs in, or not */
  FLAG_SCOPED = 1 << 4,     /* the token that may register only "ssh" and "web" */
  FLAG_ABRUPT = 1 << 5,     /* hang up right after the last message, before it settles */
  FLAG_BUILD = 1 << 6,      /* each message is a recipe the target builds frames from */
};

static struct
{
  ZltPluginLoader *loader;
  ZltServer *server;
  ZltFuzzControlTransport *control;
  char *token[2];
  guint8 token_hash[2][ZLT_HASH_SIZE];
  GBytes *nonce;
  ZltUuid client_id;
  guint baseline_fds;
  gboolean goodbye; /* this input sent a well-formed message holding a Disconnect */
} fuzz;

/* An agent that says goodbye (Disconnect) is let go without an answer; anything else
 * the server ends, it ends with a reason. Only a message that decodes whole counts: the
 * server drops a peer at the first bad frame, with a Disconnect of its own. */
static gboolean
holds_goodbye (const guint8 *data, gsize len)
{
  g_autoptr (GPtrArray) frames = zlt_message_decode_all (data, len, NULL);

  for (guint i = 0; frames != NULL && i < frames->len; i++)
    if (((ZltMessage *) g_ptr_array_index (frames, i))->type == ZLT_MESSAGE_DISCONNECT)
      return TRUE;
  return FALSE;
}

static guint
count_fds (void)
{
  g_autoptr (GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  if (dir == NULL)
    return 0;
  while (g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

static void
write_tokens (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *hash0 = zlt_token_hash_hex (fuzz.token[0]);
  g_autofree char *hash1 = zlt_token_hash_hex (fuzz.token[1]);
  g_autofree char *contents
      = g_strdup_printf ("%s name=fuzz\n%s name=fuzz-scoped services=ssh,web\n", hash0, hash1);

  if (!g_file_set_contents_full (path, contents, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error))
    g_error ("cannot write the token file: %s", error->message);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (ZltServerConfig) config = NULL;
  g_autoptr (ZltValidator) validator = NULL;
  g_autoptr (ZltTransport) tcp = NULL;
  g_autoptr (ZltTransport) udp = NULL;
  g_autoptr (ZltControlTransport) control = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  guint8 nonce[ZLT_NONCE_SIZE];

  zlt_fuzz_setup_logging ();
  if (g_getenv ("ZLT_PLUGIN_DIR") == NULL)
    g_setenv ("ZLT_PLUGIN_DIR", ZLT_FUZZ_PLUGIN_DIR, TRUE);
  fuzz.loader = zlt_plugin_loader_new (NULL);
  if (!zlt_plugin_loader_load_all (fuzz.loader, &error))
    g_error ("cannot load the plugins: %s", error->message);

  /* test tokens, fixed so that crashes reproduce; never logged */
  fuzz.token[0] = g_strdup ("zlt_fuzz_0123456789abcdef0123456789abcdef");
  fuzz.token[1] = g_strdup ("zlt_fuzz_scoped_0123456789abcdef01234567");
  for (guint i = 0; i < 2; i++)
    zlt_token_hash_raw (fuzz.token[i], fuzz.token_hash[i]);
  memset (nonce, 0x4e, sizeof nonce);
  fuzz.nonce = g_bytes_new (nonce, sizeof nonce);
  if (!zlt_uuid_parse (CLIENT_ID, &fuzz.client_id))
    g_assert_not_reached ();

  /* the validator reads the file once; it is gone before the first input, so a crash
   * leaves nothing behind (with fail-closed=false a failed reload keeps the tokens) */
  dir = g_dir_make_tmp ("zlt-fuzz-XXXXXX", &error);
  if (dir == NULL)
    g_error ("%s", error->message);
  path = g_build_filename (dir, "tokens", NULL);
  write_tokens (path);

  g_key_file_set_string (kf, "server", "listen", "127.0.0.1:0");
  g_key_file_set_string (kf, "server", "public-bind-address", "127.0.0.1");
  g_key_file_set_string (kf, "server", "port-range", PORT_RANGE);
  g_key_file_set_integer (kf, "server", "heartbeat-interval", 3600);
  g_key_file_set_integer (kf, "server", "heartbeat-timeout", 7200);
  g_key_file_set_integer (kf, "server", "auth-timeout", 600);
  g_key_file_set_boolean (kf, "server", "allow-legacy-auth", TRUE);
  g_key_file_set_string (kf, "server", "validator", "token-file");
  g_key_file_set_string (kf, "validator:token-file", "path", path);
  g_key_file_set_boolean (kf, "validator:token-file", "fail-closed", FALSE);
  config = zlt_server_config_new_from_keyfile (kf, &error);
  if (config == NULL)
    g_error ("bad config: %s", error->message);
  validator = zlt_plugin_loader_new_validator (fuzz.loader, "token-file", kf,
                                               "validator:token-file", &error);
  if (validator == NULL)
    g_error ("no validator: %s", error->message);
  g_unlink (path);
  g_rmdir (dir);

  tcp = zlt_plugin_loader_new_transport (fuzz.loader, "tcp", &error);
  if (tcp == NULL)
    g_error ("no tcp transport: %s", error->message);
  /* UDP services too, when the plugin is there */
  udp = zlt_plugin_loader_new_transport (fuzz.loader, "udp", NULL);
  control = zlt_fuzz_control_transport_new ();
  fuzz.control = ZLT_FUZZ_CONTROL_TRANSPORT (control);
  fuzz.server = zlt_server_new_full (config, validator, control, tcp, udp);
  if (!zlt_server_start (fuzz.server, &error))
    g_error ("cannot start the server: %s", error->message);
  zlt_fuzz_settle (1000);
  fuzz.baseline_fds = count_fds ();
  return 0;
}

/* ---- per input ---- */

static gboolean
on_login_timeout (gpointer user_data)
{
  gboolean *timed_out = user_data;

  *timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

static const ZltMessage *
find_received (ZltFuzzChannel *channel, ZltMessageType type)
{
  GPtrArray *received = zlt_fuzz_channel_get_received (channel);

  for (guint i = 0; i < received->len; i++)
    {
      const ZltMessage *msg = g_ptr_array_index (received, i);
      if (msg->type == type)
        return msg;
    }
  return NULL;
}

static void
login (ZltFuzzChannel *channel, guint8 flags)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltMessage) auth = NULL;
  g_autoptr (GBytes) frame = NULL;
  GMainContext *context = g_main_context_get_thread_default ();
  guint which = (flags & FLAG_SCOPED) ? 1 : 0;
  const ZltMessage *ok;
  gboolean timed_out = FALSE;
  GSource *timeout;

  if (flags & FLAG_V2)
    {
      g_autofree char *key_id = zlt_token_key_id (fuzz.token[which]);
      guint8 proof[ZLT_HASH_SIZE];
      guint32 caps = ZLT_CAP_DATA_RAW | ZLT_CAP_UDP;

      if (flags & FLAG_CAP_RESUME)
        caps |= ZLT_CAP_RESUME;
      if (flags & FLAG_CAP_ACCESS)
        caps |= ZLT_CAP_ACCESS;
      zlt_auth_proof (fuzz.token_hash[which], g_bytes_get_data (fuzz.nonce, NULL), &fuzz.client_id,
                      proof);
      auth = zlt_message_new_auth (key_id, &fuzz.client_id);
      zlt_message_set_version (auth, ZLT_PROTOCOL_VERSION);
      zlt_message_set_caps (auth, caps);
      zlt_message_set_proof (auth, proof);
    }
  else
    auth = zlt_message_new_auth (fuzz.token[which], &fuzz.client_id);
  frame = zlt_message_encode_bytes (auth, &error);
  ZLT_FUZZ_CHECK (frame != NULL, "cannot encode the Auth: %s", error->message);
  zlt_fuzz_channel_deliver (channel, g_bytes_get_data (frame, NULL), g_bytes_get_size (frame));

  timeout = g_timeout_source_new (LOGIN_TIMEOUT_MS);
  g_source_set_callback (timeout, on_login_timeout, &timed_out, NULL);
  g_source_attach (timeout, context);
  while (find_received (channel, ZLT_MESSAGE_AUTH_OK) == NULL
         && !zlt_fuzz_channel_get_close_requested (channel) && !timed_out)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (timeout);
  g_source_unref (timeout);

  ok = zlt_fuzz_channel_get_last (channel);
  ZLT_FUZZ_CHECK (ok != NULL && ok->type == ZLT_MESSAGE_AUTH_OK,
                  "login (%s) did not end in AuthOk but in %s", (flags & FLAG_V2) ? "v2" : "v1",
                  ok != NULL ? zlt_message_type_to_string (ok->type) : "nothing");
  if (flags & FLAG_V2)
    {
      ZLT_FUZZ_CHECK (
          zlt_message_has_ext_fields (ok, ZLT_EXT_VERSION | ZLT_EXT_CAPS | ZLT_EXT_HEARTBEAT_MS),
          "a v2 AuthOk without VERSION, CAPS and HEARTBEAT_MS");
      ZLT_FUZZ_CHECK (zlt_message_has_ext_fields (ok, ZLT_EXT_RESUME_SECRET)
                          == ((flags & FLAG_CAP_RESUME) != 0),
                      "RESUME_SECRET in AuthOk does not follow the RESUME capability");
    }
  else
    ZLT_FUZZ_CHECK (!ok->has_ext, "a v1 agent got an extension block in AuthOk");
}

/* ---- recipes (FLAG_BUILD) ---- */

static const ZltMessageType all_types[] = {
  ZLT_MESSAGE_AUTH,       ZLT_MESSAGE_AUTH_OK,       ZLT_MESSAGE_AUTH_FAIL,
  ZLT_MESSAGE_REGISTER,   ZLT_MESSAGE_REGISTER_OK,   ZLT_MESSAGE_REGISTER_FAIL,
  ZLT_MESSAGE_CONNECT,    ZLT_MESSAGE_CONNECT_ACK,   ZLT_MESSAGE_CONNECT_FAIL,
  ZLT_MESSAGE_HEARTBEAT,  ZLT_MESSAGE_HEARTBEAT_ACK, ZLT_MESSAGE_UNREGISTER,
  ZLT_MESSAGE_DISCONNECT,
};
#define RECIPE_DIAL G_N_ELEMENTS (all_types) /* a type byte that dials instead */

typedef struct
{
  const guint8 *data;
  gsize len, pos;
} Recipe;

/* zeros once the recipe runs out */
static guint
take (Recipe *r, guint n)
{
  guint v = 0;

  for (guint i = 0; i < n; i++)
    v = v << 8 | (r->pos < r->len ? r->data[r->pos++] : 0);
  return v;
}

static void
take_bytes (Recipe *r, guint8 *out, gsize n)
{
  for (gsize i = 0; i < n; i++)
    out[i] = (guint8) take (r, 1);
}

/* a length byte and that many bytes; NULs become '_', invalid UTF-8 is replaced */
static char *
take_string (Recipe *r)
{
  gsize n = take (r, 1);
  g_autofree char *raw = NULL;

  n = MIN (n, r->len - r->pos);
  raw = g_malloc0 (n + 1);
  memcpy (raw, r->data + r->pos, n);

  for (gsize i = 0; i < n; i++)
    if (raw[i] == '\0')
      raw[i] = '_';
  r->pos += n;
  return g_utf8_make_valid (raw, (gssize) n);
}

/* The n-th (from the end) id of that type the server sent: ids worth sending back. */
static gboolean
sent_id (ZltFuzzChannel *channel, ZltMessageType type, guint nth, ZltUuid *out)
{
  GPtrArray *received = zlt_fuzz_channel_get_received (channel);

  for (guint i = received->len; i > 0; i--)
    {
      const ZltMessage *msg = g_ptr_array_index (received, i - 1);
      if (msg->type != type || nth-- > 0)
        continue;
      switch (type)
        {
        case ZLT_MESSAGE_AUTH_OK:
          *out = msg->tunnel_id;
          break;
        case ZLT_MESSAGE_REGISTER_OK:
          *out = msg->service_id;
          break;
        case ZLT_MESSAGE_CONNECT:
          *out = msg->connection_id;
          break;
        default:
          return FALSE;
        }
      return TRUE;
    }
  return FALSE;
}

/* One selector byte: an id the server sent (a service, a connection, the tunnel), or 16
 * bytes from the recipe. */
static void
take_uuid (Recipe *r, ZltFuzzChannel *channel, ZltUuid *out)
{
  guint selector = take (r, 1);

  memset (out, 0, sizeof *out);
  switch (selector % 4)
    {
    case 0:
      sent_id (channel, ZLT_MESSAGE_REGISTER_OK, selector / 4 % 4, out);
      break;
    case 1:
      sent_id (channel, ZLT_MESSAGE_CONNECT, selector / 4 % 4, out);
      break;
    case 2:
      sent_id (channel, ZLT_MESSAGE_AUTH_OK, 0, out);
      break;
    default:
      take_bytes (r, out->bytes, ZLT_UUID_SIZE);
      break;
    }
}

/* A port: one byte, mostly near or in PORT_RANGE, or 0, or two bytes as they are. */
static guint16
take_port (Recipe *r)
{
  guint b = take (r, 1);

  if (b == 0xff)
    return (guint16) take (r, 2);
  if (b >= 0x80)
    return 0;
  return (guint16) (PORT_FIRST - 8 + b % 48);
}

/* the tags each type uses (PROTOCOL-v2.md §1) */
static guint32
used_tags (ZltMessageType type)
{
  switch (type)
    {
    case ZLT_MESSAGE_AUTH:
      return ZLT_EXT_VERSION | ZLT_EXT_CAPS | ZLT_EXT_PROOF | ZLT_EXT_RESUME;
    case ZLT_MESSAGE_AUTH_OK:
      return ZLT_EXT_VERSION | ZLT_EXT_CAPS | ZLT_EXT_RESUME_SECRET | ZLT_EXT_HEARTBEAT_MS
             | ZLT_EXT_RESUMED;
    case ZLT_MESSAGE_REGISTER:
      return ZLT_EXT_EXPOSE;
    case ZLT_MESSAGE_REGISTER_OK:
      return ZLT_EXT_ASSIGNED_PORT;
    case ZLT_MESSAGE_AUTH_FAIL:
    case ZLT_MESSAGE_REGISTER_FAIL:
    case ZLT_MESSAGE_DISCONNECT:
      return ZLT_EXT_CODE;
    default:
      return 0;
    }
}

/* One ext byte: bit 0 adds a block, the others pick the type's tags in order. */
static void
take_ext (Recipe *r, ZltFuzzChannel *channel, ZltMessage *msg)
{
  guint mask = take (r, 1);
  guint32 used = used_tags (msg->type);
  guint bit = 1;

  if (!(mask & 1) || !zlt_message_type_has_ext (msg->type))
    return;
  msg->has_ext = TRUE;
  for (guint tag = ZLT_EXT_TAG_VERSION; tag <= ZLT_EXT_TAG_CODE; tag++)
    {
      guint8 hash[ZLT_HASH_SIZE];
      ZltUuid id;

      if (!(used & ZLT_EXT_FLAG (tag)))
        continue;
      if (!(mask & (1u << bit++)))
        continue;
      switch ((ZltExtTag) tag)
        {
        case ZLT_EXT_TAG_VERSION:
          zlt_message_set_version (msg, (guint16) take (r, 2));
          break;
        case ZLT_EXT_TAG_CAPS:
          zlt_message_set_caps (msg, take (r, 4));
          break;
        case ZLT_EXT_TAG_PROOF:
          take_bytes (r, hash, sizeof hash);
          zlt_message_set_proof (msg, hash);
          break;
        case ZLT_EXT_TAG_RESUME:
          take_uuid (r, channel, &id);
          take_bytes (r, hash, sizeof hash);
          zlt_message_set_resume (msg, &id, hash);
          break;
        case ZLT_EXT_TAG_RESUME_SECRET:
          take_bytes (r, hash, sizeof hash);
          zlt_message_set_resume_secret (msg, hash);
          break;
        case ZLT_EXT_TAG_HEARTBEAT_MS:
          zlt_message_set_heartbeat_ms (msg, take (r, 4));
          break;
        case ZLT_EXT_TAG_RESUMED:
          zlt_message_set_resumed (msg, take (r, 1) & 1);
          break;
        case ZLT_EXT_TAG_ASSIGNED_PORT:
          zlt_message_set_assigned_port (msg, take_port (r));
          break;
        case ZLT_EXT_TAG_EXPOSE:
          /* 0 public, 1 internal, anything else as sent on the wire */
          msg->ext.expose = (guint8) (take (r, 1) % 3);
          msg->ext.present |= ZLT_EXT_EXPOSE;
          break;
        case ZLT_EXT_TAG_CODE:
          zlt_message_set_code (msg, (ZltReasonCode) take (r, 1));
          break;
        default:
          break;
        }
    }
}

/* Connects to the n-th public TCP port the server assigned, in this thread: loopback
 * completes the handshake from the listen backlog; the server accepts when the main
 * context runs. The connection stays open until the input ends. */
static void
dial (ZltFuzzChannel *channel, guint nth, GPtrArray *dialed)
{
  ZltRegistry *registry = zlt_server_get_registry (fuzz.server);
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) connection = NULL;
  ZltService *service;
  ZltUuid id;

  if (!sent_id (channel, ZLT_MESSAGE_REGISTER_OK, nth, &id))
    return;
  g_socket_client_set_enable_proxy (client, FALSE);
  service = zlt_registry_lookup_service (registry, &id);
  if (service == NULL || zlt_service_get_protocol (service) != ZLT_PROTOCOL_TCP
      || zlt_service_get_assigned_port (service) == 0)
    return;
  connection = g_socket_client_connect_to_host (
      client, "127.0.0.1", zlt_service_get_assigned_port (service), NULL, NULL);
  if (connection != NULL)
    g_ptr_array_add (dialed, g_steal_pointer (&connection));
}

/* A recipe, until it runs out: a type byte (one of all_types, or RECIPE_DIAL), then the
 * type's fields in wire order, each taken as take_*() says, then an ext byte. Frames
 * that do not encode (a string too long) are left out. */
static GByteArray *
build_frames (ZltFuzzChannel *channel, const guint8 *data, gsize len, GPtrArray *dialed)
{
  Recipe r = { data, len, 0 };
  GByteArray *out = g_byte_array_new ();

  while (r.pos < r.len)
    {
      guint kind = take (&r, 1) % (RECIPE_DIAL + 1);
      g_autoptr (ZltMessage) msg = NULL;

      if (kind == RECIPE_DIAL)
        {
          dial (channel, take (&r, 1) % 4, dialed);
          continue;
        }
      msg = zlt_message_new (all_types[kind]);
      switch (msg->type)
        {
        case ZLT_MESSAGE_AUTH:
          msg->token = take_string (&r);
          take_uuid (&r, channel, &msg->client_id);
          break;
        case ZLT_MESSAGE_AUTH_OK:
          take_uuid (&r, channel, &msg->tunnel_id);
          break;
        case ZLT_MESSAGE_AUTH_FAIL:
        case ZLT_MESSAGE_REGISTER_FAIL:
        case ZLT_MESSAGE_DISCONNECT:
          msg->reason = take_string (&r);
          break;
        case ZLT_MESSAGE_REGISTER:
          msg->name = take_string (&r);
          msg->protocol = (take (&r, 1) & 1) ? ZLT_PROTOCOL_UDP : ZLT_PROTOCOL_TCP;
          msg->local_port = (guint16) take (&r, 2);
          msg->remote_port = take_port (&r);
          break;
        case ZLT_MESSAGE_REGISTER_OK:
        case ZLT_MESSAGE_UNREGISTER:
          take_uuid (&r, channel, &msg->service_id);
          break;
        case ZLT_MESSAGE_CONNECT:
          take_uuid (&r, channel, &msg->service_id);
          take_uuid (&r, channel, &msg->connection_id);
          msg->client_addr = take_string (&r);
          break;
        case ZLT_MESSAGE_CONNECT_ACK:
          take_uuid (&r, channel, &msg->connection_id);
          break;
        case ZLT_MESSAGE_CONNECT_FAIL:
          take_uuid (&r, channel, &msg->connection_id);
          msg->reason = take_string (&r);
          break;
        case ZLT_MESSAGE_HEARTBEAT:
        case ZLT_MESSAGE_HEARTBEAT_ACK:
          msg->timestamp = (guint64) take (&r, 4) << 32 | take (&r, 4);
          break;
        default:
          break;
        }
      take_ext (&r, channel, msg);
      zlt_message_encode (msg, out, NULL);
    }
  return out;
}

/* What the registry says about one live tunnel agrees with itself and the pools. */
static void
check_tunnel (ZltRegistry *registry, ZltTunnel *tunnel, guint *n_public)
{
  g_autoptr (GPtrArray) services = zlt_tunnel_get_services (tunnel);

  ZLT_FUZZ_CHECK (zlt_registry_lookup_tunnel (registry, zlt_tunnel_get_id (tunnel)) == tunnel,
                  "a tunnel the registry cannot find by its id");
  ZLT_FUZZ_CHECK (services->len == zlt_tunnel_get_n_services (tunnel),
                  "tunnel has %u services and counts %u", services->len,
                  zlt_tunnel_get_n_services (tunnel));
  ZLT_FUZZ_CHECK (services->len <= zlt_registry_get_max_services_per_tunnel (registry),
                  "%u services, above the limit", services->len);
  for (guint i = 0; i < services->len; i++)
    {
      ZltService *service = g_ptr_array_index (services, i);
      guint16 port = zlt_service_get_assigned_port (service);
      ZltProtocol protocol = zlt_service_get_protocol (service);

      ZLT_FUZZ_CHECK (zlt_service_get_tunnel (service) == tunnel, "a service of another tunnel");
      ZLT_FUZZ_CHECK (zlt_registry_lookup_service (registry, zlt_service_get_id (service))
                          == service,
                      "service \"%s\" not found by its id", zlt_service_get_name (service));
      ZLT_FUZZ_CHECK (zlt_tunnel_lookup_service (tunnel, zlt_service_get_name (service)) == service,
                      "service \"%s\" not found by its name", zlt_service_get_name (service));
      if (zlt_service_get_expose (service) == ZLT_EXPOSE_INTERNAL)
        {
          ZLT_FUZZ_CHECK (port == 0, "an internal service with port %u", port);
          continue;
        }
      (*n_public)++;
      ZLT_FUZZ_CHECK (port >= PORT_FIRST && port <= PORT_LAST, "service on port %u", port);
      ZLT_FUZZ_CHECK (
          zlt_port_pool_is_allocated (zlt_registry_get_port_pool (registry, protocol), port),
          "service on port %u, which its pool says is free", port);
      ZLT_FUZZ_CHECK (zlt_registry_lookup_service_by_port (registry, protocol, port) == service,
                      "port %u maps to another service", port);
    }
}

static void
check_consistent (ZltFuzzChannel *channel, gboolean logged_in)
{
  ZltRegistry *registry = zlt_server_get_registry (fuzz.server);
  g_autoptr (GPtrArray) tunnels = zlt_registry_get_tunnels (registry);
  guint n_public = 0, n_leased = 0;

  ZLT_FUZZ_CHECK (tunnels->len == zlt_registry_get_n_tunnels (registry),
                  "the registry lists %u tunnels and counts %u", tunnels->len,
                  zlt_registry_get_n_tunnels (registry));
  if (zlt_fuzz_channel_get_close_requested (channel))
    {
      const ZltMessage *last = zlt_fuzz_channel_get_last (channel);

      /* the server says why before it closes, unless the agent said goodbye */
      ZLT_FUZZ_CHECK (
          (fuzz.goodbye && logged_in)
              || (last != NULL
                  && (last->type == ZLT_MESSAGE_DISCONNECT || last->type == ZLT_MESSAGE_AUTH_FAIL)),
          "the server closed the channel after %s",
          last != NULL ? zlt_message_type_to_string (last->type) : "nothing");
      ZLT_FUZZ_CHECK (zlt_server_get_n_peers (fuzz.server) == 0,
                      "%u peers left after the server closed the only channel",
                      zlt_server_get_n_peers (fuzz.server));
      /* no resume after a refusal or a protocol error (only a timeout holds) */
      ZLT_FUZZ_CHECK (tunnels->len == 0, "%u tunnels left after the server ended the session",
                      tunnels->len);
    }
  else
    {
      ZLT_FUZZ_CHECK (zlt_server_get_n_peers (fuzz.server) == 1, "%u peers for one open channel",
                      zlt_server_get_n_peers (fuzz.server));
      ZLT_FUZZ_CHECK (tunnels->len <= 1, "%u tunnels for one channel", tunnels->len);
      if (logged_in)
        ZLT_FUZZ_CHECK (tunnels->len == 1, "a logged-in channel without its tunnel");
    }
  for (guint i = 0; i < tunnels->len; i++)
    check_tunnel (registry, g_ptr_array_index (tunnels, i), &n_public);
  for (guint p = PORT_FIRST; p <= PORT_LAST; p++)
    {
      n_leased += zlt_port_pool_is_allocated (
          zlt_registry_get_port_pool (registry, ZLT_PROTOCOL_TCP), (guint16) p);
      n_leased += zlt_port_pool_is_allocated (
          zlt_registry_get_port_pool (registry, ZLT_PROTOCOL_UDP), (guint16) p);
    }
  ZLT_FUZZ_CHECK (n_leased == n_public, "%u ports leased for %u public services", n_leased,
                  n_public);
}

static void
check_empty (void)
{
  ZltRegistry *registry = zlt_server_get_registry (fuzz.server);
  guint fds;

  ZLT_FUZZ_CHECK (zlt_server_get_n_peers (fuzz.server) == 0, "%u peers after the hang-up",
                  zlt_server_get_n_peers (fuzz.server));
  ZLT_FUZZ_CHECK (zlt_registry_get_n_tunnels (registry) == 0, "%u tunnels after the clean-up",
                  zlt_registry_get_n_tunnels (registry));
  ZLT_FUZZ_CHECK (zlt_server_get_n_pending (fuzz.server) == 0
                      && zlt_server_get_n_relays (fuzz.server) == 0,
                  "connections left: %u pending, %u relays", zlt_server_get_n_pending (fuzz.server),
                  zlt_server_get_n_relays (fuzz.server));
  for (guint p = PORT_FIRST; p <= PORT_LAST; p++)
    ZLT_FUZZ_CHECK (!zlt_port_pool_is_allocated (
                        zlt_registry_get_port_pool (registry, ZLT_PROTOCOL_TCP), (guint16) p)
                        && !zlt_port_pool_is_allocated (
                            zlt_registry_get_port_pool (registry, ZLT_PROTOCOL_UDP), (guint16) p),
                    "port %u still leased after the clean-up", p);
  /* every public listener was closed with its service */
  fds = count_fds ();
  ZLT_FUZZ_CHECK (fds <= fuzz.baseline_fds + FD_SLACK, "%u file descriptors open, %u at the start",
                  fds, fuzz.baseline_fds);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  ZltControlListener *listener = zlt_fuzz_control_transport_get_listener (fuzz.control);
  g_autoptr (ZltFuzzChannel) channel = NULL;
  g_autoptr (GPtrArray) dialed = g_ptr_array_new_with_free_func (g_object_unref);
  ZltRegistry *registry = zlt_server_get_registry (fuzz.server);
  guint8 flags;
  gsize pos = 1;

  if (size < 1)
    return 0;
  flags = data[0];
  fuzz.goodbye = FALSE;
  ZLT_FUZZ_CHECK (listener != NULL, "the server has no control listener");

  channel = zlt_fuzz_channel_new (PEER_ADDRESS, fuzz.nonce);
  zlt_control_listener_emit_channel (listener, ZLT_CHANNEL (channel));
  if (!(flags & FLAG_NO_LOGIN))
    login (channel, flags);

  while (pos < size && !zlt_channel_is_closed (ZLT_CHANNEL (channel)))
    {
      gsize len = 0;

      if (size - pos >= 2)
        len = (gsize) data[pos] << 8 | data[pos + 1];
      pos += MIN ((gsize) 2, size - pos);
      len = MIN (len, size - pos);
      if (flags & FLAG_BUILD)
        {
          g_autoptr (GByteArray) frames = build_frames (channel, data + pos, len, dialed);
          /* a recipe that only dialed has nothing to send */
          if (frames->len > 0)
            {
              fuzz.goodbye |= holds_goodbye (frames->data, frames->len);
              zlt_fuzz_channel_deliver (channel, frames->data, frames->len);
            }
        }
      else
        {
          fuzz.goodbye |= holds_goodbye (data + pos, len);
          zlt_fuzz_channel_deliver (channel, data + pos, len);
        }
      pos += len;
      if (pos < size || !(flags & FLAG_ABRUPT))
        zlt_fuzz_settle (1000);
    }
  if (!(flags & FLAG_ABRUPT))
    check_consistent (channel, !(flags & FLAG_NO_LOGIN));

  zlt_fuzz_channel_hang_up (channel);
  zlt_fuzz_settle (1000);
  /* the public side of Connects: closed by the server with their service, or now */
  for (guint i = 0; i < dialed->len; i++)
    g_io_stream_close (g_ptr_array_index (dialed, i), NULL, NULL);
  g_ptr_array_set_size (dialed, 0);
  zlt_fuzz_settle (1000);
  /* a v2 agent with RESUME has its tunnel held for a resume: end it */
  {
    g_autoptr (GPtrArray) tunnels = zlt_registry_get_tunnels (registry);
    for (guint i = 0; i < tunnels->len; i++)
      {
        ZLT_FUZZ_CHECK (zlt_registry_is_held (registry, g_ptr_array_index (tunnels, i)),
                        "a tunnel outlived its channel without being held for a resume");
        zlt_registry_remove_tunnel (registry, g_ptr_array_index (tunnels, i));
      }
  }
  zlt_fuzz_settle (1000);
  check_empty ();
  return 0;
}
