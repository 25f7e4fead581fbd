/* zlt-message.c: the control channel's wire codec (PROTOCOL.md §1, PROTOCOL-v2.md §1)
 *
 * Decoding never trusts a length: every read checks the bytes left first, in gsize,
 * without adding anything to an untrusted value. Encoding refuses rather than truncates.
 */
#include "config.h"

#include <string.h>

#include "zlt-message.h"
#include "zlt-proxy-header.h"

#define EXT_ENTRY_HEADER 3 /* u8 tag, u16 length */
#define EXT_TAG_MAX ZLT_EXT_TAG_HOSTNAME
#define EXT_KNOWN_FLAGS                                                                            \
  (ZLT_EXT_VERSION | ZLT_EXT_CAPS | ZLT_EXT_PROOF | ZLT_EXT_RESUME | ZLT_EXT_RESUME_SECRET         \
   | ZLT_EXT_HEARTBEAT_MS | ZLT_EXT_RESUMED | ZLT_EXT_ASSIGNED_PORT | ZLT_EXT_EXPOSE               \
   | ZLT_EXT_CODE | ZLT_EXT_SERVER_PROOF | ZLT_EXT_ACCESS_TTL | ZLT_EXT_MAX_CONNECTIONS            \
   | ZLT_EXT_IDLE_TIMEOUT | ZLT_EXT_TIMESTAMP_US | ZLT_EXT_STANDBY_MAX | ZLT_EXT_ADDRESSES         \
   | ZLT_EXT_HOSTNAME)

typedef struct
{
  const char *name;
  guint16 size;
} ExtTagInfo;

/* indexed by tag; PROTOCOL-v2.md §1 */
static const ExtTagInfo ext_tags[EXT_TAG_MAX + 1] = {
  [ZLT_EXT_TAG_VERSION] = { "VERSION", 2 },
  [ZLT_EXT_TAG_CAPS] = { "CAPS", 4 },
  [ZLT_EXT_TAG_PROOF] = { "PROOF", ZLT_HASH_SIZE },
  [ZLT_EXT_TAG_RESUME] = { "RESUME", ZLT_UUID_SIZE + ZLT_HASH_SIZE },
  [ZLT_EXT_TAG_RESUME_SECRET] = { "RESUME_SECRET", ZLT_HASH_SIZE },
  [ZLT_EXT_TAG_HEARTBEAT_MS] = { "HEARTBEAT_MS", 4 },
  [ZLT_EXT_TAG_RESUMED] = { "RESUMED", 1 },
  [ZLT_EXT_TAG_ASSIGNED_PORT] = { "ASSIGNED_PORT", 2 },
  [ZLT_EXT_TAG_EXPOSE] = { "EXPOSE", 1 },
  [ZLT_EXT_TAG_CODE] = { "CODE", 2 },
  [ZLT_EXT_TAG_SERVER_PROOF] = { "SERVER_PROOF", ZLT_HASH_SIZE },
  [ZLT_EXT_TAG_ACCESS_TTL] = { "ACCESS_TTL", 4 },
  [ZLT_EXT_TAG_MAX_CONNECTIONS] = { "MAX_CONNECTIONS", 4 },
  [ZLT_EXT_TAG_IDLE_TIMEOUT] = { "IDLE_TIMEOUT", 4 },
  [ZLT_EXT_TAG_TIMESTAMP_US] = { "TIMESTAMP_US", 8 },
  [ZLT_EXT_TAG_STANDBY_MAX] = { "STANDBY_MAX", 2 },
  [ZLT_EXT_TAG_ADDRESSES] = { "ADDRESSES", ZLT_ADDRESSES_SIZE },
  /* the one tag of variable size: 1 to ZLT_EXT_HOSTNAME_MAX bytes */
  [ZLT_EXT_TAG_HOSTNAME] = { "HOSTNAME", 0 },
};

/**
 * ZltMessage:
 * @type: the frame type
 * @token: Auth: the raw token (v1) or the key id (v2)
 * @reason: AuthFail, RegisterFail, ConnectFail, Disconnect: a text for people
 * @name: Register: the service name (at most 255 bytes)
 * @client_addr: Connect: the public client's address, "host:port"
 * @client_id: Auth: the agent's client id
 * @tunnel_id: AuthOk: the tunnel id the server gave
 * @service_id: RegisterOk, Connect, Unregister: the service
 * @connection_id: Connect, ConnectAck, ConnectFail: the public connection
 * @protocol: Register: the service's protocol
 * @local_port: Register: the port the agent's service listens on
 * @remote_port: Register: the public port asked for; 0 = any
 * @timestamp: Heartbeat, HeartbeatAck: Unix epoch in milliseconds
 * @has_ext: whether a v2 extension block is (to be) present, even an empty one
 * @ext: the extension block's values
 * @hostname: Register: the HOSTNAME tag, a hostname asked for instead of a port
 *
 * One frame of the control channel, decoded or to be encoded: a type byte, a 32-bit
 * big-endian payload length, the payload (PROTOCOL.md §1) and, in protocol v2, an
 * extension block of tagged values (PROTOCOL-v2.md §1).
 *
 * Which fields a type uses is in PROTOCOL.md §1.3; the others stay zero or %NULL, and
 * %NULL strings encode as empty strings. Build one with a `zlt_message_new_*()`
 * constructor and the `zlt_message_set_*()` setters, turn it into bytes with
 * zlt_message_encode() or zlt_message_encode_bytes(), and read frames with
 * zlt_message_decode() or zlt_message_decode_all(). Decoding checks, in this order,
 * the header's size, the type, the payload limit (%ZLT_MAX_PAYLOAD) and completeness, and
 * fails with a #ZltError code that says which.
 *
 * ```c
 * g_autoptr(ZltMessage) msg = zlt_message_new_heartbeat (1700000000000);
 * g_autoptr(GBytes) frame = zlt_message_encode_bytes (msg, &error);
 * // 30 00 00 00 08 00 00 01 8b cf e5 68 00
 * ```
 */

/**
 * ZltAddressFamily:
 * @ZLT_ADDRESS_FAMILY_IPV4: IPv4 addresses (4 bytes each)
 * @ZLT_ADDRESS_FAMILY_IPV6: IPv6 addresses (16 bytes each)
 *
 * The family byte of the ADDRESSES tag (PROTOCOL-v2.md §9).
 */

/**
 * ZltAddresses:
 * @family: a #ZltAddressFamily; kept as on the wire
 * @source: the public client's address (IPv4: the first 4 bytes, the rest zero)
 * @destination: the server's end of the public connection (same layout)
 * @source_port: the client's port
 * @destination_port: the server's (public) port
 *
 * The value of the ADDRESSES tag: a public connection's two ends as the server saw
 * them, which an agent passes to its service in a PROXY protocol header
 * (PROTOCOL-v2.md §9).
 */

/**
 * ZltMessageExt:
 * @present: which fields are set: one #ZltExtFlags bit per tag
 * @version: VERSION: the protocol version the sender speaks
 * @caps: CAPS: #ZltCapabilities bits
 * @proof: PROOF: the agent's HMAC proof of its token (Auth)
 * @resume_tunnel_id: RESUME: the tunnel an agent asks to resume
 * @resume_mac: RESUME: the MAC proving the resume secret
 * @resume_secret: RESUME_SECRET: the secret a later resume is proven with (AuthOk)
 * @heartbeat_ms: HEARTBEAT_MS: the heartbeat interval the server wants
 * @resumed: RESUMED: 1 when the tunnel was resumed; kept as on the wire
 * @assigned_port: ASSIGNED_PORT: the public port given (RegisterOk); 0 = none (internal)
 * @expose: EXPOSE: a #ZltExpose; kept as on the wire
 * @code: CODE: a #ZltReasonCode
 * @server_proof: SERVER_PROOF: the server's proof that it knows the token (AuthOk)
 * @access_ttl: ACCESS_TTL: seconds an access session asks for; 0 = no limit asked
 * @max_connections: MAX_CONNECTIONS: Register: the owner's cap on live connections; 0 = none
 * @idle_timeout: IDLE_TIMEOUT: Register: seconds a relayed connection may stay silent
 * @timestamp_us: TIMESTAMP_US: Heartbeat(Ack): the same moment as the v1 field, in µs
 * @standby_max: STANDBY_MAX: AuthOk: standby data connections the server parks, at most
 * @addresses: ADDRESSES: Connect: the public connection's ends as the server saw them
 *
 * The values of a v2 extension block (PROTOCOL-v2.md §1). Only the fields whose bit is
 * set in @present are meaningful; the others are zero. The `zlt_message_set_*()`
 * functions set a field and its bit together.
 */

/**
 * ZltMessageType:
 * @ZLT_MESSAGE_AUTH: agent → server: the credential (0x01)
 * @ZLT_MESSAGE_AUTH_OK: server → agent: the tunnel id (0x02)
 * @ZLT_MESSAGE_AUTH_FAIL: server → agent: the reason (0x03)
 * @ZLT_MESSAGE_REGISTER: agent → server: a service (0x10)
 * @ZLT_MESSAGE_REGISTER_OK: server → agent: the service id (0x11)
 * @ZLT_MESSAGE_REGISTER_FAIL: server → agent: the reason (0x12)
 * @ZLT_MESSAGE_CONNECT: server → agent: a public connection to join (0x20)
 * @ZLT_MESSAGE_CONNECT_ACK: agent → server: the data connection follows (0x21)
 * @ZLT_MESSAGE_CONNECT_FAIL: agent → server: the local service refused (0x22)
 * @ZLT_MESSAGE_HEARTBEAT: either way: a timestamp to echo (0x30)
 * @ZLT_MESSAGE_HEARTBEAT_ACK: the echo (0x31)
 * @ZLT_MESSAGE_UNREGISTER: agent → server: drop a service (0x40)
 * @ZLT_MESSAGE_DISCONNECT: either way: the end of the tunnel, with a reason (0x41)
 *
 * The type byte of a control frame, as on the wire (PROTOCOL.md §1.2).
 */

/**
 * ZltExtTag:
 * @ZLT_EXT_TAG_VERSION: the protocol version (u16)
 * @ZLT_EXT_TAG_CAPS: #ZltCapabilities (u32)
 * @ZLT_EXT_TAG_PROOF: the agent's proof (32 bytes)
 * @ZLT_EXT_TAG_RESUME: tunnel id and MAC (16 + 32 bytes)
 * @ZLT_EXT_TAG_RESUME_SECRET: the resume secret (32 bytes)
 * @ZLT_EXT_TAG_HEARTBEAT_MS: the heartbeat interval (u32)
 * @ZLT_EXT_TAG_RESUMED: whether the tunnel was resumed (u8)
 * @ZLT_EXT_TAG_ASSIGNED_PORT: the public port given (u16)
 * @ZLT_EXT_TAG_EXPOSE: a #ZltExpose (u8)
 * @ZLT_EXT_TAG_CODE: a #ZltReasonCode (u16)
 * @ZLT_EXT_TAG_SERVER_PROOF: the server's proof (32 bytes)
 * @ZLT_EXT_TAG_ACCESS_TTL: seconds asked for an access session (u32)
 * @ZLT_EXT_TAG_MAX_CONNECTIONS: live connections of a service, at most (u32)
 * @ZLT_EXT_TAG_IDLE_TIMEOUT: seconds a relayed connection may stay silent (u32)
 * @ZLT_EXT_TAG_TIMESTAMP_US: a heartbeat's time in µs (u64)
 * @ZLT_EXT_TAG_STANDBY_MAX: standby connections parked at most (u16)
 * @ZLT_EXT_TAG_ADDRESSES: a connection's client and server addresses (37 bytes)
 *
 * The tags of a v2 extension block, as on the wire (PROTOCOL-v2.md §1).
 */

/**
 * ZltExtFlags:
 * @ZLT_EXT_VERSION: #ZltMessageExt.version is set
 * @ZLT_EXT_CAPS: #ZltMessageExt.caps is set
 * @ZLT_EXT_PROOF: #ZltMessageExt.proof is set
 * @ZLT_EXT_RESUME: #ZltMessageExt.resume_tunnel_id and resume_mac are set
 * @ZLT_EXT_RESUME_SECRET: #ZltMessageExt.resume_secret is set
 * @ZLT_EXT_HEARTBEAT_MS: #ZltMessageExt.heartbeat_ms is set
 * @ZLT_EXT_RESUMED: #ZltMessageExt.resumed is set
 * @ZLT_EXT_ASSIGNED_PORT: #ZltMessageExt.assigned_port is set
 * @ZLT_EXT_EXPOSE: #ZltMessageExt.expose is set
 * @ZLT_EXT_CODE: #ZltMessageExt.code is set
 * @ZLT_EXT_SERVER_PROOF: #ZltMessageExt.server_proof is set
 * @ZLT_EXT_ACCESS_TTL: #ZltMessageExt.access_ttl is set
 * @ZLT_EXT_MAX_CONNECTIONS: #ZltMessageExt.max_connections is set
 * @ZLT_EXT_IDLE_TIMEOUT: #ZltMessageExt.idle_timeout is set
 * @ZLT_EXT_TIMESTAMP_US: #ZltMessageExt.timestamp_us is set
 * @ZLT_EXT_STANDBY_MAX: #ZltMessageExt.standby_max is set
 * @ZLT_EXT_ADDRESSES: #ZltMessageExt.addresses is set
 *
 * The bits of #ZltMessageExt.present: bit number = tag.
 */

/**
 * ZltCapabilities:
 * @ZLT_CAP_DATA_RAW: data connections as raw TCP after an HTTP upgrade
 * @ZLT_CAP_DATA_WS: data connections as WebSocket binary frames
 * @ZLT_CAP_UDP: UDP services
 * @ZLT_CAP_RESUME: tunnel resumption after a reconnect
 * @ZLT_CAP_ACCESS: on-demand access sessions (PROTOCOL-v2.md §6)
 * @ZLT_CAP_STANDBY: standby data connections (PROTOCOL-v2.md §8)
 * @ZLT_CAP_BEARER: Auth: the token field is the raw token (PROTOCOL-v2.md §2a)
 * @ZLT_CAP_ADDRESSES: ADDRESSES in Connect and bindings of format 2 (PROTOCOL-v2.md §9)
 *
 * The capability bits of the CAPS tag: what each end supports.
 */

/**
 * ZltReasonCode:
 * @ZLT_REASON_NONE: no code
 * @ZLT_REASON_BAD_TOKEN: the credential was refused
 * @ZLT_REASON_EXPIRED_TOKEN: the token has expired
 * @ZLT_REASON_NOT_ALLOWED: the grant does not allow it
 * @ZLT_REASON_DUPLICATE_NAME: the service name is taken
 * @ZLT_REASON_PORT_IN_USE: the public port asked for is taken
 * @ZLT_REASON_PORT_OUT_OF_RANGE: the public port asked for is outside the server's range
 * @ZLT_REASON_PORTS_EXHAUSTED: no public port is free
 * @ZLT_REASON_LIMIT: a limit of the server was reached
 * @ZLT_REASON_PROTOCOL: the peer broke the protocol
 * @ZLT_REASON_TIMEOUT: the peer was too slow
 * @ZLT_REASON_SHUTDOWN: the server is shutting down
 * @ZLT_REASON_LEGACY_REFUSED: raw-token (v1) authentication is not allowed
 * @ZLT_REASON_IN_USE: the thing is in use
 * @ZLT_REASON_INTERNAL: the server failed
 * @ZLT_REASON_INVALID: the request is not valid
 *
 * The machine-readable reasons of the CODE tag (PROTOCOL-v2.md §1). Map them to and
 * from #ZltError with zlt_reason_code_to_error() and zlt_reason_code_from_error().
 */

G_DEFINE_BOXED_TYPE (ZltMessage, zlt_message, zlt_message_copy, zlt_message_free)

/* ---- types ------------------------------------------------------------------------- */

/**
 * zlt_message_type_to_string:
 * @type: a frame type
 *
 * Returns: the type's name as PROTOCOL.md writes it ("AuthOk"), "unknown" for anything else
 */
const char *
zlt_message_type_to_string (ZltMessageType type)
{
  switch (type)
    {
    case ZLT_MESSAGE_AUTH:
      return "Auth";
    case ZLT_MESSAGE_AUTH_OK:
      return "AuthOk";
    case ZLT_MESSAGE_AUTH_FAIL:
      return "AuthFail";
    case ZLT_MESSAGE_REGISTER:
      return "Register";
    case ZLT_MESSAGE_REGISTER_OK:
      return "RegisterOk";
    case ZLT_MESSAGE_REGISTER_FAIL:
      return "RegisterFail";
    case ZLT_MESSAGE_CONNECT:
      return "Connect";
    case ZLT_MESSAGE_CONNECT_ACK:
      return "ConnectAck";
    case ZLT_MESSAGE_CONNECT_FAIL:
      return "ConnectFail";
    case ZLT_MESSAGE_HEARTBEAT:
      return "Heartbeat";
    case ZLT_MESSAGE_HEARTBEAT_ACK:
      return "HeartbeatAck";
    case ZLT_MESSAGE_UNREGISTER:
      return "Unregister";
    case ZLT_MESSAGE_DISCONNECT:
      return "Disconnect";
    default:
      return "unknown";
    }
}

/**
 * zlt_message_type_is_valid:
 * @type: a type byte, as read from the wire
 *
 * Returns: whether @type is one of #ZltMessageType
 */
gboolean
zlt_message_type_is_valid (guint type)
{
  switch (type)
    {
    case ZLT_MESSAGE_AUTH:
    case ZLT_MESSAGE_AUTH_OK:
    case ZLT_MESSAGE_AUTH_FAIL:
    case ZLT_MESSAGE_REGISTER:
    case ZLT_MESSAGE_REGISTER_OK:
    case ZLT_MESSAGE_REGISTER_FAIL:
    case ZLT_MESSAGE_CONNECT:
    case ZLT_MESSAGE_CONNECT_ACK:
    case ZLT_MESSAGE_CONNECT_FAIL:
    case ZLT_MESSAGE_HEARTBEAT:
    case ZLT_MESSAGE_HEARTBEAT_ACK:
    case ZLT_MESSAGE_UNREGISTER:
    case ZLT_MESSAGE_DISCONNECT:
      return TRUE;
    default:
      return FALSE;
    }
}

/**
 * zlt_message_type_has_ext:
 * @type: a frame type
 *
 * Returns: whether frames of @type may carry an extension block (PROTOCOL-v2.md §1)
 */
gboolean
zlt_message_type_has_ext (ZltMessageType type)
{
  switch (type)
    {
    case ZLT_MESSAGE_AUTH:
    case ZLT_MESSAGE_AUTH_OK:
    case ZLT_MESSAGE_AUTH_FAIL:
    case ZLT_MESSAGE_REGISTER:
    case ZLT_MESSAGE_REGISTER_OK:
    case ZLT_MESSAGE_REGISTER_FAIL:
    case ZLT_MESSAGE_CONNECT:
    case ZLT_MESSAGE_DISCONNECT:
    case ZLT_MESSAGE_HEARTBEAT:
    case ZLT_MESSAGE_HEARTBEAT_ACK:
      return TRUE;
    default:
      return FALSE;
    }
}

/* The tags a type uses; other known tags are skipped when decoding, refused when
 * encoding. */
static guint32
ext_flags_for_type (ZltMessageType type)
{
  switch (type)
    {
    case ZLT_MESSAGE_AUTH:
      return ZLT_EXT_VERSION | ZLT_EXT_CAPS | ZLT_EXT_PROOF | ZLT_EXT_RESUME | ZLT_EXT_ACCESS_TTL;
    case ZLT_MESSAGE_AUTH_OK:
      return ZLT_EXT_VERSION | ZLT_EXT_CAPS | ZLT_EXT_RESUME_SECRET | ZLT_EXT_HEARTBEAT_MS
             | ZLT_EXT_RESUMED | ZLT_EXT_SERVER_PROOF | ZLT_EXT_ACCESS_TTL | ZLT_EXT_STANDBY_MAX;
    case ZLT_MESSAGE_AUTH_FAIL:
    case ZLT_MESSAGE_REGISTER_FAIL:
    case ZLT_MESSAGE_DISCONNECT:
      return ZLT_EXT_CODE;
    case ZLT_MESSAGE_REGISTER:
      return ZLT_EXT_EXPOSE | ZLT_EXT_MAX_CONNECTIONS | ZLT_EXT_IDLE_TIMEOUT | ZLT_EXT_HOSTNAME;
    case ZLT_MESSAGE_REGISTER_OK:
      return ZLT_EXT_ASSIGNED_PORT;
    case ZLT_MESSAGE_HEARTBEAT:
    case ZLT_MESSAGE_HEARTBEAT_ACK:
      return ZLT_EXT_TIMESTAMP_US;
    case ZLT_MESSAGE_CONNECT:
      return ZLT_EXT_ADDRESSES;
    default:
      return 0;
    }
}

/* ---- construction ------------------------------------------------------------------ */

/**
 * zlt_message_new:
 * @type: the frame type
 *
 * Makes an empty message of @type: every field zero or %NULL, no extension block.
 *
 * Returns: (transfer full): a new message; free with zlt_message_free()
 */
ZltMessage *
zlt_message_new (ZltMessageType type)
{
  ZltMessage *msg = g_new0 (ZltMessage, 1);

  msg->type = type;
  return msg;
}

/**
 * zlt_message_copy:
 * @msg: a message
 *
 * Returns: (transfer full): a deep copy of @msg
 */
ZltMessage *
zlt_message_copy (const ZltMessage *msg)
{
  ZltMessage *copy;

  g_return_val_if_fail (msg != NULL, NULL);

  copy = g_new (ZltMessage, 1);
  *copy = *msg;
  copy->token = g_strdup (msg->token);
  copy->reason = g_strdup (msg->reason);
  copy->name = g_strdup (msg->name);
  copy->client_addr = g_strdup (msg->client_addr);
  copy->hostname = g_strdup (msg->hostname);
  return copy;
}

/**
 * zlt_message_free:
 * @msg: (nullable) (transfer full): a message
 *
 * Frees @msg and its strings; %NULL is ignored.
 */
void
zlt_message_free (ZltMessage *msg)
{
  if (msg == NULL)
    return;
  /* a v1 token is a bearer secret, and the extension block may hold proofs */
  if (msg->token != NULL)
    explicit_bzero (msg->token, strlen (msg->token));
  g_free (msg->token);
  g_free (msg->reason);
  g_free (msg->name);
  g_free (msg->client_addr);
  g_free (msg->hostname);
  explicit_bzero (msg, sizeof *msg);
  g_free (msg);
}

/**
 * zlt_message_new_auth:
 * @token: (nullable): the raw token (v1) or its key id (v2)
 * @client_id: (nullable): the agent's client id; %NULL = the nil id
 *
 * Returns: (transfer full): an Auth message
 */
ZltMessage *
zlt_message_new_auth (const char *token, const ZltUuid *client_id)
{
  ZltMessage *msg = zlt_message_new (ZLT_MESSAGE_AUTH);

  msg->token = g_strdup (token);
  if (client_id != NULL)
    msg->client_id = *client_id;
  return msg;
}

/**
 * zlt_message_new_auth_ok:
 * @tunnel_id: (nullable): the tunnel id; %NULL = the nil id
 *
 * Returns: (transfer full): an AuthOk message
 */
ZltMessage *
zlt_message_new_auth_ok (const ZltUuid *tunnel_id)
{
  ZltMessage *msg = zlt_message_new (ZLT_MESSAGE_AUTH_OK);

  if (tunnel_id != NULL)
    msg->tunnel_id = *tunnel_id;
  return msg;
}

/**
 * zlt_message_new_auth_fail:
 * @reason: (nullable): why, for people
 *
 * Returns: (transfer full): an AuthFail message
 */
ZltMessage *
zlt_message_new_auth_fail (const char *reason)
{
  ZltMessage *msg = zlt_message_new (ZLT_MESSAGE_AUTH_FAIL);

  msg->reason = g_strdup (reason);
  return msg;
}

/**
 * zlt_message_new_register:
 * @name: (nullable): the service name
 * @protocol: the service's protocol
 * @local_port: the port the service listens on at the agent
 * @remote_port: the public port asked for; 0 = any
 *
 * Returns: (transfer full): a Register message
 */
ZltMessage *
zlt_message_new_register (const char *name, ZltProtocol protocol, guint16 local_port,
                          guint16 remote_port)
{
  ZltMessage *msg = zlt_message_new (ZLT_MESSAGE_REGISTER);

  msg->name = g_strdup (name);
  msg->protocol = protocol;
  msg->local_port = local_port;
  msg->remote_port = remote_port;
  return msg;
}

/**
 * zlt_message_new_register_ok:
 * @service_id: (nullable): the service id; %NULL = the nil id
 *
 * Returns: (transfer full): a RegisterOk message
 */
ZltMessage *
zlt_message_new_register_ok (const ZltUuid *service_id)
{
  ZltMessage *msg = zlt_message_new (ZLT_MESSAGE_REGISTER_OK);

  if (service_id != NULL)
    msg->service_id = *service_id;
  return msg;
}

/**
 * zlt_message_new_register_fail:
 * @reason: (nullable): why, for people
 *
 * Returns: (transfer full): a RegisterFail message
 */
ZltMessage *
zlt_message_new_register_fail (const char *reason)
{
  ZltMessage *msg = zlt_message_new (ZLT_MESSAGE_REGISTER_FAIL);

  msg->reason = g_strdup (reason);
  return msg;
}

/**
 * zlt_message_new_connect:
 * @service_id: (nullable): the service the connection is for
 * @connection_id: (nullable): the new connection's id
 * @client_addr: (nullable): the public client's address
 *
 * Returns: (transfer full): a Connect message
 */
ZltMessage *
zlt_message_new_connect (const ZltUuid *service_id, const ZltUuid *connection_id,
                         const char *client_addr)
{
  ZltMessage *msg = zlt_message_new (ZLT_MESSAGE_CONNECT);

  if (service_id != NULL)
    msg->service_id = *service_id;
  if (connection_id != NULL)
    msg->connection_id = *connection_id;
  msg->client_addr = g_strdup (client_addr);
  return msg;
}

/**
 * zlt_message_new_connect_ack:
 * @connection_id: (nullable): the connection being accepted
 *
 * Returns: (transfer full): a ConnectAck message
 */
ZltMessage *
zlt_message_new_connect_ack (const ZltUuid *connection_id)
{
  ZltMessage *msg = zlt_message_new (ZLT_MESSAGE_CONNECT_ACK);

  if (connection_id != NULL)
    msg->connection_id = *connection_id;
  return msg;
}

/**
 * zlt_message_new_connect_fail:
 * @connection_id: (nullable): the connection being refused
 * @reason: (nullable): why, for people
 *
 * Returns: (transfer full): a ConnectFail message
 */
ZltMessage *
zlt_message_new_connect_fail (const ZltUuid *connection_id, const char *reason)
{
  ZltMessage *msg = zlt_message_new (ZLT_MESSAGE_CONNECT_FAIL);

  if (connection_id != NULL)
    msg->connection_id = *connection_id;
  msg->reason = g_strdup (reason);
  return msg;
}

/**
 * zlt_message_new_heartbeat:
 * @timestamp: Unix epoch in milliseconds
 *
 * Returns: (transfer full): a Heartbeat message
 */
ZltMessage *
zlt_message_new_heartbeat (guint64 timestamp)
{
  ZltMessage *msg = zlt_message_new (ZLT_MESSAGE_HEARTBEAT);

  msg->timestamp = timestamp;
  return msg;
}

/**
 * zlt_message_new_heartbeat_ack:
 * @timestamp: the timestamp of the Heartbeat being answered
 *
 * Returns: (transfer full): a HeartbeatAck message
 */
ZltMessage *
zlt_message_new_heartbeat_ack (guint64 timestamp)
{
  ZltMessage *msg = zlt_message_new (ZLT_MESSAGE_HEARTBEAT_ACK);

  msg->timestamp = timestamp;
  return msg;
}

/**
 * zlt_message_new_unregister:
 * @service_id: (nullable): the service to drop
 *
 * Returns: (transfer full): an Unregister message
 */
ZltMessage *
zlt_message_new_unregister (const ZltUuid *service_id)
{
  ZltMessage *msg = zlt_message_new (ZLT_MESSAGE_UNREGISTER);

  if (service_id != NULL)
    msg->service_id = *service_id;
  return msg;
}

/**
 * zlt_message_new_disconnect:
 * @reason: (nullable): why, for people
 *
 * Returns: (transfer full): a Disconnect message
 */
ZltMessage *
zlt_message_new_disconnect (const char *reason)
{
  ZltMessage *msg = zlt_message_new (ZLT_MESSAGE_DISCONNECT);

  msg->reason = g_strdup (reason);
  return msg;
}

/* ---- extension setters ------------------------------------------------------------- */

static void
ext_mark (ZltMessage *msg, guint32 flag)
{
  msg->has_ext = TRUE;
  msg->ext.present |= flag;
}

/**
 * zlt_message_set_version:
 * @msg: a message
 * @version: the protocol version
 *
 * Sets the VERSION tag (and #ZltMessage.has_ext).
 */
void
zlt_message_set_version (ZltMessage *msg, guint16 version)
{
  g_return_if_fail (msg != NULL);
  msg->ext.version = version;
  ext_mark (msg, ZLT_EXT_VERSION);
}

/**
 * zlt_message_set_caps:
 * @msg: a message
 * @caps: #ZltCapabilities bits
 *
 * Sets the CAPS tag.
 */
void
zlt_message_set_caps (ZltMessage *msg, guint32 caps)
{
  g_return_if_fail (msg != NULL);
  msg->ext.caps = caps;
  ext_mark (msg, ZLT_EXT_CAPS);
}

/**
 * zlt_message_set_proof:
 * @msg: a message
 * @proof: (array fixed-size=32): the agent's proof
 *
 * Sets the PROOF tag.
 */
void
zlt_message_set_proof (ZltMessage *msg, const guint8 proof[ZLT_HASH_SIZE])
{
  g_return_if_fail (msg != NULL);
  g_return_if_fail (proof != NULL);
  memcpy (msg->ext.proof, proof, ZLT_HASH_SIZE);
  ext_mark (msg, ZLT_EXT_PROOF);
}

/**
 * zlt_message_set_resume:
 * @msg: a message
 * @tunnel_id: the tunnel to resume
 * @mac: (array fixed-size=32): the resume MAC (zlt_resume_mac())
 *
 * Sets the RESUME tag.
 */
void
zlt_message_set_resume (ZltMessage *msg, const ZltUuid *tunnel_id, const guint8 mac[ZLT_HASH_SIZE])
{
  g_return_if_fail (msg != NULL);
  g_return_if_fail (tunnel_id != NULL);
  g_return_if_fail (mac != NULL);
  msg->ext.resume_tunnel_id = *tunnel_id;
  memcpy (msg->ext.resume_mac, mac, ZLT_HASH_SIZE);
  ext_mark (msg, ZLT_EXT_RESUME);
}

/**
 * zlt_message_set_resume_secret:
 * @msg: a message
 * @secret: (array fixed-size=32): the secret a later resume is proven with
 *
 * Sets the RESUME_SECRET tag.
 */
void
zlt_message_set_resume_secret (ZltMessage *msg, const guint8 secret[ZLT_HASH_SIZE])
{
  g_return_if_fail (msg != NULL);
  g_return_if_fail (secret != NULL);
  memcpy (msg->ext.resume_secret, secret, ZLT_HASH_SIZE);
  ext_mark (msg, ZLT_EXT_RESUME_SECRET);
}

/**
 * zlt_message_set_heartbeat_ms:
 * @msg: a message
 * @heartbeat_ms: the heartbeat interval in milliseconds
 *
 * Sets the HEARTBEAT_MS tag.
 */
void
zlt_message_set_heartbeat_ms (ZltMessage *msg, guint32 heartbeat_ms)
{
  g_return_if_fail (msg != NULL);
  msg->ext.heartbeat_ms = heartbeat_ms;
  ext_mark (msg, ZLT_EXT_HEARTBEAT_MS);
}

/**
 * zlt_message_set_resumed:
 * @msg: a message
 * @resumed: whether the tunnel was resumed
 *
 * Sets the RESUMED tag.
 */
void
zlt_message_set_resumed (ZltMessage *msg, gboolean resumed)
{
  g_return_if_fail (msg != NULL);
  msg->ext.resumed = resumed ? 1 : 0;
  ext_mark (msg, ZLT_EXT_RESUMED);
}

/**
 * zlt_message_set_assigned_port:
 * @msg: a message
 * @port: the public port given; 0 = none (an internal service)
 *
 * Sets the ASSIGNED_PORT tag.
 */
void
zlt_message_set_assigned_port (ZltMessage *msg, guint16 port)
{
  g_return_if_fail (msg != NULL);
  msg->ext.assigned_port = port;
  ext_mark (msg, ZLT_EXT_ASSIGNED_PORT);
}

/**
 * zlt_message_set_expose:
 * @msg: a message
 * @expose: how the service is exposed
 *
 * Sets the EXPOSE tag.
 */
void
zlt_message_set_expose (ZltMessage *msg, ZltExpose expose)
{
  g_return_if_fail (msg != NULL);
  msg->ext.expose = (guint8) expose;
  ext_mark (msg, ZLT_EXT_EXPOSE);
}

/**
 * zlt_message_set_code:
 * @msg: a message
 * @code: the reason code
 *
 * Sets the CODE tag.
 */
void
zlt_message_set_code (ZltMessage *msg, ZltReasonCode code)
{
  g_return_if_fail (msg != NULL);
  msg->ext.code = (guint16) code;
  ext_mark (msg, ZLT_EXT_CODE);
}

/**
 * zlt_message_set_server_proof:
 * @msg: a message
 * @proof: (array fixed-size=32): the server's proof (zlt_server_proof())
 *
 * Sets the SERVER_PROOF tag.
 */
void
zlt_message_set_server_proof (ZltMessage *msg, const guint8 proof[ZLT_HASH_SIZE])
{
  g_return_if_fail (msg != NULL && proof != NULL);
  memcpy (msg->ext.server_proof, proof, ZLT_HASH_SIZE);
  ext_mark (msg, ZLT_EXT_SERVER_PROOF);
}

/**
 * zlt_message_set_access_ttl:
 * @msg: a message
 * @seconds: how long the access session should last; 0 = no limit asked
 *
 * Sets the ACCESS_TTL tag.
 */
void
zlt_message_set_access_ttl (ZltMessage *msg, guint32 seconds)
{
  g_return_if_fail (msg != NULL);
  msg->ext.access_ttl = seconds;
  ext_mark (msg, ZLT_EXT_ACCESS_TTL);
}

/**
 * zlt_message_set_max_connections:
 * @msg: a message
 * @max_connections: live connections of the service, at most; 0 = no cap
 *
 * Sets the MAX_CONNECTIONS tag.
 */
void
zlt_message_set_max_connections (ZltMessage *msg, guint32 max_connections)
{
  g_return_if_fail (msg != NULL);
  msg->ext.max_connections = max_connections;
  ext_mark (msg, ZLT_EXT_MAX_CONNECTIONS);
}

/**
 * zlt_message_set_timestamp_us:
 * @msg: a message
 * @timestamp_us: the heartbeat's time in microseconds
 *
 * Sets the TIMESTAMP_US tag.
 */
void
zlt_message_set_timestamp_us (ZltMessage *msg, guint64 timestamp_us)
{
  g_return_if_fail (msg != NULL);
  msg->ext.timestamp_us = timestamp_us;
  ext_mark (msg, ZLT_EXT_TIMESTAMP_US);
}

/**
 * zlt_message_set_standby_max:
 * @msg: a message
 * @standby_max: standby data connections the server parks, at most
 *
 * Sets the STANDBY_MAX tag.
 */
void
zlt_message_set_standby_max (ZltMessage *msg, guint16 standby_max)
{
  g_return_if_fail (msg != NULL);
  msg->ext.standby_max = standby_max;
  ext_mark (msg, ZLT_EXT_STANDBY_MAX);
}

/**
 * zlt_message_set_addresses:
 * @msg: a Connect
 * @addresses: the public connection's client and server ends as the server saw them
 *
 * Sets the ADDRESSES tag (PROTOCOL-v2.md §9).
 */
void
zlt_message_set_addresses (ZltMessage *msg, const ZltAddresses *addresses)
{
  g_return_if_fail (msg != NULL && addresses != NULL);
  msg->ext.addresses = *addresses;
  ext_mark (msg, ZLT_EXT_ADDRESSES);
}

/**
 * zlt_message_set_hostname:
 * @msg: a Register
 * @hostname: the hostname the service asks for instead of a port, 1 to 253 bytes
 *
 * Sets the HOSTNAME tag (PROTOCOL-v2.md §10).
 */
void
zlt_message_set_hostname (ZltMessage *msg, const char *hostname)
{
  g_return_if_fail (msg != NULL && hostname != NULL);
  g_free (msg->hostname);
  msg->hostname = g_strdup (hostname);
  ext_mark (msg, ZLT_EXT_HOSTNAME);
}

/**
 * zlt_message_set_idle_timeout:
 * @msg: a message
 * @seconds: how long a relayed connection may stay silent
 *
 * Sets the IDLE_TIMEOUT tag.
 */
void
zlt_message_set_idle_timeout (ZltMessage *msg, guint32 seconds)
{
  g_return_if_fail (msg != NULL);
  msg->ext.idle_timeout = seconds;
  ext_mark (msg, ZLT_EXT_IDLE_TIMEOUT);
}

/**
 * zlt_message_has_ext_fields:
 * @msg: a message
 * @flags: #ZltExtFlags bits
 *
 * Returns: %TRUE when every tag in @flags was present
 */
gboolean
zlt_message_has_ext_fields (const ZltMessage *msg, guint32 flags)
{
  g_return_val_if_fail (msg != NULL, FALSE);
  return msg->has_ext && (msg->ext.present & flags) == flags;
}

/* ---- encoding ---------------------------------------------------------------------- */

/* Appends only while the frame stays within ZLT_MAX_MESSAGE_SIZE, but keeps counting, so
 * the refusal can say how big the frame would have been. */
typedef struct
{
  GByteArray *out;
  gsize size; /* bytes of this frame so far, header included */
  gboolean overflow;
} Writer;

static void
put (Writer *w, const void *data, gsize n)
{
  if (!w->overflow && n <= ZLT_MAX_MESSAGE_SIZE && w->size <= ZLT_MAX_MESSAGE_SIZE - n)
    g_byte_array_append (w->out, data, (guint) n);
  else
    w->overflow = TRUE;
  w->size = (w->size > G_MAXSIZE - n) ? G_MAXSIZE : w->size + n;
}

static void
put_u8 (Writer *w, guint8 v)
{
  put (w, &v, 1);
}

static void
put_u16 (Writer *w, guint16 v)
{
  guint8 b[2] = { (guint8) (v >> 8), (guint8) v };
  put (w, b, sizeof b);
}

static void
put_u32 (Writer *w, guint32 v)
{
  guint8 b[4] = { (guint8) (v >> 24), (guint8) (v >> 16), (guint8) (v >> 8), (guint8) v };
  put (w, b, sizeof b);
}

static void
put_u64 (Writer *w, guint64 v)
{
  put_u32 (w, (guint32) (v >> 32));
  put_u32 (w, (guint32) v);
}

static void
put_uuid (Writer *w, const ZltUuid *uuid)
{
  put (w, uuid->bytes, ZLT_UUID_SIZE);
}

/* str8 (prefix 1) or str16 (prefix 2) */
static gboolean
put_str (Writer *w, const char *field, const char *s, guint prefix, GError **error)
{
  const gsize max = prefix == 1 ? G_MAXUINT8 : G_MAXUINT16;
  gsize len;

  if (s == NULL)
    s = "";
  len = strlen (s);
  if (len > max)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_ENCODE,
                   "%s too long: %" G_GSIZE_FORMAT " bytes (at most %" G_GSIZE_FORMAT ")", field,
                   len, max);
      return FALSE;
    }
  if (!g_utf8_validate_len (s, len, NULL))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_ENCODE, "%s is not valid UTF-8", field);
      return FALSE;
    }
  if (prefix == 1)
    put_u8 (w, (guint8) len);
  else
    put_u16 (w, (guint16) len);
  put (w, s, len);
  return TRUE;
}

static void
put_ext_entry (Writer *w, ZltExtTag tag, const void *value)
{
  put_u8 (w, (guint8) tag);
  put_u16 (w, ext_tags[tag].size);
  put (w, value, ext_tags[tag].size);
}

static void
put_be32 (guint8 *buf, guint32 v)
{
  buf[0] = (guint8) (v >> 24);
  buf[1] = (guint8) (v >> 16);
  buf[2] = (guint8) (v >> 8);
  buf[3] = (guint8) v;
}

static gboolean
put_ext (Writer *w, const ZltMessage *msg, GError **error)
{
  const guint32 allowed = ext_flags_for_type (msg->type);
  const ZltMessageExt *ext = &msg->ext;
  guint32 extra = ext->present & ~allowed;

  if (!zlt_message_type_has_ext (msg->type))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_ENCODE, "%s has no extension block",
                   zlt_message_type_to_string (msg->type));
      return FALSE;
    }
  if (extra != 0)
    {
      guint bit = (guint) g_bit_nth_lsf (extra, -1);
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_ENCODE, "extension field %s is not defined for %s",
                   (extra & EXT_KNOWN_FLAGS) == extra ? ext_tags[bit].name : "(unknown)",
                   zlt_message_type_to_string (msg->type));
      return FALSE;
    }

  put_u8 (w, ZLT_EXT_MARKER);
  /* in tag order, so the bytes of a message are always the same */
  for (guint tag = 1; tag <= EXT_TAG_MAX; tag++)
    {
      guint8 buf[ZLT_UUID_SIZE + ZLT_HASH_SIZE];

      if ((ext->present & ZLT_EXT_FLAG (tag)) == 0)
        continue;
      if (tag == ZLT_EXT_TAG_HOSTNAME)
        {
          gsize n = msg->hostname != NULL ? strlen (msg->hostname) : 0;

          if (n == 0 || n > ZLT_EXT_HOSTNAME_MAX)
            {
              g_set_error (error, ZLT_ERROR, ZLT_ERROR_ENCODE,
                           "HOSTNAME has %" G_GSIZE_FORMAT " bytes (must be 1 to %u)", n,
                           (guint) ZLT_EXT_HOSTNAME_MAX);
              return FALSE;
            }
          put_u8 (w, (guint8) tag);
          put_u16 (w, (guint16) n);
          put (w, msg->hostname, n);
          continue;
        }
      switch ((ZltExtTag) tag)
        {
        case ZLT_EXT_TAG_VERSION:
          buf[0] = (guint8) (ext->version >> 8);
          buf[1] = (guint8) ext->version;
          break;
        case ZLT_EXT_TAG_CAPS:
          put_be32 (buf, ext->caps);
          break;
        case ZLT_EXT_TAG_PROOF:
          memcpy (buf, ext->proof, ZLT_HASH_SIZE);
          break;
        case ZLT_EXT_TAG_RESUME:
          memcpy (buf, ext->resume_tunnel_id.bytes, ZLT_UUID_SIZE);
          memcpy (buf + ZLT_UUID_SIZE, ext->resume_mac, ZLT_HASH_SIZE);
          break;
        case ZLT_EXT_TAG_RESUME_SECRET:
          memcpy (buf, ext->resume_secret, ZLT_HASH_SIZE);
          break;
        case ZLT_EXT_TAG_HEARTBEAT_MS:
          put_be32 (buf, ext->heartbeat_ms);
          break;
        case ZLT_EXT_TAG_RESUMED:
          buf[0] = ext->resumed;
          break;
        case ZLT_EXT_TAG_ASSIGNED_PORT:
          buf[0] = (guint8) (ext->assigned_port >> 8);
          buf[1] = (guint8) ext->assigned_port;
          break;
        case ZLT_EXT_TAG_EXPOSE:
          buf[0] = ext->expose;
          break;
        case ZLT_EXT_TAG_CODE:
          buf[0] = (guint8) (ext->code >> 8);
          buf[1] = (guint8) ext->code;
          break;
        case ZLT_EXT_TAG_SERVER_PROOF:
          memcpy (buf, ext->server_proof, ZLT_HASH_SIZE);
          break;
        case ZLT_EXT_TAG_ACCESS_TTL:
          put_be32 (buf, ext->access_ttl);
          break;
        case ZLT_EXT_TAG_MAX_CONNECTIONS:
          put_be32 (buf, ext->max_connections);
          break;
        case ZLT_EXT_TAG_IDLE_TIMEOUT:
          put_be32 (buf, ext->idle_timeout);
          break;
        case ZLT_EXT_TAG_TIMESTAMP_US:
          put_be32 (buf, (guint32) (ext->timestamp_us >> 32));
          put_be32 (buf + 4, (guint32) ext->timestamp_us);
          break;
        case ZLT_EXT_TAG_STANDBY_MAX:
          buf[0] = (guint8) (ext->standby_max >> 8);
          buf[1] = (guint8) ext->standby_max;
          break;
        case ZLT_EXT_TAG_ADDRESSES:
          zlt_addresses_encode (&ext->addresses, buf);
          break;
        default:
          continue;
        }
      put_ext_entry (w, (ZltExtTag) tag, buf);
      explicit_bzero (buf, sizeof buf);
    }
  return TRUE;
}

static gboolean
put_payload (Writer *w, const ZltMessage *msg, GError **error)
{
  switch (msg->type)
    {
    case ZLT_MESSAGE_AUTH:
      if (!put_str (w, "token", msg->token, 2, error))
        return FALSE;
      put_uuid (w, &msg->client_id);
      break;
    case ZLT_MESSAGE_AUTH_OK:
      put_uuid (w, &msg->tunnel_id);
      break;
    case ZLT_MESSAGE_AUTH_FAIL:
    case ZLT_MESSAGE_REGISTER_FAIL:
    case ZLT_MESSAGE_DISCONNECT:
      if (!put_str (w, "reason", msg->reason, 2, error))
        return FALSE;
      break;
    case ZLT_MESSAGE_REGISTER:
      if (msg->protocol != ZLT_PROTOCOL_TCP && msg->protocol != ZLT_PROTOCOL_UDP)
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_ENCODE, "invalid protocol %d",
                       (int) msg->protocol);
          return FALSE;
        }
      if (!put_str (w, "name", msg->name, 1, error))
        return FALSE;
      put_u8 (w, (guint8) msg->protocol);
      put_u16 (w, msg->local_port);
      put_u16 (w, msg->remote_port);
      break;
    case ZLT_MESSAGE_REGISTER_OK:
    case ZLT_MESSAGE_UNREGISTER:
      put_uuid (w, &msg->service_id);
      break;
    case ZLT_MESSAGE_CONNECT:
      put_uuid (w, &msg->service_id);
      put_uuid (w, &msg->connection_id);
      if (!put_str (w, "client_addr", msg->client_addr, 2, error))
        return FALSE;
      break;
    case ZLT_MESSAGE_CONNECT_ACK:
      put_uuid (w, &msg->connection_id);
      break;
    case ZLT_MESSAGE_CONNECT_FAIL:
      put_uuid (w, &msg->connection_id);
      if (!put_str (w, "reason", msg->reason, 2, error))
        return FALSE;
      break;
    case ZLT_MESSAGE_HEARTBEAT:
    case ZLT_MESSAGE_HEARTBEAT_ACK:
      put_u64 (w, msg->timestamp);
      break;
    default:
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_ENCODE, "unknown message type 0x%02x",
                   (guint) msg->type);
      return FALSE;
    }
  if (msg->has_ext && !put_ext (w, msg, error))
    return FALSE;
  return TRUE;
}

/**
 * zlt_message_encode:
 * @msg: the message to encode
 * @out: the buffer one frame is appended to
 * @error: return location for a #GError
 *
 * Appends one frame to @out. A string longer than its length prefix allows, or a frame
 * longer than %ZLT_MAX_MESSAGE_SIZE, fails with %ZLT_ERROR_ENCODE and leaves @out as it
 * was.
 *
 * Returns: %TRUE on success
 */
gboolean
zlt_message_encode (const ZltMessage *msg, GByteArray *out, GError **error)
{
  Writer w = { out, 0, FALSE };
  guint start;
  gsize payload_len;
  guint8 *hdr;

  g_return_val_if_fail (msg != NULL, FALSE);
  g_return_val_if_fail (out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (out->len > G_MAXUINT - ZLT_MAX_MESSAGE_SIZE)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_ENCODE, "output buffer full (%u bytes)", out->len);
      return FALSE;
    }
  start = out->len;

  put_u8 (&w, (guint8) msg->type);
  put_u32 (&w, 0); /* the payload length, filled in below */
  if (!put_payload (&w, msg, error))
    {
      g_prefix_error (error, "cannot encode %s: ", zlt_message_type_to_string (msg->type));
      g_byte_array_set_size (out, start);
      return FALSE;
    }
  if (w.overflow)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_ENCODE,
                   "cannot encode %s: message too large: %" G_GSIZE_FORMAT " bytes (at most %u)",
                   zlt_message_type_to_string (msg->type), w.size, (guint) ZLT_MAX_MESSAGE_SIZE);
      g_byte_array_set_size (out, start);
      return FALSE;
    }

  payload_len = w.size - ZLT_HEADER_SIZE;
  hdr = out->data + start;
  hdr[1] = (guint8) (payload_len >> 24);
  hdr[2] = (guint8) (payload_len >> 16);
  hdr[3] = (guint8) (payload_len >> 8);
  hdr[4] = (guint8) payload_len;
  return TRUE;
}

/**
 * zlt_message_encode_bytes:
 * @msg: the message to encode
 * @error: return location for a #GError
 *
 * The same as zlt_message_encode(), as a new #GBytes.
 *
 * Returns: (transfer full): the frame, or %NULL on error
 */
GBytes *
zlt_message_encode_bytes (const ZltMessage *msg, GError **error)
{
  g_autoptr (GByteArray) out = g_byte_array_new ();

  g_return_val_if_fail (msg != NULL, NULL);

  if (!zlt_message_encode (msg, out, error))
    return NULL;
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

/* ---- decoding ---------------------------------------------------------------------- */

typedef struct
{
  const guint8 *data;
  gsize len;
  gsize pos; /* always <= len */
} Reader;

static gsize
reader_left (const Reader *r)
{
  return r->len - r->pos;
}

static gboolean
reader_need (const Reader *r, gsize n, const char *field, GError **error)
{
  if (reader_left (r) >= n)
    return TRUE;
  g_set_error (error, ZLT_ERROR, ZLT_ERROR_PROTOCOL,
               "payload too short: %s needs %" G_GSIZE_FORMAT " bytes at offset %" G_GSIZE_FORMAT
               ", %" G_GSIZE_FORMAT " left",
               field, n, r->pos, reader_left (r));
  return FALSE;
}

static guint16
be16 (const guint8 *p)
{
  return (guint16) ((p[0] << 8) | p[1]);
}

static guint32
be32 (const guint8 *p)
{
  return ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8) | p[3];
}

static gboolean
get_u8 (Reader *r, const char *field, guint8 *out, GError **error)
{
  if (!reader_need (r, 1, field, error))
    return FALSE;
  *out = r->data[r->pos];
  r->pos += 1;
  return TRUE;
}

static gboolean
get_u16 (Reader *r, const char *field, guint16 *out, GError **error)
{
  if (!reader_need (r, 2, field, error))
    return FALSE;
  *out = be16 (r->data + r->pos);
  r->pos += 2;
  return TRUE;
}

static gboolean
get_u64 (Reader *r, const char *field, guint64 *out, GError **error)
{
  if (!reader_need (r, 8, field, error))
    return FALSE;
  *out = ((guint64) be32 (r->data + r->pos) << 32) | be32 (r->data + r->pos + 4);
  r->pos += 8;
  return TRUE;
}

static gboolean
get_uuid (Reader *r, const char *field, ZltUuid *out, GError **error)
{
  if (!reader_need (r, ZLT_UUID_SIZE, field, error))
    return FALSE;
  memcpy (out->bytes, r->data + r->pos, ZLT_UUID_SIZE);
  r->pos += ZLT_UUID_SIZE;
  return TRUE;
}

/* str8 (prefix 1) or str16 (prefix 2) */
static gboolean
get_str (Reader *r, const char *field, guint prefix, char **out, GError **error)
{
  gsize len;
  const char *s;

  if (prefix == 1)
    {
      guint8 l8;
      if (!get_u8 (r, field, &l8, error))
        return FALSE;
      len = l8;
    }
  else
    {
      guint16 l16;
      if (!get_u16 (r, field, &l16, error))
        return FALSE;
      len = l16;
    }
  if (!reader_need (r, len, field, error))
    return FALSE;
  s = (const char *) r->data + r->pos;
  if (memchr (s, '\0', len) != NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_PROTOCOL, "%s contains a NUL byte", field);
      return FALSE;
    }
  if (!g_utf8_validate_len (s, len, NULL))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_PROTOCOL, "%s is not valid UTF-8", field);
      return FALSE;
    }
  *out = g_strndup (s, len);
  r->pos += len;
  return TRUE;
}

static void
ext_store (ZltMessageExt *ext, ZltExtTag tag, const guint8 *v)
{
  switch (tag)
    {
    case ZLT_EXT_TAG_VERSION:
      ext->version = be16 (v);
      break;
    case ZLT_EXT_TAG_CAPS:
      ext->caps = be32 (v);
      break;
    case ZLT_EXT_TAG_PROOF:
      memcpy (ext->proof, v, ZLT_HASH_SIZE);
      break;
    case ZLT_EXT_TAG_RESUME:
      memcpy (ext->resume_tunnel_id.bytes, v, ZLT_UUID_SIZE);
      memcpy (ext->resume_mac, v + ZLT_UUID_SIZE, ZLT_HASH_SIZE);
      break;
    case ZLT_EXT_TAG_RESUME_SECRET:
      memcpy (ext->resume_secret, v, ZLT_HASH_SIZE);
      break;
    case ZLT_EXT_TAG_HEARTBEAT_MS:
      ext->heartbeat_ms = be32 (v);
      break;
    case ZLT_EXT_TAG_RESUMED:
      ext->resumed = v[0];
      break;
    case ZLT_EXT_TAG_ASSIGNED_PORT:
      ext->assigned_port = be16 (v);
      break;
    case ZLT_EXT_TAG_EXPOSE:
      ext->expose = v[0];
      break;
    case ZLT_EXT_TAG_CODE:
      ext->code = be16 (v);
      break;
    case ZLT_EXT_TAG_SERVER_PROOF:
      memcpy (ext->server_proof, v, ZLT_HASH_SIZE);
      break;
    case ZLT_EXT_TAG_ACCESS_TTL:
      ext->access_ttl = be32 (v);
      break;
    case ZLT_EXT_TAG_MAX_CONNECTIONS:
      ext->max_connections = be32 (v);
      break;
    case ZLT_EXT_TAG_IDLE_TIMEOUT:
      ext->idle_timeout = be32 (v);
      break;
    case ZLT_EXT_TAG_TIMESTAMP_US:
      ext->timestamp_us = (guint64) be32 (v) << 32 | be32 (v + 4);
      break;
    case ZLT_EXT_TAG_STANDBY_MAX:
      ext->standby_max = be16 (v);
      break;
    case ZLT_EXT_TAG_ADDRESSES:
      zlt_addresses_decode (v, &ext->addresses);
      break;
    default:
      break;
    }
}

/* The rest of the reader is an extension block (PROTOCOL-v2.md §1). */
static gboolean
get_ext (Reader *r, ZltMessage *msg, GError **error)
{
  const guint32 allowed = ext_flags_for_type (msg->type);
  guint32 seen = 0;
  guint8 marker;

  if (!get_u8 (r, "extension marker", &marker, error))
    return FALSE;
  if (marker != ZLT_EXT_MARKER)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_PROTOCOL,
                   "unknown extension block marker 0x%02x (expected 0x%02x)", marker,
                   (guint) ZLT_EXT_MARKER);
      return FALSE;
    }
  while (reader_left (r) > 0)
    {
      gsize entry = r->pos;
      guint8 tag;
      guint16 size;
      const guint8 *value;

      if (reader_left (r) < EXT_ENTRY_HEADER)
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_PROTOCOL,
                       "truncated extension entry at offset %" G_GSIZE_FORMAT ": %" G_GSIZE_FORMAT
                       " bytes left",
                       entry, reader_left (r));
          return FALSE;
        }
      tag = r->data[r->pos];
      size = be16 (r->data + r->pos + 1);
      r->pos += EXT_ENTRY_HEADER;
      if (size > reader_left (r))
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_PROTOCOL,
                       "extension entry 0x%02x at offset %" G_GSIZE_FORMAT
                       " overruns the payload: %u bytes, %" G_GSIZE_FORMAT " left",
                       tag, entry, size, reader_left (r));
          return FALSE;
        }
      value = r->data + r->pos;
      r->pos += size;

      if (tag == 0 || tag > EXT_TAG_MAX)
        continue; /* unknown: skipped for forward compatibility */
      if (tag == ZLT_EXT_TAG_HOSTNAME)
        {
          if (size == 0 || size > ZLT_EXT_HOSTNAME_MAX || memchr (value, '\0', size) != NULL)
            {
              g_set_error (error, ZLT_ERROR, ZLT_ERROR_PROTOCOL,
                           "extension field HOSTNAME has %u bytes (must be 1 to %u, no NUL)", size,
                           (guint) ZLT_EXT_HOSTNAME_MAX);
              return FALSE;
            }
        }
      else if (size != ext_tags[tag].size)
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_PROTOCOL,
                       "extension field %s has %u bytes (must be %u)", ext_tags[tag].name, size,
                       ext_tags[tag].size);
          return FALSE;
        }
      if (seen & ZLT_EXT_FLAG (tag))
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_PROTOCOL, "duplicate extension field %s",
                       ext_tags[tag].name);
          return FALSE;
        }
      seen |= ZLT_EXT_FLAG (tag);
      if ((allowed & ZLT_EXT_FLAG (tag)) == 0)
        continue; /* known, but not used by this type: skipped as well */
      if (tag == ZLT_EXT_TAG_HOSTNAME)
        msg->hostname = g_strndup ((const char *) value, size);
      else
        ext_store (&msg->ext, (ZltExtTag) tag, value);
      msg->ext.present |= ZLT_EXT_FLAG (tag);
    }
  msg->has_ext = TRUE;
  return TRUE;
}

static gboolean
get_payload (Reader *r, ZltMessage *msg, GError **error)
{
  guint8 protocol;

  switch (msg->type)
    {
    case ZLT_MESSAGE_AUTH:
      if (!get_str (r, "token", 2, &msg->token, error)
          || !get_uuid (r, "client_id", &msg->client_id, error))
        return FALSE;
      break;
    case ZLT_MESSAGE_AUTH_OK:
      if (!get_uuid (r, "tunnel_id", &msg->tunnel_id, error))
        return FALSE;
      break;
    case ZLT_MESSAGE_AUTH_FAIL:
    case ZLT_MESSAGE_REGISTER_FAIL:
    case ZLT_MESSAGE_DISCONNECT:
      if (!get_str (r, "reason", 2, &msg->reason, error))
        return FALSE;
      break;
    case ZLT_MESSAGE_REGISTER:
      if (!get_str (r, "name", 1, &msg->name, error) || !get_u8 (r, "protocol", &protocol, error))
        return FALSE;
      if (protocol != ZLT_PROTOCOL_TCP && protocol != ZLT_PROTOCOL_UDP)
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_PROTOCOL, "invalid protocol byte 0x%02x",
                       protocol);
          return FALSE;
        }
      msg->protocol = (ZltProtocol) protocol;
      if (!get_u16 (r, "local_port", &msg->local_port, error)
          || !get_u16 (r, "remote_port", &msg->remote_port, error))
        return FALSE;
      break;
    case ZLT_MESSAGE_REGISTER_OK:
    case ZLT_MESSAGE_UNREGISTER:
      if (!get_uuid (r, "service_id", &msg->service_id, error))
        return FALSE;
      break;
    case ZLT_MESSAGE_CONNECT:
      if (!get_uuid (r, "service_id", &msg->service_id, error)
          || !get_uuid (r, "connection_id", &msg->connection_id, error)
          || !get_str (r, "client_addr", 2, &msg->client_addr, error))
        return FALSE;
      break;
    case ZLT_MESSAGE_CONNECT_ACK:
      if (!get_uuid (r, "connection_id", &msg->connection_id, error))
        return FALSE;
      break;
    case ZLT_MESSAGE_CONNECT_FAIL:
      if (!get_uuid (r, "connection_id", &msg->connection_id, error)
          || !get_str (r, "reason", 2, &msg->reason, error))
        return FALSE;
      break;
    case ZLT_MESSAGE_HEARTBEAT:
    case ZLT_MESSAGE_HEARTBEAT_ACK:
      if (!get_u64 (r, "timestamp", &msg->timestamp, error))
        return FALSE;
      break;
    default:
      /* the caller checked the type */
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_UNKNOWN_TYPE, "unknown message type 0x%02x",
                   (guint) msg->type);
      return FALSE;
    }

  if (reader_left (r) == 0)
    return TRUE;
  if (!zlt_message_type_has_ext (msg->type))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_PROTOCOL,
                   "payload too long: %" G_GSIZE_FORMAT " bytes, %" G_GSIZE_FORMAT
                   " unexpected after the fields (no extension block on this type)",
                   r->len, reader_left (r));
      return FALSE;
    }
  return get_ext (r, msg, error);
}

/**
 * zlt_message_decode:
 * @data: (array length=len) (nullable): bytes starting with a frame
 * @len: the number of bytes in @data
 * @consumed: (out) (optional): the size of the decoded frame; 0 on error
 * @error: return location for a #GError
 *
 * Decodes the first frame of @data; bytes after it are left alone. Fails with
 * %ZLT_ERROR_TOO_SHORT, %ZLT_ERROR_UNKNOWN_TYPE, %ZLT_ERROR_PAYLOAD_TOO_LARGE,
 * %ZLT_ERROR_INCOMPLETE (wait for more bytes) or %ZLT_ERROR_PROTOCOL.
 *
 * Returns: (transfer full): the message, or %NULL on error
 */
ZltMessage *
zlt_message_decode (const guint8 *data, gsize len, gsize *consumed, GError **error)
{
  g_autoptr (ZltMessage) msg = NULL;
  Reader r;
  guint8 type;
  guint32 payload_len;

  g_return_val_if_fail (data != NULL || len == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (consumed != NULL)
    *consumed = 0;

  /* PROTOCOL.md §1.1: this order exactly */
  if (len < ZLT_HEADER_SIZE)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_TOO_SHORT,
                   "frame too short: %" G_GSIZE_FORMAT " bytes (the header alone is %u)", len,
                   (guint) ZLT_HEADER_SIZE);
      return NULL;
    }
  type = data[0];
  if (!zlt_message_type_is_valid (type))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_UNKNOWN_TYPE, "unknown message type 0x%02x", type);
      return NULL;
    }
  payload_len = be32 (data + 1);
  if (payload_len > ZLT_MAX_PAYLOAD)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_PAYLOAD_TOO_LARGE,
                   "payload too large: %u bytes (at most %u)", payload_len,
                   (guint) ZLT_MAX_PAYLOAD);
      return NULL;
    }
  if (len - ZLT_HEADER_SIZE < payload_len)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INCOMPLETE,
                   "incomplete frame: %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes", len,
                   (gsize) ZLT_HEADER_SIZE + payload_len);
      return NULL;
    }

  msg = zlt_message_new ((ZltMessageType) type);
  r.data = data + ZLT_HEADER_SIZE;
  r.len = payload_len;
  r.pos = 0;
  if (!get_payload (&r, msg, error))
    {
      g_prefix_error (error, "invalid %s message: ", zlt_message_type_to_string (msg->type));
      return NULL;
    }

  if (consumed != NULL)
    *consumed = ZLT_HEADER_SIZE + (gsize) payload_len;
  return g_steal_pointer (&msg);
}

/**
 * zlt_message_decode_all:
 * @data: (array length=len) (nullable): whole frames back to back
 * @len: the number of bytes in @data
 * @error: return location for a #GError
 *
 * Decodes every frame of @data, which must hold at least one and nothing but whole
 * frames; every one must decode.
 *
 * Returns: (transfer container) (element-type ZltMessage): the messages in order, or
 *   %NULL on error
 */
GPtrArray *
zlt_message_decode_all (const guint8 *data, gsize len, GError **error)
{
  g_autoptr (GPtrArray) msgs = g_ptr_array_new_with_free_func ((GDestroyNotify) zlt_message_free);
  gsize pos = 0;

  g_return_val_if_fail (data != NULL || len == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* at least one frame: an empty buffer fails as "too short". Its data may be NULL (an
   * empty GBytes), and NULL + 0 is undefined behaviour, so no arithmetic at pos 0. */
  do
    {
      gsize used = 0;
      ZltMessage *msg = zlt_message_decode (pos > 0 ? data + pos : data, len - pos, &used, error);

      if (msg == NULL)
        {
          g_prefix_error (error, "frame %u at offset %" G_GSIZE_FORMAT ": ", msgs->len + 1, pos);
          return NULL;
        }
      g_ptr_array_add (msgs, msg);
      pos += used; /* used <= len - pos */
    }
  while (pos < len);
  return g_steal_pointer (&msgs);
}

/* ---- diagnostics ------------------------------------------------------------------- */

static void
append_uuid (GString *s, const char *field, const ZltUuid *uuid)
{
  char buf[ZLT_UUID_STRING_LEN + 1];

  zlt_uuid_format (uuid, buf);
  g_string_append_printf (s, " %s=%s", field, buf);
}

static void
append_str (GString *s, const char *field, const char *value)
{
  g_autofree char *escaped = g_strescape (value != NULL ? value : "", NULL);

  g_string_append_printf (s, " %s=\"%s\"", field, escaped);
}

/**
 * zlt_message_to_string:
 * @msg: a message
 *
 * Describes @msg in one line for debug logs. Secrets (the token, proofs, MACs, the
 * resume secret) are left out.
 *
 * Returns: (transfer full): a new string
 */
char *
zlt_message_to_string (const ZltMessage *msg)
{
  GString *s;
  const ZltMessageExt *ext;

  g_return_val_if_fail (msg != NULL, NULL);

  ext = &msg->ext;
  s = g_string_new (zlt_message_type_to_string (msg->type));
  switch (msg->type)
    {
    case ZLT_MESSAGE_AUTH:
      g_string_append_printf (s, " token=<%" G_GSIZE_FORMAT " bytes>",
                              msg->token != NULL ? strlen (msg->token) : 0);
      append_uuid (s, "client_id", &msg->client_id);
      break;
    case ZLT_MESSAGE_AUTH_OK:
      append_uuid (s, "tunnel_id", &msg->tunnel_id);
      break;
    case ZLT_MESSAGE_AUTH_FAIL:
    case ZLT_MESSAGE_REGISTER_FAIL:
    case ZLT_MESSAGE_DISCONNECT:
      append_str (s, "reason", msg->reason);
      break;
    case ZLT_MESSAGE_REGISTER:
      append_str (s, "name", msg->name);
      g_string_append_printf (s, " protocol=%s local_port=%u remote_port=%u",
                              zlt_protocol_to_string (msg->protocol), msg->local_port,
                              msg->remote_port);
      break;
    case ZLT_MESSAGE_REGISTER_OK:
    case ZLT_MESSAGE_UNREGISTER:
      append_uuid (s, "service_id", &msg->service_id);
      break;
    case ZLT_MESSAGE_CONNECT:
      append_uuid (s, "service_id", &msg->service_id);
      append_uuid (s, "connection_id", &msg->connection_id);
      append_str (s, "client_addr", msg->client_addr);
      break;
    case ZLT_MESSAGE_CONNECT_ACK:
      append_uuid (s, "connection_id", &msg->connection_id);
      break;
    case ZLT_MESSAGE_CONNECT_FAIL:
      append_uuid (s, "connection_id", &msg->connection_id);
      append_str (s, "reason", msg->reason);
      break;
    case ZLT_MESSAGE_HEARTBEAT:
    case ZLT_MESSAGE_HEARTBEAT_ACK:
      g_string_append_printf (s, " timestamp=%" G_GUINT64_FORMAT, msg->timestamp);
      break;
    default:
      g_string_append_printf (s, " type=0x%02x", (guint) msg->type);
      break;
    }

  if (!msg->has_ext)
    return g_string_free (s, FALSE);
  g_string_append (s, " ext={");
  if (ext->present & ZLT_EXT_VERSION)
    g_string_append_printf (s, " version=%u", ext->version);
  if (ext->present & ZLT_EXT_CAPS)
    g_string_append_printf (s, " caps=0x%x", ext->caps);
  if (ext->present & ZLT_EXT_PROOF)
    g_string_append (s, " proof=<redacted>");
  if (ext->present & ZLT_EXT_RESUME)
    {
      append_uuid (s, "resume_tunnel_id", &ext->resume_tunnel_id);
      g_string_append (s, " resume_mac=<redacted>");
    }
  if (ext->present & ZLT_EXT_RESUME_SECRET)
    g_string_append (s, " resume_secret=<redacted>");
  if (ext->present & ZLT_EXT_HEARTBEAT_MS)
    g_string_append_printf (s, " heartbeat_ms=%u", ext->heartbeat_ms);
  if (ext->present & ZLT_EXT_RESUMED)
    g_string_append_printf (s, " resumed=%u", ext->resumed);
  if (ext->present & ZLT_EXT_ASSIGNED_PORT)
    g_string_append_printf (s, " assigned_port=%u", ext->assigned_port);
  if (ext->present & ZLT_EXT_EXPOSE)
    g_string_append_printf (s, " expose=%u", ext->expose);
  if (ext->present & ZLT_EXT_CODE)
    g_string_append_printf (s, " code=%s(%u)", zlt_reason_code_to_string (ext->code), ext->code);
  if (ext->present & ZLT_EXT_SERVER_PROOF)
    g_string_append (s, " server_proof=<redacted>");
  if (ext->present & ZLT_EXT_ACCESS_TTL)
    g_string_append_printf (s, " access_ttl=%u", ext->access_ttl);
  if (ext->present & ZLT_EXT_MAX_CONNECTIONS)
    g_string_append_printf (s, " max_connections=%u", ext->max_connections);
  if (ext->present & ZLT_EXT_IDLE_TIMEOUT)
    g_string_append_printf (s, " idle_timeout=%u", ext->idle_timeout);
  if (ext->present & ZLT_EXT_TIMESTAMP_US)
    g_string_append_printf (s, " timestamp_us=%" G_GUINT64_FORMAT, ext->timestamp_us);
  if (ext->present & ZLT_EXT_STANDBY_MAX)
    g_string_append_printf (s, " standby_max=%u", ext->standby_max);
  if (ext->present & ZLT_EXT_HOSTNAME)
    append_str (s, "hostname", msg->hostname);
  if (ext->present & ZLT_EXT_ADDRESSES)
    {
      g_autofree char *addresses = zlt_addresses_to_string (&ext->addresses);
      g_string_append_printf (s, " addresses=%s", addresses);
    }
  g_string_append (s, " }");
  return g_string_free (s, FALSE);
}

/* ---- reason codes ------------------------------------------------------------------ */

/**
 * zlt_reason_code_to_string:
 * @code: a reason code
 *
 * Returns: the code's name as PROTOCOL-v2.md writes it ("BAD_TOKEN"), "UNKNOWN" for
 *   anything else
 */
const char *
zlt_reason_code_to_string (ZltReasonCode code)
{
  switch (code)
    {
    case ZLT_REASON_NONE:
      return "NONE";
    case ZLT_REASON_BAD_TOKEN:
      return "BAD_TOKEN";
    case ZLT_REASON_EXPIRED_TOKEN:
      return "EXPIRED_TOKEN";
    case ZLT_REASON_NOT_ALLOWED:
      return "NOT_ALLOWED";
    case ZLT_REASON_DUPLICATE_NAME:
      return "DUPLICATE_NAME";
    case ZLT_REASON_PORT_IN_USE:
      return "PORT_IN_USE";
    case ZLT_REASON_PORT_OUT_OF_RANGE:
      return "PORT_OUT_OF_RANGE";
    case ZLT_REASON_PORTS_EXHAUSTED:
      return "PORTS_EXHAUSTED";
    case ZLT_REASON_LIMIT:
      return "LIMIT";
    case ZLT_REASON_PROTOCOL:
      return "PROTOCOL";
    case ZLT_REASON_TIMEOUT:
      return "TIMEOUT";
    case ZLT_REASON_SHUTDOWN:
      return "SHUTDOWN";
    case ZLT_REASON_LEGACY_REFUSED:
      return "LEGACY_REFUSED";
    case ZLT_REASON_IN_USE:
      return "IN_USE";
    case ZLT_REASON_INTERNAL:
      return "INTERNAL";
    case ZLT_REASON_INVALID:
      return "INVALID";
    default:
      return "UNKNOWN";
    }
}

/**
 * zlt_reason_code_to_error:
 * @code: a reason code
 *
 * Returns: the #ZltError code that matches @code
 */
ZltError
zlt_reason_code_to_error (ZltReasonCode code)
{
  switch (code)
    {
    case ZLT_REASON_BAD_TOKEN:
      return ZLT_ERROR_BAD_TOKEN;
    case ZLT_REASON_EXPIRED_TOKEN:
      return ZLT_ERROR_EXPIRED_TOKEN;
    case ZLT_REASON_NOT_ALLOWED:
      return ZLT_ERROR_NOT_ALLOWED;
    case ZLT_REASON_DUPLICATE_NAME:
      return ZLT_ERROR_DUPLICATE_NAME;
    case ZLT_REASON_PORT_IN_USE:
      return ZLT_ERROR_PORT_IN_USE;
    case ZLT_REASON_PORT_OUT_OF_RANGE:
      return ZLT_ERROR_PORT_OUT_OF_RANGE;
    case ZLT_REASON_PORTS_EXHAUSTED:
      return ZLT_ERROR_PORTS_EXHAUSTED;
    case ZLT_REASON_LIMIT:
      return ZLT_ERROR_LIMIT;
    case ZLT_REASON_PROTOCOL:
      return ZLT_ERROR_PROTOCOL;
    case ZLT_REASON_TIMEOUT:
      return ZLT_ERROR_TIMEOUT;
    case ZLT_REASON_SHUTDOWN:
      return ZLT_ERROR_CLOSED;
    case ZLT_REASON_LEGACY_REFUSED:
      return ZLT_ERROR_LEGACY_REFUSED;
    case ZLT_REASON_IN_USE:
      return ZLT_ERROR_IN_USE;
    case ZLT_REASON_INVALID:
      return ZLT_ERROR_INVALID;
    case ZLT_REASON_NONE:
    case ZLT_REASON_INTERNAL:
    default:
      return ZLT_ERROR_FAILED;
    }
}

/**
 * zlt_reason_code_from_error:
 * @error: (nullable): an error
 *
 * Returns: the reason code that matches @error; %ZLT_REASON_INTERNAL for an error outside
 *   %ZLT_ERROR or without a matching code
 */
ZltReasonCode
zlt_reason_code_from_error (const GError *error)
{
  if (error == NULL || error->domain != ZLT_ERROR)
    return ZLT_REASON_INTERNAL;
  switch ((ZltError) error->code)
    {
    case ZLT_ERROR_BAD_TOKEN:
      return ZLT_REASON_BAD_TOKEN;
    case ZLT_ERROR_EXPIRED_TOKEN:
      return ZLT_REASON_EXPIRED_TOKEN;
    case ZLT_ERROR_NOT_ALLOWED:
      return ZLT_REASON_NOT_ALLOWED;
    case ZLT_ERROR_DUPLICATE_NAME:
      return ZLT_REASON_DUPLICATE_NAME;
    case ZLT_ERROR_PORT_IN_USE:
      return ZLT_REASON_PORT_IN_USE;
    case ZLT_ERROR_PORT_OUT_OF_RANGE:
      return ZLT_REASON_PORT_OUT_OF_RANGE;
    case ZLT_ERROR_PORTS_EXHAUSTED:
      return ZLT_REASON_PORTS_EXHAUSTED;
    case ZLT_ERROR_LIMIT:
      return ZLT_REASON_LIMIT;
    case ZLT_ERROR_PROTOCOL:
    case ZLT_ERROR_TOO_SHORT:
    case ZLT_ERROR_INCOMPLETE:
    case ZLT_ERROR_UNKNOWN_TYPE:
    case ZLT_ERROR_PAYLOAD_TOO_LARGE:
      return ZLT_REASON_PROTOCOL;
    case ZLT_ERROR_TIMEOUT:
      return ZLT_REASON_TIMEOUT;
    case ZLT_ERROR_CLOSED:
      return ZLT_REASON_SHUTDOWN;
    case ZLT_ERROR_LEGACY_REFUSED:
      return ZLT_REASON_LEGACY_REFUSED;
    case ZLT_ERROR_IN_USE:
      return ZLT_REASON_IN_USE;
    case ZLT_ERROR_INVALID:
      return ZLT_REASON_INVALID;
    default:
      return ZLT_REASON_INTERNAL;
    }
}

/**
 * zlt_reason_code_is_fatal:
 * @code: a reason code
 *
 * Returns: %TRUE for the reasons an agent must not retry quickly (a bad or expired token,
 *   legacy authentication refused; PROTOCOL-v2.md §1)
 */
gboolean
zlt_reason_code_is_fatal (ZltReasonCode code)
{
  return code == ZLT_REASON_BAD_TOKEN || code == ZLT_REASON_EXPIRED_TOKEN
         || code == ZLT_REASON_LEGACY_REFUSED;
}
