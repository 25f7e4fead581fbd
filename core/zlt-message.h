/* zlt-message.h: the control channel's wire codec (PROTOCOL.md §1, PROTOCOL-v2.md §1) */
#pragma once

#include <glib.h>
#include <glib-object.h>

#include "zlt-version.h"
#include "zlt-crypto.h"
#include "zlt-error.h"
#include "zlt-types.h"
#include "zlt-uuid.h"

G_BEGIN_DECLS

#define ZLT_HEADER_SIZE 5
#define ZLT_MAX_MESSAGE_SIZE 65536 /* a whole frame, header included */
#define ZLT_MAX_PAYLOAD (ZLT_MAX_MESSAGE_SIZE - ZLT_HEADER_SIZE)
#define ZLT_PROTOCOL_VERSION 2
#define ZLT_EXT_MARKER 0x02 /* first byte of a v2 extension block */

typedef enum
{
  ZLT_MESSAGE_AUTH = 0x01,
  ZLT_MESSAGE_AUTH_OK = 0x02,
  ZLT_MESSAGE_AUTH_FAIL = 0x03,
  ZLT_MESSAGE_REGISTER = 0x10,
  ZLT_MESSAGE_REGISTER_OK = 0x11,
  ZLT_MESSAGE_REGISTER_FAIL = 0x12,
  ZLT_MESSAGE_CONNECT = 0x20,
  ZLT_MESSAGE_CONNECT_ACK = 0x21,
  ZLT_MESSAGE_CONNECT_FAIL = 0x22,
  ZLT_MESSAGE_HEARTBEAT = 0x30,
  ZLT_MESSAGE_HEARTBEAT_ACK = 0x31,
  ZLT_MESSAGE_UNREGISTER = 0x40,
  ZLT_MESSAGE_DISCONNECT = 0x41,
} ZltMessageType;

/* The tags of the extension block, as on the wire. */
typedef enum
{
  ZLT_EXT_TAG_VERSION = 0x01,
  ZLT_EXT_TAG_CAPS = 0x02,
  ZLT_EXT_TAG_PROOF = 0x03,
  ZLT_EXT_TAG_RESUME = 0x04,
  ZLT_EXT_TAG_RESUME_SECRET = 0x05,
  ZLT_EXT_TAG_HEARTBEAT_MS = 0x06,
  ZLT_EXT_TAG_RESUMED = 0x07,
  ZLT_EXT_TAG_ASSIGNED_PORT = 0x08,
  ZLT_EXT_TAG_EXPOSE = 0x09,
  ZLT_EXT_TAG_CODE = 0x0A,
  ZLT_EXT_TAG_SERVER_PROOF = 0x0B,
  ZLT_EXT_TAG_ACCESS_TTL = 0x0C,
  ZLT_EXT_TAG_MAX_CONNECTIONS = 0x0D,
  ZLT_EXT_TAG_IDLE_TIMEOUT = 0x0E,
  ZLT_EXT_TAG_TIMESTAMP_US = 0x0F,
  ZLT_EXT_TAG_STANDBY_MAX = 0x10,
  ZLT_EXT_TAG_ADDRESSES = 0x11,
  ZLT_EXT_TAG_HOSTNAME = 0x12,
} ZltExtTag;

/* Bits of ZltMessageExt.present: one per tag, bit number = tag. */
#define ZLT_EXT_FLAG(tag) (1u << (tag))
typedef enum
{
  ZLT_EXT_VERSION = ZLT_EXT_FLAG (ZLT_EXT_TAG_VERSION),
  ZLT_EXT_CAPS = ZLT_EXT_FLAG (ZLT_EXT_TAG_CAPS),
  ZLT_EXT_PROOF = ZLT_EXT_FLAG (ZLT_EXT_TAG_PROOF),
  ZLT_EXT_RESUME = ZLT_EXT_FLAG (ZLT_EXT_TAG_RESUME),
  ZLT_EXT_RESUME_SECRET = ZLT_EXT_FLAG (ZLT_EXT_TAG_RESUME_SECRET),
  ZLT_EXT_HEARTBEAT_MS = ZLT_EXT_FLAG (ZLT_EXT_TAG_HEARTBEAT_MS),
  ZLT_EXT_RESUMED = ZLT_EXT_FLAG (ZLT_EXT_TAG_RESUMED),
  ZLT_EXT_ASSIGNED_PORT = ZLT_EXT_FLAG (ZLT_EXT_TAG_ASSIGNED_PORT),
  ZLT_EXT_EXPOSE = ZLT_EXT_FLAG (ZLT_EXT_TAG_EXPOSE),
  ZLT_EXT_CODE = ZLT_EXT_FLAG (ZLT_EXT_TAG_CODE),
  ZLT_EXT_SERVER_PROOF = ZLT_EXT_FLAG (ZLT_EXT_TAG_SERVER_PROOF),
  ZLT_EXT_ACCESS_TTL = ZLT_EXT_FLAG (ZLT_EXT_TAG_ACCESS_TTL),
  ZLT_EXT_MAX_CONNECTIONS = ZLT_EXT_FLAG (ZLT_EXT_TAG_MAX_CONNECTIONS),
  ZLT_EXT_IDLE_TIMEOUT = ZLT_EXT_FLAG (ZLT_EXT_TAG_IDLE_TIMEOUT),
  ZLT_EXT_TIMESTAMP_US = ZLT_EXT_FLAG (ZLT_EXT_TAG_TIMESTAMP_US),
  ZLT_EXT_STANDBY_MAX = ZLT_EXT_FLAG (ZLT_EXT_TAG_STANDBY_MAX),
  ZLT_EXT_ADDRESSES = ZLT_EXT_FLAG (ZLT_EXT_TAG_ADDRESSES),
  ZLT_EXT_HOSTNAME = ZLT_EXT_FLAG (ZLT_EXT_TAG_HOSTNAME),
} ZltExtFlags;

/* Capability bits of the CAPS tag. */
typedef enum
{
  ZLT_CAP_DATA_RAW = 0x1,
  ZLT_CAP_DATA_WS = 0x2,
  ZLT_CAP_UDP = 0x4,
  ZLT_CAP_RESUME = 0x8,
  ZLT_CAP_ACCESS = 0x10,
  ZLT_CAP_STANDBY = 0x20,
  ZLT_CAP_BEARER = 0x40,    /* Auth: the token field is the raw token (PROTOCOL-v2.md §2a) */
  ZLT_CAP_ADDRESSES = 0x80, /* ADDRESSES in Connect, bindings of format 2 (PROTOCOL-v2.md §9) */
} ZltCapabilities;

/* Machine-readable reasons of the CODE tag; 0 is "no code". */
typedef enum
{
  ZLT_REASON_NONE = 0,
  ZLT_REASON_BAD_TOKEN = 1,
  ZLT_REASON_EXPIRED_TOKEN = 2,
  ZLT_REASON_NOT_ALLOWED = 3,
  ZLT_REASON_DUPLICATE_NAME = 4,
  ZLT_REASON_PORT_IN_USE = 5,
  ZLT_REASON_PORT_OUT_OF_RANGE = 6,
  ZLT_REASON_PORTS_EXHAUSTED = 7,
  ZLT_REASON_LIMIT = 8,
  ZLT_REASON_PROTOCOL = 9,
  ZLT_REASON_TIMEOUT = 10,
  ZLT_REASON_SHUTDOWN = 11,
  ZLT_REASON_LEGACY_REFUSED = 12,
  ZLT_REASON_IN_USE = 13,
  ZLT_REASON_INTERNAL = 14,
  ZLT_REASON_INVALID = 15,
} ZltReasonCode;

/* the highest reason code this build knows; peers may send higher ones */
#define ZLT_REASON_MAX ZLT_REASON_INVALID

/* The ADDRESSES tag: a public connection's two ends as the server saw them. */
#define ZLT_ADDRESSES_SIZE 37
typedef enum
{
  ZLT_ADDRESS_FAMILY_IPV4 = 4,
  ZLT_ADDRESS_FAMILY_IPV6 = 6,
} ZltAddressFamily;

typedef struct
{
  guint8 family;          /* ZltAddressFamily; kept as on the wire */
  guint8 source[16];      /* the client; IPv4: the first 4 bytes, the rest zero */
  guint8 destination[16]; /* the server's end of the connection (its public port) */
  guint16 source_port;
  guint16 destination_port;
} ZltAddresses;

/* The values of a v2 extension block. Only the fields whose bit is set in present are
 * meaningful; the others are zero. */
typedef struct
{
  guint32 present; /* ZltExtFlags */
  guint16 version;
  guint32 caps; /* ZltCapabilities */
  guint8 proof[ZLT_HASH_SIZE];
  ZltUuid resume_tunnel_id;
  guint8 resume_mac[ZLT_HASH_SIZE];
  guint8 resume_secret[ZLT_HASH_SIZE];
  guint32 heartbeat_ms;
  guint8 resumed;        /* 1 = resumed; kept as on the wire */
  guint16 assigned_port; /* 0 = none (internal service) */
  guint8 expose;         /* ZltExpose; kept as on the wire */
  guint16 code;          /* ZltReasonCode */
  guint8 server_proof[ZLT_HASH_SIZE];
  guint32 access_ttl;      /* seconds an access session asks for; 0 = no limit asked */
  guint32 max_connections; /* Register: the owner's cap on live connections; 0 = none */
  guint32 idle_timeout;    /* Register: seconds a relayed connection may stay silent */
  guint64 timestamp_us;    /* Heartbeat(Ack): the same moment as the v1 field, in µs */
  guint16 standby_max;     /* AuthOk: standby data connections the server parks, at most */
  ZltAddresses addresses;  /* Connect: the public connection's ends as the server saw them */
} ZltMessageExt;

/* One decoded (or to be encoded) frame. Which fields a type uses is in PROTOCOL.md §1.3;
 * the others stay zero / NULL. NULL strings encode as empty strings. */
typedef struct
{
  ZltMessageType type;

  char *token;       /* Auth: raw token (v1, v2 bearer) or key id (v2 challenge) */
  char *reason;      /* AuthFail, RegisterFail, ConnectFail, Disconnect */
  char *name;        /* Register (str8) */
  char *client_addr; /* Connect */

  ZltUuid client_id;     /* Auth */
  ZltUuid tunnel_id;     /* AuthOk */
  ZltUuid service_id;    /* RegisterOk, Connect, Unregister */
  ZltUuid connection_id; /* Connect, ConnectAck, ConnectFail */

  ZltProtocol protocol; /* Register */
  guint16 local_port;   /* Register */
  guint16 remote_port;  /* Register, 0 = any */
  guint64 timestamp;    /* Heartbeat, HeartbeatAck: Unix epoch ms */

  gboolean has_ext; /* an extension block is (to be) present, even an empty one */
  ZltMessageExt ext;
  char *hostname; /* Register: HOSTNAME, the hostname asked for instead of a port */
} ZltMessage;

/* the HOSTNAME tag's value: 1 to this many bytes */
#define ZLT_EXT_HOSTNAME_MAX 253

#define ZLT_TYPE_MESSAGE (zlt_message_get_type ())
ZLT_AVAILABLE_IN_ALL
GType zlt_message_get_type (void) G_GNUC_CONST;

ZLT_AVAILABLE_IN_ALL
const char *zlt_message_type_to_string (ZltMessageType type);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_message_type_is_valid (guint type);
/* Whether the type may carry an extension block (PROTOCOL-v2.md §1). */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_message_type_has_ext (ZltMessageType type);

ZLT_AVAILABLE_IN_ALL
ZltMessage *zlt_message_new (ZltMessageType type);
ZLT_AVAILABLE_IN_ALL
ZltMessage *zlt_message_copy (const ZltMessage *msg);
ZLT_AVAILABLE_IN_ALL
void zlt_message_free (ZltMessage *msg);

ZLT_AVAILABLE_IN_ALL
ZltMessage *zlt_message_new_auth (const char *token, const ZltUuid *client_id);
ZLT_AVAILABLE_IN_ALL
ZltMessage *zlt_message_new_auth_ok (const ZltUuid *tunnel_id);
ZLT_AVAILABLE_IN_ALL
ZltMessage *zlt_message_new_auth_fail (const char *reason);
ZLT_AVAILABLE_IN_ALL
ZltMessage *zlt_message_new_register (const char *name, ZltProtocol protocol, guint16 local_port,
                                      guint16 remote_port);
ZLT_AVAILABLE_IN_ALL
ZltMessage *zlt_message_new_register_ok (const ZltUuid *service_id);
ZLT_AVAILABLE_IN_ALL
ZltMessage *zlt_message_new_register_fail (const char *reason);
ZLT_AVAILABLE_IN_ALL
ZltMessage *zlt_message_new_connect (const ZltUuid *service_id, const ZltUuid *connection_id,
                                     const char *client_addr);
ZLT_AVAILABLE_IN_ALL
ZltMessage *zlt_message_new_connect_ack (const ZltUuid *connection_id);
ZLT_AVAILABLE_IN_ALL
ZltMessage *zlt_message_new_connect_fail (const ZltUuid *connection_id, const char *reason);
ZLT_AVAILABLE_IN_ALL
ZltMessage *zlt_message_new_heartbeat (guint64 timestamp);
ZLT_AVAILABLE_IN_ALL
ZltMessage *zlt_message_new_heartbeat_ack (guint64 timestamp);
ZLT_AVAILABLE_IN_ALL
ZltMessage *zlt_message_new_unregister (const ZltUuid *service_id);
ZLT_AVAILABLE_IN_ALL
ZltMessage *zlt_message_new_disconnect (const char *reason);

/* Setters for the extension block: each sets has_ext and the tag's bit. */
ZLT_AVAILABLE_IN_ALL
void zlt_message_set_version (ZltMessage *msg, guint16 version);
ZLT_AVAILABLE_IN_ALL
void zlt_message_set_caps (ZltMessage *msg, guint32 caps);
ZLT_AVAILABLE_IN_ALL
void zlt_message_set_proof (ZltMessage *msg, const guint8 proof[ZLT_HASH_SIZE]);
ZLT_AVAILABLE_IN_ALL
void zlt_message_set_resume (ZltMessage *msg, const ZltUuid *tunnel_id,
                             const guint8 mac[ZLT_HASH_SIZE]);
ZLT_AVAILABLE_IN_ALL
void zlt_message_set_resume_secret (ZltMessage *msg, const guint8 secret[ZLT_HASH_SIZE]);
ZLT_AVAILABLE_IN_ALL
void zlt_message_set_heartbeat_ms (ZltMessage *msg, guint32 heartbeat_ms);
ZLT_AVAILABLE_IN_ALL
void zlt_message_set_resumed (ZltMessage *msg, gboolean resumed);
ZLT_AVAILABLE_IN_ALL
void zlt_message_set_assigned_port (ZltMessage *msg, guint16 port);
ZLT_AVAILABLE_IN_ALL
void zlt_message_set_expose (ZltMessage *msg, ZltExpose expose);
ZLT_AVAILABLE_IN_ALL
void zlt_message_set_code (ZltMessage *msg, ZltReasonCode code);
ZLT_AVAILABLE_IN_ALL
void zlt_message_set_server_proof (ZltMessage *msg, const guint8 proof[ZLT_HASH_SIZE]);
ZLT_AVAILABLE_IN_ALL
void zlt_message_set_access_ttl (ZltMessage *msg, guint32 seconds);
ZLT_AVAILABLE_IN_ALL
void zlt_message_set_max_connections (ZltMessage *msg, guint32 max_connections);
ZLT_AVAILABLE_IN_ALL
void zlt_message_set_idle_timeout (ZltMessage *msg, guint32 seconds);
ZLT_AVAILABLE_IN_ALL
void zlt_message_set_timestamp_us (ZltMessage *msg, guint64 timestamp_us);
ZLT_AVAILABLE_IN_ALL
void zlt_message_set_standby_max (ZltMessage *msg, guint16 standby_max);
ZLT_AVAILABLE_IN_ALL
void zlt_message_set_addresses (ZltMessage *msg, const ZltAddresses *addresses);
ZLT_AVAILABLE_IN_ALL
void zlt_message_set_hostname (ZltMessage *msg, const char *hostname);
/* TRUE when every tag in flags (ZltExtFlags) was present. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_message_has_ext_fields (const ZltMessage *msg, guint32 flags);

/* Appends one frame to out; on error out is left as it was. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_message_encode (const ZltMessage *msg, GByteArray *out, GError **error);
ZLT_AVAILABLE_IN_ALL
GBytes *zlt_message_encode_bytes (const ZltMessage *msg, GError **error);

/* Decodes the first frame of data; *consumed (optional) gets its size, 0 on error. */
ZLT_AVAILABLE_IN_ALL
ZltMessage *zlt_message_decode (const guint8 *data, gsize len, gsize *consumed, GError **error);
/* Decodes frames back to back filling all of data (at least one); every one must decode.
 * Returns an array of ZltMessage that frees its elements. */
ZLT_AVAILABLE_IN_ALL
GPtrArray *zlt_message_decode_all (const guint8 *data, gsize len, GError **error);

/* One line for debug logs; secrets (token, proof, MACs, resume secret) are left out. */
ZLT_AVAILABLE_IN_ALL
char *zlt_message_to_string (const ZltMessage *msg);

ZLT_AVAILABLE_IN_ALL
const char *zlt_reason_code_to_string (ZltReasonCode code);
/* The ZLT_ERROR code that matches a reason code, and back (ZLT_REASON_INTERNAL for an
 * error outside the domain or without a matching code). */
ZLT_AVAILABLE_IN_ALL
ZltError zlt_reason_code_to_error (ZltReasonCode code);
ZLT_AVAILABLE_IN_ALL
ZltReasonCode zlt_reason_code_from_error (const GError *error);
/* Reasons an agent must not retry quickly (PROTOCOL-v2.md §1). */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_reason_code_is_fatal (ZltReasonCode code);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ZltMessage, zlt_message_free)

G_END_DECLS
