/* zlt-types.h: small enums shared by the whole library */
#pragma once

#include <glib.h>

#include "zlt-version.h"

G_BEGIN_DECLS

/* the longest service name: 1 to this many ASCII letters, digits, '-' or '_' (the
 * pattern rules of zlt-grant.h build on it) */
#define ZLT_SERVICE_NAME_MAX 64

/* The protocol byte of the wire format: 0 = TCP, 1 = UDP. */
typedef enum
{
  ZLT_PROTOCOL_TCP = 0, /*< nick=tcp >*/
  ZLT_PROTOCOL_UDP = 1, /*< nick=udp >*/
} ZltProtocol;

/* Whether a service gets a public listener or is reachable only by access sessions. */
typedef enum
{
  ZLT_EXPOSE_PUBLIC = 0,   /*< nick=public >*/
  ZLT_EXPOSE_INTERNAL = 1, /*< nick=internal >*/
} ZltExpose;

/* The PROXY protocol header (HAProxy's) an agent writes to a service before its first
 * byte, carrying the public client's address (PROTOCOL-v2.md §9). */
typedef enum
{
  ZLT_PROXY_PROTOCOL_NONE = 0, /*< nick=none >*/
  ZLT_PROXY_PROTOCOL_V1 = 1,   /*< nick=v1 >*/
  ZLT_PROXY_PROTOCOL_V2 = 2,   /*< nick=v2 >*/
} ZltProxyProtocol;

typedef enum
{
  ZLT_TUNNEL_STATE_PENDING,      /*< nick=pending >*/
  ZLT_TUNNEL_STATE_CONNECTING,   /*< nick=connecting >*/
  ZLT_TUNNEL_STATE_CONNECTED,    /*< nick=connected >*/
  ZLT_TUNNEL_STATE_DISCONNECTED, /*< nick=disconnected >*/
  ZLT_TUNNEL_STATE_FAILED,       /*< nick=failed >*/
} ZltTunnelState;

/* Which end of the control channel an object describes. */
/* Where a service stands with the server: an agent's service is registering until the
 * server answers, and again after each reconnect; a server's services are registered. */
typedef enum
{
  ZLT_SERVICE_STATE_REGISTERING, /*< nick=registering >*/
  ZLT_SERVICE_STATE_REGISTERED,  /*< nick=registered >*/
  ZLT_SERVICE_STATE_REFUSED,     /*< nick=refused >*/
} ZltServiceState;

typedef enum
{
  ZLT_ROLE_SERVER, /*< nick=server >*/
  ZLT_ROLE_AGENT,  /*< nick=agent >*/
} ZltRole;

/* How a server spreads a service's new public connections over its replicas
 * (`[server] replica-balance`): in turn, or to the one with the fewest open and waiting
 * connections (ties in turn). */
typedef enum
{
  ZLT_REPLICA_BALANCE_ROUND_ROBIN = 0,       /*< nick=round-robin >*/
  ZLT_REPLICA_BALANCE_LEAST_CONNECTIONS = 1, /*< nick=least-connections >*/
} ZltReplicaBalance;

/* Whether one replica of a server's service takes new public connections: ready; away
 * (its agent is not connected: gone, or held for a resume); late (its agent's heartbeat
 * is overdue, it is not yet declared dead); resting (it just failed a Connect). A late
 * or resting replica gets connections only while no other one is ready. */
typedef enum
{
  ZLT_REPLICA_STATE_READY = 0,   /*< nick=ready >*/
  ZLT_REPLICA_STATE_AWAY = 1,    /*< nick=away >*/
  ZLT_REPLICA_STATE_LATE = 2,    /*< nick=late >*/
  ZLT_REPLICA_STATE_RESTING = 3, /*< nick=resting >*/
} ZltReplicaState;

/**
 * ZltDataVerdict:
 * @ZLT_DATA_ACCEPT: take the connection (a data connection or an access stream)
 * @ZLT_DATA_PROBE_OK: an access probe that an access stream would pass
 * @ZLT_DATA_MALFORMED: ids, MAC or service name are not what they must be
 * @ZLT_DATA_FORBIDDEN: not this tunnel's, bad MAC, unknown or spent connection id,
 *   or outside the grant
 * @ZLT_DATA_NO_SUCH_SERVICE: no service of that name
 * @ZLT_DATA_CONFLICT: the connection id is in use, or the name is ambiguous
 * @ZLT_DATA_UNAVAILABLE: the service's agent is away, or a limit is reached
 *
 * The server's answer to a data-connection request, in words the transport turns
 * into its own (the websocket plugin: 101, 204, 400, 403, 404, 409, 503).
 */
typedef enum
{
  ZLT_DATA_ACCEPT,          /*< nick=accept >*/
  ZLT_DATA_PROBE_OK,        /*< nick=probe-ok >*/
  ZLT_DATA_MALFORMED,       /*< nick=malformed >*/
  ZLT_DATA_FORBIDDEN,       /*< nick=forbidden >*/
  ZLT_DATA_NO_SUCH_SERVICE, /*< nick=no-such-service >*/
  ZLT_DATA_CONFLICT,        /*< nick=conflict >*/
  ZLT_DATA_UNAVAILABLE,     /*< nick=unavailable >*/
} ZltDataVerdict;

ZLT_AVAILABLE_IN_ALL
const char *zlt_protocol_to_string (ZltProtocol protocol);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_protocol_from_string (const char *str, ZltProtocol *out);
ZLT_AVAILABLE_IN_ALL
const char *zlt_proxy_protocol_to_string (ZltProxyProtocol proxy);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_proxy_protocol_from_string (const char *str, ZltProxyProtocol *out);

G_END_DECLS
