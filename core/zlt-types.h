/* zlt-types.h: small enums shared by the whole library */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

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

typedef enum
{
  ZLT_TUNNEL_STATE_PENDING,      /*< nick=pending >*/
  ZLT_TUNNEL_STATE_CONNECTING,   /*< nick=connecting >*/
  ZLT_TUNNEL_STATE_CONNECTED,    /*< nick=connected >*/
  ZLT_TUNNEL_STATE_DISCONNECTED, /*< nick=disconnected >*/
  ZLT_TUNNEL_STATE_FAILED,       /*< nick=failed >*/
} ZltTunnelState;

/* Which end of the control channel an object describes. */
typedef enum
{
  ZLT_ROLE_SERVER, /*< nick=server >*/
  ZLT_ROLE_AGENT,  /*< nick=agent >*/
} ZltRole;

const char *zlt_protocol_to_string (ZltProtocol protocol);
gboolean zlt_protocol_from_string (const char *str, ZltProtocol *out);

G_END_DECLS
