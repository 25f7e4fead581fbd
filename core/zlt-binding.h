/* zlt-binding.h: the binding a server writes on a standby data connection when it joins
 * it to a public connection (PROTOCOL-v2.md §8) */
#pragma once

#include <glib.h>

#include "zlt-message.h"
#include "zlt-uuid.h"

G_BEGIN_DECLS

/* A server keeps a standby connection parked for a random time between 3/4 of this and
 * this, then closes it: well below the idle timeouts of common NATs and load balancers
 * (4 min and more), so that a mapping dropped silently is the exception, and the
 * connections of a pool do not all end at once. */
#define ZLT_STANDBY_LIFETIME_MS (60 * 1000)
/* An agent gives up on a standby connection it has held this long: the server's end
 * of it is surely gone (its close was lost). */
#define ZLT_STANDBY_AGENT_LIMIT_MS (ZLT_STANDBY_LIFETIME_MS + 15 * 1000)

#define ZLT_BINDING_MAGIC 0xB1 /* a binding, format 1 */
/* format 2: format 1 and the ADDRESSES value (PROTOCOL-v2.md §9), for agents with the
 * ADDRESSES capability */
#define ZLT_BINDING_MAGIC_ADDRESSES 0xB2
#define ZLT_BINDING_FIXED_SIZE (1 + 2 * ZLT_UUID_SIZE + 1)
#define ZLT_BINDING_ADDR_MAX 255
#define ZLT_BINDING_MAX_SIZE (ZLT_BINDING_FIXED_SIZE + ZLT_BINDING_ADDR_MAX + ZLT_ADDRESSES_SIZE)

/* A decoded binding. */
typedef struct
{
  ZltUuid connection_id;
  ZltUuid service_id;
  char client_addr[ZLT_BINDING_ADDR_MAX + 1]; /* as in Connect; NUL-terminated */
  gboolean has_addresses;                     /* format 2 */
  ZltAddresses addresses;                     /* as on the wire: check before use */
} ZltBinding;

typedef enum
{
  ZLT_BINDING_INCOMPLETE, /* more bytes are needed */
  ZLT_BINDING_COMPLETE,   /* decoded; *consumed bytes were the binding's */
  ZLT_BINDING_INVALID,    /* not a binding: reset the connection */
} ZltBindingStatus;

/* Writes the binding of @connection_id to @service_id for a client at @client_addr
 * (UTF-8, truncated at a character boundary to ZLT_BINDING_ADDR_MAX bytes) into @out;
 * returns its size. */
gsize zlt_binding_encode (const ZltUuid *connection_id, const ZltUuid *service_id,
                          const char *client_addr, guint8 out[ZLT_BINDING_MAX_SIZE]);
/* The same with @addresses: a binding of format 2 (NULL: format 1). */
gsize zlt_binding_encode_full (const ZltUuid *connection_id, const ZltUuid *service_id,
                               const char *client_addr, const ZltAddresses *addresses,
                               guint8 out[ZLT_BINDING_MAX_SIZE]);
/* Decodes a binding from the first @len bytes that arrived on a standby connection. */
ZltBindingStatus zlt_binding_decode (const guint8 *data, gsize len, ZltBinding *binding,
                                     gsize *consumed);

G_END_DECLS
